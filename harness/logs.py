"""Log and capture files written in batches: one file per supervisor, not per charger, so ten
thousand chargers cost one descriptor and one write a second instead of a write per line."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any


class BatchWriter:
    def __init__(self, path: Path, interval: float = 0.5, max_lines: int = 5000) -> None:
        self.path = path
        self.interval = interval
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._file = None
        self.written = 0

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", buffering=1 << 16)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) >= self.max_lines:
            self.flush()

    def add_record(self, rec: dict[str, Any]) -> None:
        self.add(json.dumps(rec, separators=(",", ":")))

    def flush(self) -> None:
        if not self._lines or self._file is None:
            return
        self._file.write("\n".join(self._lines) + "\n")
        self._file.flush()
        self.written += len(self._lines)
        self._lines.clear()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


_second: list[Any] = [None, ""]   # the last whole second stamped, and its text


def stamp() -> str:
    """Local wall-clock time with milliseconds, for log lines (the second's text made once a second:
    strftime costs ten times the rest, and a fleet logs a few hundred lines a second)."""
    t = time.time()
    s = int(t)
    if s != _second[0]:
        _second[0], _second[1] = s, time.strftime("%H:%M:%S", time.localtime(s))
    return f"{_second[1]}.{int(t * 1000) % 1000:03d}"
