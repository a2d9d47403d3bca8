# Parses ws:// and wss:// URLs (RFC 6455 section 3) into the pieces the WebSocket client needs.
from micropython import const

_WS_PORT = const(80)
_WSS_PORT = const(443)


# Returns (secure, host, port, path); path keeps any query string and defaults to "/".
def parse(url):
    if not isinstance(url, str):
        raise ValueError("url must be a str")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("not a ws:// or wss:// URL: %s" % url)
    scheme = scheme.lower()
    if scheme == "ws":
        secure = False
    elif scheme == "wss":
        secure = True
    else:
        raise ValueError("unsupported scheme %s (need ws or wss)" % scheme)
    # RFC 6455 forbids fragments in WebSocket URIs; a '#' would end up in the request line.
    if "#" in rest:
        raise ValueError("fragment not allowed in a WebSocket URL")
    i = 0
    while i < len(rest) and rest[i] not in "/?":
        i += 1
    authority, path = rest[:i], rest[i:]
    if not path:
        path = "/"
    elif path[0] == "?":
        path = "/" + path
    if " " in path or "\r" in path or "\n" in path:
        raise ValueError("whitespace in URL path")
    # Credentials in the URL would leak into logs; Basic auth is passed to connect() instead.
    if "@" in authority:
        raise ValueError("credentials in URL not supported (use auth=)")
    port = _WSS_PORT if secure else _WS_PORT
    if authority.startswith("["):
        # IPv6 literal: [addr] or [addr]:port
        end = authority.find("]")
        if end < 0:
            raise ValueError("unterminated IPv6 address")
        host, tail = authority[1:end], authority[end + 1 :]
        if tail:
            if tail[0] != ":":
                raise ValueError("junk after IPv6 address")
            port = _port(tail[1:])
    else:
        host, sep, p = authority.partition(":")
        if sep:
            port = _port(p)
    if not host:
        raise ValueError("missing host in URL")
    return secure, host, port, path


def _port(s):
    if not s or not s.isdigit():
        raise ValueError("bad port %r" % s)
    p = int(s)
    if not 0 < p < 65536:
        raise ValueError("port out of range: %d" % p)
    return p
