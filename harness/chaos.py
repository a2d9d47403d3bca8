"""Chaos run: a fleet charges in cycles while power cuts, network cuts, link stalls, hardware faults
and CSMS crashes hit it at random; then everything heals, every queue drains, and the CSMS's
records are checked (harness.chaoscheck). `evfleet chaos` and `make chaos` run it."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import chaoscheck, fleetfile
from harness.fleet import Fleet, FleetError
from harness.scenario import Charger, FleetHandle


def _config(n: int) -> fleetfile.FleetConfig:
    ocpp = {"MeterValueSampleInterval": 5, "HeartbeatInterval": 30, "WebSocketPingInterval": 5,
            "TransactionMessageRetryInterval": 2, "TransactionMessageAttempts": 5,
            "LocalAuthorizeOffline": True, "AllowOfflineTxForUnknownId": True}
    cfg = {"reconnect_base_ms": 300, "reconnect_cap_ms": 5000, "call_timeout_ms": 8000}
    return fleetfile.from_dict({"name": "chaos", "tags": ["TAG1"], "restart": "always",
                                "templates": [{"id": "CH-{n:04d}", "count": n, "connectors": 2, "ocpp": ocpp,
                                               "config": cfg}]})


async def _driver(cp: Charger, conn: int, stop: asyncio.Event, stats: Counter[str]) -> None:
    """One connector's driver: plug, badge, charge a while, badge off, unplug; never gives up."""
    await asyncio.sleep(random.uniform(0, 5))
    while not stop.is_set():
        try:
            st = await cp.status(conn)
            if st.get("pilot") == "A":
                await cp.plug(conn)
            if st.get("tx") is None:
                await cp.swipe(conn, "TAG1")
            await asyncio.sleep(random.uniform(8, 25))
            st = await cp.status(conn)
            if st.get("tx") is not None:
                await cp.swipe(conn, "TAG1")
                stats["sessions_ended_by_driver"] += 1
            await asyncio.sleep(random.uniform(0.5, 2))
            await cp.unplug(conn)
        except FleetError:
            stats["driver_retries"] += 1    # the charger is rebooting or busy: try again
        await asyncio.sleep(random.uniform(2, 6))


async def _injector(fleet: Fleet, ids: list[str], stop: asyncio.Event, rate: float, faults: Counter[str],
                    say: Callable[[str], None]) -> None:
    csms = fleet.csms
    csms_busy = False
    while not stop.is_set():
        await asyncio.sleep(random.expovariate(rate))
        if stop.is_set():
            return
        cid = random.choice(ids)
        kind = random.choices(["power_cut", "network_cut", "stall", "hardware_fault", "csms_restart"],
                              [35, 30, 10, 15, 10])[0]
        try:
            if kind == "power_cut":
                await fleet.power_cut(cid)
            elif kind == "network_cut":
                await fleet.console(cid, "net", ["down", random.randint(3, 15)], timeout=3)
            elif kind == "stall":
                await fleet.console(cid, "net", ["stall", random.randint(3, 12)], timeout=3)
            elif kind == "hardware_fault":
                conn = random.choice([1, 2])
                code = random.choice(["GroundFailure", "OverCurrentFailure", "HighTemperature"])
                await fleet.console(cid, "fault", [conn, code], timeout=3)
                asyncio.get_running_loop().call_later(random.uniform(2, 6), lambda c=cid, k=conn: asyncio.ensure_future(
                    _quietly(fleet.console(c, "fault", [k, "clear"], timeout=3))))
            elif kind == "csms_restart":
                if csms is None or csms_busy:
                    continue
                csms_busy = True
                await csms.stop_server(abort=True)
                await asyncio.sleep(random.uniform(1, 6))
                await csms.start_server()
                csms_busy = False
            faults[kind] += 1
        except Exception:  # noqa: BLE001 - an injection that could not land (charger down) is skipped
            faults["skipped"] += 1


async def _quietly(coro: Any) -> None:
    try:
        await coro
    except Exception:  # noqa: BLE001
        pass


async def _settle(fleet: Fleet, ids: list[str], timeout: float) -> list[str]:
    """Heal every link, end every session, wait until every charger is registered with an empty queue."""
    for cid in ids:
        await _quietly(fleet.console(cid, "net", ["up"], timeout=5))
        await _quietly(fleet.console(cid, "net", ["heal"], timeout=5))
        for conn in (1, 2):
            await _quietly(fleet.console(cid, "fault", [conn, "clear"], timeout=5))
            await _quietly(fleet.console(cid, "unplug", [conn], timeout=5))
    deadline = time.monotonic() + timeout
    waiting = list(ids)
    while waiting and time.monotonic() < deadline:
        still = []
        for cid in waiting:
            try:
                st = await fleet.console(cid, "status", timeout=5)
                link = st.get("link", {})
                busy = any(c.get("tx") for c in st.get("connectors", []))
                if not (link.get("registered") and link.get("online") and link.get("queued") == 0 and not busy):
                    still.append(cid)
            except FleetError:
                still.append(cid)
        waiting = still
        if waiting:
            await asyncio.sleep(1)
    return waiting


def started_counts(fleet: Fleet) -> dict[str, int]:
    """Each charger's own count of the transactions it started (its flash counter)."""
    from harness.flashread import slot_value

    sup = fleet.supervisor
    assert sup is not None
    return {cid: int(slot_value(inst.flash / "state" / "txref.slot") or 0) for cid, inst in sup.instances.items()}


async def run(n: int = 50, duration: float = 120.0, rate: float | None = None, run_dir: Path | None = None,
              seed: int | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    rng_seed = seed if seed is not None else random.randrange(1 << 30)
    random.seed(rng_seed)
    fc = _config(n)
    fleet = Fleet(fc, run_dir or Path("run") / "chaos", rom=True)
    faults: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    try:
        await fleet.start()
        booted = await fleet.wait_booted(max(60, n / 10))
        say(f"chaos: {booted}/{n} chargers up (seed {rng_seed}); {duration:g} s of sessions and faults")
        ids = fleet.ids()
        handle = FleetHandle(fleet, ids, fleet.csms)
        stop = asyncio.Event()
        drivers = [asyncio.create_task(_driver(cp, conn, stop, stats)) for cp in handle.all() for conn in (1, 2)]
        inj = asyncio.create_task(_injector(fleet, ids, stop, rate or max(0.5, n / 25), faults, say))
        await asyncio.sleep(duration)
        stop.set()
        await inj
        await asyncio.gather(*drivers, return_exceptions=True)
        say(f"chaos: faults injected {dict(faults)}; settling...")
        unsettled = await _settle(fleet, ids, timeout=120)
        await asyncio.sleep(1.5)    # the CSMS writes its records file in batches
        records = chaoscheck.load_jsonl(fleet.run_dir / "csms" / "records.jsonl")
        report = chaoscheck.check(records, started_counts(fleet))
        for cid in unsettled:
            report.problems.append(f"{cid}: did not drain its queue / re-register after the chaos")
        result = {"seed": rng_seed, "chargers": n, "duration_s": duration, "faults": dict(faults),
                  "restarts": sum(i.restarts for i in fleet.supervisor.instances.values()) if fleet.supervisor else 0,
                  **report.to_dict(), "messages_lost": sum(1 for p in report.problems if "lost" in p)}
        return result
    finally:
        await fleet.shutdown()
