"""Normal charging, both ways a driver starts: plug-in first on odd chargers, identification
first on even ones; each charges a while, then the driver ends the session and unplugs."""

from __future__ import annotations

import asyncio
from typing import Any

COUNT = 4
CHARGE_SECONDS = 5


async def plug_in_first(cp: Any, tag: str) -> None:
    await cp.plug(1)
    await cp.wait_for(connector=1, status="Preparing", timeout=15)
    await cp.swipe(1, tag)
    await cp.wait_for(connector=1, status="Charging", timeout=30)


async def identification_first(cp: Any, tag: str) -> None:
    await cp.swipe(0, tag)
    await cp.wait_for(connector=1, status="Preparing", timeout=15)
    await cp.plug(1)
    await cp.wait_for(connector=1, status="Charging", timeout=30)


async def session(cp: Any, k: int) -> dict[str, Any]:
    tag = "TAG1"
    if k % 2 == 0:
        await plug_in_first(cp, tag)
    else:
        await identification_first(cp, tag)
    await asyncio.sleep(CHARGE_SECONDS)
    await cp.swipe(1, tag)   # the same card ends the session
    await cp.wait_for(connector=1, status="Finishing", timeout=15)
    await cp.unplug(1)
    await cp.wait_for(connector=1, status="Available", timeout=15)
    return {"charger": cp.id, "way": "plug-in first" if k % 2 == 0 else "identification first"}


async def main(fleet: Any) -> dict[str, Any]:
    chargers = fleet.all()
    results = await asyncio.gather(*(session(cp, k) for k, cp in enumerate(chargers)), return_exceptions=True)
    failed = [f"{cp.id}: {r}" for cp, r in zip(chargers, results) if isinstance(r, BaseException)]
    summary: dict[str, Any] = {"sessions": len(chargers) - len(failed), "failed": failed}
    if fleet.csms is not None:
        stops = await fleet.csms.records(action="StopTransaction", direction="in")
        summary["csms_stop_transactions"] = len(stops)
        summary["energy_wh"] = sum(r["payload"]["meterStop"] for r in stops)
    if failed:
        raise RuntimeError("; ".join(failed))
    return summary
