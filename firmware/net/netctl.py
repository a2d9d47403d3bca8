# Emulated network switch: the console can cut the charger's network for a while; protocol links
# wait here before connecting and are closed when the network goes down.
import asyncio
import log

_up = asyncio.Event()
_up.set()
_closers = []
_restore_task = None
delay_ms = 0   # extra latency the console can add before every send


def is_up():
    return _up.is_set()


async def wait_up():
    await _up.wait()


def on_down(fn):
    # fn() is called when the network drops (it should close its connection).
    _closers.append(fn)


def down(seconds=None):
    # Cut the network; with seconds, it comes back by itself.
    global _restore_task
    _up.clear()
    log.warn("net", "network down" + ("" if seconds is None else " for %s s" % seconds))
    for fn in _closers:
        try:
            fn()
        except Exception as e:
            log.exc("net", e, "down")
    if _restore_task is not None:
        _restore_task.cancel()
        _restore_task = None
    if seconds is not None:
        _restore_task = asyncio.create_task(_restore(seconds))


async def _restore(seconds):
    global _restore_task
    await asyncio.sleep(seconds)
    _restore_task = None
    up()


def up():
    if not _up.is_set():
        log.info("net", "network up")
    _up.set()
