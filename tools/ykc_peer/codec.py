"""The platform side's own YKC V1.6 codec, written apart from firmware/proto/ykc so shared bugs show up.

Follows docs ykc-protocol.md (§1 frame, §2 encodings, §4 bodies). Body dicts use the same field names and wire
units as the firmware (the golden vectors in tests/vectors/ykc pin both), but every line here is separate:
a bit-wise CRC, explicit per-message field lists, and a `bytearray`-based stream reader.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

SOF = 0x68
MAX_FRAME = 255 + 4

MESSAGE_NAMES: dict[int, str] = {
    0x01: "login",
    0x02: "login_reply",
    0x03: "heartbeat",
    0x04: "heartbeat_reply",
    0x05: "billing_check",
    0x06: "billing_check_reply",
    0x09: "billing_request",
    0x0A: "billing_model",
    0x12: "read_realtime",
    0x13: "realtime",
    0x15: "bms_handshake",
    0x17: "bms_config",
    0x19: "charging_end",
    0x1B: "bms_error",
    0x1D: "bms_abort",
    0x21: "charger_abort",
    0x23: "bms_demand",
    0x25: "bms_status",
    0x31: "card_start",
    0x32: "card_start_reply",
    0x33: "remote_start_reply",
    0x34: "remote_start",
    0x35: "remote_stop_reply",
    0x36: "remote_stop",
    0x3B: "transaction_record",
    0x40: "record_confirm",
    0x41: "balance_update_reply",
    0x42: "balance_update",
    0x43: "card_sync_reply",
    0x44: "card_sync",
    0x45: "card_clear_reply",
    0x46: "card_clear",
    0x47: "card_query_reply",
    0x48: "card_query",
    0x51: "params_reply",
    0x52: "params",
    0x55: "time_sync_reply",
    0x56: "time_sync",
    0x57: "billing_push_reply",
    0x58: "billing_push",
    0x61: "parking_lock",
    0x62: "parking_lock_command",
    0x63: "parking_lock_reply",
    0x91: "reboot_reply",
    0x92: "reboot",
    0x93: "update_reply",
    0x94: "update",
    0xA1: "parallel_card_start",
    0xA2: "parallel_card_start_reply",
    0xA3: "parallel_remote_start_reply",
    0xA4: "parallel_remote_start",
}


# ---- CRC and frames ---------------------------------------------------------------------------


def crc16_modbus(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS, bit by bit: reflected poly 0xA001, init 0xFFFF, no final XOR (check 0x4B37)."""
    crc = 0xFFFF
    for byte in bytes(data):
        crc ^= byte
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0xA001
    return crc


class Frame(NamedTuple):
    seq: int
    enc: int
    type: int
    body: bytes
    crc_order: str  # "lo" (spec: low byte first) or "hi" (field quirk)


def encode_frame(
    seq: int, ftype: int, body: bytes, enc: int = 0, crc_high_first: bool = False
) -> bytes:
    """0x68 | LEN=4+len(body) | SEQ LE | ENC | TYPE | body | CRC over SEQ..body."""
    if len(body) > 251:
        raise ValueError(f"body of {len(body)} bytes does not fit a one-byte LEN")
    inner = seq.to_bytes(2, "little") + bytes([enc, ftype]) + bytes(body)
    crc = crc16_modbus(inner)
    return bytes([SOF, len(inner)]) + inner + crc.to_bytes(2, "big" if crc_high_first else "little")


class FrameReader:
    """Cuts frames from a TCP byte stream; framing errors go to `on_error(reason, detail)` and never raise.

    Reasons: "garbage" (bytes before a 0x68), "bad length" (LEN < 4), "bad crc" (neither byte order
    matches), "truncated" (a frame cut short, detected when a complete valid frame follows it).
    """

    def __init__(self, on_error: Callable[[str, str], None] | None = None) -> None:
        self.buf = bytearray()
        self.on_error = on_error
        self.error_count = 0
        self._last_crc = (0, 0)  # (received, computed) of the last bad CRC, for the error detail

    def _error(self, reason: str, detail: str) -> None:
        self.error_count += 1
        if self.on_error is not None:
            self.on_error(reason, detail)

    def _frame_at(self, pos: int) -> tuple[Frame | None, int]:
        """(frame, size) if a complete frame with a valid CRC starts at pos; (None, 0) bad; (None, -1) short."""
        buf = self.buf
        length = buf[pos + 1]
        size = length + 4
        if len(buf) - pos < size:
            return None, -1
        inner = bytes(buf[pos + 2 : pos + 2 + length])
        want = crc16_modbus(inner)
        tail = bytes(buf[pos + 2 + length : pos + size])
        if tail == want.to_bytes(2, "little"):
            order = "lo"
        elif tail == want.to_bytes(2, "big"):
            order = "hi"
        else:
            self._last_crc = (int.from_bytes(tail, "little"), want)
            return None, 0
        seq = int.from_bytes(inner[0:2], "little")
        return Frame(seq, inner[2], inner[3], inner[4:], order), size

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out: list[Frame] = []
        while True:
            start = self.buf.find(SOF)
            if start < 0:
                if self.buf:
                    self._error("garbage", f"skipped {len(self.buf)} bytes")
                    self.buf.clear()
                return out
            if start > 0:
                self._error("garbage", f"skipped {start} bytes")
                del self.buf[:start]
            if len(self.buf) < 2:
                return out
            if self.buf[1] < 4:
                self._error("bad length", f"LEN {self.buf[1]}")
                del self.buf[:1]
                continue
            frame, size = self._frame_at(0)
            if frame is not None:
                out.append(frame)
                del self.buf[:size]
                continue
            if size == 0:
                got, want = self._last_crc
                self._error("bad crc", f"type {self.buf[5]:02X} crc {got:04X} expected {want:04X}")
                del self.buf[:1]
                continue
            # Incomplete: if a valid frame already starts later, the head was cut off.
            later = self._valid_frame_after_head()
            if later < 0:
                return out
            self._error("truncated", f"dropped {later} bytes")
            del self.buf[:later]

    def _valid_frame_after_head(self) -> int:
        pos = self.buf.find(SOF, 1)
        while 0 < pos <= len(self.buf) - 6:
            if self.buf[pos + 1] >= 4 and self.buf[pos + 4] in (0, 1):
                frame, _ = self._frame_at(pos)
                if frame is not None:
                    return pos
            pos = self.buf.find(SOF, pos + 1)
        return -1


# ---- field kinds ------------------------------------------------------------------------------
# A field is (name, kind, size). Kinds: "bcd" digit string, "pile" (bcd 7), "trade" (bcd 16), "gun"
# (1-byte BCD, binary tolerated), "u" unsigned LE int, "cp56" [y, mo, d, h, mi, s, ms], "hex" opaque
# bytes as upper-case hex, "text" ASCII 0x00-padded, "rtext" ASCII stored reversed, "codes" one
# hex digit per byte (billing slots).

Field = tuple[str, str, int]


def _digits(raw: bytes) -> str:
    return "".join(f"{b >> 4:X}{b & 0xF:X}" for b in raw)


def _pack_digits(value: Any, size: int) -> bytes:
    text = str(value) if isinstance(value, int) else (value or "")
    text = text.rjust(size * 2, "0")
    if len(text) != size * 2:
        raise ValueError(f"{value!r} has more than {size * 2} digits")
    return bytes.fromhex(text)


def cp56_decode(raw: bytes) -> list[int]:
    millis = raw[0] + 256 * raw[1]
    return [
        2000 + (raw[6] & 0b0111_1111),
        raw[5] & 0b1111,
        raw[4] & 0b1_1111,
        raw[3] & 0b1_1111,
        raw[2] & 0b11_1111,
        millis // 1000,
        millis % 1000,
    ]


def cp56_encode(value: Sequence[int]) -> bytes:
    year, month, day, hour, minute, second = value[:6]
    ms = value[6] if len(value) > 6 else 0
    millis = second * 1000 + ms
    checks = (
        2000 <= year <= 2127,
        0 <= month <= 12,
        0 <= day <= 31,
        0 <= hour <= 23,
        0 <= minute <= 59,
        0 <= millis <= 59999,
    )
    if not all(checks):
        raise ValueError(f"CP56Time2a out of range: {list(value)}")
    return bytes([millis % 256, millis // 256, minute, hour, day, month, year - 2000])


def cp56_from_datetime(when: _dt.datetime) -> list[int]:
    return [
        when.year,
        when.month,
        when.day,
        when.hour,
        when.minute,
        when.second,
        when.microsecond // 1000,
    ]


def datetime_from_cp56(value: Sequence[int]) -> _dt.datetime:
    y, mo, d, h, mi, s = value[:6]
    return _dt.datetime(y, mo, d, h, mi, s, (value[6] if len(value) > 6 else 0) * 1000)


def _decode_field(kind: str, raw: bytes) -> Any:
    if kind in ("bcd", "pile", "trade"):
        return _digits(raw)
    if kind == "gun":
        hi, lo = raw[0] >> 4, raw[0] & 0xF
        return hi * 10 + lo if hi < 10 and lo < 10 else raw[0]
    if kind == "u":
        return int.from_bytes(raw, "little")
    if kind == "cp56":
        return cp56_decode(raw)
    if kind == "hex":
        return raw.hex().upper()
    if kind in ("text", "rtext"):
        data = raw[::-1] if kind == "rtext" else raw
        data = data.split(b"\x00", 1)[0]
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            return data.hex().upper()
    if kind == "codes":
        if any(b > 15 for b in raw):
            raise ValueError(f"slot code above 15 in {raw.hex()}")
        return "".join(f"{b:X}" for b in raw)
    raise AssertionError(kind)


def _encode_field(kind: str, size: int, value: Any) -> bytes:
    if kind in ("bcd", "pile", "trade"):
        return _pack_digits(value, size)
    if kind == "gun":
        gun = int(value or 0)
        if not 0 <= gun <= 99:
            raise ValueError(f"gun {gun}")
        return bytes([(gun // 10) * 16 + gun % 10])
    if kind == "u":
        return int(value or 0).to_bytes(
            size, "little"
        )  # OverflowError: turned into ValueError below
    if kind == "cp56":
        return cp56_encode(value) if value else bytes(7)
    if kind == "hex":
        if isinstance(value, (bytes, bytearray)):
            if len(value) != size:
                raise ValueError(f"{size} bytes wanted")
            return bytes(value)
        text = (value or "").rjust(size * 2, "0")
        if len(text) != size * 2:
            raise ValueError(f"{value!r} longer than {size} bytes")
        return bytes.fromhex(text)
    if kind in ("text", "rtext"):
        data = (value or "").encode("ascii")
        if len(data) > size:
            raise ValueError(f"{value!r} longer than {size} bytes")
        data = data.ljust(size, b"\x00")
        return data[::-1] if kind == "rtext" else data
    if kind == "codes":
        text = value or ""
        if len(text) > size:
            raise ValueError(f"more than {size} codes")
        return bytes(int(c, 16) for c in text).ljust(size, b"\x00")
    raise AssertionError(kind)


# ---- message bodies (ykc-protocol.md §4) ------------------------------------------------------

PILE: Field = ("pile", "pile", 7)
GUN: Field = ("gun", "gun", 1)
TRADE: Field = ("trade", "trade", 16)


def _u(name: str, size: int = 1) -> Field:
    return (name, "u", size)


RESULT = _u("result")
BILLING: list[Field] = [PILE, ("model", "bcd", 2)]
for _k in range(4):  # k = slot code: 0 sharp, 1 peak, 2 flat, 3 valley; 0.00001 yuan/kWh
    BILLING += [_u(f"elec{_k}", 4), _u(f"svc{_k}", 4)]
BILLING += [_u("loss"), ("slots", "codes", 48)]

RECORD: list[Field] = [TRADE, PILE, GUN, ("start", "cp56", 7), ("end", "cp56", 7)]
for _k in range(4):
    RECORD += [_u(f"price{_k}", 4), _u(f"energy{_k}", 4), _u(f"loss{_k}", 4), _u(f"amount{_k}", 4)]
RECORD += [
    _u("meter_start", 5),
    _u("meter_end", 5),
    _u("energy", 4),
    _u("loss_energy", 4),
    _u("amount", 4),
    ("vin", "text", 17),
    _u("trade_type"),
    ("trade_time", "cp56", 7),
    _u("reason"),
    ("card", "hex", 8),
]

CARD_START: list[Field] = [
    PILE,
    GUN,
    _u("mode"),
    _u("pw_required"),
    ("card", "hex", 8),
    ("password", "hex", 16),
    ("vin", "rtext", 17),
]
CARD_AUTH: list[Field] = [
    TRADE,
    PILE,
    GUN,
    ("logical", "bcd", 8),
    _u("balance", 4),
    RESULT,
    _u("reason"),
]
START_REPLY: list[Field] = [TRADE, PILE, GUN, RESULT, _u("reason")]
REMOTE_START: list[Field] = [
    TRADE,
    PILE,
    GUN,
    ("logical", "bcd", 8),
    ("card", "hex", 8),
    _u("balance", 4),
]
PARALLEL: Field = ("parallel", "bcd", 6)


def _bms(size: int) -> list[Field]:
    # Only the common head is in the reference (§4.18); the GB/T 27930 remainder stays opaque.
    return [TRADE, PILE, GUN, ("data", "hex", size - 24)]


# type -> (fixed fields, count byte present, repeated item fields or None)
BODIES: dict[int, tuple[list[Field], bool, list[Field] | None]] = {
    0x01: (
        [
            PILE,
            _u("pile_type"),
            _u("guns"),
            _u("proto"),
            ("fw", "text", 8),
            _u("net"),
            ("sim", "bcd", 10),
            _u("operator"),
        ],
        False,
        None,
    ),
    0x02: ([PILE, RESULT], False, None),
    0x03: ([PILE, GUN, _u("state")], False, None),
    0x04: ([PILE, GUN, _u("state")], False, None),
    0x05: ([PILE, ("model", "bcd", 2)], False, None),
    0x06: ([PILE, ("model", "bcd", 2), RESULT], False, None),
    0x09: ([PILE], False, None),
    0x0A: (BILLING, False, None),
    0x12: ([PILE, GUN], False, None),
    0x13: (
        [
            TRADE,
            PILE,
            GUN,
            _u("status"),
            _u("homed"),
            _u("plugged"),
            _u("voltage", 2),
            _u("current", 2),
            _u("gun_temp"),
            ("cable", "hex", 8),
            _u("soc"),
            _u("batt_temp"),
            _u("minutes", 2),
            _u("remaining", 2),
            _u("energy", 4),
            _u("loss_energy", 4),
            _u("amount", 4),
            _u("faults", 2),
        ],
        False,
        None,
    ),
    0x15: (_bms(73), False, None),
    0x17: (_bms(45), False, None),
    0x19: (_bms(39), False, None),
    0x1B: (_bms(32), False, None),
    0x1D: (_bms(28), False, None),
    0x21: (_bms(28), False, None),
    0x23: (_bms(44), False, None),
    0x25: (_bms(31), False, None),
    0x31: (CARD_START, False, None),
    0x32: (CARD_AUTH, False, None),
    0x33: (START_REPLY, False, None),
    0x34: (REMOTE_START, False, None),
    0x35: ([PILE, GUN, RESULT, _u("reason")], False, None),
    0x36: ([PILE, GUN], False, None),
    0x3B: (RECORD, False, None),
    0x40: ([TRADE, RESULT], False, None),
    0x41: ([PILE, ("card", "hex", 8), RESULT], False, None),
    0x42: ([PILE, GUN, ("card", "hex", 8), _u("balance", 4)], False, None),
    0x43: ([PILE, RESULT, _u("reason")], False, None),
    0x44: ([PILE], True, [("logical", "bcd", 8), ("card", "hex", 8)]),
    0x45: ([PILE], False, [("card", "hex", 8), _u("cleared"), _u("reason")]),
    0x46: ([PILE], True, [("card", "hex", 8)]),
    0x47: ([PILE], False, [("card", "hex", 8), _u("exists")]),
    0x48: ([PILE], True, [("card", "hex", 8)]),
    0x51: ([PILE, RESULT], False, None),
    0x52: ([PILE, _u("disabled"), _u("max_power")], False, None),
    0x55: ([PILE, ("time", "cp56", 7)], False, None),
    0x56: ([PILE, ("time", "cp56", 7)], False, None),
    0x57: ([PILE, RESULT], False, None),
    0x58: (BILLING, False, None),
    0x61: (
        [
            PILE,
            _u("gun"),
            _u("lock"),
            _u("bay"),
            _u("battery"),
            _u("alarm"),
            ("reserved", "hex", 4),
        ],
        False,
        None,
    ),
    0x62: ([PILE, _u("gun"), _u("cmd"), ("reserved", "hex", 4)], False, None),
    0x63: ([PILE, _u("gun"), RESULT, ("reserved", "hex", 4)], False, None),
    0x91: ([PILE, RESULT], False, None),
    0x92: ([PILE, _u("control")], False, None),
    0x93: ([PILE, _u("status")], False, None),
    0x94: (
        [
            PILE,
            _u("pile_type"),
            _u("power", 2),
            ("host", "text", 16),
            _u("port", 2),
            ("user", "text", 16),
            ("password", "text", 16),
            ("path", "text", 32),
            _u("control"),
            _u("timeout"),
        ],
        False,
        None,
    ),
    0xA1: (CARD_START + [_u("main_aux"), PARALLEL], False, None),
    0xA2: (CARD_AUTH + [PARALLEL], False, None),
    0xA3: (START_REPLY + [_u("main_aux"), PARALLEL], False, None),
    0xA4: (REMOTE_START + [PARALLEL], False, None),
}
LIST_KEY = "cards"  # the only repeated group in V1.6 is a card list


def body_size(ftype: int) -> int | None:
    """Fixed body size of a type, None for the variable-length card lists."""
    fixed, _count, item = BODIES[ftype]
    return None if item is not None else sum(size for _n, _k, size in fixed)


def decode_body(ftype: int, body: bytes) -> dict[str, Any]:
    """Body -> fields dict. ValueError for an unknown type or a body whose size does not fit."""
    if ftype not in BODIES:
        raise ValueError(f"unknown frame type 0x{ftype:02X}")
    body = bytes(body)
    if ftype == 0x92 and len(body) > 8:
        # JCPP writes the control as a 4-byte big-endian int; the reference says take the last byte.
        body = body[:7] + body[-1:]
    fixed, has_count, item = BODIES[ftype]
    out: dict[str, Any] = {}
    pos = 0
    head = sum(size for _n, _k, size in fixed) + (1 if has_count else 0)
    if item is None and len(body) != head:
        raise ValueError(f"0x{ftype:02X} body is {len(body)} bytes, expected {head}")
    if item is not None and len(body) < head:
        raise ValueError(f"0x{ftype:02X} body is {len(body)} bytes, shorter than {head}")
    for name, kind, size in fixed:
        out[name] = _decode_field(kind, body[pos : pos + size])
        pos += size
    if item is None:
        return out
    count = None
    if has_count:
        count = body[pos]
        pos += 1
    item_size = sum(size for _n, _k, size in item)
    rest = len(body) - pos
    if rest % item_size or (count is not None and count != rest // item_size):
        raise ValueError(f"0x{ftype:02X}: {rest} bytes of items of {item_size} (count {count})")
    items: list[Any] = []
    while pos < len(body):
        values = []
        for _name, kind, size in item:
            values.append(_decode_field(kind, body[pos : pos + size]))
            pos += size
        items.append(values[0] if len(values) == 1 else values)
    out[LIST_KEY] = items
    return out


def encode_body(ftype: int, fields: dict[str, Any]) -> bytes:
    """Fields dict -> body. Absent fields are zero; a value that does not fit raises ValueError."""
    if ftype not in BODIES:
        raise ValueError(f"unknown frame type 0x{ftype:02X}")
    fixed, has_count, item = BODIES[ftype]
    parts: list[bytes] = []
    try:
        for name, kind, size in fixed:
            parts.append(_encode_field(kind, size, fields.get(name)))
        if item is not None:
            items: Iterable[Any] = fields.get(LIST_KEY) or []
            items = list(items)
            if has_count:
                parts.append(bytes([len(items)]))
            for entry in items:
                values = [entry] if len(item) == 1 else list(entry)
                for (_name, kind, size), value in zip(item, values, strict=True):
                    parts.append(_encode_field(kind, size, value))
    except OverflowError as exc:  # int.to_bytes on a value that does not fit
        raise ValueError(str(exc)) from exc
    return b"".join(parts)


def build(seq: int, ftype: int, fields: dict[str, Any], crc_high_first: bool = False) -> bytes:
    return encode_frame(seq, ftype, encode_body(ftype, fields), 0, crc_high_first)
