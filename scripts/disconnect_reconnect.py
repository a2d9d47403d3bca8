"""Disconnect and reconnect: sessions run while every charger loses its network; meter values and
the stop are queued on flash and delivered in order once the network is back."""

from __future__ import annotations

import asyncio
from typing import Any

COUNT = 4
OFFLINE_SECONDS = 8


async def session(cp: Any) -> None:
    await cp.config_set("MeterValueSampleInterval", 2)
    await cp.plug(1)
    await cp.swipe(1, "TAG1")
    await cp.wait_for(connector=1, status="Charging", timeout=30)
    for _ in range(100):   # the CSMS confirmed the start (else it would be resent after the outage)
        if ((await cp.status(1)).get("tx") or {}).get("id") is not None:
            break
        await asyncio.sleep(0.1)
    await cp.network_down(OFFLINE_SECONDS)
    await asyncio.sleep(OFFLINE_SECONDS / 2)
    await cp.swipe(1, "TAG1")          # stopped while offline: StopTransaction waits on flash
    await cp.wait_for(connector=1, status="Finishing", timeout=15)
    await cp.wait_event("net", timeout=OFFLINE_SECONDS + 30, state="up")
    await cp.unplug(1)
    await cp.wait_for(connector=1, status="Available", timeout=15)


async def main(fleet: Any) -> dict[str, Any]:
    results = await fleet.each(session)
    failed = [f"{cp.id}: {r}" for cp, r in zip(fleet.all(), results) if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError("; ".join(failed))
    summary: dict[str, Any] = {"chargers": len(fleet)}
    if fleet.csms is not None:
        await asyncio.sleep(2)
        for cp in fleet.all():
            stop = await fleet.csms.wait_for("StopTransaction", cp=cp.id, timeout=30)
            mvs = await fleet.csms.records(cp=cp.id, action="MeterValues", direction="in")
            values = [int(sv["value"]) for r in mvs for mv in r["payload"]["meterValue"]
                      for sv in mv["sampledValue"] if sv.get("measurand") == "Energy.Active.Import.Register"]
            if values != sorted(values):
                raise RuntimeError(f"{cp.id}: meter values out of order after reconnect: {values}")
            if values and stop["payload"]["meterStop"] < values[-1]:
                raise RuntimeError(f"{cp.id}: meterStop below the last meter value")
        summary["stops_delivered"] = len(await fleet.csms.records(action="StopTransaction", direction="in"))
    return summary
