"""The evfleet command line, in-process (click's CliRunner): validation, errors, no running fleet."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main


def test_validate_and_export(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("templates: [{id: 'CP-{n:02d}', count: 4}]\n")
    out = tmp_path / "fleet.json"
    r = CliRunner().invoke(main, ["validate", str(f), "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "4 chargers" in r.output
    assert len(json.loads(out.read_text())["templates"]) == 4


def test_validate_reports_the_field(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("templates: [{id: CP1, connectors: 9}]\n")
    r = CliRunner().invoke(main, ["validate", str(f)])
    assert r.exit_code == 1
    assert "templates[0].connectors: must be between 1 and 4" in r.output


def test_commands_without_a_fleet_say_so(tmp_path: Path) -> None:
    for args in (["status"], ["send", "CP-0001", "status"], ["console", "CP-0001"], ["down"], ["reboot", "--all"]):
        r = CliRunner().invoke(main, [*args, "--run-dir", str(tmp_path)])
        assert r.exit_code == 1, args
        assert "no fleet is up" in r.output, (args, r.output)


def test_up_refuses_both_file_and_count(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["up", "-f", "x.yaml", "--count", "3", "--run-dir", str(tmp_path)])
    assert r.exit_code == 1 and "either -f" in r.output


def test_run_needs_a_scenario_with_main(tmp_path: Path) -> None:
    s = tmp_path / "s.py"
    s.write_text("x = 1\n")
    r = CliRunner().invoke(main, ["run", str(s), "--run-dir", str(tmp_path)])
    assert r.exit_code == 1 and "has no `async def main(fleet)`" in r.output


def _children(pid: int) -> dict[int, str]:
    kids = {}
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids[int(p.name)] = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            pass
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_harness_leaves_no_csms_behind(tmp_path: Path) -> None:
    # SIGKILL cannot be handled: the embedded CSMS must still go (PR_SET_PDEATHSIG), chargers too.
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "up", "--count", "1", "--run-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if b"registered in" in line:
                break
        kids = _children(proc.pid)
        csms = [pid for pid, cmd in kids.items() if "tools.csms" in cmd]
        assert csms, kids
        proc.kill()
        proc.wait(10)
        end = time.monotonic() + 15
        while any(_alive(p) for p in kids) and time.monotonic() < end:
            time.sleep(0.1)
        assert not [kids[p] for p in kids if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
