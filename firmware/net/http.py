# Small async HTTP/1.1 client (RFC 9112) for file transfers: GET into a file on flash in chunks
# with a size cap, PUT/POST of a file or bytes, redirects, a timeout on every network wait.
# One request per connection ("Connection: close"): no pooling state to keep between transfers.
import asyncio
import os
import socket
from binascii import b2a_base64
from errno import EINPROGRESS

from micropython import const

from net import url as _url

_CHUNK = const(512)      # flash write / socket read granularity: small, fixed heap cost
_MAX_HEAD = const(8192)  # bytes of status line + headers we accept
_MAX_LINE = const(1024)
_REDIRECT = (301, 302, 303, 307, 308)


class HttpError(Exception):
    # kind: "url" (bad or unsupported URL), "connect" (no TCP/TLS), "timeout", "status" (the server
    # answered with a non-2xx status, in .status), "protocol" (not HTTP / malformed answer),
    # "size" (body over the cap), "io" (connection lost mid-transfer, flash error).
    def __init__(self, msg, kind="status", status=None):
        super().__init__(msg)
        self.kind = kind
        self.status = status


def _unquote(s):
    if "%" not in s:
        return s
    b = s.encode()
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x25 and i + 3 <= len(b):
            out.append(int(b[i + 1:i + 3].decode(), 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()


def parse(url):
    # (secure, host, port, path, auth) for an http:// or https:// URL; auth is (user, password) from
    # user:password@ in the URL, or None. ValueError for anything else.
    if not isinstance(url, str):
        raise ValueError("URL must be a str")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError("unsupported URL %s (need http:// or https://)" % url[:60])
    rest = rest.partition("#")[0]
    i = 0
    while i < len(rest) and rest[i] not in "/?":
        i += 1
    auth = None
    if "@" in rest[:i]:
        userinfo, _, hostport = rest[:i].rpartition("@")
        user, _, pw = userinfo.partition(":")
        auth = (_unquote(user), _unquote(pw))
        rest = hostport + rest[i:]
    secure, host, port, path = _url.parse(("wss://" if scheme == "https" else "ws://") + rest)
    return secure, host, port, path, auth


def _b64(b):
    return b2a_base64(b)[:-1].decode()


async def _io(aw, ms):
    try:
        return await asyncio.wait_for_ms(aw, ms)
    except asyncio.TimeoutError:
        raise HttpError("no answer within %d ms" % ms, "timeout")


class _Conn:
    # One connection: the stream plus the sockets to close (TLS first, then TCP).
    def __init__(self):
        self.held = []
        self.s = None

    async def open(self, host, port, ctx, server_hostname, ms):
        try:
            ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]  # blocking: use IPs
        except OSError as e:
            raise HttpError("cannot resolve %s: %s" % (host, e), "connect")
        sock = socket.socket(ai[0], ai[1], ai[2])
        self.held.append(sock)
        sock.setblocking(False)
        try:
            sock.connect(ai[-1])
        except OSError as e:
            if e.errno != EINPROGRESS:
                raise HttpError("connect %s:%d: %s" % (host, port, e), "connect")
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_hostname=server_hostname or host,
                                   do_handshake_on_connect=False)
            self.held.append(sock)
            sock.setblocking(False)
        self.s = asyncio.StreamReader(sock)   # the first write waits for the connect (POLLOUT)

    def close(self):
        while self.held:
            try:
                self.held.pop().close()
            except Exception:
                pass
        self.s = None


async def _send_head(c, method, u, headers, length, ms):
    secure, host, port, path, auth = u
    h = "[%s]" % host if ":" in host else host
    if port != (443 if secure else 80):
        h = "%s:%d" % (h, port)
    lines = ["%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: evfw\r\n" % (method, path, h)]
    if auth:
        lines.append("Authorization: Basic %s\r\n" % _b64(("%s:%s" % auth).encode()))
    if length is not None:
        lines.append("Content-Length: %d\r\n" % length)
    for k in headers or ():
        v = headers[k]
        if "\r" in k or "\n" in k or "\r" in v or "\n" in v:
            raise HttpError("newline in header %s" % k, "url")
        lines.append("%s: %s\r\n" % (k, v))
    lines.append("\r\n")
    try:
        c.s.write("".join(lines).encode())
        await _io(c.s.drain(), ms)
    except OSError as e:
        raise HttpError("connect %s:%d: %s" % (host, port, e), "connect")


async def _read_head(c, ms):
    # (status, {name: value}) for the headers we use.
    s = c.s
    try:
        line = await _io(s.readline(), ms)
    except OSError as e:
        raise HttpError("no answer: %s" % e, "io")
    size = len(line)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        if not line:
            raise HttpError("connection closed before an answer", "io")
        raise HttpError("not an HTTP answer: %r" % line[:40], "protocol")
    status = int(parts[1])
    got = {}
    while True:
        try:
            line = await _io(s.readline(), ms)
        except OSError as e:
            raise HttpError("answer cut: %s" % e, "io")
        size += len(line)
        if size > _MAX_HEAD:
            raise HttpError("answer headers too long", "protocol")
        if not line:
            raise HttpError("connection closed in the answer headers", "io")
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.partition(b":")
        if not sep:
            raise HttpError("malformed header line %r" % line[:40], "protocol")
        name = name.strip().lower()
        if name in (b"content-length", b"transfer-encoding", b"location"):
            got[name.decode()] = value.strip().decode()
    if 100 <= status < 200:   # an interim answer (we never send Expect): the real one follows
        return await _read_head(c, ms)
    return status, got


class _Body:
    # Reads an answer body framed by Content-Length, chunked transfer coding, or the connection end.
    def __init__(self, c, head, ms):
        self.s = c.s
        self.ms = ms
        te = head.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        self.left = None      # bytes left in the body (or in the current chunk when chunked)
        self.done = False
        if not self.chunked and "content-length" in head:
            try:
                self.left = int(head["content-length"])
            except ValueError:
                raise HttpError("bad Content-Length", "protocol")
            if self.left < 0:
                raise HttpError("bad Content-Length", "protocol")
            self.done = self.left == 0
        elif self.chunked:
            self.left = 0

    def length(self):
        return None if self.chunked else self.left

    async def _line(self):
        line = await _io(self.s.readline(), self.ms)
        if not line or len(line) > _MAX_LINE:
            raise HttpError("bad chunk framing", "protocol")
        return line

    async def readinto(self, mv):
        # Bytes read into mv (0 at the end of the body).
        if self.done:
            return 0
        try:
            if self.chunked and self.left == 0:
                size = (await self._line()).split(b";")[0].strip()
                try:
                    self.left = int(size, 16)
                except ValueError:
                    raise HttpError("bad chunk size %r" % size[:20], "protocol")
                if self.left == 0:
                    while (await self._line()) not in (b"\r\n", b"\n"):   # trailers
                        pass
                    self.done = True
                    return 0
            want = len(mv) if self.left is None else min(len(mv), self.left)
            n = await _io(self.s.readinto(mv[:want]), self.ms)
        except OSError as e:
            raise HttpError("connection lost: %s" % e, "io")
        if not n:
            if self.left is None:
                self.done = True
                return 0
            raise HttpError("connection closed %d bytes early" % self.left, "io")
        if self.left is not None:
            self.left -= n
            if self.left == 0:
                if self.chunked:
                    if (await self._line()) not in (b"\r\n", b"\n"):
                        raise HttpError("bad chunk end", "protocol")
                else:
                    self.done = True
        return n


def _location(u, loc):
    # The URL a redirect points to: absolute, or a path on the same server.
    if "://" in loc:
        return loc
    secure, host, port, path, auth = u
    if not loc.startswith("/"):
        loc = path.rpartition("/")[0] + "/" + loc
    return "%s://%s:%d%s" % ("https" if secure else "http", "[%s]" % host if ":" in host else host,
                             port, loc)


async def _request(method, url, headers, length, body, ssl, server_hostname, ms):
    # Sends one request; returns (conn, status, head, parsed url). body is an async fn(conn).
    try:
        u = parse(url)
    except ValueError as e:
        raise HttpError(str(e), "url")
    if u[0] and ssl is None:
        raise HttpError("https:// needs ssl= (see net.tls.context)", "url")
    c = _Conn()
    try:
        await _io(c.open(u[1], u[2], ssl if u[0] else None, server_hostname, ms), ms)
        await _send_head(c, method, u, headers, length, ms)
        if body is not None:
            try:
                await body(c)
            except OSError as e:
                # A server may refuse (401, 413...) and close before taking the whole body.
                try:
                    status, head = await _read_head(c, ms)
                except HttpError:
                    raise HttpError("connection lost while sending: %s" % e, "io")
                return c, status, head, u
        status, head = await _read_head(c, ms)
    except BaseException:
        c.close()
        raise
    return c, status, head, u


async def fetch(url, path=None, max_bytes=65536, timeout_ms=10000, ssl=None, server_hostname=None,
                headers=None, redirects=3, buf=None):
    # GET url. With path, the body is written to that file (created or truncated) chunk by chunk and
    # the byte count is returned; without, the body is returned as bytes (keep max_bytes small).
    # Raises HttpError; a partly written file is removed.
    for _ in range(redirects + 1):
        c, status, head, u = await _request("GET", url, headers, None, None, ssl, server_hostname,
                                            timeout_ms)
        try:
            if status in _REDIRECT and "location" in head:
                url = _location(u, head["location"])
                continue
            if not 200 <= status < 300:
                raise HttpError("GET %s: HTTP %d" % (url[:80], status), "status", status)
            body = _Body(c, head, timeout_ms)
            n = body.length()
            if n is not None and max_bytes is not None and n > max_bytes:
                raise HttpError("body of %d bytes over the %d byte limit" % (n, max_bytes), "size")
            return await (_to_file(body, path, max_bytes, buf) if path else _to_bytes(body, max_bytes))
        finally:
            c.close()
    raise HttpError("too many redirects", "protocol")


async def _to_bytes(body, cap):
    out = bytearray()
    chunk = bytearray(_CHUNK)
    mv = memoryview(chunk)
    while True:
        n = await body.readinto(mv)
        if not n:
            return bytes(out)
        out += mv[:n]
        if cap is not None and len(out) > cap:
            raise HttpError("body over the %d byte limit" % cap, "size")


async def _to_file(body, path, cap, buf):
    buf = buf or bytearray(_CHUNK)
    mv = memoryview(buf)
    total = 0
    ok = False
    try:
        f = open(path, "wb")
    except OSError as e:
        raise HttpError("cannot write %s: %s" % (path, e), "io")
    try:
        while True:
            n = await body.readinto(mv)
            if not n:
                break
            total += n
            if cap is not None and total > cap:
                raise HttpError("body over the %d byte limit" % cap, "size")
            try:
                f.write(mv[:n])
            except OSError as e:
                raise HttpError("flash write failed: %s" % e, "io")
        ok = True
    finally:
        f.close()
        if not ok:
            try:
                os.remove(path)
            except OSError:
                pass
    return total


async def send(method, url, path=None, data=None, content_type="application/octet-stream",
               form=None, filename=None, timeout_ms=10000, ssl=None, server_hostname=None,
               headers=None, redirects=3):
    # PUT or POST the file at path (streamed from flash) or the bytes in data. form="field" sends a
    # multipart/form-data body with that field name and filename (what HTML upload forms expect).
    # Returns the 2xx status; raises HttpError otherwise.
    if path is not None:
        try:
            size = os.stat(path)[6]
        except OSError as e:
            raise HttpError("cannot read %s: %s" % (path, e), "io")
    else:
        data = data.encode() if isinstance(data, str) else (data or b"")
        size = len(data)
    h = dict(headers or {})
    pre = post = b""
    if form:
        boundary = "evfw" + _b64(os.urandom(12)).replace("+", "-").replace("/", "_")
        pre = ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
               "Content-Type: %s\r\n\r\n" % (boundary, form, filename or "file", content_type)).encode()
        post = ("\r\n--%s--\r\n" % boundary).encode()
        h["Content-Type"] = "multipart/form-data; boundary=" + boundary
    else:
        h["Content-Type"] = content_type

    async def body(c):
        s = c.s
        if pre:
            s.write(pre)
        if path is None:
            s.write(data)
            await _io(s.drain(), timeout_ms)
        else:
            chunk = bytearray(_CHUNK)
            mv = memoryview(chunk)
            with open(path, "rb") as f:
                while True:
                    n = f.readinto(chunk)
                    if not n:
                        break
                    s.write(mv[:n])   # drained before the buffer is reused
                    await _io(s.drain(), timeout_ms)
        if post:
            s.write(post)
        await _io(s.drain(), timeout_ms)

    for _ in range(redirects + 1):
        c, status, head, u = await _request(method, url, h, len(pre) + size + len(post), body, ssl,
                                            server_hostname, timeout_ms)
        c.close()   # the answer's body, if any, is not needed
        if status in (307, 308) and "location" in head:   # the same method and body again
            url = _location(u, head["location"])
            continue
        if not 200 <= status < 300:
            raise HttpError("%s %s: HTTP %d" % (method, url[:80], status), "status", status)
        return status
    raise HttpError("too many redirects", "protocol")
