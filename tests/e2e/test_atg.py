"""The firmware's automatic transaction generator (sim/atg.py): sessions the CSMS sees, console
control, settings refused whole."""

from __future__ import annotations

import asyncio

import pytest

from harness.console import ConsoleError
from tools.csms import Csms

QUICK = {"session_s": [1.5, 1.5], "gap_s": [0.5, 0.5], "first_s": 0, "tags": ["TAG1", "TAG2"]}


async def test_generator_from_boot_cycles_full_sessions(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", connectors=2, atg=QUICK, ocpp={"MeterValueSampleInterval": 1})
    for _ in range(2):
        await csms.wait_for("StopTransaction", cp_id="CP1", since=csms.last_seq, timeout=15)
    info = await cp.request("atg")
    assert info["running"] and info["sessions"] >= 2 and info["errors"] == 0
    assert info["settings"]["session_s"] == [1.5, 1.5]
    # Each session is what a driver does: authorized, started, metered, stopped by the same card.
    starts = csms.records("CP1", "StartTransaction", direction="in")
    stops = csms.records("CP1", "StopTransaction", direction="in")
    assert {s.payload["connectorId"] for s in starts} == {1, 2}
    assert all(s.payload["reason"] == "Local" for s in stops)
    assert len(csms.records("CP1", "Authorize", direction="in")) >= len(starts)
    assert {s.payload["idTag"] for s in starts} <= {"TAG1", "TAG2"}
    assert csms.records("CP1", "MeterValues", direction="in")


async def test_generator_on_and_off_from_the_console(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    assert (await cp.request("atg"))["running"] is False
    info = await cp.request("atg", "on", {"session_s": 1, "gap_s": [0.5, 1], "first_s": 0})
    assert info["running"] and info["settings"]["tags"] == ["TAG1"]
    await csms.wait_for("StopTransaction", cp_id="CP1", timeout=10)
    info = await cp.request("atg", "off")
    assert info["running"] is False and info["sessions"] >= 1
    # Off means no new session: whatever was under way is left to the person at the console (a
    # card presented just before may still start one: let that settle first).
    await asyncio.sleep(1.0)
    mark = csms.last_seq
    await asyncio.sleep(2.5)
    assert not csms.records("CP1", "StartTransaction", since=mark)


@pytest.mark.parametrize("bad, why", [
    ({"session_s": [180, 60]}, "low <= high"),
    ({"gap_s": "soon"}, "gap_s"),
    ({"sesion_s": 60}, "unknown ATG setting"),
    ({"tags": [""]}, "idTags"),
    ({"wait_s": 0}, "wait_s"),
])
async def test_bad_settings_are_refused_and_change_nothing(start_charger, bad, why) -> None:
    cp = await start_charger("CP1")
    with pytest.raises(ConsoleError, match=why):
        await cp.request("atg", "on", bad)
    assert (await cp.request("atg"))["running"] is False
    assert (await cp.request("status", 1))["status"] == "Available"
