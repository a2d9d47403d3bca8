"""A short chaos run inside `make test`: power cuts, network cuts, stalls, hardware faults and CSMS
restarts while sessions run; every record at the CSMS must check out and nothing may be lost."""

from __future__ import annotations

from pathlib import Path

from harness.chaos import run


async def test_short_chaos_run_loses_nothing(tmp_path: Path) -> None:
    result = await run(n=8, duration=25, rate=1.0, run_dir=tmp_path / "chaos", seed=1234, say=lambda m: None)
    assert result["problems"] == 0, result["first_problems"]
    assert result["messages_lost"] == 0
    assert result["sessions"] >= 8
    assert sum(result["faults"].values()) >= 10, result["faults"]
    assert result["restarts"] >= 1   # power cuts happened and the chargers came back
