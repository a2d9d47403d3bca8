"""A fleet mixing OCPP 1.6 and YKC chargers, each against its embedded back-end, runs the normal
charging scenario; each back-end sees its own chargers' sessions, billed from the same meters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from harness import fleetfile
from harness.fleet import Fleet
from harness.mpbin import REPO
from harness.scenario import FleetHandle, load_scenario


@asynccontextmanager
async def booted_fleet(tmp_path: Path, definition: dict[str, Any]) -> AsyncIterator[Fleet]:
    """The fleet of `definition` with every charger registered; shut down on the way out."""
    fc = fleetfile.from_dict(definition)
    fleet = Fleet(fc, tmp_path / "run")
    try:
        await fleet.start()
        assert await fleet.wait_booted(60) == len(fc.chargers)
        yield fleet
    finally:
        await fleet.shutdown()


async def test_mixed_fleet_normal_charging(tmp_path: Path) -> None:
    async with booted_fleet(tmp_path, {"name": "mixed", "tags": ["TAG1"], "templates": [
        {"id": "OC-{n}", "count": 2, "protocol": "ocpp16"},
        {"id": "YK-{n}", "count": 2, "protocol": "ykc", "config": {"ykc_realtime_s": 2}},
    ]}) as fleet:
        info = await fleet.info()
        assert info["csms"]["embedded"] and info["ykc"]["url"].startswith("tcp://")
        mod = load_scenario(REPO / "scripts" / "normal_charging.py")
        mod.CHARGE_SECONDS = 4
        handle = FleetHandle(fleet, fleet.ids(), fleet.csms, fleet.ykc)
        await mod.main(handle)
        assert fleet.csms is not None and fleet.ykc is not None
        for cid in ("OC-1", "OC-2"):
            stop = await fleet.csms.wait_for("StopTransaction", cp=cid, timeout=20)
            assert stop["payload"]["meterStop"] > 0
        for cid in ("YK-1", "YK-2"):
            pile = (await fleet.charger(cid))["pile_code"]
            rec = await fleet.ykc.wait_for(0x3B, pile=pile, timeout=30)
            assert rec["fields"]["energy"] > 0, rec
        # Each back-end saw only its own chargers.
        ocpp_ids = {r["cp_id"] for r in await fleet.csms.records(action="BootNotification", direction="in")}
        assert ocpp_ids == {"OC-1", "OC-2"}


async def test_message_capture_of_both_protocols(tmp_path: Path) -> None:
    # `capture: true`: every frame each charger sends or receives lands in captures/messages.jsonl
    # (OCPP-J text; YKC frames as hex); without it the firmware does not even build the events.
    async with booted_fleet(tmp_path, {"name": "cap", "capture": True, "templates": [
        {"id": "OC-{n}", "count": 1, "protocol": "ocpp16"},
        {"id": "YK-{n}", "count": 1, "protocol": "ykc", "config": {"ykc_heartbeat_s": 2}},
    ]}) as fleet:
        assert fleet.ykc is not None
        await fleet.ykc.wait_for(0x03, timeout=30)   # a heartbeat: past login and billing
        await asyncio.sleep(1)                        # its answer reached the charger
    recs = [json.loads(line) for line in (tmp_path / "run" / "captures" / "messages.jsonl").read_text().splitlines()]
    oc = [r for r in recs if r["id"] == "OC-1"]
    assert any(r["dir"] == "tx" and '"BootNotification"' in r["msg"] for r in oc), oc[:3]
    boot_id = next(json.loads(r["msg"])[1] for r in oc if '"BootNotification"' in r["msg"])
    assert any(r["dir"] == "rx" and json.loads(r["msg"])[:2] == [3, boot_id] for r in oc)
    yk = [r for r in recs if r["id"] == "YK-1"]
    assert any(r["dir"] == "tx" and r["msg"][10:12] == "01" for r in yk), yk[:3]   # login frame
    assert any(r["dir"] == "rx" and r["msg"][10:12] == "02" for r in yk)            # its answer
