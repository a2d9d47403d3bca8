"""A fleet mixing OCPP 1.6 and YKC chargers, each against its embedded back-end, runs the normal
charging scenario; each back-end sees its own chargers' sessions, billed from the same meters."""

from __future__ import annotations

from pathlib import Path

from harness import fleetfile
from harness.fleet import Fleet
from harness.mpbin import REPO
from harness.scenario import FleetHandle, load_scenario


async def test_mixed_fleet_normal_charging(tmp_path: Path) -> None:
    fc = fleetfile.from_dict({"name": "mixed", "tags": ["TAG1"], "templates": [
        {"id": "OC-{n}", "count": 2, "protocol": "ocpp16"},
        {"id": "YK-{n}", "count": 2, "protocol": "ykc", "config": {"ykc_realtime_s": 2}},
    ]})
    fleet = Fleet(fc, tmp_path / "run")
    try:
        await fleet.start()
        assert await fleet.wait_booted(60) == 4
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
    finally:
        await fleet.shutdown()
