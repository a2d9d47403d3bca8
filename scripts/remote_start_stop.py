"""Remote start and stop from the CSMS: the driver plugs in, the back-end starts the session
(RemoteStartTransaction), later stops it (RemoteStopTransaction). Needs the embedded CSMS."""

from __future__ import annotations

import asyncio
from typing import Any

COUNT = 4
CHARGE_SECONDS = 4


async def session(fleet: Any, cp: Any) -> None:
    await cp.plug(1)
    await cp.wait_for(connector=1, status="Preparing", timeout=15)
    status = await fleet.csms.remote_start(cp.id, "TAG1", 1)
    if status != "Accepted":
        raise RuntimeError(f"{cp.id} refused RemoteStartTransaction: {status}")
    await cp.wait_for(connector=1, status="Charging", timeout=30)
    await asyncio.sleep(CHARGE_SECONDS)
    status = await fleet.csms.remote_stop(cp.id)
    if status != "Accepted":
        raise RuntimeError(f"{cp.id} refused RemoteStopTransaction: {status}")
    await cp.wait_for(connector=1, status="Finishing", timeout=15)
    await cp.unplug(1)
    await cp.wait_for(connector=1, status="Available", timeout=15)


async def main(fleet: Any) -> dict[str, Any]:
    if fleet.csms is None:
        raise RuntimeError("remote start/stop needs the embedded CSMS (run without --csms)")
    results = await fleet.each(lambda cp: session(fleet, cp))
    failed = [f"{cp.id}: {r}" for cp, r in zip(fleet.all(), results) if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError("; ".join(failed))
    stops = await fleet.csms.records(action="StopTransaction", direction="in")
    remote = [s for s in stops if s["payload"].get("reason") == "Remote"]
    return {"sessions": len(fleet), "remote_stops": len(remote)}
