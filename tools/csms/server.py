"""The CSMS: websocket listener, one session per charger, and the Python driving API."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.headers import build_www_authenticate_basic
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .actions import CsmsActions
from .certs import CsrSigner
from .chargepoint import CentralChargePoint, Services
from .config import CsmsConfig, ServerOptions
from .errors import NotConnected
from .frames import CALL, EVENT, INVALID, parse
from .recfile import JsonlWriter
from .records import Filter, Record, RecordStore
from . import speedups
from .security import basic_auth_failure, cp_id_from_path, peer_common_name, server_ssl_context
from .state import ChargerState, Ledger
from .stats import CallStats, traffic
from .transport import RecordingConnection

LOG = logging.getLogger("tools.csms")
SUBPROTOCOL = Subprotocol("ocpp1.6")


@dataclass
class Session:
    cp_id: str
    ws: ServerConnection
    cp: CentralChargePoint
    done: asyncio.Future[None]  # set once the session is torn down and recorded
    task: asyncio.Task[None] | None = None


def _address(address: Any) -> str | None:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return None if address is None else str(address)


class Csms(CsmsActions):
    """OCPP 1.6J central system on the `ocpp` package.

    `async with Csms(config, options) as csms:` starts it and closes it cleanly; `stop()`/`start()`
    take the listener down and up again on the same port (CSMS crash and restart) while records,
    configuration and transaction numbering survive.
    """

    def __init__(
        self,
        config: CsmsConfig | None = None,
        options: ServerOptions | None = None,
        **option_overrides: Any,
    ) -> None:
        speedups.install()   # same validation and conversions, a third less CPU per message
        self.config = config if config is not None else CsmsConfig()
        base = options if options is not None else ServerOptions()
        self.options = dataclasses.replace(base, **option_overrides)
        self.store = RecordStore(self.options.records_cap)
        self.ledger = Ledger()
        self.call_stats = CallStats()
        self._chargers: dict[str, ChargerState] = {}
        self._sessions: dict[str, Session] = {}
        self._server: Server | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writer = JsonlWriter(self.options.records_file) if self.options.records_file else None
        if self._writer is not None:
            self.store.sinks.append(self._writer.add)
        signer = None
        if self.options.signing_ca_cert and self.options.signing_ca_key:
            signer = CsrSigner(self.options.signing_ca_cert, self.options.signing_ca_key)
        self._services = Services(
            self.config, self.ledger, self.store, self.call_stats, self.spawn, signer
        )

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def tls(self) -> bool:
        return bool(self.options.tls_cert and self.options.tls_key)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the CSMS has not been started")
        return self._port

    @property
    def url(self) -> str:
        """`ws://host:port` (wss with TLS); chargers connect to `<url>/<anything>/<cp id>`."""
        host = self.options.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}"

    def url_for(self, cp_id: str, prefix: str = "ocpp") -> str:
        return f"{self.url}/{prefix}/{cp_id}" if prefix else f"{self.url}/{cp_id}"

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again); after a stop() the same port is reused."""
        if self._server is not None:
            return
        if self._writer is not None:
            await self._writer.start()
        opts = self.options
        ssl_context = None
        if self.tls:
            assert opts.tls_cert and opts.tls_key
            ssl_context = server_ssl_context(opts.tls_cert, opts.tls_key, opts.client_ca)
        self._server = await serve(
            self._handle,
            opts.host,
            self._port if self._port is not None else opts.port,
            subprotocols=[SUBPROTOCOL],
            process_request=self._process_request,
            process_response=self._process_response,
            compression="deflate" if opts.compression else None,
            ping_interval=opts.ping_interval,
            ping_timeout=opts.ping_interval,
            close_timeout=opts.close_timeout,
            ssl=ssl_context,
            backlog=opts.backlog,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        LOG.info("CSMS listening on %s", self.url)

    async def stop(self, *, abort: bool = False, code: int = 1001, reason: str = "") -> None:
        """Stop listening and drop every charger: a close frame with `code`, or with abort=True
        the TCP connections are cut without one (what a crashed CSMS looks like)."""
        server, self._server = self._server, None
        if server is None:
            return
        if abort:
            for session in list(self._sessions.values()):
                session.ws.transport.abort()
        server.close(close_connections=not abort, code=code, reason=reason)
        try:
            await asyncio.wait_for(server.wait_closed(), self.options.close_timeout + 1.0)
        except TimeoutError:  # a handler stuck in a reply delay: cut it short
            for session in list(self._sessions.values()):
                if session.task is not None:
                    session.task.cancel()
            await server.wait_closed()

    async def close(self) -> None:
        """Stop, finish background tasks and flush the records file."""
        await self.stop()
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()

    async def __aenter__(self) -> Csms:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background coroutine that close() will cancel and await."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error("CSMS background task failed", exc_info=task.exception())

    # -- handshake -------------------------------------------------------------------------------

    def _event(self, cp_id: str, event: str, **details: Any) -> Record:
        return self.store.add(cp_id, None, EVENT, event=event, payload=details)

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        cp_id = cp_id_from_path(request.path)
        remote = _address(ws.remote_address)
        if not cp_id:
            self._event("", "refused", status=404, reason="no charge point id", path=request.path)
            return ws.respond(HTTPStatus.NOT_FOUND, "No charge point id in the URL path.\n")
        failure = basic_auth_failure(request.headers, cp_id, self.config)
        if failure is not None:
            self._event(cp_id, "auth_failed", status=401, reason=failure, remote=remote)
            response = ws.respond(HTTPStatus.UNAUTHORIZED, f"Unauthorized: {failure}.\n")
            response.headers["WWW-Authenticate"] = build_www_authenticate_basic("OCPP")
            return response
        if self.config.require_client_cn and self.options.client_ca:
            cn = peer_common_name(ws.transport.get_extra_info("peercert"))
            if cn != cp_id:
                reason = f"client certificate CN {cn!r} is not the charge point id"
                self._event(cp_id, "auth_failed", status=403, reason=reason, remote=remote)
                return ws.respond(HTTPStatus.FORBIDDEN, f"Forbidden: {reason}.\n")
        return None

    def _process_response(
        self, ws: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        status = response.status_code
        if status != HTTPStatus.SWITCHING_PROTOCOLS and status not in (401, 403, 404):
            self._event(
                cp_id_from_path(request.path),
                "refused",
                status=status,
                reason=response.body.decode("utf-8", "replace").strip(),
                subprotocols=request.headers.get("Sec-WebSocket-Protocol"),
                remote=_address(ws.remote_address),
            )
        return None

    def _deliberate_error(self, action: str | None, code: str | None) -> bool:
        return action is not None and self.config.reply_errors.get(action) == code

    # -- sessions --------------------------------------------------------------------------------

    def _state(self, cp_id: str) -> ChargerState:
        state = self._chargers.get(cp_id)
        if state is None:
            state = self._chargers[cp_id] = ChargerState(cp_id)
        return state

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        cp_id = cp_id_from_path(ws.request.path)
        state = self._state(cp_id)
        conn = RecordingConnection(ws, cp_id, self.store, self.call_stats, self._deliberate_error)
        cp = CentralChargePoint(cp_id, conn, self._services, state)
        session = Session(cp_id, ws, cp, asyncio.get_running_loop().create_future())
        old = self._sessions.get(cp_id)
        self._sessions[cp_id] = session
        state.connected, state.connected_at = True, time.time()
        state.connections += 1
        state.remote = _address(ws.remote_address)
        self._event(
            cp_id,
            "connect",
            remote=state.remote,
            path=ws.request.path,
            subprotocol=ws.subprotocol,
            tls=self.tls,
            client_cn=peer_common_name(ws.transport.get_extra_info("peercert")),
            replaced=old is not None,
        )
        if old is not None:
            self.spawn(old.ws.close(1000, "replaced by a new connection"))
        session.task = asyncio.create_task(cp.run(), name=f"csms-cp-{cp_id}")
        try:
            await asyncio.wait({session.task})
        finally:
            if not session.task.done():
                session.task.cancel()
                await asyncio.wait({session.task})
            replaced = self._sessions.get(cp_id) is not session
            if not replaced:
                del self._sessions[cp_id]
                state.connected, state.disconnected_at = False, time.time()
            sent = ws.protocol.close_sent
            self._event(
                cp_id,
                "disconnect",
                code=ws.close_code,
                reason=ws.close_reason,
                sent_code=sent.code if sent is not None else None,
                replaced=replaced,
            )
            session.done.set_result(None)

    # -- driving API -----------------------------------------------------------------------------

    def connected(self) -> list[str]:
        """Ids of the chargers connected now."""
        return list(self._sessions)

    def is_connected(self, cp_id: str) -> bool:
        return cp_id in self._sessions

    async def wait_connected(self, cp_id: str, timeout: float | None = 10.0) -> None:
        if cp_id not in self._sessions:
            await self.store.wait_for(Filter(cp_id=cp_id, event="connect"), None, timeout)

    def _session(self, cp_id: str) -> Session:
        session = self._sessions.get(cp_id)
        if session is None:
            raise NotConnected(cp_id)
        return session

    async def call(
        self,
        cp_id: str,
        action: str,
        payload: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Send a CALL (camelCase payload) and return the CALLRESULT payload as received.

        Raises CallErrorReply (with .code) for a CALLERROR, InvalidReply for a result failing its
        schema, TimeoutError, NotConnected, ValueError for a request the schemas refuse."""
        session = self._session(cp_id)
        wait = timeout if timeout is not None else self.config.call_timeout
        return await session.cp.call_action(action, payload or {}, wait, validate)

    async def send_raw(self, cp_id: str, text: str, *, timeout: float = 5.0) -> str | None:
        """Send any text frame; return the charger's raw reply if one arrives within `timeout`
        (the reply with the same message id, or else the next non-CALL frame), else None."""
        conn = self._session(cp_id).cp.conn
        frame = parse(text)
        message_id = frame.message_id if frame.type in (CALL, INVALID) else None
        future = conn.expect(message_id, route=False) if message_id is not None else None
        mark = self.store.last_seq
        conn.tolerate_unknown_replies(timeout + 2.0)  # a slow answer to garbage is no violation
        try:
            try:
                await conn.send(text)
            except ConnectionClosed:
                raise NotConnected(cp_id) from None
            if future is not None:
                rec = await asyncio.wait_for(asyncio.shield(future), timeout)
            else:
                flt = Filter(cp_id=cp_id, direction="in", where=_is_reply)
                rec = await self.store.wait_for(flt, mark, timeout)
            return rec.raw
        except (TimeoutError, NotConnected):
            return None
        finally:
            if message_id is not None:
                conn.forget(message_id)

    async def wait_for(
        self,
        action: str | None = None,
        *,
        cp_id: str | None = None,
        direction: str | None = "in",
        match: dict[str, Any] | None = None,
        timeout: float | None = 10.0,
        since: int | None = 0,
        type: str | None = None,
        event: str | None = None,
        message_id: str | None = None,
        where: Callable[[Record], bool] | None = None,
    ) -> Record:
        """First record with seq > since matching every given filter (since=None: future only).

        direction applies to frames only; `match` is a payload subset; TimeoutError if none."""
        flt = Filter(cp_id, action, direction, type, event, message_id, match, where)
        return await self.store.wait_for(flt, since, timeout)

    def records(
        self,
        cp_id: str | None = None,
        action: str | None = None,
        *,
        direction: str | None = None,
        type: str | None = None,
        event: str | None = None,
        match: dict[str, Any] | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> list[Record]:
        """Retained records, oldest first."""
        flt = Filter(cp_id, action, direction, type, event, None, match)
        return self.store.query(flt, since, limit)

    def violations(self, cp_id: str | None = None) -> list[Record]:
        """Frames where a charger broke OCPP-J or a schema (recent ones; stats has the count)."""
        return self.store.violations(cp_id)

    @property
    def last_seq(self) -> int:
        return self.store.last_seq

    async def disconnect(self, cp_id: str, code: int = 1000, reason: str = "") -> bool:
        """Close the charger's websocket from the CSMS side; False if it was not connected."""
        session = self._sessions.get(cp_id)
        if session is None:
            return False
        await session.ws.close(code, reason)
        await session.done
        return True

    def charger(self, cp_id: str) -> ChargerState | None:
        return self._chargers.get(cp_id)

    def chargers(self) -> list[ChargerState]:
        return list(self._chargers.values())

    def active_transaction(self, cp_id: str, connector_id: int | None = None) -> int | None:
        """The newest open transaction id of the charger (on that connector), or None."""
        ids = [
            tx.transaction_id
            for tx in self.ledger.open_for(cp_id)
            if connector_id is None or tx.connector_id == connector_id
        ]
        return max(ids) if ids else None

    def stats(self) -> dict[str, Any]:
        """Counts by action/type/event, connections, violations, call round trips."""
        return {
            "serving": self.serving,
            "connected": len(self._sessions),
            "chargers": len(self._chargers),
            "records": {
                "last_seq": self.store.last_seq,
                "retained": len(self.store),
                "dropped": self.store.dropped,
            },
            **traffic(self.store.counts),
            "violations": self.store.violation_count,
            "calls": self.call_stats.to_dict(),
            "transactions": {"open": len(self.ledger.open), "next_id": self.ledger.next_id},
        }


def _is_reply(rec: Record) -> bool:
    return rec.type not in (CALL, EVENT)
