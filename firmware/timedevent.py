# An asyncio Event whose wait can time out, for the waits that run for every message.
# asyncio.wait_for(event.wait(), t) makes two tasks, a closure and a cancelled sleep per wait
# (~1 KB and a dozen scheduler passes, measured); here a waiter simply sleeps until its deadline
# and set() moves it to the front of the run queue. Same asyncio on every port (unix, ESP32).
import asyncio
from asyncio import core

_FOREVER_MS = 86400000   # "no timeout": a day, well inside the ticks period; callers loop anyway


class TimedEvent:
    def __init__(self):
        self.state = False
        self._sleepers = []   # tasks asleep in wait_ms(), each in the run queue with its deadline

    def is_set(self):
        return self.state

    def set(self):
        self.state = True
        if self._sleepers:
            q = core._task_queue   # looked up each time: a new event loop has a new queue
            for t in self._sleepers:
                q.remove(t)
                q.push(t)          # due now
            self._sleepers.clear()

    def clear(self):
        self.state = False

    async def wait_ms(self, ms=None):
        # True when set (now or before ms elapsed), False on timeout. A cancelled waiter leaves
        # no trace. Woken by set() means True even if someone cleared the event since.
        if self.state:
            return True
        t = core.cur_task
        self._sleepers.append(t)
        try:
            await asyncio.sleep_ms(_FOREVER_MS if ms is None else max(0, int(ms)))
        finally:
            woken = t not in self._sleepers
            if not woken:
                self._sleepers.remove(t)
        return woken

    def wait(self, seconds=None):
        return self.wait_ms(None if seconds is None else seconds * 1000)
