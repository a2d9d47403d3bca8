"""The zygote launcher (harness.launcher) behind the supervisor's Spawner interface."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path

from harness.launcher.client import Zygote

log = logging.getLogger(__name__)

WARM_ENV = "EVFW_WARM"   # set by an instance that may start from the warm zygote's loaded firmware


class ZygoteSpawner:
    """Forks chargers from a preloaded zygote (C: ~0.14 MB each; Python fallback: ~0.8 MB).

    With a warm zygote beside it (C, ROM image, the board's boot_warm.py), a charger that asks for
    it (WARM_ENV, the warm heap size) starts with the firmware already imported: no per-charger
    import work, and the loaded modules stay shared between chargers until written to."""

    def __init__(self, zygote: Zygote, warm: Zygote | None = None, warm_heap: str = "") -> None:
        self.zygote = zygote
        self.warm = warm
        self.warm_heap = warm_heap
        self.kind = f"zygote-{zygote.kind}" + ("+warm" if warm else "")
        self.on_exit: Callable[[int, int], None] | None = None
        zygote.on_exit = self._exited
        if warm is not None:
            warm.on_exit = self._exited

    @classmethod
    async def start(cls, rom: str | None = None, prefer: str = "c", warm_boot: Path | None = None,
                    warm_heap: str = "256k") -> ZygoteSpawner:
        cold = await Zygote.start(rom=rom, prefer=prefer)
        warm = None
        if warm_boot is not None and rom and cold.kind == "c":
            try:
                warm = await Zygote.start(rom=rom, preload=(str(warm_boot), warm_heap), timeout=30)
            except Exception as e:  # noqa: BLE001 - chargers still boot cold, only slower
                log.warning("warm zygote unavailable, every charger boots cold: %s", e)
        return cls(cold, warm, warm_heap)

    def _exited(self, pid: int, returncode: int) -> None:
        if self.on_exit is not None:
            self.on_exit(pid, returncode)

    def _for(self, argv: list[str], env: dict[str, str]) -> Zygote:
        wants_warm = env.pop(WARM_ENV, None) == "1"
        if wants_warm and self.warm is not None and not self.warm.closed and f"heapsize={self.warm_heap}" in argv:
            return self.warm
        return self.zygote

    async def spawn(self, argv: list[str], cwd: str, env: dict[str, str], console_fd: int, name: str) -> int:
        env = dict(env)
        return await self._for(argv, env).spawn(argv, cwd, env, console_fd, name)

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> None:
        for z in (self.zygote, self.warm):
            if z is not None and pid in z.live:
                try:
                    z.kill(pid, sig)
                except ProcessLookupError:
                    pass   # it is already gone; its exit is (or was) reported
                return

    @property
    def pids(self) -> list[int]:
        """The zygotes' own pids (for memory and CPU accounting)."""
        return [z.pid for z in (self.zygote, self.warm) if z is not None]

    async def close(self) -> None:
        if self.warm is not None:
            await self.warm.close()
        await self.zygote.close()
