"""Appends records to a JSONL file in batches, off the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import IO

from .records import Record

LOG = logging.getLogger("tools.csms")


class JsonlWriter:
    """A record sink: `add` is O(1); a task writes the pending batch every `interval` seconds."""

    def __init__(self, path: str, interval: float = 0.25, batch: int = 2_000) -> None:
        self.path = path
        self.interval = interval
        self.batch = batch
        self._pending: list[Record] = []
        self._file: IO[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._closing = False

    def add(self, rec: Record) -> None:
        self._pending.append(rec)
        if len(self._pending) >= self.batch:
            self._kick.set()

    async def start(self) -> None:
        if self._task is None:
            self._file = await asyncio.to_thread(open, self.path, "a", encoding="utf-8")
            self._task = asyncio.create_task(self._run(), name="csms-jsonl")

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._kick.wait(), self.interval)
            except TimeoutError:
                pass
            self._kick.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._pending or self._file is None:
            return
        batch, self._pending = self._pending, []
        # Serialised at flush time so that late annotations (Record.error) are included.
        text = "".join(
            json.dumps(r.to_dict(), separators=(",", ":"), default=str) + "\n" for r in batch
        )
        file = self._file
        try:
            await asyncio.to_thread(_write, file, text)
        except OSError:
            LOG.exception("writing records to %s failed", self.path)

    async def close(self) -> None:
        if self._task is not None:
            # Not cancelled: a write already handed to a thread must finish before the last one.
            self._closing = True
            self._kick.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
        if self._file is not None:
            file, self._file = self._file, None
            await asyncio.to_thread(file.close)


def _write(file: IO[str], text: str) -> None:
    file.write(text)
    file.flush()
