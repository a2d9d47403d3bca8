"""The firmware console on the unix port, driven as a user and the harness would drive it.

tests/fw/console_app.py (a 10 ms ticker that records its worst scheduling gap, demo commands, the
console task) runs with its console on a pty (the child owns the master, the test opens the slave,
docs/shared micropython-platform.md Q1) or on one end of a socketpair that a CPython bridge exposes
as a pty (what the fleet harness does when a user attaches). The firmware must not care which.
"""

from __future__ import annotations

import json
import os
import random
import select
import socket
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from harness.mpbin import FIRMWARE, micropython_exe, mp_path, run_mp

HERE = Path(__file__).parent
APP = HERE / "console_app.py"
PROMPT = b"evse> "
RS = b"\x1e"


# ---- plumbing


class Reader:
    """Drains a byte source from a thread into a buffer; expect() waits for a pattern."""

    def __init__(self, read: Callable[[], bytes]) -> None:
        self._read = read
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                b = self._read()
            except (OSError, serial.SerialException, TypeError):
                break
            if b:
                with self.cond:
                    self.buf += b
                    self.cond.notify_all()

    def take(self) -> bytes:
        with self.cond:
            b = bytes(self.buf)
            self.buf.clear()
            return b

    def expect(self, pat: bytes, timeout: float = 5.0) -> bytes:
        """Everything up to and including the first `pat` (consumed); AssertionError on timeout."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                i = self.buf.find(pat)
                if i >= 0:
                    b = bytes(self.buf[: i + len(pat)])
                    del self.buf[: i + len(pat)]
                    return b
                left = end - time.monotonic()
                if left <= 0:
                    got = bytes(self.buf)[-400:]
                    raise AssertionError(f"timeout waiting for {pat!r}; got {got!r}")
                self.cond.wait(left)

    def stop(self) -> None:
        self.running = False
        self.thread.join(2)


class Serial:
    """A user at the console's pty with pyserial."""

    def __init__(self, path: str) -> None:
        self.ser = serial.Serial(path, 115200, timeout=0.05)
        self.ser.reset_input_buffer()
        self.rx = Reader(lambda: self.ser.read(4096))

    def write(self, b: bytes) -> None:
        self.ser.write(b)

    def cmd(self, line: str, timeout: float = 5.0) -> str:
        """Type a human line; the text between its echo and the next prompt."""
        self.rx.take()
        self.write(line.encode() + b"\r")
        # Wait for the echo first: a log line printed just before it redraws a prompt of its own.
        echo = line.encode() + b"\r\n"
        self.rx.expect(echo, timeout)
        return self.rx.expect(PROMPT, timeout)[: -len(PROMPT)].decode()

    def request(self, obj: dict, framed: bool = True, timeout: float = 5.0) -> dict:
        """Send a machine request; its reply (matched by id) as a dict."""
        lead = RS if framed else b""
        self.write(lead + json.dumps(obj).encode() + b"\r\n")
        while True:
            line = self.rx.expect(b"\r\n", timeout)
            i = line.find(b'{"')
            if i < 0:
                continue
            if framed != (i > 0 and line[i - 1 : i] == RS):
                continue
            rec = json.loads(line[i:-2])
            if rec.get("id") == obj.get("id") and "ok" in rec:
                return rec

    def close(self) -> None:
        self.rx.stop()
        self.ser.close()


class PtyBridge:
    """Copies a socket to a pty master and back, as the harness does for an attached user."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no CR/LF translation on the user's side
        self.path = os.ttyname(self.slave)
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        s = self.sock.fileno()
        while True:
            r, _, _ = select.select([self.master, s, self.stop_r], [], [], 1.0)
            if self.stop_r in r:
                return
            if s in r:
                b = self.sock.recv(65536)
                if not b:
                    return
                os.write(self.master, b)
            if self.master in r:
                try:
                    b = os.read(self.master, 65536)
                except OSError:  # no user side open at the moment
                    time.sleep(0.05)
                    continue
                self.sock.sendall(b)

    def close(self) -> None:
        os.write(self.stop_w, b"x")
        self.thread.join(2)
        for fd in (self.master, self.slave, self.stop_r, self.stop_w):
            os.close(fd)


class App:
    """console_app.py on the unix port; `path` is the serial device a user opens."""

    def __init__(self, mode: str, flash: Path, idle_ms: int | None = None) -> None:
        self.mode = mode
        env = dict(os.environ, MICROPYPATH=mp_path(FIRMWARE, HERE))
        cmd = [str(micropython_exe()), "-X", "heapsize=256k", str(APP)]
        if idle_ms:
            cmd.append(str(idle_ms))
        self.bridge: PtyBridge | None = None
        if mode == "pty":
            master, self.slave = os.openpty()
            tty.setraw(self.slave)  # before the child starts: otherwise its output echoes back
            child = master
            self.path = os.ttyname(self.slave)
        else:
            self.sock, child_sock = socket.socketpair()
            child = child_sock.fileno()
        self.proc = subprocess.Popen(
            cmd, stdin=child, stdout=child, stderr=child, env=env, cwd=flash, start_new_session=True
        )
        if mode == "pty":
            os.close(master)  # the child holds it; we hold a slave fd so the child never sees EIO
        else:
            child_sock.close()
            self.bridge = PtyBridge(self.sock)
            self.path = self.bridge.path
        self.user: Serial | None = None

    def attach(self) -> Serial:
        self.user = Serial(self.path)
        self.user.write(b"\r")
        self.user.rx.expect(PROMPT)
        return self.user

    def detach(self) -> None:
        if self.user:
            self.user.close()
            self.user = None

    def mpremote(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert self.user is None, "mpremote needs the port to itself"
        return subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", self.path, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.detach()
        self.proc.kill()
        self.proc.wait(5)
        if self.bridge:
            self.bridge.close()
            self.sock.close()
        else:
            os.close(self.slave)


@pytest.fixture(params=["pty", "socket"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    a = App(request.param, tmp_path)
    time.sleep(0.3)
    yield a
    assert a.alive(), "the firmware died"
    a.close()


@pytest.fixture
def pty_app(tmp_path: Path) -> Iterator[App]:
    a = App("pty", tmp_path)
    yield a
    assert a.alive(), "the firmware died"
    a.close()


def gap(u: Serial, reset: bool = False) -> int:
    r = u.request({"id": 999, "cmd": "gap", "args": ["reset"] if reset else []})
    return int(r["data"]["max_gap_ms"])


# ---- human commands


def test_human_commands(app: App) -> None:
    u = app.attach()
    out = u.cmd("help")
    assert "add <a> <b>" in out and "events [on|off]" in out and "help [<cmd>]" in out
    assert u.cmd("help add").strip() == "usage: add <a> <b>\r\n  add two integers"
    assert u.cmd("add 2 40").strip() == "42"
    assert u.cmd("add 2").strip() == "error: missing <b>"
    assert u.cmd("add x 1").strip() == "error: <a> must be an integer"
    assert u.cmd("nope 1").strip() == "error: unknown command 'nope' (try help)"
    assert u.cmd('echoargs a "b c" \'d e\'').split("\r\n")[:3] == ["a", "b c", "d e"]
    assert u.cmd('echoargs "open').strip() == "error: unterminated quote"
    out = u.cmd("boom")  # an unexpected exception: logged and answered, console lives on
    assert "E console: boom: ZeroDivisionError" in out and "error: ZeroDivisionError" in out
    assert u.cmd("log").strip() == "level: info"
    assert u.cmd("log chatty").startswith("error: unknown log level")
    assert u.cmd("slow 150").strip() == "slept_ms: 150"  # async command: answered when done
    assert u.cmd("").strip() == ""
    # Editing: backspace, Ctrl-C, and an arrow key's escape sequence are handled, not executed.
    u.rx.take()
    u.write(b"adx\x7fd 1\x1b[A 1\r")
    assert b"\r\n2\r\n" + PROMPT in u.rx.expect(PROMPT)
    u.write(b"garbage\x03")
    u.rx.expect(b"^C\r\n" + PROMPT)
    assert u.cmd("add 1 1").strip() == "2"
    # echo off: no echo and no prompt, answers only (for programs speaking human commands)
    u.rx.take()
    u.write(b"echo off\r")
    u.rx.expect(b"echo: off\r\n")
    u.write(b"add 3 4\r")
    assert u.rx.expect(b"\r\n") == b"7\r\n"
    u.write(b"echo on\r")
    u.rx.expect(PROMPT)


def test_machine_requests(app: App) -> None:
    u = app.attach()
    u.rx.take()
    assert u.request({"id": 7, "cmd": "add", "args": [1, 2]}) == {"id": 7, "ok": True, "data": 3}
    assert u.request({"id": 8, "cmd": "add", "args": ["1", 2]})["data"] == 3
    r = u.request({"id": 9, "cmd": "add", "args": [1]})
    assert r == {"id": 9, "ok": False, "error": "missing <b>"}
    r = u.request({"id": 10, "cmd": "zap"})
    assert r == {"id": 10, "ok": False, "error": "unknown command 'zap' (try help)"}
    r = u.request({"id": 11, "cmd": "boom"})
    assert r["ok"] is False and "ZeroDivisionError" in r["error"]
    assert u.request({"id": 12, "cmd": "slow", "args": [100]})["data"] == {"slept_ms": 100}
    # Plain JSON (no \x1e) for user programs: the same reply as a plain line.
    assert u.request({"id": 13, "cmd": "add", "args": [5, 5]}, framed=False)["data"] == 10
    # Replies are exact records and requests are never echoed.
    u.rx.take()
    u.write(b'\x1e{"id":15,"cmd":"add","args":[2,2]}\r\n')
    line = u.rx.expect(b"\r\n")
    assert line.startswith(RS) and json.loads(line[1:]) == {"id": 15, "ok": True, "data": 4}
    u.write(b'{"id":16,"cmd":"add","args":[1,1]}\r\n')
    line = u.rx.expect(b"\r\n")
    assert line[:1] == b"{" and json.loads(line) == {"id": 16, "ok": True, "data": 2}
    # Broken requests get an error reply, with the id when it could be read.
    u.write(b"\x1e{nope\r\n")
    line = u.rx.expect(b"\r\n")
    assert json.loads(line[1:]) == {"id": None, "ok": False, "error": "bad JSON"}
    u.write(b'\x1e{"id":17}\r\n')
    assert json.loads(u.rx.expect(b"\r\n")[1:]) == {"id": 17, "ok": False, "error": 'missing "cmd"'}
    # A machine request arriving mid-way through a typed line leaves that line intact.
    u.rx.take()
    u.write(b"add 1")
    u.rx.expect(b"add 1")
    u.write(b'\x1e{"id":18,"cmd":"add","args":[0,0]}\r\n')
    u.rx.expect(b'"id":18')
    u.write(b" 9\r")
    assert b"\r\n10\r\n" in u.rx.expect(PROMPT)


def test_events_reach_only_subscribed_channels(app: App) -> None:
    u = app.attach()
    u.cmd("events off")  # the human channel (on by default)
    u.rx.take()
    u.write(b"emit status 2\r")
    out = u.rx.expect(PROMPT)
    time.sleep(0.2)
    out += u.rx.take()
    assert b"status" not in out.replace(b"emit status 2", b"")  # nobody subscribed

    assert u.request({"id": 1, "cmd": "events", "args": ["on"]})["data"] == {
        "events": "on",
        "channel": "harness",
    }
    u.rx.take()
    u.write(b"emit status 2\r")
    out = u.rx.expect(PROMPT)
    time.sleep(0.2)
    lines = (out + u.rx.take()).split(b"\r\n")
    got = [ln for ln in lines if b'"ev"' in ln]
    assert len(got) == 1 and got[0].startswith(RS), got
    assert json.loads(got[0][1:]) == {"ev": "status", "conn": 2, "status": "Charging"}

    # Log lines travel as {"ev":"log"} records to subscribed machine channels.
    u.write(b"say hello there\r")
    out = u.rx.expect(PROMPT)
    line = [ln for ln in out.split(b"\r\n") if b'"ev"' in ln][0]
    assert line.startswith(RS)
    rec = json.loads(line[1:])
    assert rec == {"ev": "log", "lvl": "info", "tag": "app", "msg": "hello there"}

    # The plain JSON channel subscribes on its own; the harness channel is not affected.
    r = u.request({"id": 2, "cmd": "events", "args": ["on"]}, framed=False)
    assert r["data"]["channel"] == "json"
    u.request({"id": 3, "cmd": "events", "args": ["off"]})
    time.sleep(0.1)
    u.rx.take()
    u.write(b"emit meter 1\r")
    out = u.rx.expect(PROMPT)
    time.sleep(0.2)
    got = [ln for ln in (out + u.rx.take()).split(b"\r\n") if b'"ev"' in ln]
    assert len(got) == 1 and got[0][:1] == b"{", got
    assert json.loads(got[0])["ev"] == "meter"

    # The human channel shows events and logs as text.
    u.request({"id": 4, "cmd": "events", "args": ["off"]}, framed=False)
    u.cmd("events on")
    out = u.cmd("emit status 1")
    assert "* status conn=1 status=Charging" in out and '"ev"' not in out
    assert "I app: hi" in u.cmd("say hi")


# ---- not stalling the firmware


def test_partial_line_typed_slowly_does_not_stall(app: App) -> None:
    u = app.attach()
    gap(u, reset=True)
    u.write(b"ad")
    time.sleep(0.6)
    u.write(b"d 2 ")
    time.sleep(0.6)
    u.rx.take()
    u.write(b"3\r")
    assert b"\r\n5\r\n" in u.rx.expect(PROMPT)
    g = gap(u)
    assert g < 100, g


def test_garbage_does_not_kill_the_console(app: App) -> None:
    u = app.attach()
    rnd = random.Random(1234)
    gap(u, reset=True)
    for _ in range(16):
        u.write(bytes(rnd.getrandbits(8) for _ in range(4096)))
        time.sleep(0.02)
    u.write(b"x" * 100_000 + b"\r")  # a huge human line
    u.write(RS + b"{" * 20_000 + b"\r\n")  # a huge request line
    # Whatever state the bytes left (raw REPL, raw-paste, escape sequence, stray request line),
    # Ctrl-C Ctrl-C Ctrl-B brings the friendly console back.
    t0 = time.monotonic()
    u.write(b"\x03\x03\x02\r")
    u.write(b'\x1e{"id":4242,"cmd":"add","args":[1,1]}\r\n')
    u.rx.expect(b'"id":4242', 30)  # all of the above has been read
    print(f"\n[{app.mode}] garbage caught up {time.monotonic() - t0:.2f} s after the last byte")
    u.rx.take()
    u.cmd("echo on")
    assert u.cmd("add 20 22").strip() == "42"
    assert app.alive()

    # The overflow errors, one at a time.
    u.rx.take()
    u.write(b"y" * 5000 + b"\r")
    assert b"error: line too long (max 512 bytes)" in u.rx.expect(PROMPT, 10)
    u.write(RS + b'{"id":1,' + b" " * 9000 + b"}\r\n")
    line = u.rx.expect(b"\r\n", 10)
    assert json.loads(line[line.index(RS) + 1 :]) == {
        "id": None,
        "ok": False,
        "error": "line too long (max 4096 bytes)",
    }
    assert gap(u) < 250


# ---- raw REPL


def test_raw_repl_bytes_and_held_output(pty_app: App) -> None:
    u = pty_app.attach()
    u.cmd("chatter 50")
    u.write(b"\r\x03")
    time.sleep(0.2)
    u.rx.take()
    u.write(b"\r\x01")
    u.rx.expect(b"raw REPL; CTRL-B to exit\r\n>")
    time.sleep(0.5)
    assert u.rx.take() == b""  # log lines are held back while raw mode is active
    u.write(b"print(state['ticks'] > 0)\x04")
    assert u.rx.expect(b"\x04>") == b"OKTrue\n\x04\x04>"
    u.write(b"\x04")  # empty buffer: soft reboot, faked
    assert u.rx.expect(b"CTRL-B to exit\r\n>") == (
        b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>"
    )
    u.write(b"\x05A\x01")
    assert u.rx.expect(b"R\x01\x80\x00\x01", 2) == b"R\x01\x80\x00\x01"  # window 128, 2 credits
    u.write(b"print(6*7)\x04")
    assert u.rx.expect(b"\x04>") == b"\x0442\n\x04\x04>"
    u.write(b"\r\x02")
    out = u.rx.expect(PROMPT)
    assert out.startswith(b"\r\n")
    out += u.rx.expect(b"chatter", 2)
    assert b"console lines dropped" in out or b"I app: chatter" in out
    u.cmd("chatter 0")


def test_raw_repl_idle_timeout(tmp_path: Path) -> None:
    a = App("pty", tmp_path, idle_ms=1000)
    try:
        u = a.attach()
        u.write(b"\x01")
        u.rx.expect(b"CTRL-B to exit\r\n>")
        u.rx.expect(b"raw REPL idle for 1 s: back to the console\r\n" + PROMPT, 4)
        assert u.cmd("add 1 2").strip() == "3"
    finally:
        a.close()


def test_mpremote(app: App, tmp_path: Path) -> None:
    u = app.attach()
    ticks0 = u.request({"id": 1, "cmd": "gap"})["data"]["ticks"]
    u.cmd("chatter 100")  # log lines going on all the time: must not leak into mpremote's output
    app.detach()

    r = app.mpremote("exec", "print(1+1)")  # with mpremote's default soft reset
    assert (r.returncode, r.stdout, r.stderr) == (0, "2\n", "")
    r = app.mpremote("exec", "print(state['ticks'])")  # the app was not restarted
    assert r.returncode == 0 and int(r.stdout) > ticks0, r
    r = app.mpremote("resume", "eval", "[1+2, 'x']")
    assert (r.returncode, r.stdout) == (0, "[3, 'x']\n"), r

    data = random.Random(5).randbytes(40_000)
    src = tmp_path / "src.bin"
    back = tmp_path / "back.bin"
    src.write_bytes(data)
    u = app.attach()
    gap(u, reset=True)
    app.detach()
    t0 = time.monotonic()
    r = app.mpremote("resume", "fs", "cp", str(src), ":up.bin")
    t_up = time.monotonic() - t0
    assert r.returncode == 0, r
    t0 = time.monotonic()
    r = app.mpremote("resume", "fs", "cp", ":up.bin", str(back))
    t_down = time.monotonic() - t0
    assert r.returncode == 0, r
    assert back.read_bytes() == data
    assert (tmp_path / "up.bin").read_bytes() == data  # the child's cwd is tmp_path
    u = app.attach()
    g = gap(u)
    app.detach()

    r = app.mpremote("resume", "fs", "ls")
    assert r.returncode == 0 and "up.bin" in r.stdout, r
    r = app.mpremote("exec", "1/0")
    assert r.returncode == 1
    assert "Traceback" in r.stdout + r.stderr and "ZeroDivisionError" in r.stdout + r.stderr

    u = app.attach()
    assert u.cmd("add 1 1").strip() == "2"
    u.cmd("chatter 0")
    print(f"\n[{app.mode}] fs cp 40 KB: up {t_up:.2f} s, down {t_down:.2f} s; max gap {g} ms")
    assert g < 100, f"ticker stalled {g} ms during fs cp"


# ---- RAM


HEAP_SCRIPT = """
import gc
import asyncio  # the app has it anyway
import log
gc.collect()
a = gc.mem_alloc()
from console import console
gc.collect()
b = gc.mem_alloc()
import console.repl
gc.collect()
c = gc.mem_alloc()
print("HEAP", b - a, c - b)
"""


def test_heap_cost_of_importing_the_console(tmp_path: Path) -> None:
    script = tmp_path / "heap.py"
    script.write_text(HEAP_SCRIPT)
    r = run_mp(script, path=[FIRMWARE], cwd=tmp_path)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    _, console_b, repl_b = out.split()
    print(f"\nheap (unix x64, .py): console {console_b} B, + raw REPL on first Ctrl-A {repl_b} B")
    assert int(console_b) < 32_000
