"""Standard workload (the figures in `evfleet bench` compare on it): every charger has 2
connectors, heartbeat 60 s, MeterValues every 30 s with 5 measurands, and each connector cycles
charging sessions of 60–180 s with 15–30 s idle gaps, authorizing before each start — like an
automatic transaction generator. Runs for DURATION seconds (env EVFLEET_DURATION overrides)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

COUNT = 10
DURATION = float(os.environ.get("EVFLEET_DURATION", "300"))
TAG = "TAG1"
MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"
OCPP = {"HeartbeatInterval": 60, "MeterValueSampleInterval": 30, "MeterValuesSampledData": MEASURANDS}
FLEET = {"name": "standard", "tags": [TAG],
         "templates": [{"id": "CP-{n:05d}", "count": COUNT, "connectors": 2, "ocpp": OCPP}]}

SESSION_S = (60.0, 180.0)
GAP_S = (15.0, 30.0)
FIRST_START_S = 60.0   # first sessions spread over two MeterValues intervals: samples arrive evenly


class Counters:
    def __init__(self) -> None:
        self.sessions = 0
        self.errors = 0
        self.last_error = ""


async def connector_loop(cp: Any, conn: int, until: float, counters: Counters,
                         session_s: tuple[float, float] = SESSION_S, gap_s: tuple[float, float] = GAP_S) -> None:
    # Not in lock-step: a sampling timer runs from its session's start, so starts that bunch up
    # would make every MeterValues arrive in waves that no real fleet produces.
    await asyncio.sleep(random.uniform(0, max(gap_s[1], FIRST_START_S)))
    while time.monotonic() < until:
        try:
            await cp.plug(conn)
            await cp.swipe(conn, TAG)                    # Authorize, then StartTransaction
            await cp.wait_for(connector=conn, status="Charging", timeout=60)
            await asyncio.sleep(random.uniform(*session_s))
            await cp.swipe(conn, TAG)                    # the same card stops it
            await cp.wait_for(connector=conn, status="Finishing", timeout=60)
            await cp.unplug(conn)
            counters.sessions += 1
        except Exception as e:  # noqa: BLE001 - counted; the loop goes on like a real driver would
            counters.errors += 1
            counters.last_error = f"{cp.id}/{conn}: {e}"
            try:
                await cp.unplug(conn)
            except Exception:  # noqa: BLE001
                pass
        await asyncio.sleep(random.uniform(*gap_s))


async def run(fleet: Any, duration: float, counters: Counters | None = None) -> Counters:
    counters = counters or Counters()
    until = time.monotonic() + duration
    await asyncio.gather(*(connector_loop(cp, conn, until, counters) for cp in fleet.all() for conn in (1, 2)))
    return counters


async def main(fleet: Any) -> dict[str, Any]:
    c = await run(fleet, DURATION)
    return {"chargers": len(fleet), "sessions": c.sessions, "errors": c.errors, "last_error": c.last_error}
