"""asyncio YKC platform peer: answers a pile's side of the session, records every frame, and is scriptable.

Automatic answers (ykc-protocol.md §5): 0x01 login → 0x02 (accept/refuse), 0x03 → 0x04, 0x05 → 0x06
(match against the configured model id), 0x09 → 0x0A (the configured time-of-use model), 0x3B → 0x40
(or withheld, to test resending), 0x31 → 0x32. Everything else is recorded only. Commands (remote
start/stop, reboot, time sync, billing push, parameters, read real-time, balance, card lists) are sent on
request; `wait_for` awaits what the pile sends back. `stop()` then `start()` reopens the same port, which
is how a test emulates a platform restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from . import codec

log = logging.getLogger("ykc_peer")

# Slot codes for the 48 half hours: 0 sharp, 1 peak, 2 flat, 3 valley. 00-08 valley, 08-10 flat,
# 10-12 peak, 12-14 flat, 14-17 peak, 17-19 sharp, 19-21 peak, 21-23 flat, 23-24 valley.
DEFAULT_SLOTS = (
    "3" * 16 + "2" * 4 + "1" * 4 + "2" * 4 + "1" * 6 + "0" * 4 + "1" * 4 + "2" * 4 + "3" * 2
)

# The type a pile answers each platform command with.
REPLY_TYPE = {
    0x12: 0x13,
    0x34: 0x33,
    0x36: 0x35,
    0x42: 0x41,
    0x44: 0x43,
    0x46: 0x45,
    0x48: 0x47,
    0x52: 0x51,
    0x56: 0x55,
    0x58: 0x57,
    0x62: 0x63,
    0x92: 0x91,
    0x94: 0x93,
    0xA4: 0xA3,
}


class PeerError(Exception):
    """A command could not be carried out (pile unknown or not connected)."""


@dataclass
class BillingModel:
    """A time-of-use model as sent in 0x0A/0x58 (§4.6). Prices in 0.00001 yuan/kWh, index = slot code."""

    model: str = "0100"
    elec: list[int] = field(default_factory=lambda: [120000, 100000, 70000, 40000])
    svc: list[int] = field(default_factory=lambda: [80000, 60000, 50000, 30000])
    loss: int = 0
    slots: str = DEFAULT_SLOTS

    def __post_init__(self) -> None:
        if len(self.model) != 4 or not self.model.isdigit():
            raise ValueError(f"billing model id must be 4 BCD digits, not {self.model!r}")
        if len(self.elec) != 4 or len(self.svc) != 4:
            raise ValueError(
                "billing model needs 4 energy and 4 service prices (sharp, peak, flat, valley)"
            )
        if any(not 0 <= int(p) < 2**32 for p in self.elec + self.svc):
            raise ValueError("prices are uint32 in 0.00001 yuan/kWh")
        if len(self.slots) != 48 or any(c not in "0123" for c in self.slots):
            raise ValueError("slots must be 48 codes 0-3 (one per half hour)")
        if not 0 <= self.loss <= 255:
            raise ValueError("loss ratio is one byte")

    def fields(self, pile: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pile": pile,
            "model": self.model,
            "loss": self.loss,
            "slots": self.slots,
        }
        for k in range(4):
            out[f"elec{k}"] = self.elec[k]
            out[f"svc{k}"] = self.svc[k]
        return out

    def price_at(self, minute_of_day: int) -> tuple[int, int]:
        """(energy, service) price of the half hour containing a minute of the day."""
        code = int(self.slots[(minute_of_day // 30) % 48])
        return self.elec[code], self.svc[code]


@dataclass
class PeerConfig:
    """Run-time behaviour; every field can be changed while serving (PUT /api/config)."""

    login_accept: bool = True
    refuse_piles: list[str] = field(default_factory=list)
    close_on_refuse: bool = True  # the spec: on a refused login the platform closes the link
    strict_login: bool = True  # frames before a successful login are recorded but not answered
    answer_heartbeat: bool = True
    billing: BillingModel = field(default_factory=BillingModel)
    confirm_records: bool = True  # False: never answer 0x3B
    record_result: int = 0  # 0x40 result: 0 accepted, 1 illegal bill
    drop_records: int = 0  # leave the next N records unanswered, then confirm again
    card_result: int = 1  # 0x32 auth result for 0x31 (1 success, 0 fail)
    card_reason: int = 0
    card_balance: int = 100000  # 0.01 yuan
    time_sync_on_login: bool = False  # JCPP sends 0x56 right after login
    crc_high_first: bool = False  # send the field quirk instead of the spec byte order
    idle_timeout: float = (
        0.0  # close a silent session after this many seconds (JCPP: 600); 0 = never
    )
    max_records: int = 100_000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial dict (as from JSON); ValueError on unknown keys or wrong types, nothing applied."""
        known = {f.name: f for f in dataclasses.fields(self)}
        new: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown config key {key!r}")
            current = getattr(self, key)
            if key == "billing":
                if not isinstance(value, dict):
                    raise ValueError("billing must be an object")
                merged = dataclasses.asdict(current) | value
                try:
                    new[key] = BillingModel(**merged)
                except TypeError as exc:
                    raise ValueError(str(exc)) from exc
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                new[key] = value
            elif isinstance(current, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{key} must be a number")
                new[key] = type(current)(value)
            elif isinstance(current, list):
                if not isinstance(value, list):
                    raise ValueError(f"{key} must be a list")
                new[key] = [str(v) for v in value]
        for key, value in new.items():
            setattr(self, key, value)


@dataclass(slots=True)
class Record:
    """One frame ("in" from a pile, "out" to it) or an event (direction None, type None)."""

    id: int
    mono: float
    wall: float
    pile: str | None
    direction: str | None
    type: int | None = None
    name: str | None = None
    seq: int | None = None
    crc: str | None = None  # "lo" | "hi" for received frames
    fields: dict[str, Any] | None = None
    raw: str | None = None  # frame hex
    event: str | None = (
        None  # connect | disconnect | login_refused | frame_error | server_start | ...
    )
    error: str | None = None
    peer: str | None = None  # remote address of the connection
    note: str | None = None  # e.g. "before login", "withheld"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def fields_match(values: Any, pattern: Any) -> bool:
    """Dicts match as subsets (recursively), anything else by equality."""
    if isinstance(pattern, dict):
        return isinstance(values, dict) and all(
            k in values and fields_match(values[k], v) for k, v in pattern.items()
        )
    if isinstance(pattern, (list, tuple)) and isinstance(values, (list, tuple)):
        return len(pattern) == len(values) and all(
            fields_match(a, b) for a, b in zip(values, pattern)
        )
    return bool(values == pattern)


Match = dict[str, Any] | Callable[[Record], bool] | None


def _type_of(value: int | str | None) -> int | str | None:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value, 0)
    return value


def record_matches(
    rec: Record,
    type: int | str | None = None,
    pile: str | None = None,
    direction: str | None = None,
    event: str | None = None,
    match: Match = None,
) -> bool:
    t = _type_of(type)
    if t is not None and rec.type != t and rec.name != t:
        return False
    if pile is not None and rec.pile != pile:
        return False
    if direction is not None and rec.direction != direction:
        return False
    if event is not None and rec.event != event:
        return False
    if match is None:
        return True
    if callable(match):
        return bool(match(rec))
    return fields_match(rec.fields, match)


@dataclass
class PileState:
    """What the peer knows about one pile code, across its connections."""

    pile: str
    connected: bool = False
    logged_in: bool = False
    peer: str | None = None
    connected_at: float | None = None
    last_rx: float | None = None
    connects: int = 0
    login: dict[str, Any] | None = None
    model: str | None = None  # id the pile reported in its last 0x05
    guns: dict[int, dict[str, Any]] = field(default_factory=dict)  # last 0x13 per gun

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["guns"] = {str(k): v for k, v in self.guns.items()}
        return out


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        addr = writer.get_extra_info("peername")
        self.peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        self.pile: str | None = None
        self.logged_in = False
        self.seq = 0  # platform-initiated frames count from 0 per connection
        self.lock = asyncio.Lock()
        self.closing = False

    def next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFF
        return seq


class YkcPeer:
    """The platform. `async with YkcPeer(port=0) as peer:` or start()/stop()."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, config: PeerConfig | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.config = config or PeerConfig()
        self.piles: dict[str, PileState] = {}
        self._records: deque[Record] = deque(maxlen=self.config.max_records)
        self._ids = itertools.count(1)
        self._last_id = 0
        self._waiters: list[tuple[Callable[[Record], bool], asyncio.Future[Record]]] = []
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._by_pile: dict[str, _Conn] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._trade_counter = itertools.count(1)

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def start(self) -> None:
        """Listen (again) on host:port; after a first start on port 0 the chosen port is kept."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_address=True,
            backlog=4096,   # a whole fleet dialling at once (asyncio's 100 drops SYNs: 1 s retries)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._add(None, None, event="server_start", note=f"{self.host}:{self.port}")
        log.info("YKC peer listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Close the listener and every connection, as a platform going down does."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._conns):
            conn.closing = True
            conn.writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
        self._add(None, None, event="server_stop")

    async def restart(self, down: float = 0.0) -> None:
        await self.stop()
        if down > 0:
            await asyncio.sleep(down)
        await self.start()

    # ---- records ------------------------------------------------------------------------------

    def mark(self) -> int:
        """Id of the newest record; pass it as `since` to see only what comes after."""
        return self._last_id

    def records(
        self,
        type: int | str | None = None,
        pile: str | None = None,
        since: int = 0,
        direction: str | None = None,
        event: str | None = None,
        match: Match = None,
        limit: int | None = None,
    ) -> list[Record]:
        out = []
        for rec in self._records:
            if rec.id > since and record_matches(rec, type, pile, direction, event, match):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def clear_records(self) -> None:
        self._records.clear()

    async def wait_for(
        self,
        type: int | str | None = None,
        pile: str | None = None,
        match: Match = None,
        timeout: float | None = 10.0,
        since: int | None = 0,
        direction: str | None = "in",
        event: str | None = None,
    ) -> Record:
        """First record matching, with id > since (None: only records yet to come); TimeoutError."""
        if event is not None and direction == "in":
            direction = None  # events have no direction
        if since is not None:
            found = self.records(type, pile, since, direction, event, match, limit=1)
            if found:
                return found[0]

        def pred(rec: Record) -> bool:
            return record_matches(rec, type, pile, direction, event, match)

        fut: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def _add(self, conn: _Conn | None, pile: str | None, **kw: Any) -> Record:
        self._last_id = next(self._ids)
        rec = Record(
            self._last_id,
            time.monotonic(),
            time.time(),
            pile,
            kw.pop("direction", None),
            peer=conn.peer if conn else None,
            **kw,
        )
        if self._records.maxlen != self.config.max_records:
            self._records = deque(self._records, maxlen=self.config.max_records)
        self._records.append(rec)
        for pred, fut in list(self._waiters):
            if not fut.done():
                try:
                    ok = pred(rec)
                except Exception as exc:  # noqa: BLE001 - a caller's match function must not break the server
                    fut.set_exception(exc)
                    continue
                if ok:
                    fut.set_result(rec)
        return rec

    # ---- the connection loop ------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = _Conn(reader, writer)
        self._conns.add(conn)
        self._add(conn, None, event="connect")
        errors: list[tuple[str, str]] = []
        frames = codec.FrameReader(lambda reason, detail: errors.append((reason, detail)))
        why = "closed by pile"
        try:
            while True:
                timeout = self.config.idle_timeout or None
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout)
                except TimeoutError:
                    why = f"idle for {timeout} s"
                    break
                if not data:
                    break
                for frame in frames.feed(data):
                    try:
                        await self._on_frame(conn, frame)
                    except (
                        ValueError,
                        KeyError,
                        TypeError,
                    ) as exc:  # e.g. a reply field out of range
                        self._add(
                            conn, conn.pile, event="error", error=f"0x{frame.type:02X}: {exc}"
                        )
                for reason, detail in errors:
                    self._add(conn, conn.pile, event="frame_error", error=f"{reason}: {detail}")
                errors.clear()
                if conn.closing:
                    why = "closed by platform"
                    break
        except asyncio.CancelledError:
            why = "platform stopped"
        except (ConnectionError, OSError) as exc:
            why = f"connection error: {exc}"
        except Exception as exc:  # never let one pile's bytes take the server down
            log.exception("YKC peer connection handler")
            why = f"internal error: {exc!r}"
        finally:
            self._conns.discard(conn)
            self._tasks.discard(task)
            writer.close()
            self._detach(conn)
            self._add(conn, conn.pile, event="disconnect", note=why)

    def _detach(self, conn: _Conn) -> None:
        if conn.pile and self._by_pile.get(conn.pile) is conn:
            del self._by_pile[conn.pile]
            state = self.piles.get(conn.pile)
            if state:
                state.connected = False
                state.logged_in = False

    async def _write(self, conn: _Conn, data: bytes) -> None:
        async with conn.lock:
            conn.writer.write(data)
            with contextlib.suppress(ConnectionError, OSError):
                await conn.writer.drain()

    async def _send(
        self,
        conn: _Conn,
        ftype: int,
        fields: dict[str, Any],
        seq: int | None = None,
        note: str | None = None,
    ) -> Record:
        if seq is None:
            seq = conn.next_seq()
        raw = codec.build(seq, ftype, fields, crc_high_first=self.config.crc_high_first)
        rec = self._add(
            conn,
            conn.pile or fields.get("pile"),
            direction="out",
            type=ftype,
            name=codec.MESSAGE_NAMES.get(ftype),
            seq=seq,
            crc="hi" if self.config.crc_high_first else "lo",
            fields=fields,
            raw=raw.hex(" ").upper(),
            note=note,
        )
        await self._write(conn, raw)
        return rec

    async def _on_frame(self, conn: _Conn, frame: codec.Frame) -> None:
        raw = codec.encode_frame(
            frame.seq, frame.type, frame.body, frame.enc, frame.crc_order == "hi"
        )
        fields: dict[str, Any] | None = None
        error = None
        if frame.enc != 0:
            error = f"encrypted body (ENC {frame.enc}) is not supported"
        else:
            try:
                fields = codec.decode_body(frame.type, frame.body)
            except ValueError as exc:
                error = str(exc)
        pile = conn.pile or (fields or {}).get("pile")
        note = None
        if frame.type != 0x01 and not conn.logged_in and self.config.strict_login:
            note = "before login"
        rec = self._add(
            conn,
            pile,
            direction="in",
            type=frame.type,
            name=codec.MESSAGE_NAMES.get(frame.type),
            seq=frame.seq,
            crc=frame.crc_order,
            fields=fields,
            raw=raw.hex(" ").upper(),
            error=error,
            note=note,
        )
        if pile and pile in self.piles:
            self.piles[pile].last_rx = rec.wall
        if fields is None or note:
            return
        handler = _HANDLERS.get(frame.type)
        if handler is not None:
            await handler(self, conn, frame, fields)

    # ---- automatic answers --------------------------------------------------------------------

    async def _login(self, conn: _Conn, frame: codec.Frame, f: dict[str, Any]) -> None:
        pile = f["pile"]
        cfg = self.config
        accept = cfg.login_accept and pile not in cfg.refuse_piles
        conn.pile = pile
        await self._send(conn, 0x02, {"pile": pile, "result": 0 if accept else 1}, frame.seq)
        if not accept:
            self._add(conn, pile, event="login_refused")
            if cfg.close_on_refuse:
                conn.closing = True
                conn.writer.close()
            return
        old = self._by_pile.get(pile)
        if old is not None and old is not conn:
            old.closing = True
            old.writer.close()
            self._add(old, pile, event="replaced", note=f"new connection from {conn.peer}")
        conn.logged_in = True
        self._by_pile[pile] = conn
        state = self.piles.setdefault(pile, PileState(pile))
        state.connected = True
        state.logged_in = True
        state.peer = conn.peer
        state.connected_at = time.time()
        state.last_rx = state.connected_at
        state.connects += 1
        state.login = f
        if cfg.time_sync_on_login:
            await self.time_sync(pile)

    async def _heartbeat(self, conn: _Conn, frame: codec.Frame, f: dict[str, Any]) -> None:
        if self.config.answer_heartbeat:
            await self._send(
                conn, 0x04, {"pile": f["pile"], "gun": f["gun"], "state": 0}, frame.seq
            )

    async def _billing_check(self, conn: _Conn, frame: codec.Frame, f: dict[str, Any]) -> None:
        state = self.piles.get(f["pile"])
        if state:
            state.model = f["model"]
        same = f["model"] == self.config.billing.model
        reply = {"pile": f["pile"], "model": f["model"], "result": 0 if same else 1}
        await self._send(conn, 0x06, reply, frame.seq)

    async def _billing_request(self, conn: _Conn, frame: codec.Frame, f: dict[str, Any]) -> None:
        await self._send(conn, 0x0A, self.config.billing.fields(f["pile"]), frame.seq)

    async def _realtime(self, conn: _Conn, frame: codec.Frame, f: dict[str, Any]) -> None:
        state = self.piles.get(f["pile"])
        if state:
            state.guns[f["gun"]] = f

    async def _record(self, conn: _Conn, frame: codec.Frame, f: dict[str, Any]) -> None:
        cfg = self.config
        if not cfg.confirm_records:
            self._add(conn, conn.pile, event="record_withheld", note=f["trade"])
            return
        if cfg.drop_records > 0:
            cfg.drop_records -= 1
            self._add(conn, conn.pile, event="record_withheld", note=f["trade"])
            return
        await self._send(conn, 0x40, {"trade": f["trade"], "result": cfg.record_result}, frame.seq)

    async def _card_start(self, conn: _Conn, frame: codec.Frame, f: dict[str, Any]) -> None:
        cfg = self.config
        card = f["card"]
        logical = card if card.isdigit() else f"{int(card, 16) % 10**16:016d}"
        reply = {
            "trade": self.new_trade(f["pile"], f["gun"]),
            "pile": f["pile"],
            "gun": f["gun"],
            "logical": logical,
            "balance": cfg.card_balance,
            "result": cfg.card_result,
            "reason": cfg.card_reason,
        }
        await self._send(conn, 0x32, reply, frame.seq)

    # ---- commands -----------------------------------------------------------------------------

    def conn_of(self, pile: str) -> _Conn:
        conn = self._by_pile.get(pile)
        if conn is None or conn.closing:
            raise PeerError(f"pile {pile} is not connected")
        return conn

    def new_trade(self, pile: str, gun: int, when: dt.datetime | None = None) -> str:
        """pile(14) + gun(2) + yyMMddHHmmss + counter(4): the platform's trade-number rule (§2)."""
        when = when or dt.datetime.now()
        return f"{pile}{gun:02d}{when:%y%m%d%H%M%S}{next(self._trade_counter) % 10000:04d}"

    async def send(
        self, pile: str, ftype: int, fields: dict[str, Any] | None = None, seq: int | None = None
    ) -> Record:
        """Send any frame to a connected pile; fields default to {"pile": pile}."""
        body = {"pile": pile, **(fields or {})}
        if ftype not in codec.BODIES:
            raise ValueError(f"unknown frame type 0x{ftype:02X}")
        return await self._send(self.conn_of(pile), ftype, body, seq)

    async def request(
        self,
        pile: str,
        ftype: int,
        fields: dict[str, Any] | None = None,
        timeout: float = 10.0,
        match: Match = None,
    ) -> tuple[Record, Record]:
        """Send a command and wait for the pile's answer (by type, from that pile, after sending)."""
        mark = self.mark()
        sent = await self.send(pile, ftype, fields)
        reply = await self.wait_for(
            REPLY_TYPE[ftype], pile=pile, since=mark, timeout=timeout, match=match
        )
        return sent, reply

    async def remote_start(
        self,
        pile: str,
        gun: int = 1,
        trade: str | None = None,
        logical: str | None = None,
        card: str | None = None,
        balance: int = 100000,
    ) -> Record:
        """0x34. Defaults follow JCPP: both card fields are the trade number's last 16 digits."""
        trade = trade or self.new_trade(pile, gun)
        fields = {
            "trade": trade,
            "gun": gun,
            "logical": logical if logical is not None else trade[-16:],
            "card": card if card is not None else trade[-16:],
            "balance": balance,
        }
        return await self.send(pile, 0x34, fields)

    async def remote_stop(self, pile: str, gun: int = 1) -> Record:
        return await self.send(pile, 0x36, {"gun": gun})

    async def reboot(self, pile: str, control: int = 1) -> Record:
        """0x92: control 1 now, 2 when idle."""
        return await self.send(pile, 0x92, {"control": control})

    async def time_sync(self, pile: str, when: dt.datetime | list[int] | None = None) -> Record:
        if when is None:
            when = dt.datetime.now()
        value = codec.cp56_from_datetime(when) if isinstance(when, dt.datetime) else list(when)
        return await self.send(pile, 0x56, {"time": value})

    async def push_billing(self, pile: str, model: BillingModel | None = None) -> Record:
        """0x58 with the given model (default: the configured one; it does not change the config)."""
        return await self.send(pile, 0x58, (model or self.config.billing).fields(pile))

    async def set_params(self, pile: str, disabled: int = 0, max_power: int = 100) -> Record:
        """0x52: disabled 0 allowed / 1 disabled, max power 30-100 %."""
        return await self.send(pile, 0x52, {"disabled": disabled, "max_power": max_power})

    async def read_realtime(self, pile: str, gun: int = 1) -> Record:
        return await self.send(pile, 0x12, {"gun": gun})

    async def update_balance(self, pile: str, gun: int, card: str, balance: int) -> Record:
        """0x42: new balance in 0.01 yuan for the physical card of the running session."""
        return await self.send(pile, 0x42, {"gun": gun, "card": card, "balance": balance})

    async def card_sync(self, pile: str, cards: list[tuple[str, str]]) -> Record:
        """0x44: up to 15 (logical, physical) pairs."""
        return await self.send(pile, 0x44, {"cards": [list(c) for c in cards]})

    async def card_clear(self, pile: str, cards: list[str]) -> Record:
        return await self.send(pile, 0x46, {"cards": list(cards)})

    async def card_query(self, pile: str, cards: list[str]) -> Record:
        return await self.send(pile, 0x48, {"cards": list(cards)})

    async def disconnect(self, pile: str) -> None:
        """Drop the pile's link from the platform side."""
        conn = self.conn_of(pile)
        conn.closing = True
        conn.writer.close()


Handler = Callable[[YkcPeer, _Conn, codec.Frame, dict[str, Any]], Any]
_HANDLERS: dict[int, Handler] = {
    0x01: YkcPeer._login,
    0x03: YkcPeer._heartbeat,
    0x05: YkcPeer._billing_check,
    0x09: YkcPeer._billing_request,
    0x13: YkcPeer._realtime,
    0x31: YkcPeer._card_start,
    0x3B: YkcPeer._record,
}
