# YKC frame codec: CRC-16/MODBUS, frame encode, incremental decoder, and the BCD/BIN/ASCII/CP56Time2a fields.
# Pure functions and one decoder object: no I/O and no clock, so the unix port tests it byte for byte.
from binascii import hexlify, unhexlify

from micropython import const

START = const(0x68)
# CRC byte order of a frame (ykc-protocol.md §1: spec is low byte first; some piles send high byte first).
CRC_LO_FIRST = const(0)
CRC_HI_FIRST = const(1)

_CAP = const(260)  # the largest frame is LEN 255 + 4 = 259 bytes, so one frame always fits
_MIN_LEN = const(4)  # LEN counts SEQ(2) + ENC + TYPE + body

# CRC-16/MODBUS (reflected 0xA001, init 0xFFFF) split into low/high byte tables: the byte-wise update is
# then two lookups and two XORs with no shifts, and the tables are bytes (flash when frozen).
_TLO = (
    b"\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1"
    b"\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0"
    b"\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1"
    b"\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41"
    b"\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0"
    b"\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0"
    b"\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1"
    b"\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40"
)
_THI = (
    b"\x00\xc0\xc1\x01\xc3\x03\x02\xc2\xc6\x06\x07\xc7\x05\xc5\xc4\x04\xcc\x0c\x0d\xcd\x0f\xcf"
    b"\xce\x0e\x0a\xca\xcb\x0b\xc9\x09\x08\xc8\xd8\x18\x19\xd9\x1b\xdb\xda\x1a\x1e\xde\xdf\x1f"
    b"\xdd\x1d\x1c\xdc\x14\xd4\xd5\x15\xd7\x17\x16\xd6\xd2\x12\x13\xd3\x11\xd1\xd0\x10\xf0\x30"
    b"\x31\xf1\x33\xf3\xf2\x32\x36\xf6\xf7\x37\xf5\x35\x34\xf4\x3c\xfc\xfd\x3d\xff\x3f\x3e\xfe"
    b"\xfa\x3a\x3b\xfb\x39\xf9\xf8\x38\x28\xe8\xe9\x29\xeb\x2b\x2a\xea\xee\x2e\x2f\xef\x2d\xed"
    b"\xec\x2c\xe4\x24\x25\xe5\x27\xe7\xe6\x26\x22\xe2\xe3\x23\xe1\x21\x20\xe0\xa0\x60\x61\xa1"
    b"\x63\xa3\xa2\x62\x66\xa6\xa7\x67\xa5\x65\x64\xa4\x6c\xac\xad\x6d\xaf\x6f\x6e\xae\xaa\x6a"
    b"\x6b\xab\x69\xa9\xa8\x68\x78\xb8\xb9\x79\xbb\x7b\x7a\xba\xbe\x7e\x7f\xbf\x7d\xbd\xbc\x7c"
    b"\xb4\x74\x75\xb5\x77\xb7\xb6\x76\x72\xb2\xb3\x73\xb1\x71\x70\xb0\x50\x90\x91\x51\x93\x53"
    b"\x52\x92\x96\x56\x57\x97\x55\x95\x94\x54\x9c\x5c\x5d\x9d\x5f\x9f\x9e\x5e\x5a\x9a\x9b\x5b"
    b"\x99\x59\x58\x98\x88\x48\x49\x89\x4b\x8b\x8a\x4a\x4e\x8e\x8f\x4f\x8d\x4d\x4c\x8c\x44\x84"
    b"\x85\x45\x87\x47\x46\x86\x82\x42\x43\x83\x41\x81\x80\x40"
)


def crc16(data, start=0, end=-1):
    # CRC-16/MODBUS of data[start:end] as an int; the check value of b"123456789" is 0x4B37.
    if end < 0:
        end = len(data)
    lo = 0xFF
    hi = 0xFF
    tlo = _TLO
    thi = _THI
    for i in range(start, end):
        j = lo ^ data[i]
        lo = hi ^ tlo[j]
        hi = thi[j]
    return lo | (hi << 8)


# ---- frames -------------------------------------------------------------------------------------


def encode(seq, typ, body, enc=0, crc_high_first=False):
    # One frame: 0x68, LEN = 4 + len(body), SEQ little-endian, ENC, TYPE, body, CRC over SEQ..body.
    n = len(body)
    if n > 251:
        raise ValueError("body too long")
    f = bytearray(n + 8)
    f[0] = START
    f[1] = n + 4
    f[2] = seq & 0xFF
    f[3] = (seq >> 8) & 0xFF
    f[4] = enc
    f[5] = typ
    f[6 : 6 + n] = body
    c = crc16(f, 2, n + 6)
    if crc_high_first:  # a field quirk, offered so a platform's tolerance can be tested
        f[n + 6] = c >> 8
        f[n + 7] = c & 0xFF
    else:
        f[n + 6] = c & 0xFF
        f[n + 7] = c >> 8
    return bytes(f)


class Decoder:
    # Cuts frames out of a TCP byte stream fed in arbitrary chunks. Usage: `for f in dec.feed(chunk):`;
    # each f is (seq, enc, type, body, crc_order). Framing errors never raise: they go to
    # on_error(reason, detail) ("garbage", "bad length", "bad crc", "truncated") and the decoder
    # resyncs on the next 0x68. A fixed 260-byte buffer holds at most one frame: no growth on a flood.

    def __init__(self, on_error=None):
        self.on_error = on_error
        self.errors = 0
        self._buf = bytearray(_CAP)
        self._mv = memoryview(self._buf)
        self._n = 0
        self._in = b""  # input not yet copied into the buffer
        self._ip = 0
        self._junk = 0  # garbage bytes skipped since the last report

    def reset(self):
        # Drop a partial frame, e.g. after a reconnect or when the session sees the line go quiet.
        self._n = 0
        self._in = b""
        self._ip = 0
        self._junk = 0

    def pending(self):
        # Bytes held that are not yet a frame (a partial frame the session may time out).
        return self._n + len(self._in) - self._ip

    def feed(self, data):
        if self._ip < len(self._in):  # the caller did not drain the previous chunk: keep it
            data = bytes(self._in[self._ip :]) + bytes(data)
        self._in = data
        self._ip = 0
        return self

    def __iter__(self):
        return self

    def __next__(self):
        f = self.next()
        if f is None:
            raise StopIteration
        return f

    def _err(self, reason, detail):
        self.errors += 1
        if self.on_error:
            self.on_error(reason, detail)

    def _drop(self, k):
        n = self._n
        self._mv[0 : n - k] = self._mv[k:n]
        self._n = n - k

    def _fill(self):
        # Copy input into the buffer; False when there was nothing to copy.
        take = min(_CAP - self._n, len(self._in) - self._ip)
        if take <= 0:
            return False
        ip = self._ip
        self._mv[self._n : self._n + take] = memoryview(self._in)[ip : ip + take]
        self._n += take
        self._ip = ip + take
        if self._ip >= len(self._in):
            self._in = b""
            self._ip = 0
        return True

    def _flush_junk(self):
        if self._junk:
            self._err("garbage", "skipped %d bytes" % self._junk)
            self._junk = 0

    def _check(self, p):
        # Frame at buffer offset p: its total size if complete with a valid CRC, 0 if complete and bad,
        # -1 if incomplete. Sets self._order to the CRC byte order found.
        b = self._buf
        ln = b[p + 1]
        end = p + ln + 2
        if end + 2 > self._n:
            return -1
        c = crc16(b, p + 2, end)
        got_lo = b[end] | (b[end + 1] << 8)
        if got_lo == c:
            self._order = CRC_LO_FIRST
        elif (b[end + 1] | (b[end] << 8)) == c:
            self._order = CRC_HI_FIRST
        else:
            self._got = got_lo
            self._want = c
            return 0
        return ln + 4

    def _lookahead(self):
        # The head frame is incomplete and no input is left. If a later 0x68 starts a complete frame
        # with a valid CRC (and ENC 0/1), the head was truncated: drop it so a short frame behind a
        # cut-off long one is not held back until unrelated bytes arrive.
        b = self._buf
        n = self._n
        p = b.find(b"\x68", 1, n)
        while 0 < p < n - 5:
            if b[p + 1] >= _MIN_LEN and b[p + 4] <= 1 and self._check(p) > 0:
                self._err("truncated", "dropped %d bytes" % p)
                self._drop(p)
                return True
            p = b.find(b"\x68", p + 1, n)
        return False

    def next(self):
        # The next complete frame, or None when more input is needed.
        b = self._buf
        while True:
            self._fill()
            n = self._n
            if n == 0:
                self._flush_junk()
                return None
            if b[0] != START:
                k = b.find(b"\x68", 0, n)
                if k < 0:
                    k = n
                self._junk += k
                self._drop(k)
                continue
            self._flush_junk()
            if n < 2:
                if self._fill():
                    continue
                return None
            if b[1] < _MIN_LEN:
                self._err("bad length", "LEN %d" % b[1])
                self._drop(1)
                continue
            r = self._check(0)
            if r < 0:
                if self._ip < len(self._in):
                    continue  # more input to copy (the buffer has room: a frame always fits)
                if self._lookahead():
                    continue
                return None
            if r == 0:
                self._err(
                    "bad crc", "type %02X crc %04X expected %04X" % (b[5], self._got, self._want)
                )
                self._drop(1)
                continue
            f = (
                b[2] | (b[3] << 8),
                b[4],
                b[5],
                bytes(self._mv[6 : r - 2]),
                self._order,
            )
            self._drop(r)
            return f


# ---- field encodings (ykc-protocol.md §2) -------------------------------------------------------
# BCD fields are handled as their digit string (hex digits, so a non-BCD nibble such as an ICCID's
# 'D' survives a round trip); BIN fields as unsigned little-endian ints.


def bcd_enc(v, n):
    # n bytes of BCD from an int or a digit string, left-padded with zeros.
    s = v if isinstance(v, str) else "%d" % v
    if len(s) > 2 * n:
        raise ValueError("too many digits")
    return unhexlify("0" * (2 * n - len(s)) + s)


def bcd_dec(b, off=0, n=-1):
    # The digit string of n BCD bytes (all bytes from off when n < 0); upper-case for non-BCD nibbles.
    if n < 0:
        n = len(b) - off
    return hexlify(memoryview(b)[off : off + n]).decode().upper()


def bcd_int(b, off=0, n=1):
    # A BCD field as an int; ValueError if a nibble is not a decimal digit.
    return int(bcd_dec(b, off, n))


def pile_enc(code):
    # Pile code: 7 bytes BCD = 14 digits.
    return bcd_enc(code, 7)


def pile_dec(b, off=0):
    return bcd_dec(b, off, 7)


def gun_enc(gun):
    # Gun number: 1 byte BCD (0x01 = gun 1).
    if not 0 <= gun <= 99:
        raise ValueError("gun")
    return bytes(((gun // 10) << 4 | (gun % 10),))


def gun_dec(v):
    # A gun byte: BCD per the spec; a byte that is not valid BCD is read as binary (some piles send
    # binary, which agrees with BCD for guns 1-9).
    if (v >> 4) > 9 or (v & 15) > 9:
        return v
    return (v >> 4) * 10 + (v & 15)


def uint_dec(b, off, n):
    # Unsigned little-endian int of n bytes (BIN).
    v = 0
    for i in range(off + n - 1, off - 1, -1):
        v = (v << 8) | b[i]
    return v


def uint_enc(v, n):
    if v < 0 or v >> (8 * n):
        raise ValueError("uint%d out of range" % (8 * n))
    return v.to_bytes(n, "little")


def ascii_enc(s, n):
    # Fixed-width ASCII, right-padded with 0x00; longer text is an error, not silently cut.
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > n:
        raise ValueError("text too long")
    return b + bytes(n - len(b))


def ascii_dec(b, off=0, n=-1):
    # Text up to the first 0x00 padding byte; bytes that are not text come back as a hex string.
    if n < 0:
        n = len(b) - off
    raw = bytes(memoryview(b)[off : off + n])
    k = raw.find(b"\x00")
    if k >= 0:
        raw = raw[:k]
    try:
        return raw.decode()
    except UnicodeError:
        return hexlify(raw).decode().upper()


def cp56_enc(t):
    # CP56Time2a (7 bytes) from (year, month, day, hour, minute, second[, ms]); IV, SU and
    # day-of-week are sent as 0 (the reference: "send 0").
    ms = t[5] * 1000 + (t[6] if len(t) > 6 else 0)
    y = t[0] - 2000
    if not (
        0 <= ms < 60000
        and 0 <= t[4] < 60
        and 0 <= t[3] < 24
        and 0 <= t[2] < 32
        and 0 <= t[1] < 13
        and 0 <= y < 128
    ):
        raise ValueError("cp56 time out of range")
    return bytes((ms & 0xFF, ms >> 8, t[4], t[3], t[2], t[1], y))


def cp56_dec(b, off=0):
    # (year, month, day, hour, minute, second, ms) from CP56Time2a; the flag bits (IV, SU,
    # day-of-week) are masked off. An all-zero field decodes as (2000, 0, 0, 0, 0, 0, 0).
    ms = b[off] | (b[off + 1] << 8)
    return (
        2000 + (b[off + 6] & 0x7F),
        b[off + 5] & 0x0F,
        b[off + 4] & 0x1F,
        b[off + 3] & 0x1F,
        b[off + 2] & 0x3F,
        ms // 1000,
        ms % 1000,
    )
