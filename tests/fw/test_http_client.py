"""net.http on the unix port against tools.fwserver (aiohttp) and a raw TCP peer for the answers a
well-behaved server never gives (silence, garbage, a cut body, interim answers, trailers)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from harness.fwbuild import build
from harness.mpbin import micropython_exe, mp_path
from tools.fwserver import FwServer

HERE = Path(__file__).parent
BIG = bytes(range(256)) * 1200            # 300 KiB, more than the whole heap of a small board
SMALL = b"small file\n" * 10


class RawPeer:
    """Answers by path with hand-written bytes; remembers each request head."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await r.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            path = head.split(b" ")[1].decode()
            if path == "/silent":
                await asyncio.sleep(5)
            elif path == "/garbage":
                w.write(b"SSH-2.0-OpenSSH\r\n\r\n")
            elif path == "/truncated":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            elif path == "/interim":
                w.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        b"\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
            elif path == "/auth":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif path == "/dir/relredirect":
                w.write(b"HTTP/1.1 302 Found\r\nLocation: target\r\nContent-Length: 0\r\n\r\n")
            elif path == "/dir/target":
                w.write(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
            elif path == "/refuse":   # refuses an upload before reading it, then closes
                w.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
                await w.drain()
                w.transport.abort()
                return
            await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def _run_check(cfg: dict[str, Any], cwd: Path) -> dict[str, dict[str, Any]]:
    (cwd / "cfg.json").write_text(json.dumps(cfg))
    # The built image (.mpy), as on a charger; a 64 KiB heap is plenty for 300 KiB transfers.
    env = dict(os.environ, MICROPYPATH=mp_path(build("unix").root))
    proc = await asyncio.create_subprocess_exec(
        str(micropython_exe()), "-X", "heapsize=64k", str(HERE / "http_client_check.py"), str(cwd / "cfg.json"),
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    results = {}
    for line in text.splitlines():
        if line.startswith("R "):
            r = json.loads(line[2:])
            results[r["check"]] = r
    return results


async def test_http_client(tmp_path: Path) -> None:
    raw = RawPeer()
    async with FwServer() as web:
        web.add_file("small.bin", SMALL)
        web.add_file("big.bin", BIG)
        cfg = {"web": web.port, "raw": await raw.start(), "closed": _closed_port()}
        try:
            r = await _run_check(cfg, tmp_path)
        finally:
            await raw.stop()
        sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
        print(f"net.http import heap cost: {r['import']['heap']} bytes")
        assert r["get_bytes"]["ok"] and r["get_bytes"]["sha"] == sha(SMALL)
        assert r["get_file"] == {**r["get_file"], "ok": True, "result": len(BIG)}
        assert r["get_file_sha"]["sha"] == sha(BIG)
        assert r["chunked"]["ok"] and r["chunked_sha"]["sha"] == sha(BIG)
        assert r["redirect"]["ok"] and r["redirect"]["sha"] == sha(SMALL)
        assert r["not_found"]["error"]["kind"] == "status" and r["not_found"]["error"]["status"] == 404
        assert not r["not_found_file"]["exists"]
        assert r["too_big_declared"]["error"]["kind"] == "size"
        assert r["too_big_chunked"]["error"]["kind"] == "size"
        assert not r["too_big_files"]["exists"]
        assert r["refused"]["error"]["kind"] == "connect"
        assert r["silent"]["error"]["kind"] == "timeout" and r["silent"]["ms"] < 3000
        assert r["garbage"]["error"]["kind"] == "protocol"
        assert r["truncated"]["error"]["kind"] == "io" and not r["truncated_file"]["exists"]
        assert r["interim_and_trailers"]["ok"] and r["interim_and_trailers"]["sha"] == sha(b"hello world")
        assert r["auth"]["ok"]
        auth = [h for h in raw.heads if h.startswith(b"GET /auth ")][0]
        assert b"Authorization: Basic " + base64.b64encode(b"us@er:pa:ss") in auth
        assert r["relative_redirect"]["ok"] and r["relative_redirect"]["sha"] == sha(b"until close")
        text = "".join(f"diagnostics line {i}\n" for i in range(300)).encode()
        ups = {u.name: u for u in web.uploads}
        assert r["put_file"] == {**r["put_file"], "ok": True, "result": 201}
        assert ups["put.txt"].data == text and ups["put.txt"].method == "PUT"
        assert ups["put.txt"].content_type == "text/plain"
        assert r["post_form"]["ok"] and ups["form.txt"].multipart and ups["form.txt"].data == text
        assert r["post_bytes"]["ok"] and ups["raw.bin"].data == b"\x00\x01 raw bytes"
        assert r["put_redirect"]["ok"] and ups["moved.txt"].data == text
        assert r["put_forbidden"]["error"]["status"] == 403
        assert r["put_early_refusal"]["error"]["status"] == 413
        assert r["put_missing_file"]["error"]["kind"] == "io"
        assert r["no_growth"]["grew"] < 512
        assert r["loop_free"]["ticks"] > 0
