# DER (ITU-T X.690) encoders and decoders for the few types X.509, PKCS#10 and SEC 1 keys use.
from micropython import const

SEQ = const(0x30)
SET = const(0x31)
INT = const(0x02)
BITS = const(0x03)
OCTETS = const(0x04)
NULL = const(0x05)
OID = const(0x06)
UTF8 = const(0x0C)
PRINTABLE = const(0x13)
IA5 = const(0x16)
UTCTIME = const(0x17)
GENTIME = const(0x18)
BOOL = const(0x01)


class Asn1Error(ValueError):
    pass


# ---- encoding: every function returns the whole TLV as bytes


def _length(n):
    if n < 0x80:
        return bytes((n,))
    body = uint_bytes(n)
    return bytes((0x80 | len(body),)) + body


def tlv(tag, body):
    return bytes((tag,)) + _length(len(body)) + body


def seq(*parts):
    return tlv(SEQ, b"".join(parts))


def set_of(*parts):
    # DER sorts SET OF members by their encodings (X.690 11.6)
    return tlv(SET, b"".join(sorted(parts)))


def integer(n):
    # Non-negative integers only: all X.509 and ECDSA integers are.
    if n < 0:
        raise Asn1Error("negative integer")
    body = uint_bytes(n)
    if body[0] & 0x80:
        body = b"\x00" + body
    return tlv(INT, body)


def uint_bytes(n, size=0):
    # Big-endian bytes of n, minimal unless size says otherwise (at least one byte).
    k = 1
    while n >> (8 * k):
        k += 1
    return n.to_bytes(max(k, size), "big")


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    vals = [arcs[0] * 40 + arcs[1]] + arcs[2:]
    out = []
    for v in vals:
        chunk = [v & 0x7F]
        v >>= 7
        while v:
            chunk.append(0x80 | (v & 0x7F))
            v >>= 7
        chunk.reverse()
        out += chunk
    return tlv(OID, bytes(out))


def bits(data):
    return tlv(BITS, b"\x00" + data)  # no unused bits: keys and signatures are whole bytes


def octets(data):
    return tlv(OCTETS, data)


def utf8(text):
    return tlv(UTF8, text.encode())


def printable(text):
    return tlv(PRINTABLE, text.encode())


def null():
    return b"\x05\x00"


def explicit(n, body):
    return tlv(0xA0 | n, body)


# ---- decoding: positions into one buffer, no copies until a value is asked for


def header(buf, i, end=None):
    # (tag, content start, content end) of the element at i. Strict DER: definite, minimal lengths.
    if end is None:
        end = len(buf)
    if i + 2 > end:
        raise Asn1Error("truncated")
    tag = buf[i]
    if tag & 0x1F == 0x1F:
        raise Asn1Error("high tag numbers unsupported")
    n = buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or i + k > end:
            raise Asn1Error("bad length")
        n = int.from_bytes(buf[i : i + k], "big")
        if n < 0x80 or buf[i] == 0:
            raise Asn1Error("non-minimal length")
        i += k
    if i + n > end:
        raise Asn1Error("truncated")
    return tag, i, i + n


def expect(buf, i, tag, end=None):
    t, s, e = header(buf, i, end)
    if t != tag:
        raise Asn1Error("expected tag 0x%02x, got 0x%02x" % (tag, t))
    return s, e


def children(buf, s, e):
    # [(tag, start, end)] of the elements between s and e (start/end: their content).
    out = []
    while s < e:
        t, cs, ce = header(buf, s, e)
        out.append((t, cs, ce))
        s = ce
    return out


def tlvs(buf, s, e):
    # [(tag, content start, end, TLV start)]: for slicing elements out whole (names, keys, TBS).
    out = []
    while s < e:
        t, cs, ce = header(buf, s, e)
        out.append((t, cs, ce, s))
        s = ce
    return out


def to_uint(buf, s, e):
    if s == e:
        raise Asn1Error("empty integer")
    if buf[s] & 0x80:
        raise Asn1Error("negative integer")
    return int.from_bytes(buf[s:e], "big")


def to_oid(buf, s, e):
    if s == e:
        raise Asn1Error("empty oid")
    vals = []
    v = 0
    for i in range(s, e):
        b = buf[i]
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            vals.append(v)
            v = 0
    first = vals[0]
    a = 2 if first >= 80 else first // 40
    return ".".join(str(x) for x in [a, first - 40 * a] + vals[1:])


def to_bits(buf, s, e):
    # Content of a BIT STRING with no unused bits (keys, signatures).
    if s == e or buf[s] != 0:
        raise Asn1Error("bit string with unused bits")
    return bytes(buf[s + 1 : e])


def to_time(buf, tag, s, e):
    # UTCTime / GeneralizedTime "...Z" -> seconds since 1970 (RFC 5280 4.1.2.5 forms only).
    t = bytes(buf[s:e]).decode()
    if tag == UTCTIME:
        if len(t) != 13:
            raise Asn1Error("bad UTCTime")
        y = int(t[0:2])
        y += 2000 if y < 50 else 1900
        t = t[2:]
    elif tag == GENTIME:
        if len(t) != 15:
            raise Asn1Error("bad GeneralizedTime")
        y = int(t[0:4])
        t = t[4:]
    else:
        raise Asn1Error("not a time")
    if t[-1] != "Z":
        raise Asn1Error("time not in UTC")
    mo, d, h, mi, sec = int(t[0:2]), int(t[2:4]), int(t[4:6]), int(t[6:8]), int(t[8:10])
    from hal.clock import _days_from_civil

    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
