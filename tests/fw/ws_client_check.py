# Drives net.ws against the servers of test_ws_client.py; prints one "R {json}" line per check.
import gc

gc.collect()
_M0 = gc.mem_alloc()
import asyncio  # noqa: E402

gc.collect()
_M1 = gc.mem_alloc()
from net import ws  # noqa: E402

gc.collect()
_M2 = gc.mem_alloc()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from net import tls  # noqa: E402

CFG = json.load(open(sys.argv[1]))
PLAIN = "ws://127.0.0.1:%d" % CFG["plain"]
RAW = "ws://127.0.0.1:%d" % CFG["raw"]
AUTH = "ws://127.0.0.1:%d" % CFG["auth"]
TLS = "wss://127.0.0.1:%d" % CFG["tls"]
MTLS = "wss://127.0.0.1:%d" % CFG["mtls"]
CERTS = CFG["certs"]


def out(name, **facts):
    facts["check"] = name
    print("R " + json.dumps(facts))


def err(e):
    return {
        "type": type(e).__name__,
        "msg": str(e),
        "status": getattr(e, "status", None),
        "code": getattr(e, "code", None),
        "reason": getattr(e, "reason", None),
    }


async def check(name, fn):
    t0 = time.ticks_ms()
    try:
        facts = await asyncio.wait_for_ms(fn(), 8000)  # a hung check must not stall the others
    except Exception as e:
        facts = {"unexpected": err(e)}
    facts["check_ms"] = time.ticks_diff(time.ticks_ms(), t0)
    out(name, **facts)


async def expect_fail(coro):
    # The error the coroutine raised, as facts; {"type": None} if it did not raise.
    try:
        r = await coro
    except Exception as e:
        return err(e)
    if hasattr(r, "close"):
        await r.close()
    return {"type": None}


async def read_into(c, got):
    # a reader task: records how its recv() ended
    try:
        got.append(await c.recv())
    except Exception as e:
        got.append(err(e))


async def c_echo():
    c = await ws.connect(PLAIN + "/echo/CP00001", headers={"X-Probe": "1"}, max_size=70000)
    f = {"subprotocol": c.subprotocol}
    msg = '[2,"1","Heartbeat",{}]'
    await c.send(msg)
    f["small"] = (await c.recv()) == msg
    mid = "é" * 300 + "m" * 20000  # 16-bit length, multi-byte UTF-8
    await c.send(mid)
    f["mid"] = (await c.recv()) == mid
    big = "b" * 66000  # 64-bit length
    await c.send(big)
    f["big"] = (await c.recv()) == big
    big = mid = None
    await c.send(b"\x00\x01\xfe\xff")
    r = await c.recv()
    f["binary"] = r == b"\x00\x01\xfe\xff" and isinstance(r, bytes)
    await c.close()
    f["closed"] = c.closed
    return f


async def c_client_close():
    c = await ws.connect(PLAIN + "/clientclose")
    await c.close(1000, "done")
    f = {"closed": c.closed, "code": c.close_code}
    f["recv_after"] = await expect_fail(c.recv())
    f["send_after"] = await expect_fail(c.send("x"))
    return f


async def c_close_while_reading():
    # close() from one task while another sits in recv(): the reader must see WsClosed
    c = await ws.connect(PLAIN + "/clientclose")
    got = []
    t = asyncio.create_task(read_into(c, got))
    await asyncio.sleep_ms(50)
    t0 = time.ticks_ms()
    await c.close(1000, "bye-reader")
    await asyncio.sleep_ms(20)
    return {
        "reader": got[0] if got else None,
        "done": t.done(),
        "ms": time.ticks_diff(time.ticks_ms(), t0),
    }


async def c_cancel_reader_then_close():
    # the protocol layer's teardown: cancel its reader task, then close() without waiting 2 s
    c = await ws.connect(PLAIN + "/clientclose")
    t = asyncio.create_task(c.recv())
    await asyncio.sleep_ms(50)
    t.cancel()
    t0 = time.ticks_ms()
    await c.close(1001, "teardown")
    return {"ms": time.ticks_diff(time.ticks_ms(), t0), "closed": c.closed}


async def c_abort_while_reading():
    # netctl cuts the network: abort() must wake a reader blocked on the socket, plain and TLS
    ctx = tls.context(ca=CERTS + "/ca.der")
    f = {}
    for name, url, kw in (
        ("plain", PLAIN + "/echo", {}),
        ("tls", TLS + "/", {"ssl": ctx, "server_hostname": "localhost"}),
    ):
        c = await ws.connect(url, **kw)
        got = []
        t = asyncio.create_task(read_into(c, got))
        await asyncio.sleep_ms(50)
        c.abort("network down")
        for _ in range(50):
            if t.done():
                break
            await asyncio.sleep_ms(10)
        f[name] = got[0] if got else None
    return f


async def c_server_close():
    c = await ws.connect(PLAIN + "/close")
    return await expect_fail(c.recv())


async def c_drop():
    c = await ws.connect(PLAIN + "/drop")
    f = await expect_fail(c.recv())
    f["closed"] = c.closed
    return f


async def c_ping():
    c = await ws.connect(PLAIN + "/ping")
    t0 = c.last_rx_ms
    await asyncio.sleep_ms(30)
    m = (
        await c.recv()
    )  # the server sends its ping first; recv answers it and returns the next message
    f = {"msg": m, "rx_advanced": time.ticks_diff(c.last_rx_ms, t0) >= 30}
    await c.ping(b"cli")
    await c.send("after ping")
    f["after_ping"] = await c.recv()  # the server's pong arrives first and is skipped
    await c.close()
    return f


async def c_fragments():
    c = await ws.connect(PLAIN + "/frag")
    f = {"text": await c.recv(), "binary": list(await c.recv())}
    await c.close()
    return f


async def c_too_big():
    c = await ws.connect(PLAIN + "/big", max_size=4096)
    f = await expect_fail(c.recv())
    f["closed"] = c.closed
    return f


async def c_early():
    # frames that arrived with the handshake's response are read from the handshake's buffer
    c = await ws.connect(RAW + "/early")
    return {"msgs": [await c.recv(), await c.recv()]}


async def c_interleave():
    c = await ws.connect(RAW + "/interleave")
    f = {"msg": await c.recv()}
    f["masked"] = await expect_fail(c.recv())
    return f


async def c_recv_timeout():
    # The protocol layer may bound recv() with wait_for: idle is harmless, mid-frame drops the link
    c = await ws.connect(PLAIN + "/echo")
    f = {"idle": await expect_fail(asyncio.wait_for_ms(c.recv(), 50))}
    await c.send("still fine")
    f["after_idle"] = await c.recv()
    await c.close()
    c = await ws.connect(RAW + "/half")
    f["half"] = await expect_fail(asyncio.wait_for_ms(c.recv(), 200))
    f["half_closed"] = (c.closed, c.close_code)
    f["half_next"] = await expect_fail(c.recv())
    return f


async def c_bad_utf8():
    c = await ws.connect(RAW + "/badutf8")
    return await expect_fail(c.recv())


async def c_handshake_errors():
    c = await ws.connect(RAW + "/noproto", subprotocol=None)  # nothing offered, nothing required
    await c.close()
    return {
        "no_proto_unoffered": c.subprotocol,
        "404": await expect_fail(ws.connect(PLAIN + "/nope")),
        "bad_accept": await expect_fail(ws.connect(RAW + "/badaccept")),
        "no_proto": await expect_fail(ws.connect(RAW + "/noproto")),
        "other_proto": await expect_fail(ws.connect(RAW + "/otherproto")),
        "silent": await expect_fail(ws.connect(RAW + "/silent", timeout_ms=300)),
        "refused": await expect_fail(ws.connect("ws://127.0.0.1:%d/" % CFG["closed_port"])),
        "bad_url": await expect_fail(ws.connect("http://127.0.0.1/")),
        "wss_no_ctx": await expect_fail(ws.connect(TLS + "/")),
        "ws_with_ctx": await expect_fail(ws.connect(PLAIN + "/", ssl=tls.context(insecure=True))),
    }


async def c_auth():
    c = await ws.connect(AUTH + "/CP00001", auth=("CP00001", "s3cret"))
    await c.send("hi")
    f = {"echo": await c.recv()}
    await c.close()
    f["wrong"] = await expect_fail(ws.connect(AUTH + "/CP00001", auth=("CP00001", "nope")))
    f["missing"] = await expect_fail(ws.connect(AUTH + "/CP00001"))
    return f


async def c_tls():
    ctx = tls.context(ca=CERTS + "/ca.der")
    t0 = time.ticks_ms()
    c = await ws.connect(TLS + "/tls", ssl=ctx, server_hostname="localhost")
    f = {"ms": time.ticks_diff(time.ticks_ms(), t0), "subprotocol": c.subprotocol}
    await c.send("over tls")
    f["echo"] = await c.recv()
    await c.close()
    with open(CERTS + "/other_ca.der", "rb") as fh:
        other = fh.read()
    f["wrong_ca"] = await expect_fail(
        ws.connect(TLS + "/", ssl=tls.context(ca=other), server_hostname="localhost")
    )
    f["wrong_host"] = await expect_fail(
        ws.connect(TLS + "/", ssl=ctx, server_hostname="wrong.example")
    )
    # the explicit opt-out still encrypts, it only skips verification
    c = await ws.connect(TLS + "/", ssl=tls.context(insecure=True), server_hostname="x")
    await c.send("insecure")
    f["insecure_echo"] = await c.recv()
    await c.close()
    return f


async def c_mtls():
    ctx = tls.context(
        ca=CERTS + "/ca.der", cert=CERTS + "/client.der", key=CERTS + "/client_key.der"
    )
    c = await ws.connect(MTLS + "/mtls", ssl=ctx, server_hostname="localhost")
    await c.send("who am i")
    f = {"echo": await c.recv()}
    await c.close()
    f["no_cert"] = await expect_fail(
        ws.connect(MTLS + "/", ssl=tls.context(ca=CERTS + "/ca.der"), server_hostname="localhost")
    )
    return f


async def c_tls_args():
    f = {}
    for name, kw in (
        ("no_ca", {}),
        ("cert_no_key", {"ca": CERTS + "/ca.der", "cert": b"x"}),
        ("pem", {"ca": b"-----BEGIN CERTIFICATE-----\nMII=\n"}),
    ):
        try:
            tls.context(**kw)
            f[name] = None
        except ValueError as e:
            f[name] = str(e)
    return f


def nfds():
    import os

    return len(os.listdir("/proc/self/fd"))


async def c_fd_leaks():
    # every failure path must close its socket: they have no finaliser, and an ESP32 has ~10
    ctx = tls.context(ca=CERTS + "/ca.der")
    hole = "127.0.0.1:%d/" % CFG["blackhole"]
    before = nfds()
    f = {}
    for _ in range(3):
        f["hole"] = await expect_fail(ws.connect("ws://" + hole, timeout_ms=150))
        f["hole_tls"] = await expect_fail(
            ws.connect("wss://" + hole, ssl=ctx, server_hostname="localhost", timeout_ms=150)
        )
        await expect_fail(ws.connect("ws://127.0.0.1:%d/" % CFG["closed_port"]))
        await expect_fail(ws.connect(AUTH + "/x", auth=("CP00001", "nope")))
        await expect_fail(ws.connect(RAW + "/badaccept"))
        await expect_fail(ws.connect(TLS + "/", ssl=ctx, server_hostname="wrong.example"))
        c = await ws.connect(TLS + "/", ssl=ctx, server_hostname="localhost")
        await c.close()
        c = await ws.connect(PLAIN + "/echo")
        c.abort()
        c = await ws.connect(TLS + "/", ssl=ctx, server_hostname="localhost")
        c.abort()
        c = await ws.connect(TLS + "/close", ssl=ctx, server_hostname="localhost")
        f["tls_server_close"] = await expect_fail(c.recv())
    f["fds_before"], f["fds_after"] = before, nfds()
    return f


async def c_memory():
    # Heap per open connection: gc.mem_alloc after collect, averaged over a few open at once,
    # after a warm-up so one-off allocations (IO queue, interned names) are not counted.
    f = {"import_asyncio": _M1 - _M0, "import_net_ws": _M2 - _M1}
    ctx = tls.context(ca=CERTS + "/ca.der")
    for url, kw, key in (
        (PLAIN + "/echo", {}, "plain_open"),
        (TLS + "/", {"ssl": ctx, "server_hostname": "localhost"}, "tls_open"),
    ):
        await (await ws.connect(url, **kw)).close()
        gc.collect()
        m = gc.mem_alloc()
        conns = []
        for _ in range(4):  # MicroPython has no await inside comprehensions
            conns.append(await ws.connect(url, **kw))
        gc.collect()
        f[key] = (gc.mem_alloc() - m) // 4
        for c in conns:
            await c.close()
        conns = c = None
    for url, kw, key in (
        (TLS + "/", {"ssl": ctx, "server_hostname": "localhost"}, "tls_connect_ms"),
        (PLAIN + "/echo", {}, "plain_connect_ms"),
    ):
        ms = []
        for _ in range(5):
            t0 = time.ticks_ms()
            c = await ws.connect(url, **kw)
            ms.append(time.ticks_diff(time.ticks_ms(), t0))
            await c.close()
        f[key] = ms
    return f


async def main():
    for name in sorted(globals()):
        if name.startswith("c_"):
            await check(name[2:], globals()[name])
    print("DONE")


asyncio.run(main())
