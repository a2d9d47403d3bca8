"""Standard workload (the figures in `evfleet bench` compare on it): every charger has 2
connectors, heartbeat 60 s, MeterValues every 30 s with 5 measurands, and each connector cycles
charging sessions of 60–180 s with 15–30 s idle gaps, authorizing before each start. Runs for DURATION
seconds (env EVFLEET_DURATION overrides).

Two drivers give the same sessions: "harness" (default) plugs, swipes and unplugs through each
charger's console from here; "firmware" (env EVFLEET_DRIVER=firmware) turns on every charger's own
automatic transaction generator (`atg` console command, sim/atg.py) and only counts, as the peer
simulators' generator runs inside each station."""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

COUNT = 10
DURATION = float(os.environ.get("EVFLEET_DURATION", "300"))
DRIVER = os.environ.get("EVFLEET_DRIVER", "harness")
if DRIVER not in ("harness", "firmware"):
    raise ValueError(f"EVFLEET_DRIVER must be 'harness' or 'firmware', not {DRIVER!r}")
TAG = "TAG1"
MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"
OCPP = {"HeartbeatInterval": 60, "MeterValueSampleInterval": 30, "MeterValuesSampledData": MEASURANDS}
FLEET = {"name": "standard", "tags": [TAG],
         "templates": [{"id": "CP-{n:05d}", "count": COUNT, "connectors": 2, "ocpp": OCPP}]}

SESSION_S = (60.0, 180.0)
GAP_S = (15.0, 30.0)
FIRST_START_S = 60.0   # first sessions spread over two MeterValues intervals: samples arrive evenly
ATG = {"session_s": list(SESSION_S), "gap_s": list(GAP_S), "first_s": FIRST_START_S, "tags": [TAG]}


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


async def run(fleet: Any, duration: float, counters: Counters | None = None, driver: str = "harness") -> Counters:
    counters = counters or Counters()
    if driver == "firmware":
        await start_generators(fleet)
        try:
            await asyncio.sleep(duration)
        finally:
            await asyncio.shield(_all(fleet, "atg", "off"))
        return await generator_counts(fleet, counters)
    if driver != "harness":
        raise ValueError(f"driver must be 'harness' or 'firmware', not {driver!r}")
    until = time.monotonic() + duration
    await asyncio.gather(*(connector_loop(cp, conn, until, counters) for cp in fleet.all() for conn in (1, 2)))
    return counters


async def _all(fleet: Any, *request: Any) -> list[Any]:
    return await asyncio.gather(*(cp.console(*request) for cp in fleet.all()), return_exceptions=True)


async def start_generators(fleet: Any) -> None:
    """Every charger's own generator on, with the standard workload's settings."""
    failed = [r for r in await _all(fleet, "atg", "on", ATG) if isinstance(r, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} chargers did not start their generator: {failed[0]}")


async def generator_counts(fleet: Any, counters: Counters | None = None) -> Counters:
    """Sessions and errors so far, summed over the chargers' generators."""
    c = counters or Counters()
    c.sessions = c.errors = 0
    for cp, r in zip(fleet.all(), await _all(fleet, "atg")):
        if isinstance(r, Exception):
            c.errors += 1
            c.last_error = f"{cp.id}: {r}"
            continue
        c.sessions += r["sessions"]
        c.errors += r["errors"]
        if r.get("last_error"):
            c.last_error = f"{cp.id}/{r['last_error']}"
    return c


async def main(fleet: Any) -> dict[str, Any]:
    c = await run(fleet, DURATION, driver=DRIVER)
    return {"chargers": len(fleet), "driver": DRIVER, "sessions": c.sessions, "errors": c.errors,
            "last_error": c.last_error}
