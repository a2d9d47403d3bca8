"""The fleet's control API over HTTP (aiohttp, localhost): the CLI from another shell, the pytest
plugin and dashboards use it. Every route maps onto one Fleet method; /api/openapi.json
describes them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.fleet import Fleet, FleetError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except FleetError as e:
        status = 404 if "no charger" in str(e) else 400
        return _json({"error": str(e)}, status)
    except (ValueError, KeyError, TypeError) as e:
        return _json({"error": f"bad request: {e}"}, 400)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise FleetError("the body must be JSON") from None
    if not isinstance(data, dict):
        raise FleetError("the body must be a JSON object")
    return data


def _float(v: Any, name: str, default: float) -> float:
    if v in (None, ""):
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        raise FleetError(f"{name} must be a number") from None


# (method, path, summary) — the route table is also the OpenAPI description.
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/api/fleet", "fleet summary: back-ends, counts, launcher"),
    ("GET", "/api/chargers", "every charger's summary (?live=1 adds power/energy read now)"),
    ("GET", "/api/chargers/{id}", "one charger: state, recent log, exits, port"),
    ("POST", "/api/chargers/{id}/console", "run a console command: {cmd, args, timeout} -> {data}"),
    ("GET", "/api/chargers/{id}/wait", "wait until ?conn=&status= (timeout=)"),
    ("POST", "/api/chargers/{id}/wait-event", "wait for an event: {ev, match, timeout}"),
    ("POST", "/api/chargers/{id}/reboot", "power-cycle the charger"),
    ("POST", "/api/chargers/{id}/power-cut", "SIGKILL it (restarts per policy)"),
    ("POST", "/api/chargers/{id}/stop", "stop it for good"),
    ("POST", "/api/chargers/{id}/start", "start a stopped charger"),
    ("POST", "/api/chargers/{id}/port", "open a pty for its console -> {port, link}"),
    ("DELETE", "/api/chargers/{id}/port", "close its pty"),
    ("POST", "/api/reboot-all", "power-cycle every charger"),
    ("GET", "/api/events", "server-sent events: every charger event as it happens"),
    ("GET", "/api/csms/records", "what the embedded CSMS recorded (?cp=&action=&direction=&since=&limit=)"),
    ("POST", "/api/csms/call", "make the embedded CSMS call a charger: {cp, action, payload, timeout}"),
    ("POST", "/api/shutdown", "stop every charger and the fleet process"),
    ("GET", "/api/openapi.json", "this description"),
]


def _h(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    """An aiohttp handler answering with fn's result as JSON."""

    async def handler(request: web.Request) -> web.Response:
        return _json(await fn(request))

    return handler


def openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, summary in ROUTES:
        op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "JSON"},
                                                                 "400": {"description": "{error}"},
                                                                 "404": {"description": "{error}"}}}
        if "{id}" in path:
            op["parameters"] = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
        paths.setdefault(path, {})[method.lower()] = op
    return {"openapi": "3.0.3", "info": {"title": "evfleet control API", "version": "1"}, "paths": paths}


class HttpApi:
    def __init__(self, fleet: Fleet, on_shutdown: Callable[[], None] | None = None) -> None:
        self.fleet = fleet
        self.on_shutdown = on_shutdown
        self.app = web.Application(middlewares=[_errors])
        f = fleet
        r = self.app.router
        r.add_get("/api/fleet", _h(lambda q: f.info()))
        r.add_get("/api/chargers", _h(lambda q: f.chargers(q.query.get("live") in ("1", "true"))))
        r.add_get("/api/chargers/{id}", _h(lambda q: f.charger(q.match_info["id"])))
        r.add_post("/api/chargers/{id}/console", self.console)
        r.add_get("/api/chargers/{id}/wait", self.wait)
        r.add_post("/api/chargers/{id}/wait-event", self.wait_event)
        r.add_post("/api/chargers/{id}/reboot", _h(lambda q: f.reboot(q.match_info["id"])))
        r.add_post("/api/chargers/{id}/power-cut", _h(lambda q: f.power_cut(q.match_info["id"])))
        r.add_post("/api/chargers/{id}/stop", _h(lambda q: f.stop_charger(q.match_info["id"])))
        r.add_post("/api/chargers/{id}/start", _h(lambda q: f.start_charger(q.match_info["id"])))
        r.add_post("/api/chargers/{id}/port", _h(lambda q: f.attach(q.match_info["id"])))
        r.add_delete("/api/chargers/{id}/port", _h(lambda q: f.detach(q.match_info["id"])))
        r.add_post("/api/reboot-all", _h(lambda q: f.reboot_all()))
        r.add_get("/api/events", self.events)
        r.add_get("/api/csms/records", self.csms_records)
        r.add_post("/api/csms/call", self.csms_call)
        r.add_post("/api/shutdown", self.shutdown)
        r.add_get("/api/openapi.json", _h(lambda q: _const(openapi())))
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def console(self, q: web.Request) -> web.Response:
        b = await _body(q)
        cmd = b.get("cmd")
        args = b.get("args", [])
        if not isinstance(cmd, str) or not isinstance(args, list):
            raise FleetError('expected {"cmd": str, "args": list, "timeout": number}')
        data = await self.fleet.console(q.match_info["id"], cmd, args, _float(b.get("timeout"), "timeout", 10))
        return _json({"data": data})

    async def wait(self, q: web.Request) -> web.Response:
        try:
            conn = int(q.query.get("conn", "1"))
        except ValueError:
            raise FleetError("conn must be an integer") from None
        status = q.query.get("status")
        if not status:
            raise FleetError("status is required")
        return _json(await self.fleet.wait_status(q.match_info["id"], conn, status,
                                                  _float(q.query.get("timeout"), "timeout", 30)))

    async def wait_event(self, q: web.Request) -> web.Response:
        b = await _body(q)
        if not isinstance(b.get("ev"), str):
            raise FleetError('expected {"ev": str, "match": object, "timeout": number}')
        return _json(await self.fleet.wait_event(q.match_info["id"], b["ev"], b.get("match") or {},
                                                 _float(b.get("timeout"), "timeout", 30)))

    async def events(self, q: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(q)
        only = q.query.get("id")
        async for ev in self.fleet.events():
            if only and ev.get("id") != only:
                continue
            await resp.write(f"data: {json.dumps(ev, default=str)}\n\n".encode())
        return resp

    async def csms_records(self, q: web.Request) -> web.Response:
        query: dict[str, Any] = {k: q.query[k] for k in ("cp", "action", "direction") if q.query.get(k)}
        query["since"] = int(q.query.get("since", "0"))
        query["limit"] = int(q.query.get("limit", "1000"))
        return _json({"records": await self.fleet.csms_records(**query)})

    async def csms_call(self, q: web.Request) -> web.Response:
        b = await _body(q)
        if not isinstance(b.get("cp"), str) or not isinstance(b.get("action"), str):
            raise FleetError('expected {"cp": str, "action": str, "payload": object}')
        return _json({"payload": await self.fleet.csms_call(b["cp"], b["action"], b.get("payload") or {},
                                                            _float(b.get("timeout"), "timeout", 30))})

    async def shutdown(self, q: web.Request) -> web.Response:
        if self.on_shutdown is not None:
            asyncio.get_running_loop().call_later(0.1, self.on_shutdown)
        return _json({"shutting_down": True})


async def _const(v: Any) -> Any:
    return v
