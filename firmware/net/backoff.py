# Reconnect back-off: exponential, full jitter, capped, so a fleet does not reconnect in lock-step.
import random

try:
    from os import urandom
except ImportError:
    urandom = None


# Chargers forked from one image (or booted together) share the PRNG state unless it is reseeded
# from real entropy; done per Backoff because one is made after the process exists, not at build.
def _seed():
    if urandom is not None:
        random.seed(int.from_bytes(urandom(4), "big"))


class Backoff:
    # Attempt n waits a uniform random time in [0, min(cap, base * 2**n)] ("full jitter").
    def __init__(self, base_ms=1000, cap_ms=60000):
        if base_ms <= 0 or cap_ms < base_ms:
            raise ValueError("need 0 < base_ms <= cap_ms")
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self._window = base_ms
        _seed()

    # Delay before the next attempt, in ms; widens the window for the one after.
    def next_ms(self):
        w = self._window
        # Doubling stops at the cap, so the window never becomes a long int on a 31-bit port.
        self._window = self.cap_ms if w > self.cap_ms // 2 else w * 2
        return random.randint(0, w)

    # Call after a connection proved healthy, so the next outage starts with short waits again.
    def reset(self):
        self._window = self.base_ms
