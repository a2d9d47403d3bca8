"""The scenario API: test plans as asyncio scripts. A scenario file defines `async def main(fleet)`
(and may set COUNT or FLEET for the fleet `evfleet run` brings up when none is running):

    async def main(fleet):
        cp = fleet["CP-0001"]
        await cp.plug(1)
        await cp.swipe(1, "TAG1")
        await cp.wait_for(connector=1, status="Charging", timeout=30)
        starts = await fleet.csms_records(action="StartTransaction", cp=cp.id)

`fleet` wraps either a Fleet in this process or a RemoteFleet; both speak the one control API.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from harness.backends import CsmsClient


class Api(Protocol):
    async def console(self, cid: str, cmd: str, args: list[Any] | None = None, timeout: float = 10.0) -> Any: ...
    async def wait_status(self, cid: str, conn: int, status: str, timeout: float = 30.0) -> dict[str, Any]: ...
    async def wait_event(self, cid: str, kind: str, match: dict[str, Any] | None = None,
                         timeout: float = 30.0) -> dict[str, Any]: ...
    async def reboot(self, cid: str) -> dict[str, Any]: ...
    async def power_cut(self, cid: str) -> dict[str, Any]: ...
    async def charger(self, cid: str) -> dict[str, Any]: ...
    async def chargers(self, live: bool = False) -> list[dict[str, Any]]: ...
    async def csms_records(self, **query: Any) -> list[dict[str, Any]]: ...
    async def csms_call(self, cid: str, action: str, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]: ...


class Charger:
    """One charger, driven the way a person at the charger (or its hardware) would."""

    def __init__(self, api: Api, cid: str) -> None:
        self.api = api
        self.id = cid

    def __repr__(self) -> str:
        return f"<Charger {self.id}>"

    async def console(self, cmd: str, *args: Any, timeout: float = 10.0) -> Any:
        return await self.api.console(self.id, cmd, list(args), timeout)

    async def plug(self, connector: int = 1, **ev: Any) -> Any:
        """Plug an EV in (EV parameters: soc, capacity_wh, max_power_w, target_soc...)."""
        return await self.console("plug", connector, *(f"{k}={v}" for k, v in ev.items()))

    async def unplug(self, connector: int = 1, ev_only: bool = False) -> Any:
        return await self.console("unplug", connector, *(["ev"] if ev_only else []))

    async def swipe(self, connector: int, id_tag: str) -> Any:
        """Present an RFID card (connector 0: the reader is not tied to a connector)."""
        return await self.console("swipe", connector, id_tag)

    async def ev(self, connector: int = 1, **params: Any) -> Any:
        return await self.console("ev", connector, *(f"{k}={v}" for k, v in params.items()))

    async def fault(self, connector: int, code: str) -> Any:
        return await self.console("fault", connector, code, "on")

    async def clear_fault(self, connector: int, code: str | None = None) -> Any:
        if code is None:
            return await self.console("fault", connector, "clear")
        return await self.console("fault", connector, code, "off")

    async def network_down(self, seconds: float | None = None) -> Any:
        return await self.console("net", "down", *([int(seconds)] if seconds else []))

    async def network_up(self) -> Any:
        return await self.console("net", "up")

    async def status(self, connector: int | None = None) -> Any:
        return await self.console("status", *([connector] if connector is not None else []))

    async def config_get(self, *keys: str) -> Any:
        return await self.console("config", "get", *keys)

    async def config_set(self, key: str, value: Any) -> Any:
        return await self.console("config", "set", key, str(value))

    async def reboot(self) -> Any:
        return await self.api.reboot(self.id)

    async def power_cut(self) -> Any:
        return await self.api.power_cut(self.id)

    async def wait_for(self, connector: int = 1, status: str = "Available", timeout: float = 30.0) -> None:
        await self.api.wait_status(self.id, connector, status, timeout)

    async def wait_event(self, kind: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        return await self.api.wait_event(self.id, kind, match, timeout)

    async def info(self) -> dict[str, Any]:
        return await self.api.charger(self.id)


class FleetHandle:
    """Fleet-wide helpers on top of the control API."""

    def __init__(self, api: Any, ids: list[str], csms: CsmsClient | None = None, ykc: Any = None) -> None:
        self.api = api
        self.ids = ids
        self.csms = csms            # the embedded CSMS (records, waits, remote calls), or None
        self.ykc = ykc              # the embedded YKC platform (frames, waits, commands), or None

    def __getitem__(self, cid: str) -> Charger:
        if cid not in self.ids:
            raise KeyError(f"no charger {cid!r} in this fleet (first ids: {', '.join(self.ids[:5])})")
        return Charger(self.api, cid)

    def __len__(self) -> int:
        return len(self.ids)

    def all(self) -> list[Charger]:
        return [Charger(self.api, i) for i in self.ids]

    async def csms_records(self, **query: Any) -> list[dict[str, Any]]:
        return await self.api.csms_records(**query)

    async def each(self, fn: Callable[[Charger], Awaitable[Any]], chargers: Iterable[Charger] | None = None,
                   concurrency: int = 200) -> list[Any]:
        """Run fn for every charger concurrently (bounded); exceptions are returned, not raised."""
        sem = asyncio.Semaphore(concurrency)

        async def one(cp: Charger) -> Any:
            async with sem:
                return await fn(cp)

        return list(await asyncio.gather(*(one(cp) for cp in (chargers or self.all())), return_exceptions=True))

    async def ramp(self, fn: Callable[[Charger], Awaitable[Any]], per_second: float,
                   chargers: Iterable[Charger] | None = None, jitter: float = 0.5) -> list[Any]:
        """Start fn for one charger after another at `per_second`, with jitter, all running together."""
        tasks = []
        t0 = time.monotonic()
        for k, cp in enumerate(chargers or self.all()):
            due = t0 + k / per_second + random.uniform(0, jitter / per_second)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(fn(cp)))
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    async def random_arrivals(self, fn: Callable[[Charger], Awaitable[Any]], mean_interval: float,
                              duration: float, chargers: list[Charger] | None = None) -> list[Any]:
        """Poisson arrivals: every `mean_interval` seconds on average a random idle charger gets fn."""
        pool = list(chargers or self.all())
        busy: set[str] = set()
        tasks = []
        end = time.monotonic() + duration

        async def run(cp: Charger) -> Any:
            try:
                return await fn(cp)
            finally:
                busy.discard(cp.id)

        while time.monotonic() < end:
            await asyncio.sleep(random.expovariate(1.0 / mean_interval))
            idle = [cp for cp in pool if cp.id not in busy]
            if not idle:
                continue
            cp = random.choice(idle)
            busy.add(cp.id)
            tasks.append(asyncio.create_task(run(cp)))
        return list(await asyncio.gather(*tasks, return_exceptions=True))


def load_scenario(path: str | Path) -> ModuleType:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"scenario {p} not found")
    spec = importlib.util.spec_from_file_location(f"scenario_{p.stem}", p)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not callable(getattr(mod, "main", None)):
        raise ValueError(f"scenario {p} has no `async def main(fleet)`")
    return mod
