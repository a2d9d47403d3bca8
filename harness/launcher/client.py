"""Asyncio client of the zygote: start it, spawn/kill chargers, receive their exits."""

from __future__ import annotations

import array
import asyncio
import collections
import errno
import fcntl
import logging
import os
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

from harness.launcher import build

log = logging.getLogger(__name__)

CTL_FD = 3
PROTO_VERSION = 1
OP_SPAWN, OP_KILL, OP_PING = 1, 2, 3
EV_READY, EV_REPLY, EV_EXIT = 0x100, 0x101, 0x102
HDR = struct.Struct("=IIQ")
EVENT = struct.Struct("=IiQii")
COUNTS = struct.Struct("=II")
KILL = struct.Struct("=ii")
MAX_REQ = 65536
RECENT_EXITS = 4096
PY_ZYGOTE = Path(__file__).with_name("zygote.py")

ExitCallback = Callable[[int, int], None]


class ZygoteError(RuntimeError):
    """The zygote could not be started, or it is gone."""


def _c_command(rom: str | None, binary: Path | None, preload: tuple[str, str] | None = None) -> list[str]:
    """Command line of the C zygote, with this interpreter's library paths; preload = (warm boot
    script, heap size) makes it import the firmware once and fork chargers from that heap."""
    # A checkout newer than its binary (a pull, an edit) gets it rebuilt: the warm boot shim and
    # the binary must agree.
    exe = binary or build.ensure_built()
    if not exe.exists():
        raise ZygoteError(f"C zygote {exe} not built (python -m harness.launcher.build)")
    libpython, mprun = build.library_paths()
    cmd = [str(exe), "--libpython", str(libpython), "--mprun", str(mprun)]
    cmd += ["--rom", str(rom)] if rom else []
    return cmd + (["--preload", preload[0], "--heap", preload[1]] if preload else [])


def _py_command(rom: str | None) -> list[str]:
    """Command line of the CPython fallback zygote (a standalone script)."""
    return [sys.executable, "-I", str(PY_ZYGOTE)] + (["--rom", str(rom)] if rom else [])


def _spawn_process(cmd: list[str], ctl: socket.socket, err_w: int) -> int:
    """posix_spawn the zygote: ctl as fd 3, stderr to err_w, stdin /dev/null, own session."""
    src = fcntl.fcntl(ctl.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)  # never 0..3, so no clobbering
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, src, CTL_FD),
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        # setsid: a Ctrl-C on the supervisor's terminal must not reach the zygote directly.
        return os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions, setsid=True)
    finally:
        os.close(src)


async def _wait_pid(pid: int, timeout: float | None = None) -> int:
    """Wait for a child of this process to exit (pidfd, no polling); returns its returncode."""
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(pid)
    done = loop.create_future()
    loop.add_reader(pidfd, lambda: done.done() or done.set_result(None))
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:  # someone else reaped it (a waitpid(-1) child watcher)
        return 0


def _encode_spawn(token: int, argv: Sequence[str], cwd: str, env: Mapping[str, str | None],
                  name: str) -> bytes:
    """Body of a spawn request (see README)."""
    entries = []
    for key, value in env.items():
        if not key or "=" in key:
            raise ValueError(f"bad environment variable name {key!r}")
        entries.append(key if value is None else f"{key}={value}")
    strings = [name, cwd, *argv, *entries]
    if any("\0" in s for s in strings):
        raise ValueError("NUL in spawn strings")
    body = b"".join(os.fsencode(s) + b"\0" for s in strings)
    msg = HDR.pack(OP_SPAWN, 0, token) + COUNTS.pack(len(argv), len(entries)) + body
    if len(msg) > MAX_REQ:
        raise ValueError(f"spawn request too large ({len(msg)} > {MAX_REQ} bytes)")
    return msg


class Zygote:
    """One running zygote (C or Python) and the chargers it forked."""

    def __init__(self, sock: socket.socket, pid: int, kind: str, rom: str | None,
                 err_r: int, on_exit: ExitCallback | None) -> None:
        self.kind = kind
        self.pid = pid
        self.rom = rom
        self.on_exit = on_exit
        self._sock = sock
        self._err_r = err_r
        self._err_buf = b""
        self._loop = asyncio.get_running_loop()
        self._tokens = 0
        self._pending: dict[int, tuple[int, asyncio.Future[tuple[int, int]]]] = {}
        self._outq: collections.deque[tuple[bytes, int | None, int]] = collections.deque()
        self._live: set[int] = set()
        self._waiters: dict[int, list[asyncio.Future[int]]] = {}
        self._recent: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._queues: list[asyncio.Queue[tuple[int, int] | None]] = []
        self._closing = False
        self._done = False
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._loop.add_reader(sock.fileno(), self._on_readable)
        self._loop.add_reader(err_r, self._on_stderr)
        self._watch_task = self._loop.create_task(self._watch())

    # ---- starting ----

    @classmethod
    async def start(cls, rom: str | os.PathLike[str] | None = None, prefer: str = "c",
                    on_exit: ExitCallback | None = None, fallback: bool = True,
                    binary: Path | None = None, timeout: float = 10.0,
                    preload: tuple[str, str] | None = None) -> Zygote:
        """Start a zygote: C if prefer="c" (falls back to Python unless fallback=False); preload
        (C only, never falls back) = (warm boot script, heap size)."""
        if prefer not in ("c", "python"):
            raise ValueError("prefer must be 'c' or 'python'")
        rom_path = os.fspath(rom) if rom is not None else None
        if preload is not None:
            return await cls._launch(_c_command(rom_path, binary, preload), rom_path, on_exit, timeout)
        if prefer == "c":
            try:
                return await cls._launch(_c_command(rom_path, binary), rom_path, on_exit, timeout)
            except (ZygoteError, OSError, build.BuildError) as exc:
                if not fallback:
                    raise ZygoteError(f"C zygote unavailable: {exc}") from exc
                log.warning("C zygote unavailable, using the Python zygote: %s", exc)
        return await cls._launch(_py_command(rom_path), rom_path, on_exit, timeout)

    @classmethod
    async def _launch(cls, cmd: list[str], rom: str | None, on_exit: ExitCallback | None,
                      timeout: float) -> Zygote:
        """Spawn one zygote process and wait for its READY message."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = _spawn_process(cmd, child, err_w)
        except OSError:
            for fd in (err_r, err_w):
                os.close(fd)
            parent.close()
            raise
        finally:
            child.close()
        os.close(err_w)
        parent.setblocking(False)
        try:
            ready = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(parent, 4096),
                                           timeout)
        except (asyncio.TimeoutError, OSError):
            ready = b""
        try:
            kind, rom_env = cls._parse_ready(ready)
        except ZygoteError as exc:
            raise ZygoteError(await cls._startup_failure(cmd, pid, parent, err_r)) from exc
        os.set_blocking(err_r, False)
        return cls(parent, pid, kind, rom_env or None, err_r, on_exit)

    @staticmethod
    def _parse_ready(data: bytes) -> tuple[str, str]:
        """(kind, EVFW_ROM value) from the READY event."""
        if len(data) < EVENT.size:
            raise ZygoteError("no READY message")
        op, _, version, _, _ = EVENT.unpack_from(data)
        if op != EV_READY or version != PROTO_VERSION:
            raise ZygoteError(f"unexpected first message op={op:#x} version={version}")
        parts = data[EVENT.size:].split(b"\0")
        return parts[0].decode(), (parts[1].decode() if len(parts) > 1 else "")

    @staticmethod
    async def _startup_failure(cmd: list[str], pid: int, sock: socket.socket, err_r: int) -> str:
        """Kill and reap a zygote that did not come up; return why (its stderr, its status)."""
        sock.close()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = await _wait_pid(pid)
        with os.fdopen(err_r, "rb") as err:
            text = err.read().decode(errors="replace").strip()
        return f"{cmd[0]} exited with {rc} before READY: {text or 'no message'}"

    # ---- the public API ----

    @property
    def closed(self) -> bool:
        """True once the zygote is gone (closed or lost)."""
        return self._done

    @property
    def live(self) -> frozenset[int]:
        """Pids of children that were spawned and whose exit has not been reported yet."""
        return frozenset(self._live)

    async def spawn(self, argv: Sequence[str], cwd: str | os.PathLike[str] | None = None,
                    env: Mapping[str, str | None] | None = None, console_fd: int | None = None,
                    name: str = "") -> int:
        """Fork one MicroPython child; console_fd becomes its 0/1/2. Returns its pid."""
        token = self._next_token()
        msg = _encode_spawn(token, argv, os.fspath(cwd) if cwd else "", env or {}, name)
        fut = self._expect(token, OP_SPAWN)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC) if console_fd is None else -1
        try:
            self._send(msg, null if console_fd is None else console_fd, token)
        except BaseException:
            self._pending.pop(token, None)
            raise
        finally:
            if null >= 0:
                os.close(null)
        pid, _ = await fut
        return pid

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> None:
        """Send a signal to one of this zygote's live children (fire and forget)."""
        if pid not in self._live:
            raise ProcessLookupError(pid)
        self._send(HDR.pack(OP_KILL, 0, 0) + KILL.pack(pid, int(sig)), None, 0)

    async def wait(self, pid: int) -> int:
        """Returncode of a child (negative: killed by that signal); waits if it is still live."""
        if pid not in self._live:
            if pid in self._recent:
                return self._recent[pid]
            raise ProcessLookupError(pid)
        fut: asyncio.Future[int] = self._loop.create_future()
        self._waiters.setdefault(pid, []).append(fut)
        return await fut

    def exits(self) -> AsyncIterator[tuple[int, int]]:
        """Every exit from now on as (pid, returncode); ends when the zygote is gone."""
        queue: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
        if self._done:
            queue.put_nowait(None)
        self._queues.append(queue)
        return self._drain(queue)

    async def ping(self) -> int:
        """Round trip to the zygote; returns the number of live children it tracks."""
        token = self._next_token()
        fut = self._expect(token, OP_PING)
        self._send(HDR.pack(OP_PING, 0, token), None, token)
        _, count = await fut
        return count

    async def close(self, timeout: float = 5.0) -> None:
        """Close the control socket: the zygote SIGKILLs and reaps every child, then exits."""
        if not self._done:
            self._closing = True
            self._shut_socket()
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        except asyncio.TimeoutError:
            log.warning("zygote %d did not exit in %.1fs; killing it", self.pid, timeout)
            os.kill(self.pid, signal.SIGKILL)
            await self._exited
        await self._watch_task

    async def __aenter__(self) -> Zygote:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- internals: sending ----

    def _next_token(self) -> int:
        self._tokens = self._tokens % (2**63) + 1
        return self._tokens

    def _expect(self, token: int, op: int) -> asyncio.Future[tuple[int, int]]:
        if self._done:
            raise ZygoteError("zygote is closed")
        fut: asyncio.Future[tuple[int, int]] = self._loop.create_future()
        self._pending[token] = (op, fut)
        return fut

    def _send(self, data: bytes, fd: int | None, token: int) -> None:
        """Send now if the socket takes it, else queue (with a dup of fd) until writable."""
        if self._done:
            raise ZygoteError("zygote is closed")
        if not self._outq and self._send_one(data, fd, token):
            return
        self._outq.append((data, os.dup(fd) if fd is not None else None, token))
        if len(self._outq) == 1:
            self._loop.add_writer(self._sock.fileno(), self._flush)

    def _send_one(self, data: bytes, fd: int | None, token: int) -> bool:
        """One sendmsg; False if the socket is full. Other errors fail the request or the link."""
        anc = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
        try:
            self._sock.sendmsg([data], anc)
        except BlockingIOError:
            return False
        except (BrokenPipeError, ConnectionError) as exc:
            self._lost(f"control socket: {exc}")
        except OSError as exc:
            self._fail(token, exc)
        return True

    def _flush(self) -> None:
        while self._outq and not self._done:
            data, fd, token = self._outq[0]
            if not self._send_one(data, fd, token):
                return
            if self._done:  # the link broke: _shut_socket already dropped the queue
                return
            self._outq.popleft()
            if fd is not None:
                os.close(fd)
        if not self._done:
            self._loop.remove_writer(self._sock.fileno())

    def _fail(self, token: int, exc: BaseException) -> None:
        entry = self._pending.pop(token, None)
        if entry and not entry[1].done():
            entry[1].set_exception(exc)

    # ---- internals: receiving ----

    def _on_readable(self) -> None:
        for _ in range(1024):
            try:
                data = self._sock.recv(4096)
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(f"control socket: {exc}")
                return
            if not data:
                self._lost("control socket closed by the zygote")
                return
            if len(data) >= EVENT.size:
                self._dispatch(*EVENT.unpack_from(data))

    def _dispatch(self, op: int, err: int, token: int, pid: int, value: int) -> None:
        if op == EV_EXIT:
            self._report(pid, os.waitstatus_to_exitcode(value))
            return
        if op != EV_REPLY:
            return
        kind, fut = self._pending.pop(token, (0, None))
        if kind == OP_SPAWN and not err:
            self._live.add(pid)  # before anyone can see the pid, so its exit is never missed
            self._recent.pop(pid, None)
        if fut is None or fut.done():
            return
        if err:
            fut.set_exception(OSError(err, os.strerror(err)))
        else:
            fut.set_result((pid, value))

    def _report(self, pid: int, rc: int) -> None:
        """Deliver one child exit to waiters, the callback and every exits() iterator."""
        if pid not in self._live:
            return
        self._live.discard(pid)
        self._recent[pid] = rc
        if len(self._recent) > RECENT_EXITS:
            self._recent.popitem(last=False)
        for fut in self._waiters.pop(pid, []):
            if not fut.done():
                fut.set_result(rc)
        for queue in self._queues:
            queue.put_nowait((pid, rc))
        if self.on_exit is not None:
            try:
                self.on_exit(pid, rc)
            except Exception:  # noqa: BLE001 - a broken callback must not kill the event loop
                log.exception("zygote on_exit callback failed for pid %d", pid)

    def _on_stderr(self) -> None:
        try:
            chunk = os.read(self._err_r, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._loop.remove_reader(self._err_r)
            chunk = b"\n" if self._err_buf else b""
        *lines, self._err_buf = (self._err_buf + chunk).split(b"\n")
        for line in lines:
            log.warning("zygote %d: %s", self.pid, line.decode(errors="replace"))

    async def _drain(self, queue: asyncio.Queue[tuple[int, int] | None]
                     ) -> AsyncIterator[tuple[int, int]]:
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self._queues.remove(queue)

    # ---- internals: the end ----

    async def _watch(self) -> None:
        """Reap the zygote process itself; its death ends everything."""
        rc = await _wait_pid(self.pid)
        if not self._done:
            self._lost(f"zygote process exited with {rc}")
        self._exited.set_result(rc)
        self._loop.remove_reader(self._err_r)
        self._on_stderr_final()

    def _on_stderr_final(self) -> None:
        try:
            rest = os.read(self._err_r, 65536) if self._err_r >= 0 else b""
        except OSError:
            rest = b""
        text = (self._err_buf + rest).decode(errors="replace").strip()
        for line in text.splitlines():
            log.warning("zygote %d: %s", self.pid, line)
        os.close(self._err_r)
        self._err_r = -1

    def _shut_socket(self) -> None:
        self._done = True
        self._loop.remove_reader(self._sock.fileno())
        if self._outq:
            self._loop.remove_writer(self._sock.fileno())
        self._sock.close()
        for _, fd, _ in self._outq:
            if fd is not None:
                os.close(fd)
        self._outq.clear()
        self._finish("zygote closed" if self._closing else "zygote lost")

    def _lost(self, reason: str) -> None:
        """The zygote went away: its children die by PDEATHSIG (or were killed by it)."""
        if self._done:
            return
        if not self._closing:
            log.error("zygote %d (%s) lost: %s", self.pid, self.kind, reason)
        self._shut_socket()

    def _finish(self, reason: str) -> None:
        """Fail pending requests and report every still-live child as killed."""
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ZygoteError(reason))
        self._pending.clear()
        for pid in list(self._live):
            self._report(pid, -signal.SIGKILL)
        for queue in self._queues:
            queue.put_nowait(None)
