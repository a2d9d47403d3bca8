# Human line editing on the console byte stream (echo, backspace, Ctrl-C, CR/LF, escape sequences
# skipped); lines starting with \x1e or "{" are machine requests, collected apart, never echoed.
from micropython import const

# What feed() reports (None: nothing to do yet). For the line kinds the text is in ed.line.
LINE = const(1)  # a human line (possibly empty)
RECORD = const(2)  # a \x1e request: ed.line is the JSON text without the \x1e
JSON = const(3)  # a plain JSON request line
TOO_LONG = const(4)  # a line overflowed and was dropped; ed.kind says which kind of line
CTRL_A = const(5)
CTRL_B = const(6)
CTRL_C = const(7)
CTRL_D = const(8)

HUMAN_MAX = const(512)  # bytes in a human line
MACHINE_MAX = const(4096)  # bytes in a request line (JSON args can be larger than typed text)
_RS = const(0x1E)
_ESC_MAX = const(16)  # an escape sequence longer than this is not one; stop skipping

_BS = b"\b \b"
_ERASE = b"\r\x1b[K"


class Editor:
    def __init__(self, prompt=b"evse> "):
        self.prompt = prompt
        self.echo = True  # off: no echo and no prompt (for programs that speak human commands)
        self.out = bytearray()  # echo bytes not yet written; the console takes them with take()
        self.shown = False  # the prompt line (prompt + buf) is what the terminal shows last
        self.buf = bytearray()  # the human line being typed
        self.mbuf = None  # a machine line being collected, apart from the human one
        self.kind = 0  # kind of the line in mbuf (RECORD/JSON), or of the line that overflowed
        self.line = b""
        self._over = False  # the human line overflowed: drop bytes until its end
        self._mover = False
        self._cr = False  # last byte was CR, so a following LF is the same line end
        self._esc = 0  # bytes into an escape sequence being skipped

    def take(self):
        # Echo bytes produced so far (and forget them).
        b = self.out
        if not b:
            return b""
        self.out = bytearray()
        return b

    def show_prompt(self):
        # Prompt plus the line typed so far, after output was written above it.
        if self.echo:
            self.out += self.prompt
            self.out += self.buf
            self.shown = True

    def erase(self):
        # Bytes that blank the prompt line so other output can take its place.
        if self.shown:
            self.shown = False
            return _ERASE
        return b""

    def feed(self, c):
        # One input byte (an int); returns None or one of the codes above.
        if c == 10 and self._cr:
            self._cr = False
            return None
        self._cr = c == 13
        if self.mbuf is not None:
            if c != 3:
                return self._machine(c)
            self.mbuf = None  # JSON never holds a raw Ctrl-C: someone wants out of a stray request
            self._mover = False
        if self._esc:
            if c < 32 or self._esc > _ESC_MAX:
                self._esc = 0  # not a sequence after all: handle the byte normally
            elif self._esc == 1:
                self._esc = 2 if c == 0x5B or c == 0x4F else 0  # ESC [ (CSI) or ESC O (SS3)
                return None
            else:
                self._esc = 0 if 0x40 <= c <= 0x7E else self._esc + 1
                return None
        if c >= 32 and c != 127:
            return self._char(c)
        if c == 13 or c == 10:
            return self._end()
        if c == _RS:
            self.mbuf = bytearray()
            self.kind = RECORD
            return None
        if c == 8 or c == 127:
            self._backspace()
            return None
        if c == 3:
            self.buf = bytearray()
            self._over = False
            self._echo(b"^C\r\n")
            self.shown = False
            return CTRL_C
        if c == 27:
            self._esc = 1
            return None
        if c == 1:
            return CTRL_A
        if c == 2:
            return CTRL_B
        if c == 4:
            return CTRL_D if not self.buf else None
        return None  # other control bytes (tab, bell, ...) are ignored

    def _echo(self, b):
        if self.echo:
            self.out += b

    def _char(self, c):
        buf = self.buf
        if c == 0x7B and not buf and not self._over:  # "{" first: a plain JSON request
            self.mbuf = bytearray(b"{")
            self.kind = JSON
            return None
        if self._over:
            return None
        if len(buf) >= HUMAN_MAX:
            self._over = True
            self._echo(b"\x07")  # bell: the rest of the line is dropped
            return None
        buf.append(c)
        if self.echo:
            self.out.append(c)
        return None

    def _backspace(self):
        buf = self.buf
        if not buf:
            return
        n = len(buf) - 1
        while n > 0 and buf[n] & 0xC0 == 0x80:  # drop a whole UTF-8 character
            n -= 1
        self.buf = buf[:n]
        self._echo(_BS)

    def _end(self):
        self._echo(b"\r\n")
        self.shown = False
        if self._over:
            self._over = False
            self.buf = bytearray()
            self.kind = LINE
            return TOO_LONG
        self.line = bytes(self.buf)
        self.buf = bytearray()
        return LINE

    def _machine(self, c):
        mb = self.mbuf
        if c == 13 or c == 10:
            self.mbuf = None
            if self._mover:
                self._mover = False
                return TOO_LONG
            self.line = bytes(mb)
            return self.kind
        if len(mb) >= MACHINE_MAX:
            self._mover = True
        elif not self._mover:
            mb.append(c)
        return None
