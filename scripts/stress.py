"""Stress: every charger heartbeats every second and sends meter values every second while the
whole fleet charges at once (batch charging), for DURATION seconds; then everything stops."""

from __future__ import annotations

import asyncio
import time
from typing import Any

COUNT = 10
DURATION = 20


async def charge(cp: Any) -> None:
    await cp.config_set("HeartbeatInterval", 1)
    await cp.config_set("MeterValueSampleInterval", 1)
    for conn in (1, 2):
        await cp.plug(conn)
        await cp.swipe(conn, "TAG1")
        await cp.wait_for(connector=conn, status="Charging", timeout=30)


async def stop(cp: Any) -> None:
    for conn in (1, 2):
        await cp.swipe(conn, "TAG1")
        await cp.wait_for(connector=conn, status="Finishing", timeout=30)
        await cp.unplug(conn)
    await cp.config_set("HeartbeatInterval", 60)
    await cp.config_set("MeterValueSampleInterval", 30)


async def main(fleet: Any) -> dict[str, Any]:
    mark = 0
    if fleet.csms is not None:
        mark = await fleet.csms.last_seq()
    failed = [r for r in await fleet.each(charge) if isinstance(r, BaseException)]
    t0 = time.monotonic()
    await asyncio.sleep(DURATION)
    elapsed = time.monotonic() - t0
    failed += [r for r in await fleet.each(stop) if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"{len(failed)} chargers failed: {failed[:3]}")
    summary: dict[str, Any] = {"chargers": len(fleet), "seconds": round(elapsed, 1)}
    if fleet.csms is not None:
        hb = await fleet.csms.records(action="Heartbeat", direction="in", since=mark, limit=100000)
        mv = await fleet.csms.records(action="MeterValues", direction="in", since=mark, limit=100000)
        summary.update({"heartbeats": len(hb), "meter_values": len(mv),
                        "messages_per_second": round((len(hb) + len(mv)) / elapsed, 1)})
    return summary
