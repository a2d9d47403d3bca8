"""A 20-charger fleet on the zygote launcher against the embedded CSMS: ready scenarios, serial ports
(pyserial, mpremote), crash detection and restart, the HTTP control API, and clear errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import serial

from harness import fleetfile
from harness.client import RemoteFleet
from harness.fleet import Fleet, FleetError
from harness.httpapi import HttpApi
from harness.scenario import FleetHandle, load_scenario

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    fc = fleetfile.from_dict({"name": "t", "tags": ["TAG1", "TAG2"],
                              "templates": [{"id": "CP-{n:02d}", "count": 20, "connectors": 2,
                                             "config": {"reconnect_base_ms": 200, "reconnect_cap_ms": 2000}}]})
    f = Fleet(fc, tmp_path_factory.mktemp("run"))
    await f.start()
    assert await f.wait_booted(60) == 20
    yield f
    bad = await f.csms.violations() if f.csms else {"count": 0}
    await f.shutdown()
    assert bad["count"] == 0, bad


def handle(fleet: Fleet, ids: list[str]) -> FleetHandle:
    return FleetHandle(fleet, ids, fleet.csms)


async def test_fleet_is_up_on_the_zygote(fleet: Fleet) -> None:
    info = await fleet.info()
    assert info["registered"] == 20 and info["running"] == 20
    assert info["launcher"] == "zygote-c+warm"   # chargers fork with the firmware already imported
    assert info["csms"]["embedded"]
    chargers = await fleet.chargers(live=True)
    assert {c["connectors"]["1"]["status"] for c in chargers} == {"Available"}
    assert all(c["meter"]["1"]["energy_wh"] is not None for c in chargers)


@pytest.mark.parametrize("script, ids", [
    ("normal_charging.py", ["CP-01", "CP-02", "CP-03", "CP-04"]),
    ("remote_start_stop.py", ["CP-05", "CP-06", "CP-07"]),
    ("disconnect_reconnect.py", ["CP-08", "CP-09", "CP-10"]),
    ("fault_recovery.py", ["CP-11", "CP-12", "CP-13"]),
    ("stress.py", ["CP-14", "CP-15", "CP-16"]),
])
async def test_ready_scenarios(fleet: Fleet, script: str, ids: list[str]) -> None:
    mod = load_scenario(SCRIPTS / script)
    if hasattr(mod, "DURATION"):
        mod.DURATION = 6
    mark = await fleet.csms.last_seq()
    summary = await mod.main(handle(fleet, ids))
    assert isinstance(summary, dict)
    for cid in ids:
        # The console shows Finishing before the StopTransaction is on the wire.
        await fleet.csms.wait_for("StopTransaction", cp=cid, since=mark, timeout=20)
        starts = await fleet.csms.records(cp=cid, action="StartTransaction", direction="in", since=mark)
        stops = await fleet.csms.records(cp=cid, action="StopTransaction", direction="in", since=mark)
        assert starts and len(starts) == len(stops), (cid, len(starts), len(stops))
    if script == "stress.py":
        assert summary["meter_values"] >= 3 * 6 and summary["heartbeats"] >= 3 * 4


async def test_serial_port_with_pyserial(fleet: Fleet) -> None:
    info = await fleet.attach("CP-17")
    assert Path(info["link"]).resolve() == Path(info["port"])

    def talk() -> tuple[bytes, bytes]:
        s = serial.Serial(info["link"], 115200, timeout=0.5)
        try:
            s.write(b"\r")
            time.sleep(0.3)
            s.read(4096)
            s.write(b"status 1\r")
            time.sleep(0.5)
            human = s.read(8192)
            s.write(b'{"id":9,"cmd":"info"}\r\n')
            time.sleep(0.5)
            machine = s.read(8192)
            return human, machine
        finally:
            s.close()

    human, machine = await asyncio.to_thread(talk)
    assert b"status: Available" in human
    reply = json.loads(machine.strip().splitlines()[-1])
    assert reply["id"] == 9 and reply["ok"] and reply["data"]["id"] == "CP-17"
    # The harness keeps working beside the user.
    assert (await fleet.console("CP-17", "status", [1]))["status"] == "Available"
    await fleet.detach("CP-17")
    assert not Path(info["link"]).exists()


async def test_mpremote_on_a_running_charger(fleet: Fleet) -> None:
    info = await fleet.attach("CP-18")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mpremote", "connect", info["port"], "exec", "print(charger.id, len(charger.connectors))",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err
        assert out.decode().split() == ["CP-18", "3"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mpremote", "connect", info["port"], "fs", "ls", ":/",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err
        assert b"config.json" in out
    finally:
        await fleet.detach("CP-18")
    # The charger kept running (and still answers the harness).
    assert (await fleet.charger("CP-18"))["registered"]
    assert (await fleet.console("CP-18", "info"))["id"] == "CP-18"


async def test_warm_chargers_do_not_share_random_sequences(fleet: Fleet) -> None:
    # Forked from one loaded runtime, each charger must still reseed (back-off jitter, EV models).
    draws = []
    for cid in ("CP-16", "CP-17"):
        info = await fleet.attach(cid)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mpremote", "connect", info["port"], "exec",
                "import random; print(random.getrandbits(30), random.getrandbits(30))",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err
            draws.append(out.split())
        finally:
            await fleet.detach(cid)
    assert len(draws[0]) == 2 and draws[0] != draws[1]


async def test_killed_instance_is_detected_and_restarted(fleet: Fleet) -> None:
    before = await fleet.charger("CP-19")
    old_pid = before["pid"]
    mark = await fleet.csms.last_seq()
    os.kill(old_pid, 9)   # from outside, as a crash would
    await fleet.wait_event("CP-19", "exit", timeout=5)
    await fleet.csms.wait_for("BootNotification", cp="CP-19", since=mark, timeout=20)
    after = await fleet.charger("CP-19")
    assert after["pid"] != old_pid and after["restarts"] == before["restarts"] + 1
    assert after["exits"][-1]["why"] == "killed by SIGKILL"


async def test_bad_input_gets_clear_errors(fleet: Fleet) -> None:
    with pytest.raises(FleetError, match="no charger 'NOPE'"):
        await fleet.console("NOPE", "status")
    with pytest.raises(FleetError, match="unknown command 'dance'"):
        await fleet.console("CP-20", "dance")
    with pytest.raises(FleetError, match="no connector 9"):
        await fleet.console("CP-20", "plug", [9])
    with pytest.raises(FleetError, match="unknown error code"):
        await fleet.console("CP-20", "fault", [1, "Gremlins"])
    assert (await fleet.console("CP-20", "status", [1]))["status"] == "Available"   # nothing changed


async def test_http_control_api(fleet: Fleet) -> None:
    api = HttpApi(fleet)
    url = await api.start()
    remote = RemoteFleet(url)
    try:
        info = await remote.info()
        assert info["chargers"] == 20
        assert len(await remote.chargers()) == 20
        assert (await remote.console("CP-20", "status", [2]))["conn"] == 2
        with pytest.raises(FleetError, match="no charger"):
            await remote.charger("XX")
        spec = await remote._req("GET", "/api/openapi.json")
        assert "/api/chargers/{id}/console" in spec["paths"]
        recs = await remote.csms_records(cp="CP-20", action="BootNotification")
        assert recs and recs[0]["cp_id"] == "CP-20"
        events: list[dict] = []

        async def listen() -> None:
            async for ev in remote.events():
                events.append(ev)
                if ev.get("ev") == "status" and ev.get("id") == "CP-20":
                    return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.3)
        await remote.console("CP-20", "plug", [1])
        await asyncio.wait_for(task, 10)
        assert events[-1]["status"] == "Preparing"
        await remote.console("CP-20", "unplug", [1])
    finally:
        await remote.close()
        await api.close()
