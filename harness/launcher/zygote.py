"""CPython fallback zygote: same control protocol as zygote.c, forks children that call run_main."""

# Standalone on purpose (stdlib + micropython_run only): run as `python -m harness.launcher.zygote`
# or by file path. Everything imported here is paid once and shared copy-on-write by the children.

from __future__ import annotations

import array
import ctypes
import errno
import gc
import mmap
import os
import select
import signal
import socket
import struct
import sys

import micropython_run

CTL_FD = 3
PROTO_VERSION = 1
MAX_REQ = 65536
BATCH = 64
OP_SPAWN, OP_KILL, OP_PING = 1, 2, 3
EV_READY, EV_REPLY, EV_EXIT = 0x100, 0x101, 0x102
HDR = struct.Struct("=IIQ")
EVENT = struct.Struct("=IiQii")
COUNTS = struct.Struct("=II")
KILL = struct.Struct("=ii")
PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1
FD_SIZE = array.array("i").itemsize

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]


class Zygote:
    """The zygote's state: control socket, SIGCHLD wakeup pipe and the set of live children."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.ctl = socket.socket(fileno=CTL_FD)
        self.ctl.setblocking(True)
        self.children: set[int] = set()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

    def send(self, op: int, token: int, pid: int = 0, value: int = 0, err: int = 0,
             extra: bytes = b"") -> None:
        """Send one event; a vanished supervisor ends the zygote."""
        try:
            self.ctl.send(EVENT.pack(op, err, token, pid, value) + extra)
        except OSError:
            self.shutdown()

    def shutdown(self) -> None:
        """SIGKILL every child (and its process group), reap them all, exit."""
        for pid in self.children:
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
        os._exit(0)

    def reap(self) -> None:
        """Drain the wakeup pipe and report every exited child."""
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.send(EV_EXIT, 0, pid, status)

    def handle_one(self) -> bool:
        """Serve one request; False when the socket is drained."""
        try:
            data, fds, flags = recv_request(self.ctl)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self.shutdown()
        if not data:
            self.shutdown()
        try:
            token, reply = self.dispatch(data, fds, flags)
        finally:
            for fd in fds:  # before replying: once the pid is out, the console is the child's alone
                os.close(fd)
        if token:
            self.send(EV_REPLY, token, *reply)
        return True

    def dispatch(self, data: bytes, fds: list[int], flags: int) -> tuple[int, tuple[int, int, int]]:
        """Decode and execute one request: (token, (pid, value, errno)); token 0: no reply."""
        if len(data) < HDR.size:
            return 0, (0, 0, 0)
        op, _, token = HDR.unpack_from(data)
        pid, value, err = 0, 0, errno.EINVAL
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            err = errno.E2BIG if flags & socket.MSG_TRUNC else errno.EBADF
        elif op == OP_SPAWN:
            pid, err = self.spawn(data[HDR.size:], fds) if len(fds) == 1 else (0, errno.EBADF)
        elif op == OP_KILL:
            pid, err = self.kill(data[HDR.size:])
        elif op == OP_PING:
            pid, value, err = self.pid, len(self.children), 0
        return token, (pid, value, err)

    def kill(self, body: bytes) -> tuple[int, int]:
        """Signal one of our own live children."""
        if len(body) < KILL.size:
            return 0, errno.EINVAL
        pid, sig = KILL.unpack_from(body)
        if pid not in self.children:
            return pid, errno.ESRCH
        try:
            os.kill(pid, sig)
        except OSError as exc:
            return pid, exc.errno or errno.EINVAL
        return pid, 0

    def spawn(self, body: bytes, fds: list[int]) -> tuple[int, int]:
        """Fork one charger; returns (pid, 0) or (0, errno)."""
        try:
            name, cwd, argv, env = parse_spawn(body)
        except ValueError:
            return 0, errno.EINVAL
        dir_fd = -1
        try:
            if cwd:
                dir_fd = os.open(cwd, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            pid = os.fork()
        except OSError as exc:
            if dir_fd >= 0:
                os.close(dir_fd)
            return 0, exc.errno or errno.EIO
        if pid == 0:
            run_child(self.pid, fds[0], dir_fd, name, argv, env)
        if dir_fd >= 0:
            os.close(dir_fd)
        self.children.add(pid)
        return pid, 0

    def serve(self) -> None:
        """The event loop: control requests and SIGCHLD wakeups."""
        poller = select.poll()
        poller.register(CTL_FD, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if self.wake_r in events:
                self.reap()
            mask = events.get(CTL_FD, 0)
            if mask & select.POLLIN:
                for _ in range(BATCH):
                    if not self.handle_one():
                        break
            elif mask:
                self.shutdown()


def recv_request(sock: socket.socket) -> tuple[bytes, list[int], int]:
    """One non-blocking recvmsg: (data, received fds, msg flags)."""
    # Not socket.recv_fds: it drops its flags argument (CPython 3.11), so it would block.
    data, anc, flags, _ = sock.recvmsg(MAX_REQ, socket.CMSG_SPACE(8 * FD_SIZE),
                                       socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
    fds = array.array("i")
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % FD_SIZE])
    return data, list(fds), flags


def parse_spawn(body: bytes) -> tuple[str, str, list[str], list[str]]:
    """Split a spawn body into (name, cwd, argv, env entries)."""
    if len(body) < COUNTS.size:
        raise ValueError("short spawn request")
    argc, envc = COUNTS.unpack_from(body)
    parts = body[COUNTS.size:].split(b"\0")
    total = 2 + argc + envc
    if argc < 1 or len(parts) <= total:  # every string must be NUL-terminated
        raise ValueError("malformed spawn request")
    text = [os.fsdecode(p) for p in parts[:total]]
    return text[0], text[1], text[2:2 + argc], text[2 + argc:]


def reset_signals() -> None:
    """Default dispositions and an empty mask, as after exec."""
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def apply_env(env: list[str]) -> None:
    """KEY=VALUE sets, a bare KEY unsets."""
    for entry in env:
        key, eq, value = entry.partition("=")
        if eq:
            os.environ[key] = value
        else:
            os.environ.pop(key, None)


def run_child(zygote_pid: int, console: int, dir_fd: int, name: str, argv: list[str],
              env: list[str]) -> None:
    """After fork: isolate, wire the console to 0/1/2, run MicroPython, never return."""
    rc = 127
    try:
        os.setsid()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != zygote_pid:
            os._exit(127)
        reset_signals()
        for fd in (0, 1, 2):
            os.dup2(console, fd)
        if dir_fd >= 0:
            os.fchdir(dir_fd)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        apply_env(env)
        if name:
            libc.prctl(PR_SET_NAME, os.fsencode(name)[:15], 0, 0, 0)
        rc = micropython_run.run_main(argv)
    except BaseException as exc:  # noqa: BLE001 - nothing may escape into the zygote's loop
        try:
            os.write(2, f"zygote child: {exc!r}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(rc if isinstance(rc, int) else 0)


def map_rom(path: str) -> str:
    """mmap the ROM image read-only and return its EVFW_ROM value (<hex address>:<length>)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size <= 0:
            raise SystemExit(f"zygote: ROM image is empty: {path}")
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED | mmap.MAP_POPULATE, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            reason = os.strerror(ctypes.get_errno())
            raise SystemExit(f"zygote: cannot map ROM image {path}: {reason}")
    finally:
        os.close(fd)
    return f"0x{addr:x}:{size}"


def is_seqpacket(fd: int) -> bool:
    """Whether fd is a SOCK_SEQPACKET socket."""
    try:
        probe = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    with probe:
        return probe.type == socket.SOCK_SEQPACKET


def parse_args(args: list[str]) -> str | None:
    """The only option: --rom FILE."""
    if not args:
        return None
    if len(args) == 2 and args[0] == "--rom":
        return args[1]
    raise SystemExit("usage: python -m harness.launcher.zygote [--rom FILE]")


def main() -> None:
    """Start-up checks, then serve until the control socket closes."""
    rom = parse_args(sys.argv[1:])
    if not is_seqpacket(CTL_FD):
        raise SystemExit("zygote: fd 3 must be an AF_UNIX SOCK_SEQPACKET socket")
    os.closerange(CTL_FD + 1, os.sysconf("SC_OPEN_MAX"))
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc.prctl(PR_SET_NAME, b"evfw-zygote-py", 0, 0, 0)
    rom_env = map_rom(rom) if rom else ""
    if rom_env:
        os.environ["EVFW_ROM"] = rom_env
    zygote = Zygote()
    gc.collect()
    gc.freeze()
    zygote.send(EV_READY, PROTO_VERSION, zygote.pid, extra=b"python\0" + rom_env.encode() + b"\0")
    zygote.serve()


if __name__ == "__main__":
    main()
