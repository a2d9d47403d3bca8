# Drives net.http against the servers of test_http_client.py; prints one "R {json}" line per check.
import gc

gc.collect()
_M0 = gc.mem_alloc()
from net import http  # noqa: E402

gc.collect()
_M1 = gc.mem_alloc()

import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from binascii import hexlify  # noqa: E402
from hashlib import sha256  # noqa: E402

CFG = json.load(open(sys.argv[1]))
WEB = "http://127.0.0.1:%d" % CFG["web"]
RAW = "http://127.0.0.1:%d" % CFG["raw"]


def out(name, **facts):
    facts["check"] = name
    print("R " + json.dumps(facts))


def err(e):
    return {"type": type(e).__name__, "msg": str(e), "kind": getattr(e, "kind", None),
            "status": getattr(e, "status", None)}


def digest(path):
    h = sha256()
    buf = bytearray(512)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf[:n])
    return hexlify(h.digest()).decode()


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


async def check(name, coro, **extra):
    t0 = time.ticks_ms()
    try:
        r = await coro
        facts = {"ok": True, "result": r if isinstance(r, (int, str, type(None))) else len(r)}
        if isinstance(r, bytes):
            facts["sha"] = hexlify(sha256(r).digest()).decode()
    except Exception as e:
        facts = {"ok": False, "error": err(e)}
    facts["ms"] = time.ticks_diff(time.ticks_ms(), t0)
    facts.update(extra)
    out(name, **facts)


async def main():
    out("import", heap=_M1 - _M0)
    await check("get_bytes", http.fetch(WEB + "/fw/small.bin"))
    await check("get_file", http.fetch(WEB + "/fw/big.bin", "big.bin", max_bytes=1 << 20))
    out("get_file_sha", sha=digest("big.bin"))
    await check("chunked", http.fetch(WEB + "/chunked/big.bin", "ch.bin", max_bytes=1 << 20))
    out("chunked_sha", sha=digest("ch.bin"))
    await check("redirect", http.fetch(WEB + "/redirect/fw/small.bin"))
    await check("not_found", http.fetch(WEB + "/fw/none.bin", "nf.bin"))
    out("not_found_file", exists=exists("nf.bin"))
    await check("too_big_declared", http.fetch(WEB + "/fw/big.bin", "tb.bin", max_bytes=1000))
    await check("too_big_chunked", http.fetch(WEB + "/chunked/big.bin", "tc.bin", max_bytes=1000))
    out("too_big_files", exists=exists("tb.bin") or exists("tc.bin"))
    await check("refused", http.fetch("http://127.0.0.1:%d/x" % CFG["closed"], "r.bin"))
    await check("silent", http.fetch(RAW + "/silent", "s.bin", timeout_ms=600))
    await check("garbage", http.fetch(RAW + "/garbage", "g.bin"))
    await check("truncated", http.fetch(RAW + "/truncated", "t.bin"))
    out("truncated_file", exists=exists("t.bin"))
    await check("interim_and_trailers", http.fetch(RAW + "/interim"))
    await check("auth", http.fetch("http://us%40er:pa:ss@127.0.0.1:" + str(CFG["raw"]) + "/auth"))
    await check("relative_redirect", http.fetch(RAW + "/dir/relredirect"))
    with open("up.txt", "w") as f:
        for i in range(300):
            f.write("diagnostics line %d\n" % i)
    await check("put_file", http.send("PUT", WEB + "/upload/put.txt", "up.txt", content_type="text/plain"))
    await check("post_form", http.send("POST", WEB + "/upload/", "up.txt", form="file", filename="form.txt"))
    await check("post_bytes", http.send("POST", WEB + "/upload/raw.bin", data=b"\x00\x01 raw bytes"))
    await check("put_redirect", http.send("PUT", WEB + "/redirect/upload/moved.txt", "up.txt"))
    await check("put_forbidden", http.send("PUT", WEB + "/status/403/x.txt", "up.txt"))
    await check("put_early_refusal", http.send("PUT", RAW + "/refuse", "big.bin"))
    await check("put_missing_file", http.send("PUT", WEB + "/upload/m.txt", "nothere.txt"))
    # A big download costs no more heap than a small one: it streams through one small buffer.
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(3):
        await http.fetch(WEB + "/fw/big.bin", "big.bin", max_bytes=1 << 20)
    gc.collect()
    out("no_growth", grew=gc.mem_alloc() - before)
    # Other tasks keep running during a transfer.
    ticks = [0]

    async def ticker():
        while True:
            await asyncio.sleep_ms(5)
            ticks[0] += 1

    t = asyncio.create_task(ticker())
    await http.fetch(WEB + "/fw/big.bin", "big.bin", max_bytes=1 << 20)
    t.cancel()
    out("loop_free", ticks=ticks[0])


asyncio.run(main())
