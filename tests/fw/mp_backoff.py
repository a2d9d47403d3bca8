# Tests for net.backoff: exponential windows, full jitter, the cap, reset, reseeding from urandom.
import random

import mptest
from net.backoff import Backoff


# Largest of many first-n-th draws, over fresh Backoffs, so a window's bound and growth both show.
def _draws(k, n=200, base=1000, cap=60000):
    out = []
    for _ in range(n):
        b = Backoff(base, cap)
        for _ in range(k):
            b.next_ms()
        out.append(b.next_ms())
    return out


def test_each_attempt_stays_in_its_window():
    for k in range(8):
        w = min(60000, 1000 << k)
        d = _draws(k, 100)
        assert min(d) >= 0 and max(d) <= w, (k, max(d))


def test_windows_grow_exponentially():
    # with 200 draws from [0, 32000] the chance that none exceeds 16000 is 2**-200
    assert max(_draws(5)) > 16000
    assert max(_draws(0)) <= 1000


def test_cap_holds_and_window_stops_growing():
    b = Backoff(1000, 60000)
    vals = [b.next_ms() for _ in range(200)]
    assert max(vals) <= 60000
    assert b._window == 60000  # no ever-growing long int on a 31-bit small-int port
    tail = vals[100:]
    mean = sum(tail) // len(tail)
    assert 18000 < mean < 42000, mean  # uniform on [0, cap]: mean cap/2


def test_reset_starts_over():
    b = Backoff(500, 8000)
    for _ in range(10):
        b.next_ms()
    b.reset()
    assert b.next_ms() <= 500
    assert b._window == 1000


def test_jitter_spreads_a_fleet():
    # 1000 chargers losing the CSMS together: their 4th waits must not coincide
    first = _draws(3, 1000)
    assert len(set(first)) > 700, len(set(first))


def test_new_backoff_reseeds_from_urandom():
    # a forked fleet shares PRNG state; Backoff() must not replay it
    random.seed(1)
    shared = [random.randint(0, 60000) for _ in range(5)]
    random.seed(1)
    b = Backoff(60000, 60000)
    assert [b.next_ms() for _ in range(5)] != shared


def test_bad_arguments():
    for args in ((0, 100), (-1, 100), (2000, 1000)):
        try:
            Backoff(*args)
        except ValueError:
            continue
        raise AssertionError(args)


mptest.run(globals())
