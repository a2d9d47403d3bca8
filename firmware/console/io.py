# Console byte I/O on asyncio: input one byte per read (a bigger read on a blocking fd stalls the
# whole loop), output as bytes with explicit \r\n, app output held back while raw mode is active.
import sys
import select
import asyncio
from micropython import const

_BATCH = const(256)  # bytes taken per wake-up before the other tasks get a turn
_POLLIN = const(1)  # select.POLLIN, inlined: read() tests it once per byte
_HOLD = const(32)  # app writes kept while mpremote owns the console; older ones are dropped
_FS = const(0x1F)  # starts a framed request (harness only, see _frame)
_FRAME_MAX = const(4096)


def _frames_at_start():
    # A harness launching this image on the unix board says so in the environment (EVFW_FRAMES),
    # and its first requests come framed; otherwise its "frames on" request switches them on.
    try:
        import os

        return bool(os.getenv("EVFW_FRAMES"))
    except (ImportError, AttributeError):   # a board without os.getenv (ESP32)
        return False


def crlf(text):
    # Text as console bytes, every line ending in \r\n (the unix port writes \n as is, and a raw
    # tty does no ONLCR).
    if "\n" in text:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return (text + "\r\n").encode()


class ConsoleIO:
    # One console byte stream (a UART, a pty or a socket on fds 0/1); the firmware cannot tell.
    def __init__(self, sin=None, sout=None):
        self.sin = sin or sys.stdin.buffer
        self.sout = sout or sys.stdout.buffer
        self._stream = asyncio.StreamReader(self.sin)
        self._poll = select.poll()
        self._poll.register(self.sin, select.POLLIN)
        self._one = bytearray(1)
        self._buf = bytearray(_BATCH)
        self._mv = memoryview(self._buf)
        self.hold = False  # True while raw mode is active: write() keeps, put() still writes
        self._held = []
        self.dropped = 0  # held writes lost because the hold list was full
        self.lost = 0  # writes that failed (peer gone); counted, never raised
        self.frames = _frames_at_start()  # framed requests enabled (by the harness)
        self._fs = False

    async def read(self):
        # Next input chunk (1.._BATCH bytes, valid until the next call) or b"" at end of input.
        # The first byte is awaited through the poller; the rest are taken while poll(0) says
        # more is waiting, one byte per read() because only that never blocks.
        one = self._one
        if self._fs:   # the previous chunk stopped at a frame marker: the frame comes whole
            self._fs = False
            return self._frame()
        if not await self._stream.readinto(one):
            return b""
        if one[0] == _FS and self.frames:
            return self._frame()
        buf = self._buf
        buf[0] = one[0]
        n = 1
        ipoll = self._poll.ipoll  # ipoll: no list per call, and this runs once per byte
        sin = self.sin
        while n < _BATCH:
            ready = 0
            for _, ev in ipoll(0):
                ready = ev & _POLLIN
            if not ready or not sin.readinto(one):
                break
            if one[0] == _FS and self.frames:
                self._fs = True   # a frame never hides inside a chunk of typed bytes
                break
            buf[n] = one[0]
            n += 1
        return self._mv[:n]

    def _frame(self):
        # A framed request from the harness: \x1f\x1e, 4 hex digits of length, that many bytes
        # of JSON. The harness writes a frame in one go, so its bytes are there already: two exact
        # reads instead of one poll and one read per byte. Only enabled by the harness ("frames
        # on"), whose pty bridge strips \x1f from what a person types.
        # The marker is two bytes (\x1f\x1e) so that stray input almost never looks like one.
        one = self._one
        ipoll = self._poll.ipoll
        ready = 0
        for _, ev in ipoll(0):
            ready = ev & _POLLIN
        if not ready or not self.sin.readinto(one) or one[0] != 0x1E:
            return b"\x1f"   # not a frame after all: the console sees a stray byte
        hdr = bytearray(4)
        self.sin.readinto(hdr)
        try:
            n = int(bytes(hdr), 16)
        except ValueError:
            return b"\x1f"
        if not 0 < n <= _FRAME_MAX:
            return b"\x1f"
        body = bytearray(n + 1)
        body[0] = _FS
        self.sin.readinto(memoryview(body)[1:])
        return body

    def put(self, b):
        # Write now, even in raw mode (the raw REPL's own bytes).
        try:
            self.sout.write(b)
        except OSError:
            self.lost += 1

    def write(self, b):
        # Write app output, or keep it while raw mode is active.
        if not self.hold:
            self.put(b)
            return
        h = self._held
        if len(h) >= _HOLD:
            h.pop(0)
            self.dropped += 1
        h.append(bytes(b))

    def release(self):
        # Leave hold mode and write what was kept, noting anything dropped.
        self.hold = False
        h = self._held
        self._held = []
        if self.dropped:
            self.put(crlf("(%d console lines dropped while raw REPL was active)" % self.dropped))
            self.dropped = 0
        for b in h:
            self.put(b)
