# Benchmark of the pure-MicroPython crypto on this port (run by hand, also used by the report):
#   MICROPYPATH=firmware:tests/fw:.frozen micropython -X heapsize=256k tests/fw/crypto_bench.py
# Times (best of N) for key generation, a whole CSR, one ECDSA sign and verify; the longest time the
# event loop waits while a CSR runs through p256.arun(); heap taken by the modules and the live peak.
import gc
import time
import asyncio
from hashlib import sha256

N = 5


def best(fn):
    t = None
    for _ in range(N):
        t0 = time.ticks_us()
        fn()
        dt = time.ticks_diff(time.ticks_us(), t0)
        t = dt if t is None or dt < t else t
    return t // 1000


def steps_of(gen, out):
    # Time each stretch a generator computation runs between two yields (us): what the loop waits.
    t0 = time.ticks_us()
    try:
        while True:
            next(gen)
            t1 = time.ticks_us()
            out.append(time.ticks_diff(t1, t0))
            t0 = t1
    except StopIteration:
        pass


def peak_of(gen):
    # Drive a generator computation, sampling the live heap (after a collection) at every step.
    top = 0
    try:
        while True:
            next(gen)
            gc.collect()
            top = max(top, gc.mem_alloc())
    except StopIteration as e:
        return e.value, top


def main():
    gc.threshold(24 * 1024)   # as app.py sets it on the charger
    gc.collect()
    base = gc.mem_alloc()
    from crypto import p256, x509, csr, pem

    gc.collect()
    mods = gc.mem_alloc() - base
    name = csr.make_name([(x509.O, "CPO"), (x509.CN, "CP-BENCH")])
    d, pub = p256.keypair()
    h = sha256(b"bench").digest()
    sig = p256.sign(d, h)
    ms = {
        "keygen": best(lambda: p256.keypair()),
        "csr": best(lambda: p256.run(csr.g_csr(*p256.keypair(), name))),
        "sign": best(lambda: p256.sign(d, h)),
        "verify": best(lambda: p256.verify(pub, h, sig)),
    }
    import crypto.p256

    crypto.p256._gtab = None   # the first use of G also builds its table
    steps = []
    for _ in range(3):
        steps_of(p256.g_keypair(), steps)
        steps_of(p256.g_sign(d, h), steps)
        steps_of(p256.g_verify(pub, h, *p256.sig_parse(sig)), steps)
    steps.sort()
    gc.collect()
    before = gc.mem_alloc()

    def whole():
        k = yield from p256.g_keypair()
        der = yield from csr.g_csr(k[0], k[1], name)
        return pem.encode(der, "CERTIFICATE REQUEST")

    text, top = peak_of(whole())
    assert text.startswith("-----BEGIN CERTIFICATE REQUEST-----")

    gaps = []

    async def ticker(stop):
        last = time.ticks_ms()
        while not stop:
            await asyncio.sleep_ms(0)
            now = time.ticks_ms()
            gaps.append(time.ticks_diff(now, last))
            last = now

    async def csr_in_task():
        stop = []
        t = asyncio.create_task(ticker(stop))
        await asyncio.sleep_ms(0)
        k = await p256.arun(p256.g_keypair())
        await p256.arun(csr.g_csr(k[0], k[1], name))
        stop.append(1)
        await t

    asyncio.run(csr_in_task())
    print("times ms (best of %d):" % N, ms)
    print("heap: modules %d B (p256, x509, csr, pem, asn1), CSR live peak +%d B over loaded modules"
          % (mods, top - before))
    print("event loop during a CSR: longest wait %d ms over %d turns (slices of 10 ms)" % (max(gaps), len(gaps)))
    print("steps between yields (us): median %d, 99th %d, max %d of %d"
          % (steps[len(steps) // 2], steps[len(steps) * 99 // 100], steps[-1], len(steps)))


main()
