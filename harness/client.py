"""Client of a running fleet's control API (HTTP): the same methods as harness.fleet.Fleet, so the
CLI, scenarios and the pytest plugin work the same against a fleet in this process or another."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from harness.backends import CsmsClient, YkcClient
from harness.errors import FleetError


def run_dir_for(name: str = "fleet", run_dir: str | Path | None = None) -> Path:
    if run_dir is not None:
        return Path(run_dir).resolve()
    env = os.environ.get("EVFLEET_RUN_DIR")
    return Path(env).resolve() if env else (Path("run") / name).resolve()


def find_fleet(name: str = "fleet", run_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The state file of a fleet that is up (None if there is none)."""
    p = run_dir_for(name, run_dir) / "fleet.json"
    try:
        state = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return None
    return dict(state)


class RemoteFleet:
    def __init__(self, api_url: str, connections: int = 100) -> None:
        self.url = api_url.rstrip("/")
        self.connections = connections   # requests in flight at once (long-polls included)
        self._session: aiohttp.ClientSession | None = None
        self._csms: CsmsClient | None = None
        self._ykc: YkcClient | None = None

    async def _s(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None),
                                                  connector=aiohttp.TCPConnector(limit=self.connections))
        return self._session

    async def _req(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        s = await self._s()
        try:
            async with s.request(method, self.url + path, json=body, params=params) as r:
                data = await r.json(content_type=None)
        except aiohttp.ClientError as e:
            raise FleetError(f"fleet API at {self.url} unreachable: {e}") from None
        if r.status != 200:
            raise FleetError(data.get("error", f"HTTP {r.status}") if isinstance(data, dict) else str(data))
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        for c in (self._csms, self._ykc):
            if c is not None:
                await c.close()

    async def info(self) -> dict[str, Any]:
        return dict(await self._req("GET", "/api/fleet"))

    async def ids(self) -> list[str]:
        return [c["id"] for c in await self.chargers()]

    async def chargers(self, live: bool = False) -> list[dict[str, Any]]:
        return list(await self._req("GET", "/api/chargers", params={"live": "1" if live else "0"}))

    async def charger(self, cid: str) -> dict[str, Any]:
        return dict(await self._req("GET", f"/api/chargers/{cid}"))

    async def console(self, cid: str, cmd: str, args: list[Any] | None = None, timeout: float = 10.0) -> Any:
        r = await self._req("POST", f"/api/chargers/{cid}/console", {"cmd": cmd, "args": args or [], "timeout": timeout})
        return r["data"]

    async def wait_status(self, cid: str, conn: int, status: str, timeout: float = 30.0) -> dict[str, Any]:
        return dict(await self._req("GET", f"/api/chargers/{cid}/wait",
                                    params={"conn": conn, "status": status, "timeout": timeout}))

    async def wait_event(self, cid: str, kind: str, match: dict[str, Any] | None = None,
                         timeout: float = 30.0) -> dict[str, Any]:
        return dict(await self._req("POST", f"/api/chargers/{cid}/wait-event",
                                    {"ev": kind, "match": match or {}, "timeout": timeout}))

    async def reboot(self, cid: str) -> dict[str, Any]:
        return dict(await self._req("POST", f"/api/chargers/{cid}/reboot"))

    async def power_cut(self, cid: str) -> dict[str, Any]:
        return dict(await self._req("POST", f"/api/chargers/{cid}/power-cut"))

    async def stop_charger(self, cid: str) -> dict[str, Any]:
        return dict(await self._req("POST", f"/api/chargers/{cid}/stop"))

    async def start_charger(self, cid: str) -> dict[str, Any]:
        return dict(await self._req("POST", f"/api/chargers/{cid}/start"))

    async def attach(self, cid: str) -> dict[str, Any]:
        return dict(await self._req("POST", f"/api/chargers/{cid}/port"))

    async def detach(self, cid: str) -> dict[str, Any]:
        return dict(await self._req("DELETE", f"/api/chargers/{cid}/port"))

    async def reboot_all(self) -> dict[str, Any]:
        return dict(await self._req("POST", "/api/reboot-all"))

    async def shutdown(self) -> None:
        await self._req("POST", "/api/shutdown")

    async def csms_records(self, **query: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in query.items() if v is not None}
        return list((await self._req("GET", "/api/csms/records", params=params))["records"])

    async def csms_call(self, cid: str, action: str, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        r = await self._req("POST", "/api/csms/call", {"cp": cid, "action": action, "payload": payload, "timeout": timeout})
        return dict(r["payload"])

    def csms_client(self) -> CsmsClient:
        raise FleetError("use await csms() on a remote fleet")

    async def csms(self) -> CsmsClient:
        if self._csms is None:
            info = await self.info()
            control = (info.get("csms") or {}).get("control")
            if not control:
                raise FleetError("this fleet uses an external CSMS: its records are not available here")
            self._csms = CsmsClient(control, info["csms"]["url"])
        return self._csms

    async def ykc(self) -> YkcClient | None:
        if self._ykc is None:
            info = (await self.info()).get("ykc") or {}
            if not info.get("control"):
                return None
            self._ykc = YkcClient(info["control"], info.get("url") or "")
        return self._ykc

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        s = await self._s()
        async with s.get(self.url + "/api/events") as r:
            async for line in r.content:
                if line.startswith(b"data: "):
                    yield json.loads(line[6:])
