# ECDSA on NIST P-256 with SHA-256 (FIPS 186-4, SEC 1 v2, RFC 6979 nonces) in pure MicroPython.
# The slow parts are generators that yield every few point operations: run() drives one to the end,
# arun() drives it from a task and lets the event loop run between slices, so a signature computed
# on an ESP32 (a second or more of big-integer work) never stalls charging, heartbeats, the console.
import time
from hashlib import sha256
from os import urandom

# Curve y^2 = x^3 - 3x + b over GF(P), base point G of prime order N (cofactor 1).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

_INF = (1, 1, 0)  # the point at infinity in Jacobian coordinates (Z = 0)
_G = (GX, GY, 1)
_gtab = None  # 0..15 multiples of G, built on first use


class CryptoError(ValueError):
    pass


# ---- field and group arithmetic. Jacobian (X, Y, Z) stands for the affine (X/Z^2, Y/Z^3).


def _dbl(pt):
    # 2*pt with a = -3: 3M + 5S (EFD dbl-2001-b)
    X1, Y1, Z1 = pt
    if not Z1 or not Y1:
        return _INF
    p = P
    delta = Z1 * Z1 % p
    gamma = Y1 * Y1 % p
    beta = X1 * gamma % p
    alpha = 3 * (X1 - delta) * (X1 + delta) % p
    X3 = (alpha * alpha - 8 * beta) % p
    Z3 = 2 * Y1 * Z1 % p
    Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
    return (X3, Y3, Z3)


def _add(p1, p2):
    # p1 + p2, both Jacobian: 12M + 4S; falls back to doubling when they are the same point
    X1, Y1, Z1 = p1
    X2, Y2, Z2 = p2
    if not Z1:
        return p2
    if not Z2:
        return p1
    p = P
    Z1Z1 = Z1 * Z1 % p
    Z2Z2 = Z2 * Z2 % p
    U1 = X1 * Z2Z2 % p
    U2 = X2 * Z1Z1 % p
    S1 = Y1 * Z2 * Z2Z2 % p
    S2 = Y2 * Z1 * Z1Z1 % p
    H = (U2 - U1) % p
    r = (S2 - S1) % p
    if not H:
        return _dbl(p1) if not r else _INF
    HH = H * H % p
    HHH = H * HH % p
    V = U1 * HH % p
    X3 = (r * r - HHH - 2 * V) % p
    Y3 = (r * (V - X3) - S1 * HHH) % p
    Z3 = Z1 * Z2 * H % p
    return (X3, Y3, Z3)


def _inv(a, m):
    # a^-1 mod m by the extended Euclidean algorithm: 4x faster here than Fermat's pow(a, m-2, m)
    # (and this port's pow() takes no negative exponent).
    u, v, x1, x2 = a % m, m, 1, 0
    if not u:
        raise CryptoError("no inverse of 0")
    while u > 1:
        q = v // u
        u, v = v - q * u, u
        x1, x2 = x2 - q * x1, x1
    return x1 % m


def _affine(pt):
    X, Y, Z = pt
    if not Z:
        raise CryptoError("point at infinity")
    zi = _inv(Z, P)
    zi2 = zi * zi % P
    return X * zi2 % P, Y * zi2 * zi % P


def _table(pt):
    # Generator: [0*pt .. 15*pt], yielding every few additions (a table is 14 point operations).
    t = [_INF, pt]
    for i in range(2, 16):
        t.append(_dbl(t[i >> 1]) if not i & 1 else _add(t[i - 1], pt))
        if not i & 3:
            yield
    return t


def _mul(k, pt):
    # Generator: k*pt by 4-bit fixed windows (64 steps of 4 doublings and one addition).
    global _gtab
    if pt is _G:
        if _gtab is None:
            _gtab = yield from _table(_G)
        tab = _gtab
    else:
        tab = yield from _table(pt)
    R = _INF
    shift = 252
    while shift >= 0:
        if R[2]:
            R = _dbl(_dbl(_dbl(_dbl(R))))
        d = (k >> shift) & 15
        if d:
            R = _add(R, tab[d])
        shift -= 4
        yield
    return R


def _mul2(u1, u2, q):
    # Generator: u1*G + u2*q with one shared doubling chain (Shamir's trick, 2-bit windows).
    g2 = _dbl(_G)
    gs = (_INF, _G, g2, _add(g2, _G))
    q2 = _dbl(q)
    qs = (_INF, q, q2, _add(q2, q))
    yield
    tab = []
    for i in range(16):
        tab.append(_add(gs[i >> 2], qs[i & 3]))
        if not i & 3:
            yield
    R = _INF
    shift = 254
    while shift >= 0:
        if R[2]:
            R = _dbl(_dbl(R))
        d = (((u1 >> shift) & 3) << 2) | ((u2 >> shift) & 3)
        if d:
            R = _add(R, tab[d])
        shift -= 2
        if not shift & 7:
            yield
    return R


# ---- driving the generators


def run(gen):
    # Run a generator computation to its end (blocking) and return its value.
    try:
        while True:
            next(gen)
    except StopIteration as e:
        return e.value


async def arun(gen, slice_ms=10):
    # Run a generator computation from a task, giving the loop a turn every slice_ms of work.
    import asyncio

    t = time.ticks_ms()
    try:
        while True:
            next(gen)
            if time.ticks_diff(time.ticks_ms(), t) >= slice_ms:
                await asyncio.sleep_ms(0)
                t = time.ticks_ms()
    except StopIteration as e:
        return e.value


# ---- keys


def point_bytes(x, y):
    # SEC 1 2.3.3 uncompressed encoding
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def parse_point(data):
    # SEC 1 2.3.4: (x, y) of an uncompressed or compressed point, checked to be on the curve.
    data = bytes(data)
    if len(data) == 65 and data[0] == 4:
        x = int.from_bytes(data[1:33], "big")
        y = int.from_bytes(data[33:], "big")
    elif len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise CryptoError("bad point")
        y = pow((x * x * x - 3 * x + B) % P, (P + 1) // 4, P)  # P = 3 mod 4: the square root
        if (y & 1) != (data[0] & 1):
            y = P - y
    else:
        raise CryptoError("bad point encoding")
    if x >= P or y >= P or (y * y - (x * x * x - 3 * x + B)) % P:
        raise CryptoError("point not on P-256")
    return x, y


def g_public(d):
    # Generator: the public point of private scalar d, as its 65-byte encoding.
    if not 0 < d < N:
        raise CryptoError("bad private key")
    R = yield from _mul(d, _G)
    yield
    return point_bytes(*_affine(R))


def new_private():
    # A uniformly random scalar in [1, N-1] (FIPS 186-4 B.4.2, rejection sampling).
    while True:
        d = int.from_bytes(urandom(32), "big")
        if 0 < d < N:
            return d


def g_keypair():
    # Generator: (d, public point bytes) of a fresh key.
    d = new_private()
    pub = yield from g_public(d)
    return d, pub


# ---- RFC 6979 deterministic nonces (HMAC-SHA256)


def _hmac(key, msg):
    # RFC 2104 with a 64-byte block; keys here are 32 bytes
    k = key + bytes(64 - len(key))
    inner = sha256(bytes(b ^ 0x36 for b in k) + msg).digest()
    return sha256(bytes(b ^ 0x5C for b in k) + inner).digest()


def _nonces(d, h1, extra=b""):
    # Candidate k values for private key d and 32-byte digest h1 (RFC 6979 3.2; extra: 3.6).
    x = d.to_bytes(32, "big")
    z = int.from_bytes(h1, "big")
    if z >= N:
        z -= N
    h = z.to_bytes(32, "big")
    V = b"\x01" * 32
    K = _hmac(b"\x00" * 32, V + b"\x00" + x + h + extra)
    V = _hmac(K, V)
    K = _hmac(K, V + b"\x01" + x + h + extra)
    V = _hmac(K, V)
    while True:
        V = _hmac(K, V)  # qlen = hlen = 256: one block is one candidate
        k = int.from_bytes(V, "big")
        if 0 < k < N:
            yield k
        K = _hmac(K, V + b"\x00")
        V = _hmac(K, V)


# ---- ECDSA (SEC 1 4.1.3 / 4.1.4)


def g_sign(d, digest, extra=b""):
    # Generator: (r, s) signing a 32-byte SHA-256 digest with private scalar d.
    if len(digest) != 32:
        raise CryptoError("digest must be 32 bytes")
    e = int.from_bytes(digest, "big")
    for k in _nonces(d, digest, extra):
        R = yield from _mul(k, _G)
        yield
        r = _affine(R)[0] % N
        if not r:
            continue
        yield
        s = _inv(k, N) * (e + r * d) % N
        if s:
            return r, s


def g_verify(pub, digest, r, s):
    # Generator: True if (r, s) is a valid signature of the digest under the public point bytes.
    if not (0 < r < N and 0 < s < N) or len(digest) != 32:
        return False
    try:
        q = parse_point(pub)
    except CryptoError:
        return False
    e = int.from_bytes(digest, "big")
    yield
    w = _inv(s, N)
    R = yield from _mul2(e * w % N, r * w % N, (q[0], q[1], 1))
    if not R[2]:
        return False
    yield
    return _affine(R)[0] % N == r


def sig_der(r, s):
    # Ecdsa-Sig-Value (RFC 3279 2.2.3)
    from crypto import asn1

    return asn1.seq(asn1.integer(r), asn1.integer(s))


def sig_parse(der):
    from crypto import asn1

    der = bytes(der)
    s0, e0 = asn1.expect(der, 0, asn1.SEQ)
    if e0 != len(der):
        raise CryptoError("trailing bytes after signature")
    kids = asn1.children(der, s0, e0)
    if len(kids) != 2 or kids[0][0] != asn1.INT or kids[1][0] != asn1.INT:
        raise CryptoError("bad ECDSA signature")
    return asn1.to_uint(der, kids[0][1], kids[0][2]), asn1.to_uint(der, kids[1][1], kids[1][2])


# ---- blocking conveniences (tests, small tools); the firmware uses the generators through arun()


def keypair():
    return run(g_keypair())


def public(d):
    return run(g_public(d))


def sign(d, digest):
    return sig_der(*run(g_sign(d, digest)))


def verify(pub, digest, sig):
    try:
        r, s = sig_parse(sig)
    except ValueError:
        return False
    return run(g_verify(pub, digest, r, s))
