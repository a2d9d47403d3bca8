# YKC V1.6 message bodies: one layout string per frame type, turned into dicts and back by two small walkers.
# Table-driven so the ~50 message types cost a few strings of RAM instead of a function each.
from binascii import hexlify, unhexlify

from micropython import const

from proto.ykc import codec

# Layout grammar: whitespace-separated tokens "<kind>[width]<name>".
#   P pile code (7 BCD) -> str    G gun (1 BCD) -> int       T trade number (16 BCD) -> str
#   D<n> BCD digits -> str        B/H/I/E uint LE of 1/2/4/5 bytes -> int
#   C CP56Time2a -> (y, mo, d, h, mi, s, ms)                 X<n> opaque bytes -> upper-case hex str
#   a<n> ASCII -> str             r<n> ASCII sent byte-reversed -> str
#   S<n> one code per byte -> str of hex digits ("0123..." for the 48 billing slots)
#   #    count byte of the repeated group that follows (written from len(items) on encode)
#   *cards the remaining tokens describe one item of a list running to the end of the body; items
#        are tuples in token order, or plain str values when an item has one field.
# Values keep the wire units of ykc-protocol.md §2/§4 (0.1 V, 0.1 A, 0.0001 kWh, 0.00001 yuan/kWh,
# 0.0001 yuan, 0.01 yuan balances, °C + 50): ints only, because ESP32 floats are single precision.
_KINDS = "PGTBHIEC"
_WIDTH = b"\x07\x01\x10\x01\x02\x04\x05\x07"
_HEX = "0123456789ABCDEF"
_REBOOT = const(0x92)

# Price index k = slot code: 0 sharp, 1 peak, 2 flat, 3 valley.
_BILLING = "Ppile D2model Ielec0 Isvc0 Ielec1 Isvc1 Ielec2 Isvc2 Ielec3 Isvc3 Bloss S48slots"
_CARD_START = "Ppile Ggun Bmode Bpw_required X8card X16password r17vin"
_AUTH = "Ttrade Ppile Ggun D8logical Ibalance Bresult Breason"
_START_REPLY = "Ttrade Ppile Ggun Bresult Breason"
_REMOTE_START = "Ttrade Ppile Ggun D8logical X8card Ibalance"
_PR = "Ppile Bresult"
_PG = "Ppile Ggun"
_BMS = "Ttrade Ppile Ggun X"

LAYOUTS = {
    0x01: "Ppile Bpile_type Bguns Bproto a8fw Bnet D10sim Boperator",
    0x02: _PR,
    0x03: "Ppile Ggun Bstate",
    0x04: "Ppile Ggun Bstate",
    0x05: "Ppile D2model",
    0x06: "Ppile D2model Bresult",
    0x09: "Ppile",
    0x0A: _BILLING,
    0x12: _PG,
    0x13: "Ttrade Ppile Ggun Bstatus Bhomed Bplugged Hvoltage Hcurrent Bgun_temp X8cable Bsoc"
    " Bbatt_temp Hminutes Hremaining Ienergy Iloss_energy Iamount Hfaults",
    # BMS frames: the reference gives only the common head and the body lengths (§4.18), so the
    # GB/T 27930 part is carried as opaque bytes.
    0x15: _BMS + "49data",
    0x17: _BMS + "21data",
    0x19: _BMS + "15data",
    0x1B: _BMS + "8data",
    0x1D: _BMS + "4data",
    0x21: _BMS + "4data",
    0x23: _BMS + "20data",
    0x25: _BMS + "7data",
    0x31: _CARD_START,
    0x32: _AUTH,  # reason is "(BCD)" in the PDF but its codes run to 0x0B: read as BIN
    0x33: _START_REPLY,
    0x34: _REMOTE_START,
    0x35: "Ppile Ggun Bresult Breason",
    0x36: _PG,
    0x3B: "Ttrade Ppile Ggun Cstart Cend Iprice0 Ienergy0 Iloss0 Iamount0 Iprice1 Ienergy1 Iloss1"
    " Iamount1 Iprice2 Ienergy2 Iloss2 Iamount2 Iprice3 Ienergy3 Iloss3 Iamount3 Emeter_start"
    " Emeter_end Ienergy Iloss_energy Iamount a17vin Btrade_type Ctrade_time Breason X8card",
    0x40: "Ttrade Bresult",
    0x41: "Ppile X8card Bresult",
    0x42: "Ppile Ggun X8card Ibalance",
    0x43: "Ppile Bresult Breason",
    0x44: "Ppile # *cards D8 X8",
    0x45: "Ppile *cards X8 B B",
    0x46: "Ppile # *cards X8",
    0x47: "Ppile *cards X8 B",
    0x48: "Ppile # *cards X8",
    0x51: _PR,
    0x52: "Ppile Bdisabled Bmax_power",
    0x55: "Ppile Ctime",
    0x56: "Ppile Ctime",
    0x57: _PR,
    0x58: _BILLING,
    0x61: "Ppile Bgun Block Bbay Bbattery Balarm X4reserved",
    0x62: "Ppile Bgun Bcmd X4reserved",
    0x63: "Ppile Bgun Bresult X4reserved",
    0x91: _PR,
    0x92: "Ppile Bcontrol",
    0x93: "Ppile Bstatus",
    0x94: "Ppile Bpile_type Hpower a16host Hport a16user a16password a32path Bcontrol Btimeout",
    0xA1: _CARD_START + " Bmain_aux D6parallel",
    0xA2: _AUTH + " D6parallel",
    0xA3: _START_REPLY + " Bmain_aux D6parallel",
    0xA4: _REMOTE_START + " D6parallel",
}


class _Walk:
    # Steps through a layout string token by token. Splitting it and returning token tuples made ~7 KB
    # of garbage per 0x3B decode on the unix port; this allocates only the field names.

    def __init__(self, lay, names=True):
        self.lay = lay
        self.names = names
        self.i = 0
        self.k = ""  # kind of the current token
        self.w = 0  # its width in bytes
        self.name = ""

    def next(self):
        # Advance to the next token; False at the end of the layout.
        lay = self.lay
        n = len(lay)
        i = self.i
        while i < n and lay[i] == " ":
            i += 1
        if i >= n:
            self.i = n
            return False
        k = lay[i]
        i += 1
        w = 0
        while i < n and "0" <= lay[i] <= "9":
            w = w * 10 + ord(lay[i]) - 48
            i += 1
        if not w:
            j = _KINDS.find(k)
            w = _WIDTH[j] if j >= 0 else (1 if k == "#" else 0)
        j = lay.find(" ", i)
        if j < 0:
            j = n
        if self.names:
            self.name = lay[i:j]
        self.k = k
        self.w = w
        self.i = j
        return True


def _size(lay, start=0):
    # Bytes of the tokens from offset start of a layout (a whole body, or one list item).
    t = _Walk(lay, False)
    t.i = start
    n = 0
    while t.next():
        n += t.w
    return n


def _get(k, w, b, off):
    if k == "P" or k == "T" or k == "D":
        return codec.bcd_dec(b, off, w)
    if k == "G":
        return codec.gun_dec(b[off])
    if k == "C":
        return codec.cp56_dec(b, off)
    if k == "X":
        return hexlify(memoryview(b)[off : off + w]).decode().upper()
    if k == "a":
        return codec.ascii_dec(b, off, w)
    if k == "r":
        return codec.ascii_dec(bytes(reversed(b[off : off + w])))
    if k == "S":
        s = bytearray(b[off : off + w])
        for i in range(w):
            if s[i] > 15:
                raise ValueError("code %d" % s[i])
            s[i] = ord(_HEX[s[i]])
        return s.decode()
    return codec.uint_dec(b, off, w)


def _put(k, w, v):
    if k == "P" or k == "T" or k == "D":
        return codec.bcd_enc(v, w) if v is not None else bytes(w)
    if k == "G":
        return codec.gun_enc(v or 0)
    if k == "C":
        return codec.cp56_enc(v) if v else bytes(7)
    if k == "X":
        if v is None:
            return bytes(w)
        if isinstance(v, str):
            if len(v) > 2 * w:
                raise ValueError("hex too long")
            return unhexlify("0" * (2 * w - len(v)) + v)  # right-aligned, like a card UID
        if len(v) != w:
            raise ValueError("bytes width")
        return bytes(v)
    if k == "a":
        return codec.ascii_enc(v or "", w)
    if k == "r":
        return bytes(reversed(codec.ascii_enc(v or "", w)))
    if k == "S":
        v = v or ""
        if len(v) > w:
            raise ValueError("too many codes")
        s = bytearray(w)
        for i in range(len(v)):
            s[i] = int(v[i], 16)
        return bytes(s)
    return codec.uint_enc(int(v or 0), w)


def decode(typ, body):
    # Body bytes of frame type typ -> dict; ValueError for an unknown type or a body of the wrong size.
    lay = LAYOUTS.get(typ)
    if lay is None:
        raise ValueError("unknown type %02X" % typ)
    if typ == _REBOOT and len(body) > 8:
        # JCPP sends the control field as a 4-byte big-endian int: the reference says read the last byte.
        body = bytes(body[:7]) + bytes(body[-1:])
    n = len(body)
    t = _Walk(lay)
    d = {}
    off = 0
    count = -1
    while t.next():
        k = t.k
        if k == "#":
            count = body[off] if off < n else -1
            off += 1
        elif k == "*":
            start = t.i
            isz = _size(lay, start)
            rest = n - off
            if rest < 0 or rest % isz or (count >= 0 and rest // isz != count):
                raise ValueError("type %02X: %d item bytes" % (typ, rest))
            name = t.name
            items = []
            t.names = False
            while off < n:
                vals = []
                t.i = start
                while t.next():
                    vals.append(_get(t.k, t.w, body, off))
                    off += t.w
                items.append(vals[0] if len(vals) == 1 else tuple(vals))
            d[name] = items
            return d
        else:
            if off + t.w > n:
                off = -1
                break
            d[t.name] = _get(k, t.w, body, off)
            off += t.w
    if off != n:
        raise ValueError("type %02X: body %d bytes, want %d" % (typ, n, _size(lay)))
    return d


def encode(typ, fields):
    # dict -> body bytes of frame type typ. Missing fields are sent as zeros (reserved bytes, unknown
    # VIN, idle trade number); a value that does not fit raises ValueError.
    lay = LAYOUTS.get(typ)
    if lay is None:
        raise ValueError("unknown type %02X" % typ)
    t = _Walk(lay)
    out = bytearray()
    count_at = -1
    while t.next():
        k = t.k
        if k == "#":
            count_at = len(out)
            out.append(0)
        elif k == "*":
            items = fields.get(t.name) or ()
            if count_at >= 0:
                if len(items) > 255:
                    raise ValueError("too many items")
                out[count_at] = len(items)
            start = t.i
            t.names = False
            for v in items:
                t.i = start
                j = 0
                while t.next():
                    out.extend(_put(t.k, t.w, v if isinstance(v, str) else v[j]))
                    j += 1
            break
        else:
            out.extend(_put(k, t.w, fields.get(t.name)))
    return bytes(out)


def build(seq, typ, fields, enc=0, crc_high_first=False):
    # A whole frame from a fields dict.
    return codec.encode(seq, typ, encode(typ, fields), enc, crc_high_first)


def parse(frame):
    # A decoder tuple (seq, enc, type, body, crc_order) -> fields dict (ValueError as for decode).
    return decode(frame[2], frame[3])
