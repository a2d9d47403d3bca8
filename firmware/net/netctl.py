# Emulated network switch: the console can cut the charger's network for a while; protocol links
# wait here before connecting and are closed when the network goes down.
import asyncio
import log

_up = asyncio.Event()
_up.set()
_closers = []
_restore_task = None
# Link impairments the console can inject; the transport (net.ws) applies them per frame.
delay_ms = 0              # added one-way latency, both directions
_tx_open = asyncio.Event()   # cleared: frames we send are held (uplink stalled / partitioned)
_rx_open = asyncio.Event()   # cleared: frames from the peer are not read (downlink stalled)
_tx_open.set()
_rx_open.set()
_impair_task = None
# Nothing injected: the transport skips the hooks below (three coroutines per frame otherwise).
# A flag kept up to date by whatever injects, as it is read for every frame.
clean = True


def _recheck():
    global clean
    clean = not delay_ms and _tx_open.is_set() and _rx_open.is_set()


def set_delay(ms):
    global delay_ms
    delay_ms = ms
    _recheck()


async def before_send():
    await _tx_open.wait()
    if delay_ms:
        await asyncio.sleep_ms(delay_ms)


async def before_recv():
    await _rx_open.wait()


async def after_recv():
    if delay_ms:
        await asyncio.sleep_ms(delay_ms)


def impair(direction, seconds=None):
    # Hold traffic: "tx" (our frames do not leave), "rx" (the peer's frames are not read), "both"
    # (a stalled link). The TCP connection stays open, as in a real partition.
    global _impair_task
    if direction in ("tx", "both"):
        _tx_open.clear()
    if direction in ("rx", "both"):
        _rx_open.clear()
    _recheck()
    log.warn("net", "link %s held%s" % (direction, "" if seconds is None else " for %s s" % seconds))
    if _impair_task is not None:
        _impair_task.cancel()
        _impair_task = None
    if seconds is not None:
        _impair_task = asyncio.create_task(_heal_later(seconds))


async def _heal_later(seconds):
    global _impair_task
    await asyncio.sleep(seconds)
    _impair_task = None
    heal()


def heal():
    global delay_ms
    if not (_tx_open.is_set() and _rx_open.is_set()) or delay_ms:
        log.info("net", "link healthy again")
    _tx_open.set()
    _rx_open.set()
    delay_ms = 0
    _recheck()


def impairments():
    return {"delay_ms": delay_ms, "tx": "open" if _tx_open.is_set() else "held",
            "rx": "open" if _rx_open.is_set() else "held"}


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
