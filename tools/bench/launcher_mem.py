"""Benchmark: PSS per idle MicroPython child and spawn time, C zygote vs Python zygote."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.launcher import Zygote, build

IDLE_SCRIPT = """import gc, os, sys, time
gc.threshold(16384)
rom = os.getenv('EVFW_ROM')
if rom and {mount}:
    import uctypes, vfs
    addr, size = rom.split(':')
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(addr, 16), int(size))), '/rom')
    sys.path.insert(0, '/rom')
    os.listdir('/rom')
print('up')
while True:
    time.sleep(3600)
"""


def rollup(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup as {field: KiB}."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return fields


def build_rom(source: Path, out: Path) -> Path:
    """A ROMFS image of a directory (mpremote romfs build; .py compiled to .mpy)."""
    cmd = [sys.executable, "-m", "mpremote", "romfs", "-o", str(out), "build", str(source)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


async def wait_up(sock: socket.socket) -> None:
    """Read a child's console until it printed 'up'."""
    loop = asyncio.get_running_loop()
    data = b""
    while b"up" not in data:
        chunk = await loop.sock_recv(sock, 256)
        if not chunk:
            raise RuntimeError(f"child console closed early: {data!r}")
        data += chunk


async def measure(kind: str, n: int, heap: str, script: Path, rom: Path | None,
                  settle: float) -> dict[str, float]:
    """Start one zygote, spawn n idle children, sample their memory, tear down."""
    z = await Zygote.start(rom=rom, prefer=kind, fallback=False)
    pairs = [socket.socketpair() for _ in range(n)]
    try:
        argv = ["micropython", "-X", f"heapsize={heap}", str(script)]
        t0 = time.perf_counter()
        pids = await asyncio.gather(*[z.spawn(argv, console_fd=b.fileno(), name=f"bench{i}")
                                      for i, (_, b) in enumerate(pairs)])
        t_spawn = time.perf_counter() - t0
        for _, b in pairs:
            b.close()
        for a, _ in pairs:
            a.setblocking(False)
        await asyncio.wait_for(asyncio.gather(*[wait_up(a) for a, _ in pairs]), 120)
        t_up = time.perf_counter() - t0
        await asyncio.sleep(settle)
        rolls = [rollup(p) for p in pids]
        zroll = rollup(z.pid)
    finally:
        await z.close()
        for a, _ in pairs:
            a.close()
    pss = sum(r["Pss"] for r in rolls)
    private = sum(r["Private_Clean"] + r["Private_Dirty"] for r in rolls)
    return {"spawn_s": t_spawn, "up_s": t_up, "pss_total_kib": pss, "pss_kib": pss / n,
            "private_kib": private / n, "rss_kib": sum(r["Rss"] for r in rolls) / n,
            "zygote_pss_kib": zroll["Pss"]}


def report(label: str, n: int, m: dict[str, float]) -> None:
    print(f"{label:<12} n={n:<5} spawn {m['spawn_s']:6.3f}s  all up {m['up_s']:6.3f}s  "
          f"PSS total {m['pss_total_kib'] / 1024:7.1f} MiB  per child {m['pss_kib']:6.0f} KiB  "
          f"private {m['private_kib']:6.0f} KiB  RSS {m['rss_kib']:6.0f} KiB  "
          f"zygote PSS {m['zygote_pss_kib']:6.0f} KiB", flush=True)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=200, help="children per zygote (default 200)")
    ap.add_argument("--heap", default="128k", help="MicroPython -X heapsize (default 128k)")
    ap.add_argument("--kinds", default="c,python", help="zygote kinds (default c,python)")
    ap.add_argument("--rom", type=Path, help="also measure with this ROMFS image (or dir) mounted")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds idle before sampling")
    return ap.parse_args()


async def run(args: argparse.Namespace) -> None:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if "c" in kinds:
        build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="launcher-bench-") as tmp:
        plain = Path(tmp, "idle.py")
        plain.write_text(IDLE_SCRIPT.format(mount=False))
        mounted = Path(tmp, "idle_rom.py")
        mounted.write_text(IDLE_SCRIPT.format(mount=True))
        rom = args.rom
        if rom is not None and rom.is_dir():
            rom = build_rom(rom, Path(tmp, "fw.romfs"))
        for kind in kinds:
            report(kind, args.n, await measure(kind, args.n, args.heap, plain, None, args.settle))
            if rom is not None:
                m = await measure(kind, args.n, args.heap, mounted, rom, args.settle)
                report(f"{kind}+rom", args.n, m)


def main() -> None:
    asyncio.run(run(parse_args()))


if __name__ == "__main__":
    main()
