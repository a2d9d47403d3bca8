"""The embedded back-ends a fleet starts when none is given (the OCPP CSMS of tools/csms, the YKC
platform peer of tools/ykc_peer), each in its own process so its CPU and memory are its own, and
HTTP clients of their control APIs for scenarios ("what did the CSMS see?")."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from harness.lifeline import die_with_parent


class BackendError(Exception):
    """A back-end could not be started or answered with an error."""


class BackendProcess:
    """`python -m <module> ...` that prints `<kind> <url>` lines once it listens."""

    def __init__(self, name: str, module: str, args: list[str], log: Path) -> None:
        self.name = name
        self.module = module
        self.args = args
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.urls: list[str] = []

    async def start(self, lines: int = 2, timeout: float = 20.0) -> list[str]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        err = open(self.log, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, *self.args, stdout=asyncio.subprocess.PIPE,
                stderr=err, start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent),
                preexec_fn=die_with_parent)
        finally:
            err.close()
        assert self.proc.stdout is not None
        try:
            for _ in range(lines):
                line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
                if not line:
                    raise BackendError(f"{self.name} exited at start (see {self.log})")
                self.urls.append(line.decode().split()[-1])
        except asyncio.TimeoutError:
            await self.stop()
            raise BackendError(f"{self.name} did not start within {timeout:g} s (see {self.log})") from None
        return self.urls

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def kill(self) -> None:
        """Crash it (SIGKILL): for CSMS-restart chaos."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def csms_process(run_dir: Path, tags: list[str], port: int = 0) -> BackendProcess:
    args = ["--host", "127.0.0.1", "--port", str(port), "--control-port", "0",
            "--records", str(run_dir / "csms" / "records.jsonl"), "--records-cap", "200000",
            "--heartbeat-interval", "60", "--inline-validation"]
    for t in tags:
        args += ["--tag", t]
    return BackendProcess("embedded CSMS", "tools.csms", args, run_dir / "csms" / "csms.log")


def ykc_process(run_dir: Path, port: int = 0) -> BackendProcess:
    args = ["--host", "127.0.0.1", "--port", str(port), "--control-port", "0"]
    return BackendProcess("embedded YKC platform", "tools.ykc_peer", args, run_dir / "ykc" / "peer.log")


class HttpClient:
    """Small JSON-over-HTTP helper shared by the back-end clients."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def _s(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        s = await self._s()
        clean = {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v))
                 for k, v in (params or {}).items() if v is not None}
        async with s.request(method, self.base + path, params=clean, json=body) as r:
            data = await r.json(content_type=None)
            if r.status not in ok:
                raise BackendError(f"{method} {path}: HTTP {r.status}: {data.get('error') if isinstance(data, dict) else data}")
            return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class CsmsClient(HttpClient):
    """Scenario access to the embedded CSMS: its records, waits and calls (camelCase payloads)."""

    def __init__(self, control_url: str, ocpp_url: str = "") -> None:
        super().__init__(control_url)
        self.ocpp_url = ocpp_url

    async def records(self, cp: str | None = None, action: str | None = None, direction: str | None = None,
                      since: int = 0, limit: int = 1000, match: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        data = await self.request("GET", "/api/records", params={"cp": cp, "action": action, "direction": direction,
                                                                   "since": since, "limit": limit, "match": match})
        return list(data["records"])

    async def last_seq(self) -> int:
        data = await self.request("GET", "/api/records", params={"limit": 0})
        return int(data["last_seq"])

    async def wait_for(self, action: str | None = None, cp: str | None = None, direction: str = "in",
                       match: dict[str, Any] | None = None, timeout: float = 10.0, since: int | str = 0) -> dict[str, Any]:
        data = await self.request("POST", "/api/wait", body={"action": action, "cp": cp, "direction": direction,
                                                             "match": match, "timeout": timeout, "since": since},
                                  ok=(200, 408))
        if "record" not in data:
            raise TimeoutError(f"the CSMS saw no {action or 'record'} from {cp or 'any charger'} within {timeout:g} s")
        return dict(data["record"])

    async def call(self, cp: str, action: str, payload: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        data = await self.request("POST", f"/api/chargers/{cp}/call",
                                  body={"action": action, "payload": payload or {}, "timeout": timeout})
        if not data.get("ok"):
            raise BackendError(f"{cp} answered {action} with {data.get('error_code')}: {data.get('error_description')}")
        return dict(data["payload"])

    async def charger(self, cp: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/api/chargers/{cp}"))

    async def active_transaction(self, cp: str, connector: int | None = None) -> int | None:
        txs = [t for t in (await self.charger(cp)).get("transactions", [])
               if connector is None or t.get("connector_id") == connector]
        return max((int(t["transaction_id"]) for t in txs), default=None)

    async def remote_start(self, cp: str, id_tag: str, connector: int | None = None) -> str:
        p: dict[str, Any] = {"idTag": id_tag}
        if connector is not None:
            p["connectorId"] = connector
        return str((await self.call(cp, "RemoteStartTransaction", p))["status"])

    async def remote_stop(self, cp: str, transaction_id: int | None = None) -> str:
        if transaction_id is None:
            transaction_id = await self.active_transaction(cp)
            if transaction_id is None:
                raise BackendError(f"{cp} has no open transaction at the CSMS")
        return str((await self.call(cp, "RemoteStopTransaction", {"transactionId": transaction_id}))["status"])

    async def reset(self, cp: str, kind: str = "Soft") -> str:
        return str((await self.call(cp, "Reset", {"type": kind}))["status"])

    async def change_configuration(self, cp: str, key: str, value: str) -> str:
        return str((await self.call(cp, "ChangeConfiguration", {"key": key, "value": value}))["status"])

    async def trigger(self, cp: str, message: str, connector: int | None = None) -> str:
        p: dict[str, Any] = {"requestedMessage": message}
        if connector is not None:
            p["connectorId"] = connector
        return str((await self.call(cp, "TriggerMessage", p))["status"])

    async def stats(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/api/stats"))

    async def violations(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/api/violations"))

    async def configure(self, **changes: Any) -> dict[str, Any]:
        return dict(await self.request("PUT", "/api/config", body=changes))

    async def disconnect(self, cp: str) -> None:
        await self.request("POST", f"/api/chargers/{cp}/disconnect", body={}, ok=(200, 404))

    async def stop_server(self, abort: bool = True) -> None:
        await self.request("POST", "/api/server/stop", body={"abort": abort})

    async def start_server(self) -> None:
        await self.request("POST", "/api/server/start", body={})


class YkcClient(HttpClient):
    """Scenario access to the embedded YKC platform: its decoded frames, waits and commands."""

    def __init__(self, control_url: str, tcp_url: str = "") -> None:
        super().__init__(control_url)
        self.tcp_url = tcp_url

    async def records(self, pile: str | None = None, type: str | int | None = None, since: int = 0,
                      direction: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        data = await self.request("GET", "/api/records", params={"pile": pile, "type": type, "since": since,
                                                                   "direction": direction, "limit": limit})
        return list(data["records"] if isinstance(data, dict) else data)

    async def wait_for(self, type: str | int, pile: str | None = None, match: dict[str, Any] | None = None,
                       timeout: float = 10.0, since: int | str = 0) -> dict[str, Any]:
        data = await self.request("GET", "/api/wait", params={"type": type, "pile": pile, "match": match,
                                                                "timeout": timeout, "since": since}, ok=(200, 504))
        if not isinstance(data, dict) or "type" not in data:   # {"error": "timeout"} (504)
            raise TimeoutError(f"the platform saw no frame {type} from {pile or 'any pile'} within {timeout:g} s")
        return dict(data)

    async def command(self, pile: str, name: str, **args: Any) -> dict[str, Any]:
        """remote_start (gun, ...), remote_stop (gun), reboot, time_sync, billing, params, read, balance..."""
        return dict(await self.request("POST", f"/api/piles/{pile}/{name}", body=args))

    async def remote_start(self, pile: str, gun: int = 1, wait: float = 10.0) -> dict[str, Any]:
        return await self.command(pile, "remote_start", gun=gun, wait=wait)

    async def remote_stop(self, pile: str, gun: int = 1, wait: float = 10.0) -> dict[str, Any]:
        return await self.command(pile, "remote_stop", gun=gun, wait=wait)

    async def restart_server(self, down: float = 1.0) -> None:
        await self.request("POST", "/api/server/restart", body={"down": down})


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
