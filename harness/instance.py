"""One firmware charger process: its flash directory, its console, its process lifecycle (start,
power cut, reboot, restart policy) and a mirror of its state built from console events."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness import flash as flashdir
from harness.console import ConsoleLink, ConsoleTimeout
from harness.fwbuild import Image
from harness.spawners import WARM_ENV

FRAMES_ENV = "EVFW_FRAMES"   # the console takes framed requests from the start (firmware/console/io.py)

EXIT_REBOOT = 99  # the unix board exits with this to be restarted (boards/unix/board.py)
CONSOLE_BUFFER = 256 * 1024  # socket buffer: the firmware must never block writing its console


def _kib(heap: str) -> int:
    h = heap.strip().lower()
    if h.endswith("k"):
        return int(h[:-1])
    if h.endswith("m"):
        return int(h[:-1]) * 1024
    return int(h) // 1024


class Spawner(Protocol):
    """Starts instance processes; `on_exit(pid, returncode)` reports them (negative = signal)."""

    on_exit: Callable[[int, int], None] | None

    async def spawn(self, argv: list[str], cwd: str, env: dict[str, str], console_fd: int, name: str) -> int: ...

    def kill(self, pid: int, sig: int) -> None: ...


@dataclass
class Exit:
    pid: int
    returncode: int
    at: float

    @property
    def why(self) -> str:
        if self.returncode == EXIT_REBOOT:
            return "reboot"
        if self.returncode < 0:
            try:
                return f"killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"


@dataclass
class State:
    """What the harness knows about a charger, from its console events."""

    connectors: dict[int, dict[str, Any]] = field(default_factory=dict)
    online: bool = False
    registered: bool = False
    boot_status: str | None = None
    transactions_started: int = 0
    transactions_stopped: int = 0
    last_tx: dict[int, dict[str, Any]] = field(default_factory=dict)
    msgs_in: int = 0
    msgs_out: int = 0

    def status(self, conn: int) -> str | None:
        c = self.connectors.get(conn)
        return None if c is None else c.get("status")


Waiter = tuple[Callable[[dict[str, Any]], bool], "asyncio.Future[dict[str, Any]]"]


class Instance:
    def __init__(self, cid: str, flash: Path, config: dict[str, Any], image: Image, spawner: Spawner,
                 heap: str = "256k", restart: str = "always", capture: bool = False,
                 files: dict[str, bytes] | None = None, micropython: str = "micropython",
                 code_in_heap: bool = False) -> None:
        self.id = cid
        self.flash = flash
        self.config = config
        self.image = image
        self.spawner = spawner
        self.heap = heap
        self.code_in_heap = code_in_heap  # no shared ROM image: the bytecode is loaded into the heap
        self.restart = restart          # "always" | "on-reboot" | "never"
        self.capture = capture
        self.files = files or {}
        self.micropython = micropython
        self.console = ConsoleLink(cid, on_event=self._event)
        self.pid: int | None = None
        self.started_at: float | None = None
        self.exits: list[Exit] = []
        self.restarts = 0
        self.state = State()
        self.captured: list[dict[str, Any]] = []
        self.listeners: list[Callable[[Instance, dict[str, Any]], None]] = []
        self.on_start: Callable[[Instance], None] | None = None   # a (re)start got its pid
        self._waiters: list[Waiter] = []
        self._stopping = False
        self._crashes = 0
        self.human = False              # a person is attached: keep human-readable output on
        self.running = asyncio.Event()
        self.stopped = asyncio.Event()
        self.stopped.set()

    # -- lifecycle -----------------------------------------------------------------------------

    def prepare(self) -> None:
        flashdir.prepare(self.flash, self.config, self.files)

    async def start(self) -> None:
        """Boot the firmware (power on). The flash directory keeps whatever it held."""
        if self.pid is not None:
            return
        self._stopping = False
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for s in (mine, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CONSOLE_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CONSOLE_BUFFER)
        env = {"EVFW_IMAGE": str(self.image.root)}
        heap = self.heap
        updated = (self.flash / "app").is_dir()
        if updated and _kib(heap) < 512:
            # A firmware update runs from /app as .mpy files loaded into the heap, not in place
            # from the shared ROM image: give it the room a board with that much code would have.
            heap = "512k"
        elif self.code_in_heap and _kib(heap) < 320:
            heap = "320k"   # measured: a full session needs 272 KiB with the .mpy files in RAM
        argv = [self.micropython, "-X", f"heapsize={heap}", str(self.image.boot)]
        if not updated:
            # This image's console takes framed requests from its first byte: the start-up
            # requests below are read whole, not a poll and a read per byte (~155 of them).
            env[FRAMES_ENV] = "1"
        if not updated and self.config.get("protocol", "ocpp16") == "ocpp16":
            env[WARM_ENV] = "1"   # the warm zygote's preloaded firmware is this one (no update, OCPP)
        try:
            self.pid = await self.spawner.spawn(argv, str(self.flash), env, theirs.fileno(), self.id[:15])
        finally:
            theirs.close()
        self.started_at = time.time()
        if self.on_start is not None:
            self.on_start(self)
        self.state.online = False
        self.state.registered = False
        self.console.attach(mine.detach())
        self.console.framed = FRAMES_ENV in env
        self.stopped.clear()
        self.running.set()
        # Subscribe before the firmware reads its console: the requests wait in the socket.
        self.console.notify("events", "on")
        if not self.human:
            self.console.notify("events", "off", "human")
        if self.capture:
            self.console.notify("capture", "on")
        self.console.notify("frames", "on").add_done_callback(self._framed)
        # Events before the subscription were not seen: seed the mirror from a snapshot.
        self.console.notify("status").add_done_callback(self._seed)

    def _framed(self, fut: asyncio.Future[Any]) -> None:
        # Firmware that knows framed requests gets them from now on; older firmware keeps lines.
        if not fut.cancelled() and fut.exception() is None:
            self.console.framed = True

    def _seed(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        snap = fut.result()
        st = self.state
        for c in snap.get("connectors", []):
            conn = int(c["conn"])
            # An event that arrived in the meantime is newer than the snapshot.
            cur = st.connectors.setdefault(conn, {})
            cur.setdefault("status", c.get("status"))
            cur.setdefault("error", c.get("error"))
            if c.get("tx") and "tx" not in cur:
                cur["tx"] = c["tx"]
        link = snap.get("link") or {}
        st.online = st.online or bool(link.get("online"))
        st.registered = st.registered or bool(link.get("registered"))
        for conn, c in st.connectors.items():
            if c.get("status") is not None:
                self._event({"ev": "status", "conn": conn, "status": c["status"], "error": c.get("error"),
                             "seeded": True})

    def exited(self, returncode: int) -> Exit:
        """Called by the supervisor when the process is gone; restarts per policy."""
        ex = Exit(self.pid or 0, returncode, time.time())
        self.exits.append(ex)
        self.pid = None
        self.running.clear()
        self.console.detach()
        self.state.online = False
        self._event({"ev": "exit", "returncode": returncode, "why": ex.why})
        again = not self._stopping and (
            self.restart == "always" or (self.restart == "on-reboot" and returncode == EXIT_REBOOT))
        if again:
            self.restarts += 1
            # A charger that dies right after booting is crash-looping: back off (0.5 s doubling
            # to 30 s) instead of burning the machine; a reboot or a long life restarts at once.
            quick = returncode != EXIT_REBOOT and self.started_at is not None and ex.at - self.started_at < 10
            self._crashes = self._crashes + 1 if quick else 0
            delay = 0.0 if not self._crashes else min(30.0, 0.5 * 2 ** (self._crashes - 1))
            asyncio.get_running_loop().create_task(self._restart(delay))
        else:
            self.stopped.set()
        return ex

    async def _restart(self, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
            if self._stopping:
                self.stopped.set()
                return
        try:
            await self.start()
        except Exception as e:  # noqa: BLE001 - reported, the fleet goes on
            self._event({"ev": "exit", "returncode": -1, "why": f"restart failed: {e}"})
            self.stopped.set()

    def power_cut(self) -> None:
        """SIGKILL: the firmware gets no chance to save anything (it restarts per policy)."""
        if self.pid is not None:
            self.spawner.kill(self.pid, signal.SIGKILL)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop for good (no restart): SIGTERM, then SIGKILL if it lingers."""
        self._stopping = True
        if self.pid is None:
            self.stopped.set()
            return
        self.spawner.kill(self.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.stopped.wait(), timeout)
        except asyncio.TimeoutError:
            if self.pid is not None:
                self.spawner.kill(self.pid, signal.SIGKILL)
            await asyncio.wait_for(self.stopped.wait(), timeout)

    # -- console -------------------------------------------------------------------------------

    async def request(self, cmd: str, *args: Any, timeout: float = 10.0) -> Any:
        if self.pid is None:
            await asyncio.wait_for(self.running.wait(), timeout)
        try:
            return await self.console.request(cmd, *args, timeout=timeout)
        except ConsoleTimeout:
            if self.human or self.console.fd is None:
                raise
            # Someone left the console in mpremote's raw REPL (Ctrl-A), maybe mid raw-paste:
            # Ctrl-C aborts a paste and clears the buffer, Ctrl-B leaves raw mode (all harmless
            # at the command prompt); then ask once more.
            self.console.write(b"\r\x03\x03\x02")
            return await self.console.request(cmd, *args, timeout=timeout)

    # -- events and state ----------------------------------------------------------------------

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("ev")
        st = self.state
        if kind == "status":
            conn = int(ev.get("conn", 0))
            c = st.connectors.setdefault(conn, {})
            c["status"] = ev.get("status")
            c["error"] = ev.get("error")
        elif kind == "tx_start":
            st.transactions_started += 1
            c = st.connectors.setdefault(int(ev["conn"]), {})
            c["tx"] = ev.get("tx")
        elif kind == "tx_stop":
            st.transactions_stopped += 1
            conn = int(ev["conn"])
            st.connectors.setdefault(conn, {})["tx"] = None
            st.last_tx[conn] = ev.get("tx") or {}
        elif kind == "tx_id":
            for c in st.connectors.values():
                tx = c.get("tx")
                if tx and tx.get("ref") == ev.get("ref"):
                    tx["id"] = ev.get("id")
        elif kind == "net":
            st.online = ev.get("state") == "up"
            if not st.online:
                pass
        elif kind == "boot":
            st.boot_status = ev.get("status")
            st.registered = st.boot_status == "Accepted"
        elif kind == "proto":
            if ev.get("dir") == "tx":
                st.msgs_out += 1
            else:
                st.msgs_in += 1
            self.captured.append({"t": time.time(), **ev})
        for fn in self.listeners:
            fn(self, ev)
        if self._waiters:
            keep: list[Waiter] = []
            for pred, fut in self._waiters:
                if fut.done():
                    continue
                try:
                    hit = pred(ev)
                except Exception as e:  # noqa: BLE001 - a bad predicate fails its own waiter only
                    fut.set_exception(e)
                    continue
                if hit:
                    fut.set_result(ev)
                else:
                    keep.append((pred, fut))
            self._waiters = keep

    async def wait_event(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.id}: event not seen within {timeout:g} s") from None

    async def wait_status(self, conn: int, status: str, timeout: float = 30.0) -> None:
        if self.state.status(conn) == status:
            return
        try:
            await self.wait_event(lambda e: e.get("ev") == "status" and e.get("conn") == conn
                                  and e.get("status") == status, timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.id}: connector {conn} not {status} within {timeout:g} s "
                               f"(it is {self.state.status(conn)})") from None

    def summary(self) -> dict[str, Any]:
        st = self.state
        return {"id": self.id, "pid": self.pid, "running": self.pid is not None, "online": st.online,
                "registered": st.registered, "restarts": self.restarts,
                "last_exit": self.exits[-1].why if self.exits else None,
                "connectors": {str(k): v for k, v in sorted(st.connectors.items())},
                "transactions": st.transactions_stopped, "msgs_in": st.msgs_in, "msgs_out": st.msgs_out}


class SubprocessSpawner:
    """Spawns each instance as its own process via asyncio (simple, ~4 MB each; tests and fallback)."""

    def __init__(self) -> None:
        self.on_exit: Callable[[int, int], None] | None = None
        self._procs: dict[int, asyncio.subprocess.Process] = {}

    async def spawn(self, argv: list[str], cwd: str, env: dict[str, str], console_fd: int, name: str) -> int:
        full = dict(os.environ)
        full.update(env)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=full, stdin=console_fd, stdout=console_fd, stderr=console_fd,
            start_new_session=True)
        self._procs[proc.pid] = proc
        asyncio.get_running_loop().create_task(self._watch(proc))
        return proc.pid

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        rc = await proc.wait()
        self._procs.pop(proc.pid, None)
        if self.on_exit is not None:
            self.on_exit(proc.pid, rc)

    def kill(self, pid: int, sig: int) -> None:
        proc = self._procs.get(pid)
        if proc is not None and proc.returncode is None:
            proc.send_signal(sig)
