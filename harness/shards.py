"""A fleet split across several supervisor processes on this machine: each shard is an `evfleet up`
of its own (own launcher, descriptors, event loop, control API); the front routes each charger's
requests to its shard and merges the rest. The same split later spreads a fleet across machines."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from harness import fleetfile
from harness.client import RemoteFleet
from harness.errors import FleetError
from harness.lifeline import die_with_parent
from harness.supervisor import raise_fd_limit
from harness.fleetfile import FleetConfig

PER_SHARD = 2500   # chargers one supervisor process handles comfortably (one event loop, ~3 fds each)


def shard_count(n: int, requested: int = 0) -> int:
    if requested > 0:
        return min(requested, n)
    return max(1, math.ceil(n / PER_SHARD)) if n > PER_SHARD * 1.2 else 1


class ShardSet:
    def __init__(self, config: FleetConfig, run_dir: Path, shards: int, launcher: str, rom: bool) -> None:
        self.config = config
        self.run_dir = run_dir
        self.n = shards
        self.launcher = launcher
        self.rom = rom
        self.procs: list[asyncio.subprocess.Process] = []
        self.clients: list[RemoteFleet] = []
        self.owner: dict[str, RemoteFleet] = {}
        self.dirs: list[Path] = []

    async def start(self, timeout: float = 600.0) -> None:
        groups: list[list[fleetfile.ChargerSpec]] = [[] for _ in range(self.n)]
        for k, spec in enumerate(self.config.chargers):
            groups[k % self.n].append(spec)
        for i, group in enumerate(groups):
            d = self.run_dir / f"shard-{i}"
            d.mkdir(parents=True, exist_ok=True)
            sub = FleetConfig(name=f"{self.config.name}-shard{i}", csms=None, tags=self.config.tags,
                              chargers=group, restart=self.config.restart,
                              launch_rate=self.config.launch_rate / self.n, capture=self.config.capture,
                              ports=self.config.ports)
            (d / "definition.json").write_text(json.dumps(fleetfile.to_dict(sub)))
            out = open(d / "fleet.out", "ab")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "harness.cli", "up", "-f", str(d / "definition.json"), "--run-dir", str(d),
                "--launcher", self.launcher, "--rom" if self.rom else "--no-rom", "--timeout", str(timeout),
                stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent)
            out.close()
            self.procs.append(proc)
            self.dirs.append(d)
        # A scenario may hold a long-poll (wait_for) per connector open at once: with aiohttp's
        # default pool of 100, every other request would queue behind them.
        raise_fd_limit(len(self.config.chargers) * 6 + 256)
        for i, d in enumerate(self.dirs):
            api = await self._api_of(d, self.procs[i], timeout)
            conns = sum(int(s.config.get("connectors", 1)) for s in groups[i]) + 64
            client = RemoteFleet(api, connections=conns)
            self.clients.append(client)
            for spec in groups[i]:
                self.owner[spec.id] = client

    async def _api_of(self, d: Path, proc: asyncio.subprocess.Process, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"shard in {d} exited ({proc.returncode}); see {d / 'fleet.out'}")
            try:
                state = json.loads((d / "fleet.json").read_text())
                if state.get("api") and state.get("launched"):
                    return str(state["api"])
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"shard in {d} did not start within {timeout:g} s")

    def of(self, cid: str) -> RemoteFleet:
        try:
            return self.owner[cid]
        except KeyError:
            raise FleetError(f"no charger {cid!r} in this fleet") from None

    async def infos(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(c.info() for c in self.clients)))

    async def chargers(self, live: bool = False) -> list[dict[str, Any]]:
        parts = await asyncio.gather(*(c.chargers(live) for c in self.clients))
        return [c for part in parts for c in part]

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def pump(c: RemoteFleet) -> None:
            async for ev in c.events():
                await q.put(ev)

        tasks = [asyncio.create_task(pump(c)) for c in self.clients]
        try:
            while True:
                yield await q.get()
        finally:
            for t in tasks:
                t.cancel()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.returncode is None]

    async def shutdown(self) -> None:
        for c in self.clients:
            try:
                await c.shutdown()
            except Exception:  # noqa: BLE001 - a shard that is gone already
                pass
            await c.close()
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 60)
            except asyncio.TimeoutError:
                p.send_signal(signal.SIGKILL)
                await p.wait()
        self.procs.clear()

