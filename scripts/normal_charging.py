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


async def csms_energy(csms: Any, cid: str, since: int) -> int | None:
    # Wh the back-end billed for the charger's session. The console shows Available at once; the
    # StopTransaction may still be on its way. Chargers without a transaction there (YKC) get None.
    starts = await csms.records(cp=cid, action="StartTransaction", direction="in", since=since)
    if not starts:
        return None
    stop = await csms.wait_for("StopTransaction", cp=cid, since=since, timeout=30)
    return int(stop["payload"]["meterStop"]) - int(starts[0]["payload"]["meterStart"])


async def main(fleet: Any) -> dict[str, Any]:
    chargers = fleet.all()
    mark = await fleet.csms.last_seq() if fleet.csms is not None else 0
    results = await asyncio.gather(*(session(cp, k) for k, cp in enumerate(chargers)), return_exceptions=True)
    failed = [f"{cp.id}: {r}" for cp, r in zip(chargers, results) if isinstance(r, BaseException)]
    summary: dict[str, Any] = {"sessions": len(chargers) - len(failed), "failed": failed}
    if fleet.csms is not None:
        billed = await asyncio.gather(*(csms_energy(fleet.csms, cp.id, mark) for cp in chargers), return_exceptions=True)
        got = [wh for wh in billed if isinstance(wh, int)]
        summary["csms_stop_transactions"] = len(got)
        summary["energy_wh"] = sum(got)
    if failed:
        raise RuntimeError("; ".join(failed))
    return summary
