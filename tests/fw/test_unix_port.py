"""Runs every self-contained firmware test (tests/fw/mp_*.py) on the MicroPython unix port."""

from pathlib import Path

import pytest

from harness.mpbin import BOARDS, FIRMWARE, run_mp

HERE = Path(__file__).parent
SCRIPTS = sorted(HERE.glob("mp_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_firmware_module_on_unix_port(script: Path, tmp_path: Path) -> None:
    # Each script runs in its own empty directory, as a charger runs in its own flash directory.
    res = run_mp(script, path=[FIRMWARE, BOARDS / "unix", HERE], cwd=tmp_path, timeout=120)
    out = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
    assert res.returncode == 0, out
    assert " passed, 0 failed" in out, out
