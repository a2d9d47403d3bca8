# WebSocket client (RFC 6455) on asyncio streams for OCPP-J: upgrade, masking, ping/pong, close.
import asyncio
import socket
import time
from binascii import b2a_base64
from errno import EINPROGRESS
from hashlib import sha1
from os import urandom

from micropython import const

from net import netctl
from net import url as _url

_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BIN = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)

_MAX_HEAD = const(4096)  # bytes of 101 response we accept: a server cannot make us buffer more
_CLOSE_WAIT_MS = const(2000)  # how long to wait for the peer's close frame before dropping TCP
_CHUNK = const(64)  # masking granularity: one small long-int XOR per 64 bytes, ~7x a byte loop
_RBUF = const(1024)  # receive buffer: an OCPP answer that arrived whole is read in one call
_WHOLE = const(4096)  # frames up to this size are masked in one go (bounded temporary memory)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_WANT = (
    b"upgrade",
    b"connection",
    b"sec-websocket-accept",
    b"sec-websocket-protocol",
    b"sec-websocket-extensions",
)


class WsError(Exception):
    # status is the HTTP status of a refused upgrade (401, 404...), else None.
    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.status = status


class WsClosed(WsError):
    # code: the close code received or sent; 1006 when the transport broke without a close frame.
    def __init__(self, code, reason=""):
        super().__init__("closed %d %s" % (code, reason))
        self.code = code
        self.reason = reason


def _why(e):
    m = str(e).strip()  # mbedtls messages come wrapped in newlines
    return "%s: %s" % (type(e).__name__, m) if m else type(e).__name__


def _b64(b):
    return b2a_base64(b)[:-1]  # drop the newline; the newline= keyword is not on every port


# Writes data XOR key (repeating) into buf from off. Long ints do 64 bytes per step; bytes per step
# would cost ~0.3 us each on unix and ten times that on an ESP32.
def _mask(buf, off, data, key):
    n = len(data)
    if 0 < n <= _WHOLE:
        # OCPP messages are small: one long-int XOR over the whole payload is 3x faster still.
        k = (key * ((n >> 2) + 1))[:n]
        buf[off : off + n] = (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
        return
    mv = memoryview(data)
    i = 0
    if n >= _CHUNK:
        km = int.from_bytes(key * (_CHUNK // 4), "big")
        while i + _CHUNK <= n:
            buf[off + i : off + i + _CHUNK] = (
                int.from_bytes(mv[i : i + _CHUNK], "big") ^ km
            ).to_bytes(_CHUNK, "big")
            i += _CHUNK
    while i < n:
        buf[off + i] = data[i] ^ key[i & 3]
        i += 1


# The same in place on buf[off:off + n], compiled to machine code by the port's viper emitter
# (unix, ESP32): an 830-byte MeterValues frame in 4 us with nothing allocated, against 66 us and
# 5 KB of long-int temporaries (measured on unix). None where the port has no native emitter.
_VIPER_XOR = """
import micropython
@micropython.viper
def xor(buf: ptr8, off: int, n: int, key: ptr8):
    i = 0
    while i < n:
        buf[off + i] ^= key[i & 3]
        i += 1
"""


def _compile_xor():
    g = {}
    try:
        exec(_VIPER_XOR, g)
        return g["xor"]
    except Exception:  # no compiler or no native emitter in this build
        return None


_xor = _compile_xor()


class WebSocket:
    # One open connection. recv() must be called from one task at a time; send/ping/close from any.
    def __init__(self, s, subprotocol, max_size, socks, early=b"", rbuf=None):
        self._s = s  # the asyncio Stream (reader and writer are one object on MicroPython)
        self._socks = socks  # [TCP] or [TCP, TLS]: _shut closes each (see connect())
        self.subprotocol = subprotocol
        self.max_size = max_size
        self.last_rx_ms = time.ticks_ms()
        self.closed = False  # True once no more messages can be sent
        self.close_code = None
        self.close_reason = ""
        self._close_sent = False
        self._reading = False
        self._partial = False  # a frame is half read: cancelling now would desync the stream
        self._lock = asyncio.Lock()  # one writer at a time: asyncio allows one waiter per socket
        self._wake = asyncio.Event()  # set when a recv() ends or the socket is shut
        self._hdr = bytearray(8)  # reused for every frame header
        self._hmv = memoryview(self._hdr)
        # (the one the handshake was read with; bigger when more than that came right behind it)
        if rbuf is None or len(rbuf) < len(early):
            rbuf = bytearray(max(_RBUF, len(early)))
        self._rmv = memoryview(rbuf)
        self._rpos = 0  # bytes read from the socket but not used yet: _rmv[_rpos:_rend]
        self._rend = len(early)  # what came right behind the handshake (at most a few frames)
        self._rmv[: self._rend] = early

    # ---- receiving

    # The next data message: str for text, bytes for binary. Answers pings itself.
    # Cancelling it between frames is safe; cancelling mid-frame drops the connection.
    async def recv(self):
        if self._s is None:
            raise WsClosed(self.close_code or 1006, self.close_reason)
        if self._reading:
            raise WsError("recv already in progress")
        self._reading = True
        try:
            return await self._recv()
        except WsError:
            raise
        except Exception as e:  # OSError, EOFError: the transport is gone
            if self._s is None:
                raise WsClosed(self.close_code or 1006, self.close_reason)
            self._shut(1006, "connection lost")
            raise WsClosed(1006, _why(e))
        except BaseException:
            if self._partial:
                self._shut(1006, "recv cancelled mid-frame")
            raise
        finally:
            self._reading = False
            self._wake.set()  # a close() waiting for this reader may read for itself now

    async def _recv(self):
        msg = None  # payload collected so far (a bytearray), None between messages
        mop = 0
        while True:
            fin, op, buf = await self._frame(self.max_size - (len(msg) if msg else 0))
            if op >= 8:
                if op == _OP_PING:
                    if not self._close_sent:
                        await self._send_frame(_OP_PONG, buf)
                elif op == _OP_CLOSE:
                    await self._on_close(buf)
                elif op != _OP_PONG:
                    await self._fail(1002, "bad opcode")
                continue
            if isinstance(buf, int):  # _frame did not read an oversized payload: buf is its length
                await self._fail(1009, "message too big", buf)
            if op == _OP_CONT:
                if msg is None:
                    await self._fail(1002, "unexpected continuation")
                msg += buf
            elif op == _OP_TEXT or op == _OP_BIN:
                if msg is not None:
                    await self._fail(1002, "expected continuation")
                # (a whole frame's payload may be a view of the receive buffer: the next read
                # reuses it, so the first part of a fragmented message is copied)
                msg, mop = buf if fin else bytearray(buf), op
            else:
                await self._fail(1002, "bad opcode")
            if fin:
                if not netctl.clean:
                    await netctl.after_recv()   # injected latency on the way in
                if mop == _OP_BIN:
                    return bytes(msg)
                try:
                    return str(msg, "utf-8")
                except UnicodeError:
                    await self._fail(1007, "invalid utf-8")

    # Reads what the socket has (up to the buffer's size) into the empty receive buffer: a frame
    # that arrived whole (header and payload) costs one read and one pass of the scheduler.
    async def _refill(self):
        self._rend = await self._read(self._rmv)
        self._rpos = 0

    # One read of at least a byte into mv (EOFError when the peer closed).
    async def _read(self, mv):
        while True:
            k = await self._s.readinto(mv)
            if k is None:  # TLS record not complete yet
                continue
            if not k:
                raise EOFError
            return k

    # Fills mv from the receive buffer, refilling it as needed; a payload bigger than the buffer
    # goes from the socket straight into place.
    async def _fill(self, mv):
        got = 0
        n = len(mv)
        while got < n:
            have = self._rend - self._rpos
            if have:
                k = min(have, n - got)
                mv[got : got + k] = self._rmv[self._rpos : self._rpos + k]
                self._rpos += k
            elif n - got >= _RBUF:
                k = await self._read(mv[got:])
            else:
                await self._refill()
                continue
            got += k
            self._partial = True

    # One frame: (fin, opcode, payload bytearray), or the length instead of the payload when a data
    # frame exceeds limit (so the caller can refuse it without allocating).
    async def _frame(self, limit):
        if not netctl.clean:
            await netctl.before_recv()   # an injected stall or partition holds incoming frames
        if self._rpos == self._rend:   # _refill() inlined: one coroutine less per frame
            self._rend = await self._read(self._rmv)
            self._rpos = 0
        f = self._whole(limit)
        if f is not None:
            return f
        h = self._hdr
        await self._fill(self._hmv[:2])
        b0 = h[0]
        n = h[1]
        if b0 & 0x70:
            await self._fail(1002, "reserved bits set")
        if n & 0x80:
            await self._fail(1002, "masked server frame")
        op = b0 & 0x0F
        fin = b0 & 0x80
        n &= 0x7F
        if n == 126:
            await self._fill(self._hmv[:2])
            n = (h[0] << 8) | h[1]
        elif n == 127:
            await self._fill(self._hmv)
            n = int.from_bytes(h, "big")
        if op >= 8:
            if n > 125 or not fin:
                await self._fail(1002, "bad control frame")
        elif n > limit:
            self.last_rx_ms = time.ticks_ms()
            return fin, op, n
        buf = bytearray(n)
        if n:
            await self._fill(memoryview(buf))
        self._partial = False
        self.last_rx_ms = time.ticks_ms()
        return fin, op, buf

    # The next frame when it lies whole in the receive buffer, as an OCPP message that arrived in
    # one segment does (header and payload parsed in place, a data payload returned as a view of
    # the buffer: no copy, none of _fill's coroutines); None leaves the frame to the general path.
    def _whole(self, limit):
        b = self._rmv
        p = self._rpos
        have = self._rend - p
        if have < 2:
            return None
        b0 = b[p]
        n = b[p + 1]
        if b0 & 0x70 or n & 0x80 or n == 127:
            return None   # a protocol error, or a 64-bit length: the general path
        h = 2
        if n == 126:
            if have < 4:
                return None
            n = (b[p + 2] << 8) | b[p + 3]
            h = 4
        op = b0 & 0x0F
        if h + n > have or (n > limit if op < 8 else n > 125 or not b0 & 0x80):
            return None
        p += h
        self._rpos = p + n
        self.last_rx_ms = time.ticks_ms()
        # control frames' payloads are kept (a pong echoes one): copied out of the buffer
        return b0 & 0x80, op, b[p : p + n] if op < 8 else bytes(b[p : p + n])

    async def _on_close(self, buf):
        n = len(buf)
        if n == 0:
            code, reason = 1005, ""
        elif n == 1:
            await self._fail(1002, "bad close frame")
        else:
            code = (buf[0] << 8) | buf[1]
            if code < 1000 or 1004 <= code <= 1006 or 1015 <= code < 3000 or code >= 5000:
                await self._fail(1002, "bad close code")
            try:
                reason = str(buf[2:], "utf-8")
            except UnicodeError:
                reason = ""
        if not self._close_sent:
            # RFC 6455 5.5.1: answer with a close frame, echoing the code
            try:
                await self._send_close(None if code == 1005 else code, "")
            except Exception:
                pass
        self.close_code, self.close_reason = code, reason
        self._shut(code, reason)
        raise WsClosed(code, reason)

    # Fail the connection with a close code. skip=None: the stream is out of sync, drop TCP at once;
    # else discard skip payload bytes and wait for the peer's close, so it reads our code before any
    # reset (closing with unread data makes the kernel send RST).
    async def _fail(self, code, reason, skip=None):
        try:
            if not self._close_sent:
                await self._send_close(code, reason)
            if skip is not None:
                await asyncio.wait_for_ms(self._linger(skip), _CLOSE_WAIT_MS)
        except Exception:
            pass
        self._shut(code, reason)
        raise WsClosed(code, reason)

    # Reads and drops frames until the peer's close frame (closing handshake).
    async def _linger(self, skip):
        while True:
            while skip:
                if self._rpos == self._rend:
                    await self._refill()
                k = min(skip, self._rend - self._rpos)
                self._rpos += k
                skip -= k
            fin, op, buf = await self._frame(self.max_size)
            if op == _OP_CLOSE:
                return
            if isinstance(buf, int):
                skip = buf

    # ---- sending

    # Sends a text message (str) or a binary one (bytes).
    # (A plain function returning the frame's coroutine: one coroutine less per message; `await
    # ws.send(x)` reads the same.)
    def send(self, data):
        if isinstance(data, str):
            op, data = _OP_TEXT, data.encode()
        else:
            op = _OP_BIN
        if self.closed:
            return self._closed()   # raised when awaited, as from a coroutine
        return self._send_frame(op, data)

    async def _closed(self):
        raise WsClosed(self.close_code or 1006, self.close_reason)

    async def ping(self, payload=b""):
        if len(payload) > 125:
            raise ValueError("ping payload over 125 bytes")
        if self.closed:
            await self._closed()
        await self._send_frame(_OP_PING, payload)

    async def _send_close(self, code, reason):
        self._close_sent = True
        self.closed = True
        if code is None:
            payload = b""
        else:
            r = reason.encode()[:123]  # control frames carry at most 125 bytes
            payload = bytearray(2 + len(r))
            payload[0] = code >> 8
            payload[1] = code & 0xFF
            payload[2:] = r
        await self._send_frame(_OP_CLOSE, payload)

    # Builds the whole frame in one buffer (header, mask key, masked payload) and writes it at once.
    async def _send_frame(self, op, data):
        if not netctl.clean:
            await netctl.before_send()   # injected latency, stall or one-way partition
        n = len(data)
        h = 2 if n < 126 else 4 if n < 65536 else 10
        buf = bytearray(h + 4 + n)
        buf[0] = 0x80 | op
        if h == 2:
            buf[1] = 0x80 | n
        elif h == 4:
            buf[1] = 0xFE
            buf[2] = n >> 8
            buf[3] = n & 0xFF
        else:
            buf[1] = 0xFF
            buf[2:10] = n.to_bytes(8, "big")
        key = urandom(4)
        buf[h : h + 4] = key
        if _xor is None:
            _mask(buf, h + 4, data, key)
        else:
            buf[h + 4 :] = data
            _xor(buf, h + 4, n, key)
        if not self._lock.locked():
            # The usual case: the socket takes the whole frame at once, nothing to wait for (the
            # stream's drain() would still cost a pass of the scheduler).
            self._write(buf)
            if not self._s.out_buf:
                return
            buf = None
        async with self._lock:  # one task at a time waits for the socket to take the rest
            if buf is not None:
                self._write(buf)
            try:
                await self._s.drain()
            except Exception as e:
                self._shut(1006, "connection lost")
                raise WsClosed(1006, _why(e))
            except BaseException:
                # cancelled mid-write: the peer may hold half a frame, nothing sane can follow
                self._shut(1006, "send cancelled")
                raise

    def _write(self, buf):
        s = self._s
        if s is None:
            raise WsClosed(self.close_code or 1006, self.close_reason)
        try:
            s.write(buf)
        except Exception as e:
            self._shut(1006, "connection lost")
            raise WsClosed(1006, _why(e))

    # ---- closing

    # Closing handshake: send our close frame, wait (bounded) for the peer's, then drop TCP.
    async def close(self, code=1000, reason=""):
        if self._s is None:
            return
        end = time.ticks_add(time.ticks_ms(), _CLOSE_WAIT_MS)
        try:
            if not self._close_sent:
                await self._send_close(code, reason)
            while self._s is not None:
                left = time.ticks_diff(end, time.ticks_ms())
                if left <= 0:
                    break
                if self._reading:
                    # another task is in recv(): it sees the peer's close frame and shuts down,
                    # or it was cancelled and this task must read the reply itself
                    self._wake.clear()
                    await asyncio.wait_for_ms(self._wake.wait(), left)
                    continue
                self._reading = True
                try:
                    await asyncio.wait_for_ms(self._linger(0), left)
                finally:
                    self._reading = False
                break
        except Exception:
            pass
        self._shut(code, reason)

    # Drops TCP at once, without a closing handshake (the network is known to be gone).
    # A task blocked in recv() wakes with WsClosed(1006).
    def abort(self, reason="aborted"):
        self._shut(1006, reason)

    def _shut(self, code, reason):
        self.closed = True
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._s = None
        # Stream.close() is a no-op on MicroPython: close the sockets themselves
        while self._socks:
            try:
                self._socks.pop().close()
            except Exception:
                pass
        self._wake.set()


# ---- opening


# Opens a WebSocket. subprotocol: a str, a list/tuple of offers, or None. auth: (user, password)
# for HTTP Basic (OCPP security profile 1). ssl: an SSLContext (net.tls.context), required for wss.
async def connect(
    url,
    subprotocol="ocpp1.6",
    auth=None,
    ssl=None,
    server_hostname=None,
    headers=None,
    timeout_ms=10000,
    max_size=32768,
):
    try:
        u = _url.parse(url)
    except ValueError as e:
        raise WsError("bad url: %s" % e)
    if u[0] and ssl is None:
        raise WsError("wss:// needs ssl= (see net.tls.context)")
    if ssl is not None and not u[0]:
        raise WsError("ssl= given for a ws:// URL")
    held = []  # the sockets (TCP, TLS), so they can be closed if the handshake fails or times out
    try:
        return await asyncio.wait_for_ms(
            _open(held, u, subprotocol, auth, ssl, server_hostname, headers, max_size),
            timeout_ms,
        )
    except BaseException as e:
        # TLS first, then TCP: after a failed handshake closing the TLS object leaves the fd open
        while held:
            try:
                held.pop().close()
            except Exception:
                pass
        if isinstance(e, WsError):
            raise
        if isinstance(e, asyncio.TimeoutError):
            raise WsError("timeout after %d ms" % timeout_ms)
        if isinstance(e, Exception):  # OSError from TCP or TLS (bad CA, hostname...), EOFError
            raise WsError("connect failed: %s" % _why(e))
        raise


async def _open(held, u, subprotocol, auth, ctx, server_hostname, headers, max_size):
    secure, host, port, path = u
    # What asyncio.open_connection does, but holding the socket from its creation: a timeout while
    # it waits for the TCP connect would leak it (sockets have no finaliser; ESP32 has ~10).
    ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]  # blocking DNS, as there
    sock = socket.socket(ai[0], ai[1], ai[2])
    held.append(sock)
    sock.setblocking(False)
    try:
        sock.connect(ai[-1])
    except OSError as e:
        if e.errno != EINPROGRESS:
            raise
    if ctx is not None:
        # the handshake runs inside the first write/read, driven by the stream's polling
        sock = ctx.wrap_socket(
            sock, server_hostname=server_hostname or host, do_handshake_on_connect=False
        )
        held.append(sock)
        sock.setblocking(False)
    s = asyncio.StreamReader(sock)  # the first write waits for the connect (POLLOUT)
    if isinstance(subprotocol, str):
        offers = (subprotocol,)
    else:
        offers = tuple(subprotocol or ())
    key = _b64(urandom(16))
    h = "[%s]" % host if ":" in host else host
    if port != (443 if secure else 80):
        h = "%s:%d" % (h, port)
    req = [
        "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, h, key.decode())
    ]
    if offers:
        req.append("Sec-WebSocket-Protocol: %s\r\n" % ", ".join(offers))
    if auth:
        cred = _b64(("%s:%s" % tuple(auth)).encode()).decode()
        req.append("Authorization: Basic %s\r\n" % cred)
    for k in headers or ():
        v = headers[k]
        if "\r" in k or "\n" in k or "\r" in v or "\n" in v:
            raise WsError("newline in header %s" % k)
        req.append("%s: %s\r\n" % (k, v))
    req.append("\r\n")
    s.write("".join(req).encode())
    await s.drain()
    req = None

    # The response is read in as few calls as it arrived in (a readline() reads a byte per call);
    # whatever follows the blank line is the server's first frames, kept for the WebSocket.
    # It is read with what becomes the connection's receive buffer: no bigger buffer at boot.
    rbuf = bytearray(_RBUF)
    head = b""
    cut = None  # why the head is incomplete (closed, too long), once the status line is checked
    while True:
        k = await s.readinto(rbuf)
        if k is None:  # TLS record not complete yet
            continue
        head += rbuf[:k]
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            early, head = head[end + 4 :], head[:end]
            break
        if not k or len(head) >= _MAX_HEAD:
            early = b""
            cut = "connection closed during handshake" if not k else "response headers too long"
            break
    lines = head.split(b"\r\n")
    line = lines[0]
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise WsError("not an HTTP response: %r" % line[:40])
    status = int(parts[1])
    if status != 101:
        why = parts[2].strip().decode() if len(parts) > 2 else ""
        raise WsError("HTTP %d %s" % (status, why), status)
    if cut:
        raise WsError(cut)
    got = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in _WANT:
            value = value.strip()
            got[name] = got[name] + b", " + value if name in got else value
    if got.get(b"upgrade", b"").lower() != b"websocket":
        raise WsError("missing Upgrade: websocket")
    if b"upgrade" not in [t.strip() for t in got.get(b"connection", b"").lower().split(b",")]:
        raise WsError("missing Connection: Upgrade")
    if got.get(b"sec-websocket-accept") != _b64(sha1(key + _GUID).digest()):
        raise WsError("bad Sec-WebSocket-Accept")
    if b"sec-websocket-extensions" in got:  # we offered none, so any is a protocol violation
        raise WsError("unrequested extension")
    chosen = got.get(b"sec-websocket-protocol")
    if chosen is not None:
        chosen = chosen.decode()
        if chosen not in offers:
            raise WsError("server chose unoffered subprotocol %s" % chosen)
    elif offers:
        # OCPP-J: a server that does not confirm the version may speak another one
        raise WsError("server did not accept subprotocol %s" % ", ".join(offers))
    return WebSocket(s, chosen, max_size, held, early, rbuf)
