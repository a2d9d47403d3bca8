"""Launcher (zygote) tests: C and Python zygotes forking real MicroPython children."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness.launcher import build, client
from harness.launcher.client import Zygote, ZygoteError

TIMEOUT = 15.0
PR_SET_CHILD_SUBREAPER = 36


def _c_available() -> str | None:
    """None if the C zygote is (or can be) built; else the skip reason."""
    try:
        build.compiler()
    except build.BuildError as exc:
        return str(exc)
    build.ensure_built()
    return None


@pytest.fixture(params=["c", "python"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "c" and (reason := _c_available()):
        pytest.skip(f"no C zygote: {reason}")
    return request.param


@pytest.fixture
async def zygote(kind: str) -> AsyncIterator[Zygote]:
    z = await Zygote.start(prefer=kind, fallback=False)
    assert z.kind == kind
    yield z
    await z.close()


def mp_argv(script: Path, heap: str = "128k") -> list[str]:
    return ["micropython", "-X", f"heapsize={heap}", str(script)]


def write_script(tmp_path: Path, text: str, name: str = "script.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def spawn_with_console(z: Zygote, argv: list[str], **kw: object) -> tuple[int, socket.socket]:
    """Spawn with one end of a fresh socketpair as the console; return (pid, our end)."""
    ours, theirs = socket.socketpair()
    try:
        pid = await z.spawn(argv, console_fd=theirs.fileno(), **kw)  # type: ignore[arg-type]
    finally:
        theirs.close()
    ours.setblocking(False)
    return pid, ours


async def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """Read the console until marker appears (or fail after TIMEOUT)."""
    loop = asyncio.get_running_loop()
    data = b""

    async def reader() -> bytes:
        nonlocal data
        while marker not in data:
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise EOFError(data)
            data += chunk
        return data

    return await asyncio.wait_for(reader(), TIMEOUT)


async def wait(z: Zygote, pid: int) -> int:
    return await asyncio.wait_for(z.wait(pid), TIMEOUT)


def proc_state(pid: int) -> str | None:
    """Process state letter from /proc (Z = zombie), or None if the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


SLEEPER = "import time\nprint('up')\ntime.sleep(60)\n"


async def test_console_roundtrip(zygote: Zygote, tmp_path: Path) -> None:
    script = write_script(tmp_path, "import sys\nprint('ready')\nline = sys.stdin.readline()\n"
                                    "print('got:' + line.strip())\n")
    pid, con = await spawn_with_console(zygote, mp_argv(script))
    assert b"ready" in await read_until(con, b"ready\n")
    con.send(b"hello zygote\n")
    assert b"got:hello zygote" in await read_until(con, b"got:hello zygote")
    assert await wait(zygote, pid) == 0
    con.close()


async def test_exit_code_exception_and_signal(zygote: Zygote, tmp_path: Path) -> None:
    code = write_script(tmp_path, "import sys\nsys.exit(7)\n", "code.py")
    boom = write_script(tmp_path, "raise ValueError('boom')\n", "boom.py")
    sleeper = write_script(tmp_path, SLEEPER, "sleep.py")
    pid_code, _ = await spawn_with_console(zygote, mp_argv(code))
    pid_boom, con_boom = await spawn_with_console(zygote, mp_argv(boom))
    pid_sleep, con_sleep = await spawn_with_console(zygote, mp_argv(sleeper))
    await read_until(con_sleep, b"up")
    zygote.kill(pid_sleep, signal.SIGTERM)
    assert await wait(zygote, pid_code) == 7
    assert await wait(zygote, pid_boom) == 1
    assert b"ValueError" in await read_until(con_boom, b"boom")
    assert await wait(zygote, pid_sleep) == -signal.SIGTERM
    assert await zygote.wait(pid_code) == 7  # already reported: answered from recent exits
    with pytest.raises(ProcessLookupError):
        zygote.kill(pid_code)


async def test_exit_callback_and_iterator(kind: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    z = await Zygote.start(prefer=kind, fallback=False, on_exit=lambda p, rc: seen.append((p, rc)))
    try:
        stream = z.exits()
        script = write_script(tmp_path, "import sys\nsys.exit(3)\n")
        pid, _ = await spawn_with_console(z, mp_argv(script))
        assert await asyncio.wait_for(stream.__anext__(), TIMEOUT) == (pid, 3)
        assert seen == [(pid, 3)]
    finally:
        await z.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(stream.__anext__(), TIMEOUT)


async def test_kill_is_limited_to_own_children(zygote: Zygote) -> None:
    with pytest.raises(ProcessLookupError):
        zygote.kill(os.getpid(), 0)
    # The zygote itself refuses too (a request that bypasses the client's check).
    token = 99
    fut = zygote._expect(token, client.OP_KILL)
    zygote._send(client.HDR.pack(client.OP_KILL, 0, token) + client.KILL.pack(os.getpid(), 0),
                 None, token)
    with pytest.raises(ProcessLookupError):
        await asyncio.wait_for(fut, TIMEOUT)


async def test_spawn_errors(zygote: Zygote, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await zygote.spawn(["micropython", "-c", "pass"], cwd=tmp_path / "missing")
    with pytest.raises(ValueError):
        await zygote.spawn(["micropython"], env={"A=B": "x"})
    assert await zygote.spawn(["micropython", "-c", "pass"]) > 0  # default console: /dev/null


async def test_pipelined_spawns(zygote: Zygote, tmp_path: Path) -> None:
    script = write_script(tmp_path, SLEEPER)
    pids = await asyncio.wait_for(asyncio.gather(
        *[zygote.spawn(mp_argv(script), name=f"cp{i}") for i in range(100)]), TIMEOUT)
    assert len(set(pids)) == 100
    assert zygote.live == frozenset(pids)
    assert await zygote.ping() == 100
    for pid in pids:
        zygote.kill(pid)
    codes = await asyncio.wait_for(asyncio.gather(*[zygote.wait(p) for p in pids]), TIMEOUT)
    assert set(codes) == {-signal.SIGKILL}
    assert await zygote.ping() == 0
    assert all(proc_state(p) is None for p in pids)


async def test_close_kills_and_reaps_everything(kind: str, tmp_path: Path) -> None:
    z = await Zygote.start(prefer=kind, fallback=False)
    script = write_script(tmp_path, SLEEPER)
    pids = await asyncio.gather(*[z.spawn(mp_argv(script)) for _ in range(20)])
    waits = [asyncio.ensure_future(z.wait(p)) for p in pids]
    await asyncio.sleep(0.2)
    await z.close()
    reported = await asyncio.wait_for(asyncio.gather(*waits), TIMEOUT)
    assert set(reported) == {-signal.SIGKILL}
    assert z.closed and not z.live
    assert proc_state(z.pid) is None
    assert [p for p in pids if proc_state(p) is not None] == []  # no zombie, no orphan
    with pytest.raises(ZygoteError):
        await z.spawn(mp_argv(script))


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Orphaned descendants are reparented to this test process, so the test can reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield None
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


async def reap_killed(pids: list[int]) -> None:
    """waitpid each reparented pid; each must have died of SIGKILL."""
    for pid in pids:
        _, status = await asyncio.wait_for(asyncio.to_thread(os.waitpid, pid, 0), TIMEOUT)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


async def test_zygote_death_kills_children(kind: str, tmp_path: Path, subreaper: None) -> None:
    z = await Zygote.start(prefer=kind, fallback=False)
    script = write_script(tmp_path, SLEEPER)
    pids, cons = zip(*[await spawn_with_console(z, mp_argv(script)) for _ in range(5)])
    for con in cons:
        await read_until(con, b"up")
    os.kill(z.pid, signal.SIGKILL)
    codes = await asyncio.wait_for(asyncio.gather(*[z.wait(p) for p in pids]), TIMEOUT)
    assert set(codes) == {-signal.SIGKILL}  # the client reports a lost zygote's children
    await z.close()
    await reap_killed(list(pids))  # PDEATHSIG: each child really died with its zygote


SUPERVISOR = """import asyncio, sys
from harness.launcher import Zygote
async def main():
    z = await Zygote.start(prefer=sys.argv[2], fallback=False)
    argv = ["micropython", sys.argv[1]]
    pids = [await z.spawn(argv) for _ in range(3)]
    print(z.pid, *pids, flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


async def test_supervisor_death_kills_zygote_and_children(kind: str, tmp_path: Path,
                                                          subreaper: None) -> None:
    sup = write_script(tmp_path, SUPERVISOR, "supervisor.py")
    sleeper = write_script(tmp_path, SLEEPER, "sleep.py")
    env = {**os.environ, "PYTHONPATH": str(build.REPO)}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(sup), str(sleeper), kind,
                                                stdout=asyncio.subprocess.PIPE, env=env)
    line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)  # type: ignore[union-attr]
    pids = [int(p) for p in line.split()]
    assert len(pids) == 4
    proc.kill()
    await proc.wait()
    # The zygote dies first: of PDEATHSIG, or of EOF on its control socket (then it kills and
    # reaps its children itself). Children not reaped by it were reparented to us and died of
    # their own PDEATHSIG. Either way nothing may be left running.
    for pid in pids:
        try:
            await asyncio.wait_for(asyncio.to_thread(os.waitpid, pid, 0), TIMEOUT)
        except ChildProcessError:
            assert proc_state(pid) is None


async def test_env_cwd_comm_session(zygote: Zygote, tmp_path: Path) -> None:
    work = tmp_path / "flash"
    work.mkdir()
    script = write_script(tmp_path, "import os, sys\nprint(os.getcwd())\n"
                                    "print(os.getenv('EVFW_T'), os.getenv('HOME'))\n"
                                    "print(open('/proc/self/comm').read().strip())\n"
                                    "print('end')\nsys.stdin.readline()\n")
    pid, con = await spawn_with_console(zygote, mp_argv(script), cwd=work,
                                        env={"EVFW_T": "v=1", "HOME": None}, name="charger-0042")
    out = (await read_until(con, b"end")).decode().splitlines()
    assert out[:3] == [str(work), "v=1 None", "charger-0042"]
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "charger-0042"
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[2]) == pid and int(stat[3]) == pid  # own process group and session (setsid)
    status = Path(f"/proc/{pid}/status").read_text()
    assert "SigBlk:\t0000000000000000" in status
    con.send(b"\n")
    assert await wait(zygote, pid) == 0


async def test_no_fd_leaks(zygote: Zygote, tmp_path: Path) -> None:
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)  # even an inheritable fd of the supervisor must not get in
    try:
        before = len(os.listdir(f"/proc/{zygote.pid}/fd"))
        script = write_script(tmp_path, SLEEPER)
        started = [await spawn_with_console(zygote, mp_argv(script)) for _ in range(5)]
        for _, con in started:
            await read_until(con, b"up")
        for pid, con in started:
            fd_dir = Path(f"/proc/{pid}/fd")
            fds = {int(f.name): os.readlink(f) for f in fd_dir.iterdir()}
            assert sorted(fds) == [0, 1, 2]
            assert len(set(fds.values())) == 1 and fds[0].startswith("socket:")
        await zygote.ping()  # a round trip: the zygote finished with every earlier request
        assert len(os.listdir(f"/proc/{zygote.pid}/fd")) == before  # consoles not kept
    finally:
        os.close(leak_r)
        os.close(leak_w)


ROM_SCRIPT = """import os, sys, uctypes, vfs
addr, size = os.getenv('EVFW_ROM').split(':')
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(addr, 16), int(size))), '/rom')
sys.path.insert(0, '/rom')
import fwmod
print(sorted(os.listdir('/rom')), fwmod.hello(), hex(int(addr, 16)))
sys.stdin.readline()
"""


@pytest.fixture(scope="module")
def rom_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("romsrc")
    (src / "fwmod.py").write_text("def hello():\n    return 'hello-from-rom'\n")
    img = src.parent / "fw.romfs"
    subprocess.run([sys.executable, "-m", "mpremote", "romfs", "-o", str(img), "build", str(src)],
                   check=True, capture_output=True, timeout=60)
    return img


async def test_rom_image(kind: str, rom_image: Path, tmp_path: Path) -> None:
    z = await Zygote.start(rom=rom_image, prefer=kind, fallback=False)
    try:
        assert z.rom is not None
        addr, size = z.rom.split(":")
        assert int(size) == rom_image.stat().st_size
        script = write_script(tmp_path, ROM_SCRIPT)
        pid, con = await spawn_with_console(z, mp_argv(script))
        out = await read_until(con, b"\n")
        assert out.decode().strip() == f"['fwmod.mpy'] hello-from-rom {addr}"
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        rom_map = [m for m in maps if m.endswith(str(rom_image))]
        assert rom_map and rom_map[0].startswith(f"{int(addr, 16):x}-")
        assert rom_map[0].split()[1].startswith("r--")  # read-only, shared with the zygote
        con.send(b"\n")
        assert await wait(z, pid) == 0
    finally:
        await z.close()


WARM_SCRIPT = """\
import os, sys
loaded = [os.getenv("WHO")]   # state from before the fork: every child starts from it
print("zygote loaded")
os.system("\\x01evfw-zygote-serve")
loaded.append(os.getenv("WHO"))
print(loaded, os.getcwd(), sys.stdin.readline().strip())
"""


async def test_warm_zygote_forks_from_a_loaded_runtime(rom_image: Path, tmp_path: Path) -> None:
    if reason := _c_available():
        pytest.skip(f"no C zygote: {reason}")
    script = write_script(tmp_path, WARM_SCRIPT)
    z = await Zygote.start(rom=rom_image, preload=(str(script), "64k"), timeout=TIMEOUT)
    try:
        assert z.kind == "c-warm"
        runs = []
        for who in ("a", "b"):
            d = tmp_path / who
            d.mkdir()
            pid, con = await spawn_with_console(z, ["ignored"], cwd=d, env={"WHO": who})
            runs.append((pid, con, d))
        for pid, con, d in runs:
            con.send(b"hi\n")
            out = await read_until(con, b"hi")
            # Each child returned from os.system() with the preloaded state, its own env, cwd, console.
            assert out.decode().strip().splitlines()[-1].strip() == f"[None, '{d.name}'] {d} hi"
            assert await wait(z, pid) == 0
    finally:
        await z.close()


async def test_fallback_to_python(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.WARNING, logger="harness.launcher.client"):
        z = await Zygote.start(prefer="c", binary=tmp_path / "no-such-zygote")
    try:
        assert z.kind == "python"
        assert "C zygote unavailable" in caplog.text
    finally:
        await z.close()
    with pytest.raises(ZygoteError):
        await Zygote.start(prefer="c", binary=tmp_path / "no-such-zygote", fallback=False)


async def test_c_zygote_that_fails_to_start_falls_back(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    fake = tmp_path / "zygote"
    fake.write_text("#!/bin/sh\necho 'cannot load libpython: simulated' >&2\nexit 3\n")
    fake.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="harness.launcher.client"):
        z = await Zygote.start(prefer="c", binary=fake)
    await z.close()
    assert z.kind == "python" and "simulated" in caplog.text


def test_c_zygote_builds_warning_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if reason := _c_available():
        pytest.skip(reason)
    monkeypatch.setattr(build, "CFLAGS", [*build.CFLAGS, "-Werror"])
    out = build.build(tmp_path / "zygote")
    assert subprocess.run([str(out), "--check"]).returncode == 0


def test_protocol_structs_match_readme() -> None:
    # The wire layout is part of the contract with zygote.c: keep the sizes pinned.
    sizes = (client.HDR.size, client.EVENT.size, client.COUNTS.size, client.KILL.size)
    assert sizes == (16, 24, 8, 8)
