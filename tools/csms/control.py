"""HTTP control API (aiohttp) for a CSMS that runs as its own process."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .errors import CallErrorReply, InvalidReply, NotConnected
from .records import Filter
from .server import Csms

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_WAIT = 300.0


class BadRequest(Exception):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json({"error": message, **extra}, status)


def _int(value: str | None, name: str, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None


def _float(value: Any, name: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number") from None


def _since(value: Any) -> int | None:
    """Integer seq; "now" (or "new") waits for records still to come."""
    if value in ("now", "new"):
        return None
    return _int(None if value is None else str(value), "since", 0)


def _match(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadRequest("match must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("match must be a JSON object")
    return value


def _filter(params: Any, default_direction: str | None) -> Filter:
    direction = params.get("direction", default_direction)
    return Filter(
        cp_id=params.get("cp") or None,
        action=params.get("action") or None,
        direction=None if direction in (None, "", "any") else str(direction),
        type=params.get("type") or None,
        event=params.get("event") or None,
        message_id=params.get("message_id") or None,
        match=_match(params.get("match")),
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return _error(400, str(exc))
    except NotConnected as exc:
        return _error(404, str(exc))


class ControlApi:
    """`await ControlApi(csms).start(host, port)`; `url` is then http://host:port."""

    def __init__(self, csms: Csms) -> None:
        self.csms = csms
        self.app = web.Application(middlewares=[_errors])
        self.app.add_routes(
            [
                web.get("/api/health", self.health),
                web.get("/api/chargers", self.chargers),
                web.get("/api/chargers/{cp_id}", self.charger),
                web.post("/api/chargers/{cp_id}/call", self.call),
                web.post("/api/chargers/{cp_id}/raw", self.raw),
                web.post("/api/chargers/{cp_id}/disconnect", self.disconnect),
                web.get("/api/records", self.records),
                web.get("/api/wait", self.wait),
                web.post("/api/wait", self.wait),
                web.get("/api/violations", self.violations),
                web.get("/api/config", self.get_config),
                web.put("/api/config", self.put_config),
                web.get("/api/stats", self.stats),
                web.post("/api/server/stop", self.server_stop),
                web.post("/api/server/start", self.server_start),
            ]
        )
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.url = f"http://{shown}:{bound[1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers --------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        csms = self.csms
        return _json(
            {
                "ok": True,
                "serving": csms.serving,
                "ocpp_url": csms.url,
                "connected": len(csms.connected()),
                "last_seq": csms.last_seq,
            }
        )

    async def chargers(self, request: web.Request) -> web.Response:
        ledger = self.csms.ledger
        return _json({"chargers": [state.to_dict(ledger) for state in self.csms.chargers()]})

    async def charger(self, request: web.Request) -> web.Response:
        state = self.csms.charger(request.match_info["cp_id"])
        if state is None:
            return _error(404, "unknown charge point")
        return _json(state.to_dict(self.csms.ledger))

    async def call(self, request: web.Request) -> web.Response:
        cp_id = request.match_info["cp_id"]
        body = await _body(request)
        action = body.get("action")
        payload = body.get("payload") or {}
        if not isinstance(action, str) or not isinstance(payload, dict):
            raise BadRequest('expected {"action": str, "payload": object, "timeout": number}')
        timeout = _float(body.get("timeout"), "timeout", self.csms.config.call_timeout)
        try:
            reply = await self.csms.call(
                cp_id, action, payload, timeout=timeout, validate=bool(body.get("validate", True))
            )
        except ValueError as exc:
            return _error(400, str(exc))
        except CallErrorReply as exc:
            return _json(
                {
                    "ok": False,
                    "error_code": exc.code,
                    "error_description": exc.description,
                    "error_details": exc.details,
                }
            )
        except InvalidReply as exc:
            return _error(502, str(exc), payload=exc.payload)
        except TimeoutError as exc:
            return _error(504, str(exc))
        return _json({"ok": True, "payload": reply})

    async def raw(self, request: web.Request) -> web.Response:
        body = await _body(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest('expected {"text": str, "timeout": number}')
        timeout = _float(body.get("timeout"), "timeout", 5.0)
        reply = await self.csms.send_raw(request.match_info["cp_id"], text, timeout=timeout)
        return _json({"reply": reply})

    async def disconnect(self, request: web.Request) -> web.Response:
        body = await _body(request)
        code = _int(str(body.get("code", 1000)), "code", 1000) or 1000
        reason = str(body.get("reason", ""))
        if not await self.csms.disconnect(request.match_info["cp_id"], code, reason):
            raise NotConnected(request.match_info["cp_id"])
        return _json({"ok": True})

    async def records(self, request: web.Request) -> web.Response:
        query = request.query
        flt = _filter(query, None)
        tail = _int(query.get("tail"), "tail", None)
        if tail is not None:
            found = self.csms.store.tail(flt, tail)
        else:
            since = _since(query.get("since")) or 0
            limit = _int(query.get("limit"), "limit", 1000)
            found = self.csms.store.query(flt, since, limit)
        return _json(
            {
                "records": [rec.to_dict() for rec in found],
                "first_seq": self.csms.store.first_seq,
                "last_seq": self.csms.last_seq,
            }
        )

    async def wait(self, request: web.Request) -> web.Response:
        params: Any = await _body(request) if request.method == "POST" else request.query
        flt = _filter(params, "in")
        timeout = min(_float(params.get("timeout"), "timeout", 10.0), MAX_WAIT)
        try:
            rec = await self.csms.store.wait_for(flt, _since(params.get("since")), timeout)
        except TimeoutError:
            return _error(408, "timeout", last_seq=self.csms.last_seq)
        return _json({"record": rec.to_dict()})

    async def violations(self, request: web.Request) -> web.Response:
        found = self.csms.violations(request.query.get("cp") or None)
        count = self.csms.store.violation_count
        return _json({"count": count, "violations": [rec.to_dict() for rec in found]})

    async def get_config(self, request: web.Request) -> web.Response:
        return _json(self.csms.config.to_dict())

    async def put_config(self, request: web.Request) -> web.Response:
        try:
            self.csms.config.update(await _body(request))
        except ValueError as exc:
            return _error(400, str(exc))
        return _json(self.csms.config.to_dict())

    async def stats(self, request: web.Request) -> web.Response:
        return _json(self.csms.stats())

    async def server_stop(self, request: web.Request) -> web.Response:
        body = await _body(request)
        await self.csms.stop(abort=bool(body.get("abort", False)), code=int(body.get("code", 1001)))
        return _json({"ok": True, "serving": self.csms.serving})

    async def server_start(self, request: web.Request) -> web.Response:
        await self.csms.start()
        return _json({"ok": True, "serving": self.csms.serving, "ocpp_url": self.csms.url})
