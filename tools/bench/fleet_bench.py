"""`evfleet bench`: brings up fleets of N real-firmware chargers on the standard workload and prints,
per size, launch-to-all-booted time, fleet PSS (total and per charger; harness included, CSMS
apart), CPU and messages per second over a steady window of the workload alone, then console and
OCPP round trips p50/p99 from probes to random chargers."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness import fleetfile
from harness.fleet import Fleet
from harness.procstat import cpu_s, pss_kib

MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None   # no sample (every probe failed): JSON null, not NaN
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


async def fleet_pids(fleet: Fleet) -> tuple[list[int], list[int]]:
    """(charger and launcher pids, supervisor pids besides this process) of a local or sharded fleet."""
    info = await fleet.info()
    pids = [c["pid"] for c in await fleet.chargers() if c.get("pid")]
    supervisors = []
    for shard in info.get("shards") or [info]:
        pids += shard.get("zygote_pids") or []
        if shard is not info:
            supervisors.append(shard["pid"])
    return pids, supervisors


def bench_config(n: int, name: str) -> fleetfile.FleetConfig:
    ocpp = {"HeartbeatInterval": 60, "MeterValueSampleInterval": 30, "MeterValuesSampledData": MEASURANDS}
    t: dict[str, Any] = {"id": "CP-{n:05d}", "count": n, "connectors": 2, "ocpp": ocpp}
    if os.environ.get("EVFLEET_GC_THRESHOLD"):   # experiments: heap residency against GC CPU
        t["config"] = {"gc_threshold": int(os.environ["EVFLEET_GC_THRESHOLD"])}
    return fleetfile.from_dict({"name": name, "tags": ["TAG1"], "restart": "always", "templates": [t]})


async def _probe(ask: Callable[[str], Awaitable[Any]], limit: float, pause: float, ids: list[str],
                 until: float, out: list[float], failures: list[str]) -> None:
    # Round trips of ask(charger id) to random chargers until the window ends. Each is bounded:
    # behind a saturated sharded fleet's request queue a probe must not outlive the window (a lost
    # probe is no sample; the figures say how many were taken, and why the last one failed).
    while time.monotonic() < until:
        cid = random.choice(ids)
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(ask(cid), limit)
            out.append((time.perf_counter() - t0) * 1000)
        except Exception as e:  # noqa: BLE001 - a failed probe is simply not a sample
            failures.append(f"{type(e).__name__}: {e}"[:200])
        await asyncio.sleep(pause)


async def bench_size(n: int, run_root: Path, window: float = 60.0, warmup: float = 20.0, rom: bool = True,
                     launcher: str = "auto", say: Callable[[str], None] = print, shards: int = 0,
                     driver: str = "firmware") -> dict[str, Any]:
    from harness.mpbin import REPO
    from harness.scenario import load_scenario

    standard_workload = load_scenario(REPO / "scripts" / "standard_workload.py")
    fc = bench_config(n, f"bench-{n}")
    run_dir = run_root / f"bench-{n}"
    # A fresh fleet: flash left by an earlier run would boot chargers with EVs still plugged in
    # and sessions to close (slower boots, and a workload that finds its connectors taken).
    shutil.rmtree(run_dir, ignore_errors=True)
    fleet = Fleet(fc, run_dir, launcher=launcher, rom=rom, shards=shards)
    res: dict[str, Any] = {"chargers": n, "driver": driver}
    t0 = time.monotonic()
    try:
        await fleet.start()
        # Counted from the moment the back-end answers: its own start-up is not the chargers' boot.
        t0 = fleet.backends_ready_at or t0
        res["launch_s"] = round(time.monotonic() - t0, 2)
        booted = await fleet.wait_booted(max(60.0, n / 20))
        res["booted"] = booted
        res["boot_s"] = round(time.monotonic() - t0, 2)
        res["launcher"] = (await fleet.info())["launcher"]
        say(f"{n}: {booted} booted in {res['boot_s']} s (launched in {res['launch_s']} s)")
        from harness.scenario import FleetHandle

        handle = FleetHandle(fleet, fleet.ids(), fleet.csms)
        counters = standard_workload.Counters()
        pids, sups = await fleet_pids(fleet)   # before the workload's requests queue up
        workload = asyncio.create_task(standard_workload.run(handle, warmup + 2 * window + 600, counters, driver))

        async def sessions() -> int:
            if driver == "firmware":   # counted by each charger's generator
                await standard_workload.generator_counts(handle, counters)
            return int(counters.sessions)

        await asyncio.sleep(warmup)
        assert fleet.csms is not None and fleet.csms_proc is not None and fleet.csms_proc.pid
        me = os.getpid()
        csms_pid = fleet.csms_proc.pid
        sessions0 = await sessions()   # outside the window: counting asks every charger
        counted0 = time.monotonic()
        # CPU first, over a window of the workload alone: the probes below are the benchmark's own
        # traffic (20 console and 10 OCPP round trips a second), not the fleet's.
        stats0 = await fleet.csms.stats()
        inst0 = sum(cpu_s(p) for p in pids)
        me0 = cpu_s(me) + sum(cpu_s(p) for p in sups)
        cpu0 = inst0 + me0
        csms_cpu0 = cpu_s(csms_pid)
        t_start = time.monotonic()
        await asyncio.sleep(window)
        elapsed = time.monotonic() - t_start
        # Read from the processes the window began with, at once: asking a busy sharded fleet for
        # its pids again would queue behind the workload's requests.
        inst1 = sum(cpu_s(p) for p in pids)
        me1 = cpu_s(me) + sum(cpu_s(p) for p in sups)
        cpu1 = inst1 + me1
        csms_cpu1 = cpu_s(csms_pid)
        stats1 = await fleet.csms.stats()
        # Per second between the two counts: at 5000 chargers a count itself takes seconds.
        sessions_per_s = (await sessions() - sessions0) / (time.monotonic() - counted0)
        # Then round trips to random chargers, the workload still running.
        until = time.monotonic() + window
        console_rtt: list[float] = []
        ocpp_rtt: list[float] = []
        console_failures: list[str] = []
        ocpp_failures: list[str] = []
        ids = fleet.ids()
        csms = fleet.csms
        await asyncio.gather(
            _probe(lambda cid: fleet.console(cid, "ping", timeout=5), 10, 0.05, ids, until, console_rtt,
                   console_failures),
            _probe(lambda cid: csms.call(cid, "GetConfiguration", {"key": ["HeartbeatInterval"]}, timeout=10),
                   15, 0.1, ids, until, ocpp_rtt, ocpp_failures))
        workload.cancel()
        try:
            await asyncio.wait_for(workload, 60)
        except (asyncio.CancelledError, asyncio.TimeoutError):
            pass
        pids, sups = await fleet_pids(fleet)
        inst_pss = sum(pss_kib(p) for p in pids)
        harness_pss = pss_kib(me) + sum(pss_kib(p) for p in sups)
        msgs = (stats1["records"]["last_seq"] - stats0["records"]["last_seq"]) / elapsed
        res.update({
            "fleet_pss_mib": round((inst_pss + harness_pss) / 1024, 1),
            "pss_per_charger_kib": round((inst_pss + harness_pss) / n, 1),
            "instances_pss_mib": round(inst_pss / 1024, 1),
            "harness_pss_mib": round(harness_pss / 1024, 1),
            "csms_pss_mib": round(pss_kib(csms_pid) / 1024, 1),
            "fleet_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 2),
            "instances_cpu_pct": round(100 * (inst1 - inst0) / elapsed, 2),
            "harness_cpu_pct": round(100 * (me1 - me0) / elapsed, 2),
            "csms_cpu_pct": round(100 * (csms_cpu1 - csms_cpu0) / elapsed, 2),
            "console_rtt_ms": {"n": len(console_rtt), "p50": _ms(pct(console_rtt, 0.5)),
                               "p99": _ms(pct(console_rtt, 0.99)), "failed": len(console_failures)},
            "ocpp_rtt_ms": {"n": len(ocpp_rtt), "p50": _ms(pct(ocpp_rtt, 0.5)), "p99": _ms(pct(ocpp_rtt, 0.99)),
                            "failed": len(ocpp_failures)},
            "messages_per_s": round(msgs, 1),
            "sessions_per_s": round(sessions_per_s, 1),
            "workload_errors": counters.errors,
            "window_s": round(elapsed, 1),
            "restarts": (await fleet.info())["restarts"],
            "shards": len((await fleet.info()).get("shards") or [1]),
        })
        if ocpp_failures:
            res["last_ocpp_probe_error"] = ocpp_failures[-1]
        if counters.last_error:
            res["last_workload_error"] = counters.last_error
    finally:
        await fleet.shutdown()
    return res


def format_row(r: dict[str, Any]) -> str:
    return (f"{r['chargers']:>6} chargers ({r.get('driver')} driver): booted {r.get('booted')} in {r.get('boot_s')} s | "
            f"PSS {r.get('fleet_pss_mib')} MiB (instances {r.get('instances_pss_mib')}, harness {r.get('harness_pss_mib')}) ({r.get('pss_per_charger_kib')} KiB/charger; CSMS "
            f"{r.get('csms_pss_mib')} MiB) | CPU {r.get('fleet_cpu_pct')} % of a core (CSMS {r.get('csms_cpu_pct')} %) | "
            f"console p50/p99 {r['console_rtt_ms']['p50']}/{r['console_rtt_ms']['p99']} ms | "
            f"OCPP p50/p99 {r['ocpp_rtt_ms']['p50']}/{r['ocpp_rtt_ms']['p99']} ms | {r.get('messages_per_s')} msg/s | "
            f"{r.get('sessions_per_s')} sessions/s")


async def bench(sizes: list[int], json_path: Path | None, run_root: Path, window: float, warmup: float,
                rom: bool, launcher: str, say: Callable[[str], None] = print, shards: int = 0,
                driver: str = "firmware") -> list[dict[str, Any]]:
    machine = {"cores": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    results = []
    for n in sizes:
        r = await bench_size(n, run_root, window, warmup, rom, launcher, say, shards, driver)
        say(format_row(r))
        results.append(r)
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    return results

