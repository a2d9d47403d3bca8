"""Firmware file server for chargers (plain HTTP, aiohttp): serves firmware bundles for
UpdateFirmware / SignedUpdateFirmware and accepts the diagnostics and log files that GetDiagnostics
and GetLog upload (PUT, POST raw, POST multipart/form-data). Every request is recorded.

    python -m tools.fwserver --dir build/bundles --uploads build/uploads --port 8080

URLs (``/fw/…`` downloads, ``/upload/…`` uploads; anything under ``/status/<code>/`` answers that
status, ``/redirect/<path>`` redirects to ``/<path>``, ``/chunked/<name>`` serves a file with chunked
transfer coding)::

    GET  /fw/<name>                      a file added with add_file() or found in --dir
    PUT  /upload/<name>                  stores the body as <name>            (201)
    POST /upload/<dir>/                  multipart: the form's file name; raw: X-Filename or "upload"
    GET  /api/uploads, /api/uploads/<i>  the list, one upload's bytes
    GET  /api/requests                   every request: method, path, status, bytes
    POST /api/fail {"path": prefix, "status": 503, "count": 2}   next requests under prefix fail

Python::

    async with FwServer() as srv:
        url = srv.add_file("fw-2.0.0.tar", data)          # http://127.0.0.1:<port>/fw/fw-2.0.0.tar
        up = await srv.wait_upload(prefix="CP1-", timeout=10)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Upload:
    name: str
    data: bytes
    method: str
    path: str
    content_type: str
    multipart: bool
    time: float = field(default_factory=time.time)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "size": len(self.data), "method": self.method, "path": self.path,
                "content_type": self.content_type, "multipart": self.multipart, "time": self.time}


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int
    size: int
    remote: str | None
    time: float = field(default_factory=time.time)


def safe_name(name: str) -> str:
    """A file name that cannot leave the upload directory."""
    name = _SAFE.sub("_", name.rsplit("/", 1)[-1]).lstrip(".")
    return name or "upload"


class FwServer:
    def __init__(self, root: Path | str | None = None, uploads: Path | str | None = None,
                 host: str = "127.0.0.1", port: int = 0, max_upload: int = 16 << 20) -> None:
        self.root = Path(root) if root else None
        self.upload_dir = Path(uploads) if uploads else None
        self.host = host
        self.port = port
        self.max_upload = max_upload
        self.files: dict[str, bytes] = {}
        self.uploads: list[Upload] = []
        self.requests: list[RequestRecord] = []
        self._fail: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_upload, middlewares=[self._record])
        app.router.add_get("/api/uploads", self._api_uploads)
        app.router.add_get("/api/uploads/{i:\\d+}", self._api_upload)
        app.router.add_get("/api/requests", self._api_requests)
        app.router.add_post("/api/fail", self._api_fail)
        app.router.add_route("*", "/status/{code:\\d{3}}/{rest:.*}", self._status)
        app.router.add_route("*", "/redirect/{rest:.*}", self._redirect)
        app.router.add_get("/chunked/{name:.*}", self._chunked)
        app.router.add_get("/fw/{name:.*}", self._get)
        app.router.add_route("PUT", "/upload/{name:.*}", self._upload)
        app.router.add_route("POST", "/upload/{name:.*}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FwServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- API -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_file(self, name: str, data: bytes) -> str:
        """Serve data at /fw/<name>; returns its URL."""
        self.files[name] = data
        return f"{self.url}/fw/{name}"

    def upload_url(self, sub: str = "") -> str:
        """A directory URL for GetDiagnostics/GetLog (the charger appends its file name)."""
        return f"{self.url}/upload/{sub}"

    def fail(self, prefix: str, status: int, count: int | None = None) -> None:
        """The next `count` (None: all) requests whose path starts with prefix answer status."""
        self._fail.append({"path": prefix, "status": status, "count": count})

    async def wait_upload(self, name: str | None = None, prefix: str | None = None,
                          timeout: float = 10.0, since: int = 0) -> Upload:
        """The first upload (index >= since) with that name / name prefix."""
        deadline = time.monotonic() + timeout
        while True:
            for up in self.uploads[since:]:
                if (name is None or up.name == name) and (prefix is None or up.name.startswith(prefix)):
                    return up
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no upload {name or prefix or ''} within {timeout:g} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def count(self, path_prefix: str, method: str | None = None) -> int:
        return sum(1 for r in self.requests if r.path.startswith(path_prefix)
                   and (method is None or r.method == method))

    # -- handlers ------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        size = 0
        status = 500
        try:
            resp = await self._injected(request) or await handler(request)
            status = resp.status
            size = getattr(resp, "content_length", None) or 0
            return resp
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            if not request.path.startswith("/api/"):
                self.requests.append(RequestRecord(request.method, request.path, status, size,
                                                   request.remote))
                self._changed.set()

    async def _injected(self, request: web.Request) -> web.StreamResponse | None:
        for rule in self._fail:
            if request.path.startswith(rule["path"]) and rule["count"] != 0:
                if rule["count"] is not None:
                    rule["count"] -= 1
                await request.read()
                return web.Response(status=rule["status"], text="injected failure\n")
        return None

    def _lookup(self, name: str) -> bytes | None:
        if name in self.files:
            return self.files[name]
        if self.root is not None:
            p = (self.root / name).resolve()
            if p.is_file() and self.root.resolve() in p.parents:
                return p.read_bytes()
        return None

    async def _get(self, request: web.Request) -> web.StreamResponse:
        data = self._lookup(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="no such file\n")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        data = self._lookup(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="no such file\n")
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(data), 700):
            await resp.write(data[i:i + 700])
        await resp.write_eof()
        return resp

    async def _status(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=int(request.match_info["code"]), text="as requested\n")

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        where = "/" + request.match_info["rest"]
        if request.method in ("PUT", "POST"):   # 307: the same method and body again
            raise web.HTTPTemporaryRedirect(where)
        raise web.HTTPFound(where)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        ctype = request.headers.get("Content-Type", "")
        multipart = ctype.startswith("multipart/")
        if multipart:
            reader = await request.multipart()
            data = b""
            fname = None
            async for part in reader:
                if getattr(part, "filename", None):
                    fname = part.filename
                    data = await part.read()  # type: ignore[union-attr]
                    ctype = part.headers.get("Content-Type", "")
                    break
            if fname is None:
                return web.Response(status=400, text="no file in the form\n")
            name = fname
        else:
            data = await request.read()
            if not name or name.endswith("/"):
                name += request.headers.get("X-Filename", "upload")
        up = Upload(name.rsplit("/", 1)[-1], data, request.method, request.path, ctype, multipart)
        self.uploads.append(up)
        if self.upload_dir is not None:
            self.upload_dir.mkdir(parents=True, exist_ok=True)
            (self.upload_dir / safe_name(up.name)).write_bytes(data)
        self._changed.set()
        return web.Response(status=201 if request.method == "PUT" else 200, text="stored\n")

    async def _api_uploads(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"uploads": [u.summary() for u in self.uploads]})

    async def _api_upload(self, request: web.Request) -> web.StreamResponse:
        i = int(request.match_info["i"])
        if i >= len(self.uploads):
            return web.json_response({"error": "no such upload"}, status=404)
        return web.Response(body=self.uploads[i].data, content_type="application/octet-stream")

    async def _api_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": [r.__dict__ for r in self.requests]})

    async def _api_fail(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            self.fail(str(body["path"]), int(body["status"]),
                      None if body.get("count") is None else int(body["count"]))
        except (ValueError, KeyError, TypeError) as e:
            return web.json_response({"error": f"bad request: {e}"}, status=400)
        return web.json_response({"ok": True})


async def _main(args: argparse.Namespace) -> None:
    srv = FwServer(args.dir, args.uploads, args.host, args.port)
    await srv.start()
    print(f"http {srv.url}", flush=True)
    print(f"uploads {srv.upload_url()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await srv.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tools.fwserver", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0: any free port")
    ap.add_argument("--dir", help="directory of files served under /fw/")
    ap.add_argument("--uploads", help="directory where uploads are written")
    asyncio.run(_main(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
