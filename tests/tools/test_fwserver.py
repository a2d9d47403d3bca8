"""tools.fwserver: downloads, uploads (PUT, raw and multipart POST), injected failures, the API,
and the command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from tools.fwserver import FwServer


async def test_serves_records_and_stores(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "ondisk.tar").write_bytes(b"from disk")
    async with FwServer(tmp_path / "dir", tmp_path / "up") as srv, aiohttp.ClientSession() as http:
        url = srv.add_file("mem.tar", b"in memory")
        async with http.get(url) as r:
            assert r.status == 200 and await r.read() == b"in memory"
        async with http.get(srv.url + "/fw/ondisk.tar") as r:
            assert await r.read() == b"from disk"
        async with http.get(srv.url + "/fw/../../etc/passwd") as r:
            assert r.status == 404
        async with http.get(srv.url + "/chunked/mem.tar") as r:
            assert r.headers.get("Transfer-Encoding") == "chunked" and await r.read() == b"in memory"
        async with http.put(srv.upload_url("d/") + "a.txt", data=b"put body") as r:
            assert r.status == 201
        form = aiohttp.FormData()
        form.add_field("file", b"form body", filename="b.txt", content_type="text/plain")
        async with http.post(srv.upload_url(), data=form) as r:
            assert r.status == 200
        up = await srv.wait_upload(name="b.txt", timeout=2)
        assert up.multipart and up.data == b"form body"
        assert (tmp_path / "up" / "a.txt").read_bytes() == b"put body"
        srv.fail("/fw/mem.tar", 503, count=1)
        async with http.get(url) as r:
            assert r.status == 503
        async with http.get(url) as r:
            assert r.status == 200
        async with http.put(srv.url + "/status/403/x", data=b"x") as r:
            assert r.status == 403
        async with http.post(srv.url + "/api/fail", json={"path": "/upload/", "status": 500, "count": 1}) as r:
            assert (await r.json())["ok"]
        async with http.put(srv.upload_url() + "c.txt", data=b"c") as r:
            assert r.status == 500
        async with http.get(srv.url + "/api/uploads") as r:
            assert [u["name"] for u in (await r.json())["uploads"]] == ["a.txt", "b.txt"]
        async with http.get(srv.url + "/api/uploads/1") as r:
            assert await r.read() == b"form body"
        assert srv.count("/fw/mem.tar", "GET") == 3
        async with http.get(srv.url + "/api/requests") as r:
            assert len((await r.json())["requests"]) == len(srv.requests)
        try:
            await srv.wait_upload(name="never", timeout=0.2)
            raise AssertionError("no timeout")
        except TimeoutError:
            pass


async def test_command_line(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"cli")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.fwserver", "--port", "0", "--dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()  # type: ignore[union-attr]
        assert line.startswith("http http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            async with http.get(line.split()[1] + "/fw/f.bin") as r:
                assert await r.read() == b"cli"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
