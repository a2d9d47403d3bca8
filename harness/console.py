"""The harness end of one charger's console: machine requests and replies, events, the text log,
and the optional bridge to a user's pseudo-terminal. One non-blocking fd on the supervisor's loop."""

from __future__ import annotations

import asyncio
import collections
import errno
import json
import os
from collections.abc import Callable
from typing import Any

RS = b"\x1e"  # starts a machine record (docs/architecture.md, "Console (serial) protocol")
_READ = 65536
_MAX_LINE = 1 << 20


class ConsoleError(Exception):
    """A console request failed: the firmware answered with an error, timed out, or is gone."""


class ConsoleTimeout(ConsoleError):
    """No answer in time (the firmware is busy, rebooting, or its console is in raw REPL mode)."""


def record_line(rec: dict[str, Any]) -> str:
    """A console event record as one line of a log: a log record as the firmware prints it
    ("I conn1: ..."), any other event as "* kind key=value ..." (status changes and transactions
    have no log line of their own: their event is the record)."""
    kind = rec.get("ev")
    if kind == "log":
        return f"{str(rec.get('lvl', '?'))[:1].upper()} {rec.get('tag')}: {rec.get('msg')}"
    fields = [f"{k}={_field(v)}" for k, v in rec.items() if k != "ev"]   # in the firmware's order
    return f"* {kind} {' '.join(fields)}" if fields else f"* {kind}"


def _field(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


EventSink = Callable[[dict[str, Any]], None]
TextSink = Callable[[bytes], None]


class ConsoleLink:
    def __init__(self, name: str, on_event: EventSink | None = None, on_text: TextSink | None = None,
                 ring: int = 200) -> None:
        self.name = name
        self.on_event = on_event
        self.on_text = on_text
        # Recent console text, and event records as they came (JSON bytes: as small as text, and
        # made text only when someone reads them).
        self.tail: collections.deque[str | bytes] = collections.deque(maxlen=ring)
        self.fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buf = b""
        self._out = bytearray()
        self._writing = False
        self._scheduled = False
        self._next_id = 0
        self.framed = False   # the firmware takes length-prefixed requests ("frames on")
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.bridge: Callable[[bytes], None] | None = None  # user pty: gets every non-record byte
        self.rx_bytes = 0
        self.closed = asyncio.Event()

    # -- fd lifecycle --------------------------------------------------------------------------

    def attach(self, fd: int) -> None:
        """Start reading the harness's end of the console (the instance holds the other end)."""
        self.detach()
        os.set_blocking(fd, False)
        self.fd = fd
        self.framed = False   # a new firmware process: lines until it says it takes frames
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._readable)
        self.closed.clear()

    def detach(self) -> None:
        if self.fd is None:
            return
        assert self._loop is not None
        self._loop.remove_reader(self.fd)
        if self._writing:
            self._loop.remove_writer(self.fd)
            self._writing = False
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = None
        self._out.clear()
        self._buf = b""
        self.fail_waiting("console closed")
        self.closed.set()

    def fail_waiting(self, why: str) -> None:
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ConsoleError(f"{self.name}: {why}"))
        self._waiting.clear()

    # -- input from the firmware ---------------------------------------------------------------

    def _readable(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, _READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.detach()
            return
        self.rx_bytes += len(data)
        self.feed(data)

    def feed(self, data: bytes) -> None:
        buf = self._buf + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._line(buf[start : nl + 1])
            start = nl + 1
        rest = buf[start:]
        if rest and RS not in rest:
            # A partial text line (a prompt, an mpremote frame): pass it on now, keep nothing.
            self._text(rest)
            rest = b""
        elif len(rest) > _MAX_LINE:
            rest = b""
        self._buf = rest

    def _line(self, line: bytes) -> None:
        i = line.find(RS)
        if i > 0:  # a record right after a prompt or echo on the same line
            self._text(line[:i])
            line = line[i:]
        if line.startswith(RS):
            try:
                rec = json.loads(line[1:].decode("utf-8", "replace"))
            except ValueError:
                self._text(line)
                return
            if isinstance(rec, dict):
                self._record(rec, line)
            return
        self._text(line)

    def _record(self, rec: dict[str, Any], raw: bytes) -> None:
        if "ev" in rec:
            if rec["ev"] != "proto":   # captures are not the log
                self.tail.append(raw)   # made text only when read
            if self.on_event is not None:
                self.on_event(rec)
            return
        rid = rec.get("id")
        fut = self._waiting.pop(rid, None) if isinstance(rid, int) else None
        if fut is None or fut.done():
            return
        if rec.get("ok"):
            fut.set_result(rec.get("data"))
        else:
            fut.set_exception(ConsoleError(f"{self.name}: {rec.get('error')}"))

    def _text(self, data: bytes) -> None:
        if self.bridge is not None:
            self.bridge(data)
        text = data.decode("utf-8", "replace").strip("\r\n")
        if text:
            self.tail.append(text)
        if self.on_text is not None:
            self.on_text(data)

    def recent(self, n: int = 0) -> list[str]:
        """The last n lines (0: all kept) of the console's log: text as it came, records as
        record_line() shows them."""
        return [x if isinstance(x, str) else record_line(json.loads(x.strip().lstrip(RS)))
                for x in list(self.tail)[-n:]]

    # -- output to the firmware ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the console; never blocks the loop."""
        if self.fd is None:
            raise ConsoleError(f"{self.name}: console not connected")
        self._out += data
        if not self._scheduled and not self._writing:
            # Requests made in the same loop turn leave in one write (one wake-up of the
            # firmware instead of one per request).
            assert self._loop is not None
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self.fd is None or self._loop is None:
            return
        while self._out:
            try:
                n = os.write(self.fd, self._out)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                    self._out.clear()
                    return
                raise
            del self._out[:n]
        if self._out and not self._writing:
            self._loop.add_writer(self.fd, self._flush)
            self._writing = True
        elif not self._out and self._writing:
            self._loop.remove_writer(self.fd)
            self._writing = False

    def send(self, cmd: str, *args: Any) -> asyncio.Future[Any]:
        """Send a machine request; the future resolves with the reply's data."""
        assert self._loop is not None
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._waiting[rid] = fut
        req = {"id": rid, "cmd": cmd, "args": list(args)} if args else {"id": rid, "cmd": cmd}
        body = json.dumps(req, separators=(",", ":")).encode()
        try:
            if self.framed and len(body) <= 4096:
                # One exact read on the firmware side instead of a poll and a read per byte.
                self.write(b"\x1f\x1e%04x" % len(body) + body)
            else:
                self.write(RS + body + b"\r\n")
        except ConsoleError as e:
            self._waiting.pop(rid, None)
            fut.set_exception(e)
        return fut

    def notify(self, cmd: str, *args: Any) -> asyncio.Future[Any]:
        """A request whose answer nobody awaits (its failure is fine: the process may be gone)."""
        fut = self.send(cmd, *args)
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        return fut

    async def request(self, cmd: str, *args: Any, timeout: float = 10.0) -> Any:
        fut = self.send(cmd, *args)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise ConsoleTimeout(f"{self.name}: no answer to {cmd!r} within {timeout:g} s") from None
