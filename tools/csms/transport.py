"""The connection given to the `ocpp` ChargePoint: records each frame, correlates replies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from ocpp.messages import CallError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .errors import NotConnected
from .frames import CALL, CALLERROR, CALLRESULT, INVALID, MALFORMED_CODE, Frame, parse
from .records import Record, RecordStore
from .stats import CallStats

_LATE_CAP = 256  # ids of timed-out calls remembered, to name late replies
_IN_CAP = 64  # unanswered incoming calls remembered (the library answers them one at a time)


@dataclass(slots=True)
class _Pending:
    """A CALL sent to the charger, waiting for its CALLRESULT/CALLERROR."""

    action: str | None
    sent: float  # monotonic time it went out; 0 until then
    route: bool  # the library's ChargePoint.call() awaits this reply
    future: asyncio.Future[Record] | None


@dataclass(slots=True)
class Incoming:
    text: str
    record: Record
    route: bool  # hand to ChargePoint.route_message
    answer: str | None  # a CALLERROR to send back for a malformed frame


class RecordingConnection:
    """`send()` is what the library calls; the CSMS reads with `receive()` and routes itself."""

    def __init__(
        self,
        ws: ServerConnection,
        cp_id: str,
        store: RecordStore,
        stats: CallStats,
        deliberate_error: Callable[[str | None, str | None], bool],
    ) -> None:
        self.ws = ws
        self.cp_id = cp_id
        self._store = store
        self._stats = stats
        self._deliberate_error = deliberate_error
        self._pending: dict[str, _Pending] = {}
        self._late: dict[str, str | None] = {}
        self._in_calls: dict[str, Record] = {}
        self.last_in: Record | None = None
        self._tolerate_until = 0.0  # monotonic; see tolerate_unknown_replies

    # -- replies the CSMS waits for --------------------------------------------------------------

    def expect(self, message_id: str, *, route: bool) -> asyncio.Future[Record]:
        """Register before sending the CALL `message_id`; the future gets the reply's record."""
        future: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = _Pending(None, 0.0, route, future)
        return future

    def forget(self, message_id: str) -> None:
        """Stop waiting (timeout, failure); a later reply is recorded as late and not routed."""
        pending = self._pending.pop(message_id, None)
        if pending is None:
            return
        if pending.future is not None and not pending.future.done():
            pending.future.cancel()
        if pending.sent:
            self._late[message_id] = pending.action
            if len(self._late) > _LATE_CAP:
                del self._late[next(iter(self._late))]

    def tolerate_unknown_replies(self, seconds: float) -> None:
        """For a while a reply with an unknown id is no violation (it may answer raw garbage)."""
        self._tolerate_until = max(self._tolerate_until, time.monotonic() + seconds)

    def closed(self) -> None:
        """The websocket is gone: fail everything still waiting."""
        for pending in self._pending.values():
            if pending.future is not None and not pending.future.done():
                pending.future.set_exception(NotConnected(self.cp_id))
                pending.future.exception()  # retrieved: nobody may be waiting any more
        self._pending.clear()

    # -- outgoing --------------------------------------------------------------------------------

    async def send(self, text: str) -> None:
        frame = parse(text)
        rec = self._record_out(text, frame)
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            rec.error = "not sent: connection closed"
            raise

    def _record_out(self, text: str, frame: Frame) -> Record:
        action, error, violation = frame.action, frame.error, False
        message_id = frame.message_id
        pending = None
        if frame.type in (CALLRESULT, CALLERROR):
            answered = self._in_calls.pop(message_id, None) if message_id is not None else None
            if answered is not None:
                action = answered.action
                if frame.type == CALLERROR:
                    answered.error = f"answered {frame.error_code}: {frame.error}"
                    violation = not self._deliberate_error(action, frame.error_code)
        elif message_id is not None:
            pending = self._pending.get(message_id)
            if pending is None and frame.type == CALL:
                pending = self._pending[message_id] = _Pending(None, 0.0, False, None)
            if frame.type == CALL:
                self._stats.calls += 1
        rec = self._store.add(
            self.cp_id, "out", frame.type, message_id=message_id, action=action,
            payload=frame.payload, error_code=frame.error_code, error=error, raw=text,
            violation=violation,
        )  # fmt: skip
        if pending is not None:
            pending.action, pending.sent = action, rec.mono
        return rec

    # -- incoming --------------------------------------------------------------------------------

    async def receive(self) -> Incoming:
        data = await self.ws.recv()
        if isinstance(data, str):
            text, frame = data, parse(data)
        else:
            text = data.decode("utf-8", "replace")
            frame = Frame(INVALID, error="binary websocket frame (OCPP-J uses text frames)")
        incoming = self._receive(text, frame)
        self.last_in = incoming.record
        return incoming

    def _receive(self, text: str, frame: Frame) -> Incoming:
        store, cp_id = self._store, self.cp_id
        if frame.type == CALL:
            rec = store.add(
                cp_id, "in", CALL, message_id=frame.message_id, action=frame.action,
                payload=frame.payload, raw=text,
            )  # fmt: skip
            assert frame.message_id is not None
            self._in_calls[frame.message_id] = rec
            if len(self._in_calls) > _IN_CAP:
                del self._in_calls[next(iter(self._in_calls))]
            return Incoming(text, rec, True, None)
        if frame.type == INVALID:
            rec = store.add(
                cp_id, "in", INVALID, message_id=frame.message_id, action=frame.action,
                payload=frame.payload, error=frame.error, raw=text, violation=True,
            )  # fmt: skip
            answer = None
            if frame.answerable and frame.message_id is not None:
                answer = CallError(
                    frame.message_id, MALFORMED_CODE, frame.error or "", {}
                ).to_json()
            return Incoming(text, rec, False, answer)
        return self._receive_reply(text, frame)

    def _receive_reply(self, text: str, frame: Frame) -> Incoming:
        assert frame.message_id is not None
        pending = self._pending.pop(frame.message_id, None)
        error, violation, action = frame.error, False, None
        if pending is not None:
            action = pending.action
        elif frame.message_id in self._late:
            action = self._late.pop(frame.message_id)
            error = f"late reply (after the CSMS gave up){': ' + error if error else ''}"
        elif time.monotonic() < self._tolerate_until:
            error = "reply to an unknown message id (while send_raw waited)"
        else:
            error, violation = "reply to an unknown message id", True
        rec = self._store.add(
            self.cp_id, "in", frame.type, message_id=frame.message_id, action=action,
            payload=frame.payload, error_code=frame.error_code, error=error, raw=text,
            violation=violation,
        )  # fmt: skip
        if pending is None:
            return Incoming(text, rec, False, None)
        if pending.sent:
            self._stats.rtts.append(rec.mono - pending.sent)
        if pending.future is not None and not pending.future.done():
            pending.future.set_result(rec)
        return Incoming(text, rec, pending.route, None)
