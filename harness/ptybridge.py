"""A pseudo-terminal for one charger's console, made while someone attaches: the user opens the
slave path (pyserial, mpremote, picocom, `evfleet console`) and the bridge copies bytes between it
and the charger's console. The firmware cannot tell the difference from a UART."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable
from pathlib import Path


class PtyBridge:
    def __init__(self, link: Path | None, to_console: Callable[[bytes], None]) -> None:
        self.link = link
        self.to_console = to_console
        self.master = -1
        self.slave = -1
        self.path = ""
        self.dropped = 0
        self.raw_repl = False   # mpremote switched the console to raw REPL (harness must keep quiet)

    def open(self) -> str:
        self.master, self.slave = os.openpty()
        # Raw before anyone opens it: no echo of the firmware's output back into its input.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        # The bridge keeps the slave open (never reads it): without it the master would report
        # HUP in a loop whenever no user has the port open.
        asyncio.get_running_loop().add_reader(self.master, self._from_user)
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.link.with_name(self.link.name + ".tmp")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(self.path)
            os.replace(tmp, self.link)
        return self.path

    def _from_user(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if not data:
            return
        data = data.replace(b"\x1f", b"")   # the harness's frame marker is not for people to type
        if not data:
            return
        if b"\x01" in data:
            self.raw_repl = True
        if b"\x02" in data:
            self.raw_repl = False
        self.to_console(data)

    def to_user(self, data: bytes) -> None:
        """Console output for the user; dropped (counted) when nobody reads the port."""
        if self.master < 0:
            return
        try:
            os.write(self.master, data)
        except (BlockingIOError, InterruptedError):
            self.dropped += len(data)
        except OSError:
            self.dropped += len(data)

    def close(self) -> None:
        if self.master >= 0:
            asyncio.get_running_loop().remove_reader(self.master)
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.master = self.slave = -1
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
