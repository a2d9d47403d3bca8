"""Bounded record of every OCPP frame and connection event, indexed per charger, with waiters."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from .frames import EVENT

FIELDS = (
    "seq mono wall cp_id direction type message_id action payload "
    "error_code error event raw violation"
).split()


@dataclass(slots=True)
class Record:
    """One frame ("in" from the charger, "out" to it) or connection event (type EVENT)."""

    seq: int
    mono: float  # time.monotonic()
    wall: float  # time.time()
    cp_id: str
    direction: str | None  # "in" | "out"; None for events
    type: str  # CALL | CALLRESULT | CALLERROR | INVALID | EVENT
    message_id: str | None = None
    action: str | None = None  # also on results/errors, by correlating the message id
    payload: Any = None  # CALLERROR: errorDetails; EVENT: details (close code, status...)
    error_code: str | None = None  # CALLERROR code
    error: str | None = None  # CALLERROR description, or what was wrong with the frame
    event: str | None = None  # EVENT: connect | disconnect | auth_failed | refused | ...
    raw: str | None = None  # the frame text exactly as on the wire
    violation: bool = False  # the charger broke OCPP-J / the schemas here

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    @property
    def topic(self) -> str | None:
        return "@" + self.event if self.type == EVENT and self.event else self.action


assert [f.name for f in fields(Record)] == FIELDS


def payload_matches(payload: Any, pattern: Any) -> bool:
    """Objects match as subsets, a pattern list needs each item matched by some item, else ==."""
    if isinstance(pattern, dict):
        return isinstance(payload, dict) and all(
            key in payload and payload_matches(payload[key], value)
            for key, value in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(payload, list) and all(
            any(payload_matches(item, want) for item in payload) for want in pattern
        )
    return bool(payload == pattern)


@dataclass(frozen=True, slots=True)
class Filter:
    cp_id: str | None = None
    action: str | None = None
    direction: str | None = None  # ignored for events
    type: str | None = None
    event: str | None = None
    message_id: str | None = None
    match: dict[str, Any] | None = None
    where: Callable[[Record], bool] | None = None

    @property
    def topic(self) -> str | None:
        return (
            self.action if self.action is not None else ("@" + self.event if self.event else None)
        )

    def matches(self, rec: Record) -> bool:
        if self.cp_id is not None and rec.cp_id != self.cp_id:
            return False
        if self.action is not None and rec.action != self.action:
            return False
        if self.event is not None and rec.event != self.event:
            return False
        if self.type is not None and rec.type != self.type:
            return False
        if self.direction is not None and rec.type != EVENT and rec.direction != self.direction:
            return False
        if self.message_id is not None and rec.message_id != self.message_id:
            return False
        if self.match is not None and not payload_matches(rec.payload, self.match):
            return False
        return self.where is None or self.where(rec)


@dataclass(slots=True)
class _Waiter:
    filter: Filter
    future: asyncio.Future[Record]


def _after(records: deque[Record], since: int) -> Iterator[Record]:
    """Records with seq > since, oldest first, touching only those (scans from the newest end)."""
    if not records or records[-1].seq <= since:
        return iter(())
    if records[0].seq > since:
        return iter(records)
    tail: list[Record] = []
    for rec in reversed(records):
        if rec.seq <= since:
            break
        tail.append(rec)
    tail.reverse()
    return iter(tail)


Sink = Callable[[Record], None]


class RecordStore:
    """Every record in arrival order, capped; per-charger index; waiters keyed by (cp id, topic)."""

    def __init__(self, cap: int = 100_000, violations_cap: int = 1_000) -> None:
        self.cap = max(1, cap)
        self._all: deque[Record] = deque()
        self._by_cp: dict[str, deque[Record]] = {}
        self._violations: deque[Record] = deque(maxlen=violations_cap)
        self._waiters: dict[tuple[str | None, str | None], list[_Waiter]] = {}
        self._seq = 0
        self.dropped = 0
        self.violation_count = 0
        self.counts: Counter[tuple[str | None, str | None, str]] = Counter()  # (topic, dir, type)
        self.sinks: list[Sink] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def first_seq(self) -> int:
        return self._all[0].seq if self._all else self._seq + 1

    def __len__(self) -> int:
        return len(self._all)

    # -- hot path --------------------------------------------------------------------------------

    def add(
        self,
        cp_id: str,
        direction: str | None,
        type: str,
        *,
        message_id: str | None = None,
        action: str | None = None,
        payload: Any = None,
        error_code: str | None = None,
        error: str | None = None,
        event: str | None = None,
        raw: str | None = None,
        violation: bool = False,
    ) -> Record:
        self._seq += 1
        rec = Record(
            self._seq, time.monotonic(), time.time(), cp_id, direction, type,
            message_id, action, payload, error_code, error, event, raw, violation,
        )  # fmt: skip
        if len(self._all) >= self.cap:
            self._evict()
        self._all.append(rec)
        per_cp = self._by_cp.get(cp_id)
        if per_cp is None:
            per_cp = self._by_cp[cp_id] = deque()
        per_cp.append(rec)
        self.counts[(rec.topic, direction, type)] += 1
        if violation:
            self._violations.append(rec)
            self.violation_count += 1
        for sink in self.sinks:
            sink(rec)
        if self._waiters:
            self._wake(rec)
        return rec

    def flag(self, rec: Record, error: str) -> None:
        """Mark a stored record as a violation found later (e.g. a reply failing its schema)."""
        rec.error = error
        if not rec.violation:
            rec.violation = True
            self._violations.append(rec)
            self.violation_count += 1

    def _evict(self) -> None:
        old = self._all.popleft()
        self.dropped += 1
        per_cp = self._by_cp[old.cp_id]
        per_cp.popleft()  # the oldest of a charger is the oldest overall among its records
        if not per_cp:
            del self._by_cp[old.cp_id]

    def _wake(self, rec: Record) -> None:
        topic = rec.topic
        keys: Iterable[tuple[str | None, str | None]] = (
            ((rec.cp_id, topic), (rec.cp_id, None), (None, topic), (None, None))
            if topic is not None
            else ((rec.cp_id, None), (None, None))
        )
        for key in keys:
            waiters = self._waiters.get(key)
            if waiters:
                for waiter in waiters:
                    if waiter.future.done():
                        continue
                    try:
                        matched = waiter.filter.matches(rec)
                    except Exception as exc:  # a caller's `where`: its error is the caller's
                        waiter.future.set_exception(exc)
                        continue
                    if matched:
                        waiter.future.set_result(rec)

    # -- queries ---------------------------------------------------------------------------------

    def _source(self, cp_id: str | None) -> deque[Record]:
        if cp_id is None:
            return self._all
        return self._by_cp.get(cp_id) or deque()

    def query(self, flt: Filter, since: int = 0, limit: int | None = None) -> list[Record]:
        """Matching records with seq > since, oldest first, at most `limit`."""
        out: list[Record] = []
        for rec in _after(self._source(flt.cp_id), since):
            if flt.matches(rec):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def tail(self, flt: Filter, count: int) -> list[Record]:
        """The newest `count` matching records, oldest first."""
        out: list[Record] = []
        for rec in reversed(self._source(flt.cp_id)):
            if len(out) >= count:
                break
            if flt.matches(rec):
                out.append(rec)
        out.reverse()
        return out

    def violations(self, cp_id: str | None = None) -> list[Record]:
        return [r for r in self._violations if cp_id is None or r.cp_id == cp_id]

    async def wait_for(
        self, flt: Filter, since: int | None = 0, timeout: float | None = 10.0
    ) -> Record:
        """First matching record with seq > since (None: only records yet to come)."""
        if since is not None:
            found = self.query(flt, since, limit=1)
            if found:
                return found[0]
        future: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(flt, future)
        key = (flt.cp_id, flt.topic)
        self._waiters.setdefault(key, []).append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(f"no record matching {flt} within {timeout}s") from None
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[key]

    def waiter_count(self) -> int:
        return sum(len(w) for w in self._waiters.values())
