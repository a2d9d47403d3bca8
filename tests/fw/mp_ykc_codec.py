# YKC codec and frame bodies on the unix port: golden vectors byte for byte, framing recovery, field encodings.
import json
import os
from binascii import unhexlify

import mptest
from proto.ykc import codec, frames

_DIR = __file__.rsplit("/", 1)[0] + "/../vectors/ykc/"


def load_vectors():
    # Every line of every .txt in tests/vectors/ykc: (name, type, seq, crc order, source, bytes, fields).
    out = []
    for fn in sorted(os.listdir(_DIR)):
        if not fn.endswith(".txt"):
            continue
        with open(_DIR + fn) as f:
            for line in f:
                line = line.strip()
                if not line or line[0] == "#":
                    continue
                p = line.split(" | ", 6)
                assert len(p) == 7, line
                order = codec.CRC_HI_FIRST if p[3] == "hi" else codec.CRC_LO_FIRST
                raw = unhexlify(p[5].replace(" ", ""))
                out.append((p[0], int(p[1], 16), int(p[2]), order, p[4], raw, json.loads(p[6])))
    assert len(out) >= 40, len(out)
    return out


VECTORS = load_vectors()


def norm(v):
    # JSON has lists where the codec returns tuples.
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def decode_all(data, chunk=0):
    errs = []
    dec = codec.Decoder(lambda r, d: errs.append(r))
    got = []
    if chunk:
        for i in range(0, len(data), chunk):
            got.extend(dec.feed(data[i : i + chunk]))
    else:
        got.extend(dec.feed(data))
    return got, errs


def eq(a, b, what=""):
    assert a == b, "%s: %r != %r" % (what, a, b)


# ---- golden vectors -----------------------------------------------------------------------------


def test_crc_check_value():
    eq(codec.crc16(b"123456789"), 0x4B37)
    eq(codec.crc16(b"xx123456789", 2), 0x4B37)


def test_golden_decode():
    for name, typ, seq, order, src, raw, fields in VECTORS:
        got, errs = decode_all(raw)
        eq(errs, [], name)
        eq(len(got), 1, name)
        f = got[0]
        eq(f[0], seq, name + " seq")
        eq(f[1], 0, name + " enc")
        eq(f[2], typ, name + " type")
        eq(f[4], order, name + " crc order")
        eq(norm(frames.parse(f)), fields, name)


def test_golden_reencode():
    for name, typ, seq, order, src, raw, fields in VECTORS:
        hi = order == codec.CRC_HI_FIRST
        # from the JSON fields (independent of the decoder) ...
        eq(frames.build(seq, typ, fields, crc_high_first=hi), raw, name)
        # ... and from what the decoder returned
        f = decode_all(raw)[0][0]
        eq(codec.encode(f[0], f[2], frames.encode(f[2], frames.parse(f)), f[1], hi), raw, name)


def test_crc_both_orders_accepted():
    for name, typ, seq, order, src, raw, fields in VECTORS:
        sw = raw[:-2] + bytes((raw[-1], raw[-2]))
        got, errs = decode_all(sw)
        eq(errs, [], name)
        eq(len(got), 1, name)
        if raw[-1] != raw[-2]:
            eq(got[0][4], 1 - order, name)
        eq(got[0][3], decode_all(raw)[0][0][3], name)


def test_all_frames_in_one_chunk():
    data = b"".join(v[5] for v in VECTORS)  # far more than the 260-byte buffer
    got, errs = decode_all(data)
    eq(errs, [])
    eq([f[2] for f in got], [v[1] for v in VECTORS])


def test_chunked_one_byte_at_a_time():
    data = b"".join(v[5] for v in VECTORS)
    got, errs = decode_all(data, 1)
    eq(errs, [])
    eq([f[2] for f in got], [v[1] for v in VECTORS])
    eq([f[3] for f in got], [decode_all(v[5])[0][0][3] for v in VECTORS])


def test_chunked_odd_sizes():
    data = b"".join(v[5] for v in VECTORS)
    for n in (2, 3, 7, 13, 64, 259, 260, 261):
        got, errs = decode_all(data, n)
        eq(errs, [], "chunk %d" % n)
        eq(len(got), len(VECTORS), "chunk %d" % n)


# ---- framing errors -----------------------------------------------------------------------------

BY_NAME = {v[0]: v[5] for v in VECTORS}
HB = BY_NAME["C"]  # §1.1 C heartbeat, 17 bytes
START = BY_NAME["J"]  # §1.1 J remote start, 52 bytes


def test_resync_after_garbage():
    assert HB[5] == 0x03 and START[5] == 0x34
    data = b"GET / HTTP/1.1\r\n\r\n" + HB + b"\x00\xff\x12" + START + b"junk"
    for chunk in (0, 1, 5):
        got, errs = decode_all(data, chunk)
        eq([f[2] for f in got], [0x03, 0x34], "chunk %d" % chunk)
        assert "garbage" in errs, errs
        assert "bad crc" not in errs, errs


def test_garbage_reported_once_per_run():
    errs = []
    dec = codec.Decoder(lambda r, d: errs.append((r, d)))
    eq(list(dec.feed(b"x" * 1000 + HB)), [decode_all(HB)[0][0]])
    eq(errs, [("garbage", "skipped 1000 bytes")])


def test_garbage_containing_start_bytes():
    # 0x68 inside garbage starts false frames; they fail (length or CRC) and the real frame still comes out.
    data = b"\x68\x02\x68\x68\xff\x00\x00\x68\x10abc" + HB
    got, errs = decode_all(data)
    eq([f[2] for f in got], [0x03])
    assert "bad length" in errs, errs


def test_resync_after_truncated_frame():
    # A remote start cut after 20 bytes, then a heartbeat: the heartbeat must not wait for 30 more bytes.
    errs = []
    dec = codec.Decoder(lambda r, d: errs.append(r))
    eq(list(dec.feed(START[:20])), [])
    assert dec.pending() == 20
    got = list(dec.feed(HB))
    eq([f[2] for f in got], [0x03])
    eq(errs, ["truncated"])
    eq(dec.pending(), 0)
    # and the decoder carries on normally
    eq([f[2] for f in dec.feed(START)], [0x34])


def test_truncated_frame_then_bytes_one_at_a_time():
    got, errs = decode_all(START[:30] + HB + START, 1)
    eq([f[2] for f in got], [0x03, 0x34])
    eq(errs, ["truncated"])


def test_reset_drops_partial_frame():
    dec = codec.Decoder()
    list(dec.feed(START[:10]))
    dec.reset()
    eq(dec.pending(), 0)
    eq([f[2] for f in dec.feed(HB)], [0x03])


def test_bad_length_resyncs():
    got, errs = decode_all(b"\x68\x03\x00\x00\x00" + HB)
    eq([f[2] for f in got], [0x03])
    eq(errs[0], "bad length")


def test_length_counting_body_only_is_rejected():
    # Old JCPP builds put len(body) in LEN: the CRC then covers the wrong bytes and the frame is dropped.
    bad = bytearray(HB)
    bad[1] = len(HB) - 8
    got, errs = decode_all(bytes(bad) + HB)
    eq([f[2] for f in got], [0x03])
    assert "bad crc" in errs, errs


def test_bad_crc_rejected_with_reason():
    errs = []
    dec = codec.Decoder(lambda r, d: errs.append((r, d)))
    bad = bytearray(HB)
    bad[8] ^= 0x01  # a pile-code bit
    eq(list(dec.feed(bytes(bad))), [])
    eq(errs[0][0], "bad crc")
    assert "type 03" in errs[0][1], errs
    eq(dec.errors, len(errs))
    eq([f[2] for f in dec.feed(HB)], [0x03])


def test_feed_twice_before_draining():
    dec = codec.Decoder()
    dec.feed(HB)
    dec.feed(START)
    eq([f[2] for f in dec], [0x03, 0x34])


def test_encode_frame():
    eq(codec.encode(1, 0x03, HB[6:-2]), HB)
    hi = codec.encode(1, 0x03, HB[6:-2], crc_high_first=True)
    eq(hi[-2:], bytes((HB[-1], HB[-2])))
    f = codec.encode(0x1234, 0x0A, bytes(90), enc=1)
    eq(f[:6], b"\x68\x5e\x34\x12\x01\x0a")
    try:
        codec.encode(0, 1, bytes(252))
        assert False
    except ValueError:
        pass


def test_encrypted_flag_is_passed_through():
    f = codec.encode(7, 0x03, HB[6:-2], enc=1)
    got = decode_all(f)[0]
    eq(got[0][:3], (7, 1, 0x03))


# ---- field encodings ----------------------------------------------------------------------------


def test_bcd():
    eq(codec.bcd_enc("32010200000001", 7), b"\x32\x01\x02\x00\x00\x00\x01")
    eq(codec.bcd_enc(573, 4), b"\x00\x00\x05\x73")
    eq(codec.bcd_enc("1000000573", 8), b"\x00\x00\x00\x10\x00\x00\x05\x73")
    eq(codec.bcd_dec(b"\x00\x00\x05\x73"), "00000573")
    eq(codec.bcd_dec(b"\xaa\x12\x34\xbb", 1, 2), "1234")
    eq(codec.bcd_int(b"\x00\x99"), 0)
    eq(codec.bcd_int(b"\x00\x99", 0, 2), 99)
    eq(codec.bcd_dec(codec.bcd_enc("898604D117", 5)), "898604D117")  # ICCID nibbles survive
    eq(codec.pile_dec(codec.pile_enc("55031412782305")), "55031412782305")
    eq(codec.pile_enc(1), b"\x00" * 6 + b"\x01")
    for bad in ("123456789012345", 10**15):
        try:
            codec.pile_enc(bad)
            assert False, bad
        except ValueError:
            pass


def test_gun():
    eq(codec.gun_enc(1), b"\x01")
    eq(codec.gun_enc(12), b"\x12")
    eq(codec.gun_dec(0x01), 1)
    eq(codec.gun_dec(0x12), 12)
    eq(codec.gun_dec(0x0A), 10)  # not BCD: read as binary
    for bad in (-1, 100):
        try:
            codec.gun_enc(bad)
            assert False
        except ValueError:
            pass


def test_uint():
    eq(codec.uint_enc(2251, 2), b"\xcb\x08")  # 225.1 V, §2
    eq(codec.uint_dec(b"\xd0\xfb\x01\x00", 0, 4), 130000)  # 1.30000 yuan/kWh, §2
    eq(codec.uint_dec(b"\xa0\x86\x01\x00", 0, 4), 100000)  # 1000.00 yuan, §2
    eq(codec.uint_dec(codec.uint_enc(0xFFFFFFFFFF, 5), 0, 5), 0xFFFFFFFFFF)
    for v, n in ((256, 1), (-1, 2), (1 << 40, 5)):
        try:
            codec.uint_enc(v, n)
            assert False, (v, n)
        except ValueError:
            pass


def test_ascii():
    eq(codec.ascii_enc("V1.0.0", 8), b"V1.0.0\x00\x00")
    eq(codec.ascii_dec(b"V1.0.0\x00\x00"), "V1.0.0")
    eq(codec.ascii_dec(b"\x00" * 17), "")
    eq(codec.ascii_enc("", 3), b"\x00\x00\x00")
    eq(codec.ascii_dec(b"\xff\xfe\x00"), "FFFE")  # not text: hex rather than an exception
    try:
        codec.ascii_enc("123456789", 8)
        assert False
    except ValueError:
        pass


def test_cp56_reference_example():
    # §2: 98 B7 0E 11 10 03 14 = 2020-03-16 17:14:47.000
    b = unhexlify("98B70E11100314")
    eq(codec.cp56_dec(b), (2020, 3, 16, 17, 14, 47, 0))
    eq(codec.cp56_enc((2020, 3, 16, 17, 14, 47, 0)), b)
    eq(codec.cp56_enc((2020, 3, 16, 17, 14, 47)), b)  # ms optional


def test_cp56_round_trips_and_edges():
    for t in (
        (2000, 1, 1, 0, 0, 0, 0),
        (2025, 12, 31, 23, 59, 59, 999),
        (2127, 2, 29, 12, 30, 0, 1),
        (2000, 0, 0, 0, 0, 0, 0),  # an unset time field (all zeros)
    ):
        eq(codec.cp56_dec(codec.cp56_enc(t)), t)
    eq(codec.cp56_enc((2000, 0, 0, 0, 0, 0, 0)), bytes(7))
    # IV (minute bit 7), SU (hour bit 7), day-of-week (day bits 5-7) and reserved bits are masked off
    eq(codec.cp56_dec(b"\x00\x00\x80\x8c\xe1\xf1\x99"), (2025, 1, 1, 12, 0, 0, 0))
    eq(codec.cp56_dec(b"\x01\x02" + bytes(5), 0), (2000, 0, 0, 0, 0, 0, 513))
    eq(
        codec.cp56_dec(b"zz" + codec.cp56_enc((2024, 2, 29, 1, 2, 3, 4)), 2),
        (2024, 2, 29, 1, 2, 3, 4),
    )
    for bad in (
        (1999, 1, 1, 0, 0, 0),
        (2128, 1, 1, 0, 0, 0),
        (2025, 13, 1, 0, 0, 0),
        (2025, 1, 32, 0, 0, 0),
        (2025, 1, 1, 24, 0, 0),
        (2025, 1, 1, 0, 60, 0),
        (2025, 1, 1, 0, 0, 60),
        (2025, 1, 1, 0, 0, 59, 1000),
    ):
        try:
            codec.cp56_enc(bad)
            assert False, bad
        except ValueError:
            pass


# ---- frame bodies -------------------------------------------------------------------------------


def test_every_layout_has_a_consistent_size():
    sizes = {
        0x01: 30,
        0x02: 8,
        0x03: 9,
        0x04: 9,
        0x05: 9,
        0x06: 10,
        0x09: 7,
        0x0A: 90,
        0x58: 90,
        0x12: 8,
        0x13: 60,
        0x15: 73,
        0x17: 45,
        0x19: 39,
        0x1B: 32,
        0x1D: 28,
        0x21: 28,
        0x23: 44,
        0x25: 31,
        0x31: 51,
        0x32: 38,
        0x33: 26,
        0x34: 44,
        0x35: 10,
        0x36: 8,
        0x3B: 158,
        0x40: 17,
        0x41: 16,
        0x42: 20,
        0x43: 9,
        0x51: 8,
        0x52: 9,
        0x55: 14,
        0x56: 14,
        0x57: 8,
        0x61: 16,
        0x62: 13,
        0x63: 13,
        0x91: 8,
        0x92: 8,
        0x93: 8,
        0x94: 94,
        0xA1: 58,
        0xA2: 44,
        0xA3: 33,
        0xA4: 50,
    }  # §4 body lengths
    for typ, n in sizes.items():
        body = frames.encode(typ, {})
        eq(len(body), n, "type %02X" % typ)
        eq(frames.encode(typ, frames.decode(typ, body)), body, "type %02X" % typ)
    for typ in frames.LAYOUTS:
        assert typ in sizes or typ in (0x44, 0x45, 0x46, 0x47, 0x48), typ


def test_wrong_body_size_and_unknown_type_raise():
    for typ, body in ((0x03, bytes(8)), (0x03, bytes(10)), (0x3B, bytes(157)), (0x99, b"")):
        try:
            frames.decode(typ, body)
            assert False, typ
        except ValueError:
            pass
    try:
        frames.encode(0x99, {})
        assert False
    except ValueError:
        pass


def test_card_lists():
    body = frames.encode(0x46, {"pile": "1", "cards": ["D14B0A54", "01"]})
    eq(len(body), 7 + 1 + 16)
    eq(body[7], 2)
    eq(frames.decode(0x46, body)["cards"], ["00000000D14B0A54", "0000000000000001"])
    eq(
        frames.decode(0x46, frames.encode(0x46, {"pile": "1"})),
        {"pile": "00000000000001", "cards": []},
    )
    bad = bytearray(body)
    bad[7] = 3  # count disagrees with the items present
    try:
        frames.decode(0x46, bytes(bad))
        assert False
    except ValueError:
        pass
    try:
        frames.decode(0x47, body[:7] + bytes(8))  # 8 bytes is not a whole (card, exists) item
        assert False
    except ValueError:
        pass


def test_reboot_control_as_4_byte_int_quirk():
    # JCPP sends 0x92's control as a 4-byte big-endian int: read the last byte (ykc-protocol.md §4.17).
    body = codec.pile_enc("32010200000001") + b"\x00\x00\x00\x02"
    eq(frames.decode(0x92, body), {"pile": "32010200000001", "control": 2})


def test_encode_defaults_and_range_errors():
    body = frames.encode(0x13, {"pile": "32010200000001", "gun": 1, "status": 2, "plugged": 1})
    d = frames.decode(0x13, body)
    eq(d["trade"], "0" * 32)
    eq((d["status"], d["plugged"], d["voltage"]), (2, 1, 0))
    for fields in ({"voltage": 65536}, {"trade": "1" * 33}, {"card": "1" * 17}, {"vin": "X" * 18}):
        try:
            frames.encode(0x13 if "voltage" in fields or "trade" in fields else 0x31, fields)
            assert False, fields
        except ValueError:
            pass


def test_billing_slots():
    slots = "0123" * 12
    d = frames.decode(0x0A, frames.encode(0x0A, {"pile": "1", "model": "0100", "slots": slots}))
    eq(d["slots"], slots)
    eq(d["model"], "0100")
    body = bytearray(frames.encode(0x0A, {}))
    body[42] = 16
    try:
        frames.decode(0x0A, bytes(body))
        assert False
    except ValueError:
        pass


mptest.run(globals())
