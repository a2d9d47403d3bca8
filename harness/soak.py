"""Soak run: a fleet on the standard workload (shorter sessions, so every code path turns over
often) for a long time, sampling memory per instance; the curve must stay flat. `evfleet soak`."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import fleetfile
from harness.fleet import Fleet, FleetError
from harness.mpbin import REPO
from harness.procstat import pss_kib
from harness.scenario import FleetHandle, load_scenario


async def _sample(fleet: Fleet, t0: float, probe: int) -> dict[str, Any]:
    sup = fleet.supervisor
    assert sup is not None
    insts = [i for i in sup.instances.values() if i.pid is not None]
    pss = [pss_kib(i.pid) for i in insts if i.pid is not None]
    heap = []
    for inst in random.sample(insts, min(probe, len(insts))):
        try:
            m = await fleet.console(inst.id, "mem", timeout=5)
            heap.append(m["alloc"])
        except FleetError:
            pass
    return {"t_s": round(time.monotonic() - t0), "pss_mean_kib": round(statistics.mean(pss), 1) if pss else 0,
            "pss_max_kib": max(pss, default=0), "heap_alloc_mean": round(statistics.mean(heap)) if heap else None,
            "running": len(insts), "restarts": sum(i.restarts for i in sup.instances.values())}


def _slope_per_hour(samples: list[dict[str, Any]]) -> float:
    xs = [s["t_s"] / 3600 for s in samples]
    ys = [s["pss_mean_kib"] for s in samples]
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


async def run(n: int = 50, duration: float = 600.0, interval: float = 30.0, run_dir: Path | None = None,
              say: Callable[[str], None] = print) -> dict[str, Any]:
    workload = load_scenario(REPO / "scripts" / "standard_workload.py")
    fc = fleetfile.from_dict({"name": "soak", "tags": ["TAG1"], "templates": [
        {"id": "SK-{n:04d}", "count": n, "connectors": 2, "ocpp": dict(workload.OCPP)}]})
    fleet = Fleet(fc, run_dir or Path("run") / "soak", rom=True)
    samples: list[dict[str, Any]] = []
    try:
        await fleet.start()
        await fleet.wait_booted(max(60.0, n / 10))
        handle = FleetHandle(fleet, fleet.ids(), fleet.csms)
        counters = workload.Counters()
        until = time.monotonic() + duration
        loops = [asyncio.create_task(workload.connector_loop(cp, conn, until, counters, (20.0, 60.0), (5.0, 15.0)))
                 for cp in handle.all() for conn in (1, 2)]
        t0 = time.monotonic()
        while time.monotonic() < until:
            s = await _sample(fleet, t0, 10)
            samples.append(s)
            say(f"t={s['t_s']:>5}s  PSS/instance mean {s['pss_mean_kib']} KiB max {s['pss_max_kib']} KiB  "
                f"heap {s['heap_alloc_mean']} B  running {s['running']}  restarts {s['restarts']}  "
                f"sessions {counters.sessions}")
            await asyncio.sleep(min(interval, max(0.0, until - time.monotonic())))
        await asyncio.gather(*loops, return_exceptions=True)
        samples.append(await _sample(fleet, t0, 10))
    finally:
        await fleet.shutdown()
    third = max(1, len(samples) // 3)
    early = statistics.mean(s["pss_mean_kib"] for s in samples[:third])
    late = statistics.mean(s["pss_mean_kib"] for s in samples[-third:])
    return {"chargers": n, "duration_s": duration, "samples": samples, "sessions": counters.sessions,
            "workload_errors": counters.errors, "pss_early_kib": round(early, 1), "pss_late_kib": round(late, 1),
            "pss_growth_pct": round(100 * (late - early) / early, 2) if early else 0.0,
            "pss_slope_kib_per_hour": round(_slope_per_hour(samples[third:]), 1)}
