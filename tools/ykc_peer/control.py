"""HTTP control API of the YKC peer (aiohttp): inspect piles and records, wait for frames, send commands.

GET  /api/health                          {"status": "ok", "running", "ykc": {"host", "port"}, "piles",
                                          "records", "last_id"} (last_id: pass it as since= to see what follows)
GET  /api/piles                           [PileState...]          GET /api/piles/{code}: one
GET  /api/records?pile=&type=&since=&direction=&event=&limit=     [Record...] (since: record id, exclusive)
DELETE /api/records                       forget all records
GET  /api/wait?pile=&type=&since=&direction=&event=&match=<json>&timeout=   Record, or 504 on timeout
                                          (since: record id, default 0 = any record; "now" = only records
                                          yet to come; direction defaults to "in", match is a field subset)
POST /api/piles/{code}/{command}          JSON args; {"sent": Record, "reply": Record|null}; "wait": seconds
                                          to wait for the pile's answer. Commands: remote_start, remote_stop,
                                          reboot, time_sync, billing, params, read, balance, card_sync,
                                          card_clear, card_query, send {"type", "fields"}, disconnect
GET  /api/config, PUT /api/config         PeerConfig as JSON; PUT takes a partial object
POST /api/server/{stop|start|restart}     restart takes {"down": seconds}
`type` accepts a number ("19", "0x13") or a message name ("realtime").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import codec
from .server import REPLY_TYPE, BillingModel, PeerError, Record, YkcPeer

PEER_KEY = web.AppKey("ykc_peer", YkcPeer)


def _rec(rec: Record | None) -> dict[str, Any] | None:
    return rec.to_dict() if rec is not None else None


def _int(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value, 0)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{what} must be a number"}), content_type="application/json"
        ) from None


def _type(value: str | None) -> int | str | None:
    if not value:
        return None
    try:
        return int(value, 0)
    except ValueError:
        return value  # a message name


def _bad(msg: str, status: int = 400) -> web.Response:
    return web.json_response({"error": msg}, status=status)


async def health(request: web.Request) -> web.Response:
    peer = request.app[PEER_KEY]
    return web.json_response(
        {
            "status": "ok",
            "running": peer.running,
            "ykc": {"host": peer.host, "port": peer.port},
            "piles": sum(1 for p in peer.piles.values() if p.connected),
            "records": len(peer.records()),
            "last_id": peer.mark(),
        }
    )


async def piles(request: web.Request) -> web.Response:
    peer = request.app[PEER_KEY]
    return web.json_response([p.to_dict() for p in peer.piles.values()])


async def pile(request: web.Request) -> web.Response:
    state = request.app[PEER_KEY].piles.get(request.match_info["code"])
    if state is None:
        return _bad("unknown pile", 404)
    return web.json_response(state.to_dict())


async def records(request: web.Request) -> web.Response:
    peer = request.app[PEER_KEY]
    q = request.query
    found = peer.records(
        type=_type(q.get("type")),
        pile=q.get("pile") or None,
        since=_int(q.get("since"), "since") or 0,
        direction=q.get("direction") or None,
        event=q.get("event") or None,
        limit=_int(q.get("limit"), "limit"),
    )
    return web.json_response([r.to_dict() for r in found])


async def clear_records(request: web.Request) -> web.Response:
    request.app[PEER_KEY].clear_records()
    return web.json_response({"ok": True})


async def wait(request: web.Request) -> web.Response:
    peer = request.app[PEER_KEY]
    q = request.query
    match = None
    if q.get("match"):
        try:
            match = json.loads(q["match"])
        except ValueError:
            return _bad("match must be a JSON object")
        if not isinstance(match, dict):
            return _bad("match must be a JSON object")
    try:
        timeout = float(q.get("timeout", "10"))
    except ValueError:
        return _bad("timeout must be a number")
    since = None if q.get("since") == "now" else (_int(q.get("since"), "since") or 0)
    try:
        rec = await peer.wait_for(
            type=_type(q.get("type")),
            pile=q.get("pile") or None,
            match=match,
            timeout=timeout,
            since=since,
            direction=q.get("direction", "in") or None,
            event=q.get("event") or None,
        )
    except TimeoutError:
        return _bad("timeout", 504)
    return web.json_response(rec.to_dict())


Command = Callable[[YkcPeer, str, dict[str, Any]], Awaitable[Record | None]]


async def _remote_start(peer: YkcPeer, code: str, a: dict[str, Any]) -> Record:
    return await peer.remote_start(
        code,
        int(a.get("gun", 1)),
        a.get("trade"),
        a.get("logical"),
        a.get("card"),
        int(a.get("balance", 100000)),
    )


async def _time_sync(peer: YkcPeer, code: str, a: dict[str, Any]) -> Record:
    when = a.get("time")
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    return await peer.time_sync(code, when)


async def _billing(peer: YkcPeer, code: str, a: dict[str, Any]) -> Record:
    model = None
    if a.get("model") is not None or a.get("elec") is not None:
        base = peer.config.billing
        merged = {**dataclasses.asdict(base), **{k: v for k, v in a.items() if k != "wait"}}
        model = BillingModel(**merged)
    return await peer.push_billing(code, model)


async def _send(peer: YkcPeer, code: str, a: dict[str, Any]) -> Record:
    ftype = _type(str(a.get("type", "")))
    if isinstance(ftype, str):
        by_name = {v: k for k, v in codec.MESSAGE_NAMES.items()}
        if ftype not in by_name:
            raise ValueError(f"unknown message {ftype!r}")
        ftype = by_name[ftype]
    if ftype is None:
        raise ValueError("type is required")
    return await peer.send(code, ftype, a.get("fields") or {})


async def _disconnect(peer: YkcPeer, code: str, a: dict[str, Any]) -> None:
    await peer.disconnect(code)


COMMANDS: dict[str, Command] = {
    "remote_start": _remote_start,
    "remote_stop": lambda p, c, a: p.remote_stop(c, int(a.get("gun", 1))),
    "reboot": lambda p, c, a: p.reboot(c, int(a.get("control", 1))),
    "time_sync": _time_sync,
    "billing": _billing,
    "params": lambda p, c, a: p.set_params(
        c, int(a.get("disabled", 0)), int(a.get("max_power", 100))
    ),
    "read": lambda p, c, a: p.read_realtime(c, int(a.get("gun", 1))),
    "balance": lambda p, c, a: p.update_balance(
        c, int(a.get("gun", 1)), str(a["card"]), int(a["balance"])
    ),
    "card_sync": lambda p, c, a: p.card_sync(c, [tuple(x) for x in a.get("cards", [])]),
    "card_clear": lambda p, c, a: p.card_clear(c, list(a.get("cards", []))),
    "card_query": lambda p, c, a: p.card_query(c, list(a.get("cards", []))),
    "send": _send,
    "disconnect": _disconnect,
}


async def command(request: web.Request) -> web.Response:
    peer = request.app[PEER_KEY]
    code = request.match_info["code"]
    name = request.match_info["command"]
    fn = COMMANDS.get(name)
    if fn is None:
        return _bad(f"unknown command {name!r}; one of {', '.join(COMMANDS)}", 404)
    args: dict[str, Any] = {}
    if request.can_read_body:
        try:
            args = await request.json()
        except ValueError:
            return _bad("body must be a JSON object")
        if not isinstance(args, dict):
            return _bad("body must be a JSON object")
    mark = peer.mark()
    try:
        sent = await fn(peer, code, args)
    except PeerError as exc:
        return _bad(str(exc), 409)
    except (KeyError, TypeError, ValueError) as exc:
        return _bad(f"bad arguments for {name}: {exc}")
    reply = None
    wait_s = args.get("wait")
    if sent is not None and sent.type in REPLY_TYPE and wait_s:
        try:
            reply = await peer.wait_for(
                REPLY_TYPE[sent.type], pile=code, since=mark, timeout=float(wait_s)
            )
        except TimeoutError:
            return web.json_response(
                {"sent": _rec(sent), "reply": None, "error": "timeout"}, status=504
            )
    return web.json_response({"sent": _rec(sent), "reply": _rec(reply)})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[PEER_KEY].config.to_dict())


async def put_config(request: web.Request) -> web.Response:
    peer = request.app[PEER_KEY]
    try:
        changes = await request.json()
    except ValueError:
        return _bad("body must be a JSON object")
    if not isinstance(changes, dict):
        return _bad("body must be a JSON object")
    try:
        peer.config.update(changes)
    except ValueError as exc:
        return _bad(str(exc))
    return web.json_response(peer.config.to_dict())


async def server_action(request: web.Request) -> web.Response:
    peer = request.app[PEER_KEY]
    action = request.match_info["action"]
    if action == "stop":
        await peer.stop()
    elif action == "start":
        await peer.start()
    elif action == "restart":
        args = await request.json() if request.can_read_body else {}
        await peer.restart(float(args.get("down", 0)))
    else:
        return _bad("action is stop, start or restart", 404)
    return web.json_response({"running": peer.running, "port": peer.port})


def make_app(peer: YkcPeer) -> web.Application:
    app = web.Application()
    app[PEER_KEY] = peer
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/piles", piles)
    app.router.add_get("/api/piles/{code}", pile)
    app.router.add_post("/api/piles/{code}/{command}", command)
    app.router.add_get("/api/records", records)
    app.router.add_delete("/api/records", clear_records)
    app.router.add_get("/api/wait", wait)
    app.router.add_get("/api/config", get_config)
    app.router.add_put("/api/config", put_config)
    app.router.add_post("/api/server/{action}", server_action)
    return app


async def start_control(
    peer: YkcPeer, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve the API; returns the runner (call `await runner.cleanup()`) and the bound port."""
    runner = web.AppRunner(make_app(peer), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
