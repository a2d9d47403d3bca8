# OCPP-J RPC over a WebSocket: CALL / CALLRESULT / CALLERROR frames, one outstanding CALL at a
# time, message-id correlation, a call timeout, and routing of the back-end's CALLs to handlers.
import asyncio
import json
import os
import time
from micropython import const
import bus
import log
from proto import validate
from timedevent import TimedEvent

_CALL = const(2)
_RESULT = const(3)
_ERROR = const(4)
_MAX_ID = const(36)


CallError = validate.CallError


class CallTimeout(Exception):
    pass


class NotConnected(Exception):
    pass


class Rpc:
    def __init__(self, routes, specs, ctx, timeout_ms=30000):
        self.routes = routes        # action -> handler(ctx, payload) -> payload or (payload, after)
        self.specs = specs          # proto.validate specs of every action the protocol defines
        self.ctx = ctx
        self.timeout_ms = timeout_ms
        self.ws = None
        self._lock = asyncio.Lock()
        self._waiting = None        # message id of our outstanding CALL
        self._on_result = None
        self._reply = None
        self._got = TimedEvent()   # one per CALL: asyncio.wait_for cost ~1 KB and many passes each
        self._n = 0
        self._prefix = "%x" % (int.from_bytes(os.urandom(3), "little"))  # ids differ across boots
        self.sent = 0
        self.received = 0
        self.last_rtt_ms = 0

    def connected(self):
        return self.ws is not None

    def _next_id(self):
        self._n += 1
        return "%s-%d" % (self._prefix, self._n)

    def _send(self, frame):
        # Returns the send's coroutine (awaited by the caller: no coroutine of its own per frame).
        text = frame if isinstance(frame, str) else json.dumps(frame)
        ws = self.ws
        if ws is None:
            raise NotConnected()
        if bus.wants("proto"):
            bus.emit("proto", {"dir": "tx", "text": text})
        self.sent += 1
        return ws.send(text)

    async def call(self, action, payload, timeout_ms=None, on_result=None):
        # Send a CALL and wait for its answer; only one is outstanding at any time (OCPP-J 4.1.1).
        # payload is a dict, or its JSON text when the caller built it already.
        # on_result(payload) runs inside the reader, before the next frame is handled: state the
        # answer creates (a transaction id) exists before the back-end's next CALL can use it.
        # acquire() and release() rather than `async with`: two coroutines less per CALL
        await self._lock.acquire()
        try:
            if self.ws is None:
                raise NotConnected()
            mid = self._next_id()
            self._waiting = mid
            self._on_result = on_result
            self._reply = None
            self._got.clear()
            t0 = time.ticks_ms()
            try:
                if isinstance(payload, str):   # already JSON (hot paths build it by template)
                    await self._send('[2,"%s","%s",%s]' % (mid, action, payload))
                else:
                    await self._send([_CALL, mid, action, payload])
                if not await self._got.wait_ms(timeout_ms or self.timeout_ms):
                    raise CallTimeout("%s %s got no answer" % (action, mid))
            except OSError as e:
                raise NotConnected(str(e))
            finally:
                self._waiting = None
                self._on_result = None
            self.last_rtt_ms = time.ticks_diff(time.ticks_ms(), t0)
            r = self._reply
            if r is None:
                raise NotConnected("link lost during " + action)
            if r[0] == _ERROR:
                raise CallError(r[2], r[3] if len(r) > 3 else "", r[4] if len(r) > 4 else None)
            return r[2]
        finally:
            self._lock.release()

    def drop(self):
        # The link is gone: release a caller waiting for an answer that will never come.
        self.ws = None
        if self._waiting is not None and self._reply is None:
            self._got.set()   # an answer already received stays: the caller must still see it

    async def serve(self, ws):
        # Read frames until the link closes; every frame is handled, nothing escapes as a crash.
        while True:
            text = await ws.recv()
            self.received += 1
            if not isinstance(text, str):
                log.warn("rpc", "binary frame ignored")
                continue
            if bus.wants("proto"):
                bus.emit("proto", {"dir": "rx", "text": text})
            try:
                await self._frame(text)
            except OSError:
                raise
            except Exception as e:
                log.exc("rpc", e, "frame")

    async def _frame(self, text):
        try:
            msg = json.loads(text)
        except ValueError:
            log.warn("rpc", "not JSON, dropped: %s" % text[:80])
            return
        if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
            log.warn("rpc", "not an OCPP-J frame, dropped: %s" % text[:80])
            return
        kind, mid = msg[0], msg[1]
        if kind == _CALL:
            await self._incoming_call(msg, mid)
        elif kind in (_RESULT, _ERROR):
            if mid == self._waiting and self._reply is None:
                if kind == _RESULT and (len(msg) != 3 or not isinstance(msg[2], dict)):
                    msg = [_ERROR, mid, "FormationViolation", "malformed CALLRESULT"]
                self._reply = msg
                self._got.set()
                if kind == _RESULT and self._on_result is not None:
                    try:
                        self._on_result(msg[2])
                    except Exception as e:
                        log.exc("rpc", e, "result")
            else:
                log.warn("rpc", "answer to unknown message id %s dropped" % mid)
        else:
            await self._send_error(mid, "FormationViolation", "unknown message type %r" % (kind,))

    async def _incoming_call(self, msg, mid):
        if len(mid) > _MAX_ID:
            await self._send_error(mid[:_MAX_ID], "FormationViolation", "message id longer than 36")
            return
        if len(msg) != 4 or not isinstance(msg[2], str):
            await self._send_error(mid, "FormationViolation", "CALL needs [2, id, action, payload]")
            return
        action, payload = msg[2], msg[3]
        after = None
        try:
            handler = self.routes.get(action)
            if handler is None:
                if action not in self.specs.actions:
                    raise CallError("NotImplemented", "unknown action " + action)
                raise CallError("NotSupported", action + " is not supported")
            validate.check(self.specs, action, payload)
            result = handler(self.ctx, payload)
            if isinstance(result, tuple):
                result, after = result
        except CallError as e:
            log.warn("rpc", "%s refused: %s %s" % (action, e.code, e.description))
            await self._send_error(mid, e.code, e.description, e.details)
            return
        except Exception as e:
            log.exc("rpc", e, action)
            await self._send_error(mid, "InternalError", "%s: %s" % (type(e).__name__, e))
            return
        await self._send([_RESULT, mid, result])
        if after is not None:
            asyncio.create_task(_run_after(action, after))

    async def _send_error(self, mid, code, description="", details=None):
        await self._send([_ERROR, mid, code, description[:255], details or {}])


async def _run_after(action, after):
    # Effects that must follow the answer (start charging after accepting a remote start...).
    try:
        r = after()
        if hasattr(r, "send"):
            await r
    except Exception as e:
        log.exc("rpc", e, action + " after")
