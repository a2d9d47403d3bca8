# Raw REPL and raw-paste for mpremote (byte protocol: docs micropython-platform.md Q2), fed with
# input chunks as they arrive so the other tasks run in between; only the exec itself blocks.
import sys
import gc
from micropython import const

BANNER = b"raw REPL; CTRL-B to exit\r\n>"
# mpremote waits for a line ending in "soft reboot\r\n", then for the banner. The app keeps running:
# a real restart would drop the charger's sessions, so the reboot is only announced.
SOFT_REBOOT = b"OK\r\nMPY: soft reboot\r\n" + BANNER

# Raw-paste flow-control window: bytes per \x01 credit. Small enough for a UART's buffer; a bigger
# one did not make fs cp faster on the unix port.
WINDOW = const(128)
_MAX = const(32768)  # source bytes accepted per exec; more is refused with an error frame

_RAW = const(0)
_PASTE = const(1)
_DRAIN = const(2)  # paste was cut short by us: drop input until the host's \x04 (or a \x03)
_TOO_LONG = b"MemoryError: source too long (max %d bytes)\r\n" % _MAX


class RawRepl:
    def __init__(self, write, ns):
        self.write = write  # bytes straight to the console (not held like app output)
        self.ns = ns  # exec globals, shared by all execs and with the app (console.repl_globals)
        self.buf = bytearray()
        self._st = _RAW
        self._left = 0  # paste bytes left in the current window
        self._over = False
        self.done = False

    def enter(self):
        self.buf = bytearray()
        self._st = _RAW
        self._over = False
        self.write(BANNER)

    def feed(self, data, i=0):
        # Input bytes from data[i:]. Returns the index after the last byte taken: len(data), or
        # earlier when the host left raw mode (Ctrl-B; self.done is then True) and the rest is
        # for the line editor.
        n = len(data)
        while i < n:
            if self._st == _PASTE:
                i = self._paste(data, i, n)
                continue
            c = data[i]
            i += 1
            if self._st == _DRAIN:
                if c == 4 or c == 3:
                    self._st = _RAW
                    self._done(b"", _TOO_LONG)
            elif c == 3:
                self.buf = bytearray()
                self._over = False
            elif c == 2:
                self.buf = bytearray()
                self.done = True
                self.write(b"\r\n")
                return i
            elif c == 1:
                self._ctrl_a()
            elif c == 4:
                self._ctrl_d()
            elif len(self.buf) < _MAX:
                self.buf.append(c)
            else:
                self._over = True
        return i

    def _ctrl_a(self):
        b = self.buf
        self.buf = bytearray()
        if len(b) == 2 and b[0] == 5:
            if b[1] == 0x41:  # "A": raw-paste; reply, window size, and a second window
                self._st = _PASTE
                self._left = WINDOW
                self.write(b"R\x01" + bytes((WINDOW & 0xFF, WINDOW >> 8)) + b"\x01")
            else:
                self.write(b"R\x00")  # a raw-paste variant we do not know
        else:
            self._over = False
            self.write(BANNER)

    def _ctrl_d(self):
        b = self.buf
        if not b and not self._over:
            self.write(SOFT_REBOOT)
            gc.collect()
            return
        self.buf = bytearray()
        self.write(b"OK")
        if self._over:
            self._over = False
            self._done(b"", _TOO_LONG)
        else:
            self._run(b)

    def _paste(self, data, i, n):
        # Take a run of source bytes at once (C-speed find and copy; this is the fs cp hot path).
        j = min(n, i + self._left)
        run = bytes(data[i:j])
        k = run.find(b"\x04")
        k3 = run.find(b"\x03")
        if k3 >= 0 and (k < 0 or k3 < k):
            k = k3
        if k >= 0:
            run = run[:k]
        buf = self.buf
        if len(buf) + len(run) > _MAX:
            # Tell the host to stop (it answers \x04) and drop what is still in flight.
            self.buf = bytearray()
            self._st = _DRAIN
            self.write(b"\x04")
            return i + len(run)
        buf += run
        i += len(run)
        self._left -= len(run)
        if self._left == 0:
            self._left = WINDOW
            self.write(b"\x01")
        if k < 0:
            return i
        c = data[i]
        b = self.buf
        self.buf = bytearray()
        self._st = _RAW
        self.write(b"\x04")
        if c == 4:  # end of source: acknowledged above; run it (raw-paste has no "OK")
            self._run(b)
        else:  # Ctrl-C: abandoned
            self._done(b"", b"KeyboardInterrupt\r\n")
        return i + 1

    def _run(self, src):
        # Execute as module code in the shared globals; printed output goes to sys.stdout (the
        # console), the traceback becomes the error frame. Nothing escapes, except SystemExit
        # (machine.reset() on the unix board), which is re-raised after the frame went out.
        err = b""
        ex = None
        try:
            exec(src, self.ns)
        except BaseException as e:  # KeyboardInterrupt from a harness SIGINT included
            err = _trace(e)
            if isinstance(e, SystemExit):
                ex = e
        src = None
        self._done(b"", err)
        if ex is not None:
            raise ex

    def _done(self, out, err):
        # Output frame, error frame, then the raw prompt.
        self.write(out + b"\x04" + err + b"\x04>")


def _trace(e):
    # The traceback as bytes, without its first frame (RawRepl._run, not the user's code).
    import io

    s = io.StringIO()
    sys.print_exception(e, s)
    t = s.getvalue()
    a = t.find("\n")
    b = t.find("\n", a + 1)
    if a > 0 and b > a and t.find("_run", a, b) > 0:
        t = t[: a + 1] + t[b + 1 :]
    return t.encode()
