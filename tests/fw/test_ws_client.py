"""net.ws on the unix port against `websockets` servers (plain, Basic auth, TLS, mutual TLS)
and a raw RFC 6455 peer for the frames a correct library never sends."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, basic_auth, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from harness.mpbin import FIRMWARE, run_mp

HERE = Path(__file__).parent
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MP_MAX_SIZE_BIG = 4096  # ws_client_check.py connects to /big with this max_size


# ---- PKI: EC P-256 (fast handshakes); DER for MicroPython, PEM for CPython's ssl


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_pki(d: Path) -> dict[str, Path]:
    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    ca_key, other_key, srv_key, cli_key = key(), key(), key(), key()
    ca = _cert("Test CA", ca_key, _name("Test CA"), ca_key, ca=True)
    other = _cert("Other CA", other_key, _name("Other CA"), other_key, ca=True)
    san: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    srv = _cert("localhost", srv_key, ca.subject, ca_key, san=san)
    cli = _cert("CP00001", cli_key, ca.subject, ca_key)
    der, pem = serialization.Encoding.DER, serialization.Encoding.PEM
    pkcs8, none = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    files = {
        "ca.der": ca.public_bytes(der),
        "other_ca.der": other.public_bytes(der),
        "client.der": cli.public_bytes(der),
        "client_key.der": cli_key.private_bytes(der, pkcs8, none),
        "ca.pem": ca.public_bytes(pem),
        "server.pem": srv.public_bytes(pem) + srv_key.private_bytes(pem, pkcs8, none),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return {name: d / name for name in files}


def server_ctx(pki: dict[str, Path], require_client: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server.pem"])
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki["ca.pem"])
    return ctx


# ---- servers (one event loop in a thread; `seen` records what the servers observed)


class Peers:
    def __init__(self, pki: dict[str, Path]) -> None:
        self.pki = pki
        self.seen: dict[str, Any] = {}
        self.ports: dict[str, int] = {}

    # websockets handler: one behaviour per path
    async def handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path == "/ping":
            waiter = await ws.ping(b"hb")
            await asyncio.wait_for(waiter, 3)
            await ws.send("pong-seen")
        elif path == "/frag":
            await ws.send(["frag-", "ment", "ed"])
            await ws.send([b"\x01\x02", b"", b"\x03"])
        elif path == "/big":
            await ws.send("x" * (MP_MAX_SIZE_BIG + 1))
        elif path == "/close":
            await ws.close(4000, "bye")
            return
        elif path == "/drop":
            assert ws.transport is not None
            ws.transport.abort()
            return
        elif path == "/mtls":
            cert = ws.transport.get_extra_info("peercert") if ws.transport else None
            self.seen["mtls_peer"] = cert
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:
            pass
        finally:
            rcvd = ws.protocol.close_rcvd
            self.seen.setdefault("close_rcvd", {}).setdefault(path, []).append(
                (rcvd.code, rcvd.reason) if rcvd else None
            )

    def record_request(self, ws: ServerConnection, req: Request) -> Any:
        self.seen.setdefault("requests", []).append((req.path, dict(req.headers.raw_items())))
        if req.path == "/nope":
            return ws.respond(404, "no such charge point\n")
        return None

    async def start(self) -> None:
        check_auth = basic_auth(realm="csms", credentials=("CP00001", "s3cret"))

        async def auth_request(ws: ServerConnection, req: Request) -> Any:
            self.seen.setdefault("auth_headers", []).append(req.headers.get("Authorization"))
            return await check_auth(ws, req)

        common: dict[str, Any] = dict(subprotocols=["ocpp1.6"], ping_interval=None, max_size=2**20)
        servers = {
            "plain": serve(
                self.handler, "127.0.0.1", 0, process_request=self.record_request, **common
            ),
            "auth": serve(self.handler, "127.0.0.1", 0, process_request=auth_request, **common),
            "tls": serve(self.handler, "127.0.0.1", 0, ssl=server_ctx(self.pki, False), **common),
            "mtls": serve(self.handler, "127.0.0.1", 0, ssl=server_ctx(self.pki, True), **common),
        }
        self.servers = []
        for name, s in servers.items():
            srv = await s
            self.servers.append(srv)
            self.ports[name] = srv.sockets[0].getsockname()[1]
        raw = await asyncio.start_server(self.raw, "127.0.0.1", 0)
        self.servers.append(raw)
        self.ports["raw"] = raw.sockets[0].getsockname()[1]

    # ---- raw RFC 6455 peer, for responses and frames a correct library never produces

    async def raw(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await r.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            if path == "/silent":
                await r.read()
                return
            if path == "/badaccept":
                accept = base64.b64encode(hashlib.sha1(b"not the key").digest())
            proto = {"/noproto": b"", "/otherproto": b"Sec-WebSocket-Protocol: ocpp2.0.1\r\n"}.get(
                path, b"Sec-WebSocket-Protocol: ocpp1.6\r\n"
            )
            # /early: two frames in the same segment as the 101 (the client must keep them)
            early = frame(0x1, b"early bird") + frame(0x1, b"second") if path == "/early" else b""
            w.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n" + proto + b"\r\n" + early
            )
            if path == "/interleave":
                # a ping between the fragments of one text message, then a (forbidden) masked frame
                w.write(frame(0x1, b"ab", fin=False) + frame(0x9, b"p1"))
                w.write(frame(0x0, b"cd", fin=False) + frame(0x0, b"ef"))
                op, payload = await asyncio.wait_for(read_frame(r), 3)
                self.seen["raw_pong"] = (op, payload)
                w.write(frame(0x1, b"masked!", mask=b"\x01\x02\x03\x04"))
            elif path == "/half":
                w.write(frame(0x1, b"0123456789")[:5])  # a frame cut short
            elif path == "/badutf8":
                w.write(frame(0x1, b"ok\xff\xfe"))
            while True:  # closing handshake: echo the client's close frame
                op, payload = await read_frame(r)
                if op == 0x8:
                    self.seen.setdefault("raw_close", {})[path] = payload
                    w.write(frame(0x8, payload[:2]))
                    await w.drain()
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()


def frame(op: int, payload: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    n = len(payload)
    b1 = 0x80 if mask else 0
    head = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        head += bytes([b1 | n])
    else:
        head += bytes([b1 | 126]) + struct.pack("!H", n)
    if mask:
        payload = mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + payload


async def read_frame(r: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame, unmasked; asserts the client masked it as RFC 6455 5.3 requires."""
    b0, b1 = await r.readexactly(2)
    assert b1 & 0x80, "client frame not masked"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await r.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await r.readexactly(8))
    mask = await r.readexactly(4)
    data = await r.readexactly(n)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, dict], Peers, str]]:
    d = tmp_path_factory.mktemp("ws")
    peers = Peers(make_pki(d))
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve_forever() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(peers.start())
        started.set()
        loop.run_forever()

    t = threading.Thread(target=serve_forever, daemon=True)
    t.start()
    assert started.wait(10)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    # a listener whose accept queue is full: further SYNs are dropped, so connects hang
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    fillers = [socket.socket() for _ in range(3)]
    for f in fillers:
        f.setblocking(False)
        f.connect_ex(hole.getsockname())
    cfg = dict(peers.ports, closed_port=closed_port, blackhole=hole.getsockname()[1], certs=str(d))
    (d / "cfg.json").write_text(json.dumps(cfg))
    try:
        res = run_mp(
            HERE / "ws_client_check.py",
            str(d / "cfg.json"),
            path=[FIRMWARE, HERE],
            heap="512k",
            cwd=d,
            timeout=60,
        )
    finally:

        async def stop() -> None:
            for srv in peers.servers:
                srv.close()

        for sock in [hole, *fillers]:
            sock.close()
        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
    out = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
    results = {}
    for line in out.splitlines():
        if line.startswith("R "):
            facts = json.loads(line[2:])
            results[facts.pop("check")] = facts
    assert res.returncode == 0 and "DONE" in out, out
    yield results, peers, out


def facts(run: tuple[dict[str, dict], Peers, str], name: str) -> dict:
    results, _, out = run
    f = dict(results[name])
    f.pop("check_ms")
    assert "unexpected" not in f, (f, out)
    return f


# ---- tests


def test_echo_round_trips_and_subprotocol(run):
    f = facts(run, "echo")
    assert f == {
        "subprotocol": "ocpp1.6",
        "small": True,
        "mid": True,
        "big": True,
        "binary": True,
        "closed": True,
    }
    path, headers = next(r for r in run[1].seen["requests"] if r[0] == "/echo/CP00001")
    assert headers["Sec-WebSocket-Protocol"] == "ocpp1.6"
    assert headers["Sec-WebSocket-Version"] == "13"
    assert headers["X-Probe"] == "1"
    assert headers["Host"] == "127.0.0.1:%d" % run[1].ports["plain"]
    # a fresh random 16-byte key per connection
    keys = {h["Sec-WebSocket-Key"] for _, h in run[1].seen["requests"]}
    assert len(keys) == len(run[1].seen["requests"])
    assert all(len(base64.b64decode(k)) == 16 for k in keys)
    assert run[1].seen["close_rcvd"]["/echo/CP00001"] == [(1000, "")]


def test_client_close_handshake(run):
    f = facts(run, "client_close")
    assert f["closed"] is True and f["code"] == 1000
    assert f["recv_after"]["type"] == "WsClosed" and f["send_after"]["type"] == "WsClosed"
    assert (1000, "done") in run[1].seen["close_rcvd"]["/clientclose"]


def test_close_while_another_task_reads(run):
    f = facts(run, "close_while_reading")
    assert f["done"] is True
    assert f["reader"]["type"] == "WsClosed" and f["reader"]["code"] == 1000
    assert f["ms"] < 1000  # the reader saw the server's close reply; no timeout was needed
    assert (1000, "bye-reader") in run[1].seen["close_rcvd"]["/clientclose"]


def test_close_after_reader_cancelled_is_prompt(run):
    f = facts(run, "cancel_reader_then_close")
    assert f["closed"] is True and f["ms"] < 1000  # the close reply was read, no 2 s timeout
    assert (1001, "teardown") in run[1].seen["close_rcvd"]["/clientclose"]


def test_abort_wakes_blocked_reader(run):
    f = facts(run, "abort_while_reading")
    for name in ("plain", "tls"):
        assert f[name] is not None, (name, f)
        assert (f[name]["type"], f[name]["code"]) == ("WsClosed", 1006), (name, f)


def test_server_close_code_seen(run):
    f = facts(run, "server_close")
    assert (f["type"], f["code"], f["reason"]) == ("WsClosed", 4000, "bye")


def test_dropped_tcp_is_1006(run):
    f = facts(run, "drop")
    assert (f["type"], f["code"], f["closed"]) == ("WsClosed", 1006, True)


def test_ping_answered_and_last_rx(run):
    f = facts(run, "ping")
    # the server's recv of "pong-seen" only happens after its ping future resolved with our pong
    assert f == {"msg": "pong-seen", "rx_advanced": True, "after_ping": "after ping"}


def test_fragmented_messages_assembled(run):
    f = facts(run, "fragments")
    assert f == {"text": "frag-mented", "binary": [1, 2, 3]}


def test_ping_inside_fragmented_message_and_masked_server_frame(run):
    assert facts(run, "early") == {"msgs": ["early bird", "second"]}
    f = facts(run, "interleave")
    assert f["msg"] == "abcdef"
    assert run[1].seen["raw_pong"] == (0xA, b"p1")
    assert (f["masked"]["type"], f["masked"]["code"]) == ("WsClosed", 1002)
    assert run[1].seen["raw_close"]["/interleave"][:2] == struct.pack("!H", 1002)


def test_recv_cancel_is_safe_between_frames_only(run):
    f = facts(run, "recv_timeout")
    assert f["idle"]["type"] == "TimeoutError" and f["after_idle"] == "still fine"
    assert f["half"]["type"] == "TimeoutError"
    assert f["half_closed"] == [True, 1006]
    assert (f["half_next"]["type"], f["half_next"]["code"]) == ("WsClosed", 1006)


def test_invalid_utf8_is_1007(run):
    f = facts(run, "bad_utf8")
    assert (f["type"], f["code"]) == ("WsClosed", 1007)
    assert run[1].seen["raw_close"]["/badutf8"][:2] == struct.pack("!H", 1007)


def test_message_over_max_size_closes_1009(run):
    f = facts(run, "too_big")
    assert (f["type"], f["code"], f["closed"]) == ("WsClosed", 1009, True)
    assert run[1].seen["close_rcvd"]["/big"][0][0] == 1009


def test_handshake_failures_are_ws_errors(run):
    f = facts(run, "handshake_errors")
    assert f["no_proto_unoffered"] is None
    assert (f["404"]["type"], f["404"]["status"]) == ("WsError", 404)
    for name, word in [
        ("bad_accept", "Accept"),
        ("no_proto", "subprotocol"),
        ("other_proto", "subprotocol"),
        ("silent", "timeout"),
        ("refused", "connect failed"),
        ("bad_url", "bad url"),
        ("wss_no_ctx", "ssl="),
        ("ws_with_ctx", "ssl="),
    ]:
        assert f[name]["type"] == "WsError", (name, f[name])
        assert word in f[name]["msg"], (name, f[name])


def test_failed_connects_leak_no_socket(run):
    f = facts(run, "fd_leaks")
    # the black-holed connects really timed out in the TCP connect (plain and TLS)
    assert "timeout" in f["hole"]["msg"] and "timeout" in f["hole_tls"]["msg"], f
    assert f["tls_server_close"]["code"] == 4000, f
    assert f["fds_after"] == f["fds_before"], f


def test_basic_auth(run):
    f = facts(run, "auth")
    assert f["echo"] == "hi"
    good = "Basic " + base64.b64encode(b"CP00001:s3cret").decode()
    assert good in run[1].seen["auth_headers"]
    assert None in run[1].seen["auth_headers"]  # the "missing" attempt sent none
    assert (f["wrong"]["type"], f["wrong"]["status"]) == ("WsError", 401)
    assert (f["missing"]["type"], f["missing"]["status"]) == ("WsError", 401)


def test_tls_server_verification(run):
    f = facts(run, "tls")
    assert f["subprotocol"] == "ocpp1.6" and f["echo"] == "over tls"
    # refused for the right reason (mbedtls' words), not some unrelated failure
    assert f["wrong_ca"]["type"] == "WsError" and "not correctly signed" in f["wrong_ca"]["msg"]
    assert f["wrong_host"]["type"] == "WsError" and "CN" in f["wrong_host"]["msg"]
    assert f["insecure_echo"] == "insecure"


def test_mutual_tls_presents_client_cert(run):
    f = facts(run, "mtls")
    assert f["echo"] == "who am i"
    subject = dict(x[0] for x in run[1].seen["mtls_peer"]["subject"])
    assert subject["commonName"] == "CP00001"
    assert f["no_cert"]["type"] == "WsError", f


def test_tls_context_arguments(run):
    f = facts(run, "tls_args")
    assert "insecure=True" in f["no_ca"]
    assert "together" in f["cert_no_key"]
    assert "PEM" in f["pem"]


def test_memory_and_handshake_figures(run):
    f = facts(run, "memory")
    print("\nnet.ws figures (unix port):", json.dumps(f))
    # From source (compiled on import): ~23 KB, plus a qstr pool step when new names overflow the
    # pool (measured 19.7 KB -> 24.5 KB for +1.2 KB of code: the receive buffer and viper masking).
    assert f["import_net_ws"] < 26_000
    assert f["plain_open"] < 4_000
    assert min(f["tls_connect_ms"]) < 1000
