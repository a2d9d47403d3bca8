"""A supervisor owns a shard of chargers on one event loop: the launcher that forks them, their
consoles, restarts, pty bridges, and the batched log and capture files."""

from __future__ import annotations

import asyncio
import logging
import random
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.console import record_line
from harness.fleetfile import ChargerSpec
from harness.fwbuild import Image
from harness.instance import Instance, Spawner, SubprocessSpawner
from harness.logs import BatchWriter, stamp
from harness.mpbin import micropython_exe
from harness.ptybridge import PtyBridge

log = logging.getLogger("evfleet")

Progress = Callable[[int, int], None]


def raise_fd_limit(needed: int) -> int:
    """Raise the open-files soft limit up to the hard limit; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


class Supervisor:
    def __init__(self, run_dir: Path, image: Image, launcher: str = "auto", restart: str = "always",
                 capture: bool = False, rom: bool = False) -> None:
        self.run_dir = run_dir
        self.image = image
        self.launcher = launcher          # auto | c | python | subprocess
        self.restart = restart
        self.capture = capture
        self.rom = rom
        self.rom_mapped = False           # the launcher maps the ROM image for every instance
        # Fork OCPP chargers from a zygote that imported the firmware once (EVFLEET_WARM=0: never).
        self.warm = os.environ.get("EVFLEET_WARM", "1") != "0"
        self.spawner: Spawner | None = None
        self.spawner_kind = ""
        self.instances: dict[str, Instance] = {}
        self._by_pid: dict[int, Instance] = {}
        self.bridges: dict[str, PtyBridge] = {}
        self.logs = BatchWriter(run_dir / "logs" / "fleet.log")
        self.captures = BatchWriter(run_dir / "captures" / "messages.jsonl")
        self.listeners: list[Callable[[Instance, dict[str, Any]], None]] = []
        self.exits = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs.start()
        self.captures.start()
        self.spawner, self.spawner_kind = await self._make_spawner()
        self.spawner.on_exit = self._exited
        log.info("launcher: %s", self.spawner_kind)

    async def _make_spawner(self) -> tuple[Spawner, str]:
        if self.launcher == "subprocess":
            return SubprocessSpawner(), "subprocess"
        try:
            from harness.spawners import ZygoteSpawner

            rom = str(self.image.romfs) if self.rom and self.image.romfs else None
            prefer = "python" if self.launcher == "python" else "c"
            warm = self.image.warm_boot if rom and prefer == "c" and self.warm else None
            sp = await ZygoteSpawner.start(rom=rom, prefer=prefer, warm_boot=warm)
            self.rom_mapped = rom is not None
            return sp, sp.kind
        except Exception as e:  # noqa: BLE001 - any launcher problem falls back, with the reason
            if self.launcher in ("c", "python"):
                raise
            log.warning("zygote launcher unavailable (%s); one process per charger instead", e)
            return SubprocessSpawner(), "subprocess"

    def add(self, spec: ChargerSpec) -> Instance:
        if spec.id in self.instances:
            raise ValueError(f"charger {spec.id} already exists")
        assert self.spawner is not None
        inst = Instance(spec.id, self.run_dir / "flash" / spec.id, spec.config, self.image, self.spawner,
                        heap=spec.heap, restart=self.restart, capture=self.capture,
                        code_in_heap=not self.rom_mapped,
                        micropython=str(micropython_exe()))
        inst.listeners.append(self._on_event)
        inst.on_start = self._index
        inst.console.on_text = lambda data, i=inst: self._on_text(i, data)
        self.instances[spec.id] = inst
        return inst

    async def launch(self, ids: list[str] | None = None, rate: float = 0.0,
                     progress: Progress | None = None) -> None:
        """Power on chargers; rate > 0 spreads them (with jitter) so the fleet is not in lock-step."""
        todo = [self.instances[i] for i in (ids or list(self.instances))]
        raise_fd_limit(3 * len(self.instances) + 256)
        done = 0
        t0 = time.monotonic()
        if rate <= 0:
            # Full speed: many spawns in flight at once (the launcher pipelines them), in waves
            # so a failure surfaces early and memory use grows smoothly.
            for i in range(0, len(todo), 128):
                wave = todo[i:i + 128]
                for inst in wave:
                    inst.prepare()
                await asyncio.gather(*(self._start(inst) for inst in wave))
                done += len(wave)
                if progress is not None:
                    progress(done, len(todo))
            return
        for k, inst in enumerate(todo):
            due = t0 + k / rate + random.uniform(0, 0.5 / rate)
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            inst.prepare()
            await self._start(inst)
            done += 1
            if progress is not None:
                progress(done, len(todo))

    async def _start(self, inst: Instance) -> None:
        await inst.start()

    def _index(self, inst: Instance) -> None:
        assert inst.pid is not None
        self._by_pid[inst.pid] = inst

    def _exited(self, pid: int, returncode: int) -> None:
        inst = self._by_pid.pop(pid, None)
        if inst is None:
            return
        self.exits += 1
        ex = inst.exited(returncode)
        self.logs.add(f"{stamp()} {inst.id} * process {pid} ended: {ex.why}")

    async def reboot(self, cid: str) -> None:
        """Power-cycle one charger now (SIGKILL, then start again on the same flash)."""
        inst = self.instances[cid]
        if inst.pid is None:
            await self._start(inst)
            return
        policy = inst.restart
        inst.restart = "always"
        inst.power_cut()
        try:
            await asyncio.wait_for(inst.running.wait(), 1.0)
            while inst.pid is not None and inst.exits and inst.exits[-1].pid == inst.pid:
                await asyncio.sleep(0.01)
        except asyncio.TimeoutError:
            pass
        inst.restart = policy

    async def stop(self, cid: str) -> None:
        await self.instances[cid].stop()

    async def shutdown(self) -> None:
        await asyncio.gather(*(i.stop() for i in self.instances.values()), return_exceptions=True)
        for b in list(self.bridges.values()):
            b.close()
        self.bridges.clear()
        closer = getattr(self.spawner, "close", None)
        if closer is not None:
            await closer()
        await self.logs.close()
        await self.captures.close()

    # -- consoles ------------------------------------------------------------------------------

    def _on_event(self, inst: Instance, ev: dict[str, Any]) -> None:
        kind = ev.get("ev")
        if kind == "proto":
            self.captures.add_record({"t": time.time(), "id": inst.id, "dir": ev.get("dir"), "msg": ev.get("text")})
        elif kind != "exit":   # an exit has its own line (_exited)
            self.logs.add(f"{stamp()} {inst.id} {record_line(ev)}")
        for fn in self.listeners:
            fn(inst, ev)

    def _on_text(self, inst: Instance, data: bytes) -> None:
        bridge = self.bridges.get(inst.id)
        if bridge is None:
            text = data.decode("utf-8", "replace").strip("\r\n")
            if text:
                self.logs.add(f"{stamp()} {inst.id} > {text}")

    async def attach(self, cid: str) -> str:
        """A pty for the charger's console; returns its path (also linked as run/ports/<id>)."""
        inst = self.instances[cid]
        bridge = self.bridges.get(cid)
        if bridge is not None:
            return bridge.path

        def to_console(data: bytes) -> None:
            if inst.console.fd is not None:
                inst.console.write(data)

        bridge = PtyBridge(self.run_dir / "ports" / cid, to_console)
        path = bridge.open()
        self.bridges[cid] = bridge
        inst.console.bridge = bridge.to_user
        if inst.pid is not None:
            # A person at a terminal wants the log lines and a prompt.
            inst.console.notify("events", "on", "human")
        inst.human = True
        return path

    async def detach(self, cid: str) -> bool:
        bridge = self.bridges.pop(cid, None)
        if bridge is None:
            return False
        inst = self.instances[cid]
        inst.console.bridge = None
        inst.human = False
        bridge.close()
        if inst.pid is not None:
            inst.console.notify("events", "off", "human")
        return True
