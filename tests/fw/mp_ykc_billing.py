# YKC billing on the unix port: the model from 0x0A/0x58 (validation, flash), local time and slots,
# and the cost maths (per period, loss ratio, rounding) in the wire's integer units.
import mptest

mptest.flash()

import store.kv as kv
from hal.clock import parse_iso
from proto.ykc import billing as B
from proto.ykc import codec, frames

SLOTS = "3" * 16 + "2" * 4 + "1" * 4 + "2" * 4 + "1" * 6 + "0" * 4 + "1" * 4 + "2" * 4 + "3" * 2
MODEL = {"pile": "32010200000001", "model": "0100", "elec0": 120000, "svc0": 80000, "elec1": 100000,
         "svc1": 60000, "elec2": 70000, "svc2": 50000, "elec3": 40000, "svc3": 30000, "loss": 0,
         "slots": SLOTS}


def fresh():
    kv.ensure_dir("/ykc")
    kv.remove(B.PATH)
    return B.Billing()


def test_model_from_0x0a_frame_is_stored_and_survives_a_restart():
    b = fresh()
    assert not b.ready() and b.model_id() == "0000"
    # Through the real frame codec, as it arrives on the wire.
    raw = frames.build(3, 0x0A, MODEL)
    f = frames.parse(next(iter(codec.Decoder().feed(raw))))
    assert b.set(f)
    assert b.ready() and b.model_id() == "0100"
    assert b.m["p"] == [120000, 80000, 100000, 60000, 70000, 50000, 40000, 30000]
    again = B.Billing()
    assert again.m == b.m


def test_bad_models_are_refused_and_change_nothing():
    b = fresh()
    assert b.set(MODEL)
    for bad in ({"slots": "4" * 48}, {"slots": "3" * 47}, {"model": "01"}, {"loss": 300}):
        m = dict(MODEL)
        m.update(bad)
        assert not b.set(m), bad
    assert b.model_id() == "0100" and B.Billing().model_id() == "0100"
    kv.save(B.PATH, {"id": "0100", "p": [1, 2], "loss": 0, "slots": SLOTS})   # damaged on flash
    assert not B.Billing().ready()


def test_local_time_slots_and_boundaries():
    tz = 480
    # 2025-01-01 09:29:59 in China is 01:29:59 UTC: slot 18 (flat), the next boundary 1 s away.
    t = parse_iso("2025-01-01T01:29:59Z")
    assert B.slot(t, tz) == 18 and B.next_boundary(t, tz) == 1
    b = fresh()
    b.set(MODEL)
    assert B.code_at(b.m, t, tz) == 2
    assert B.code_at(b.m, t + 1, tz) == 2            # 09:30 still flat
    assert B.code_at(b.m, t + 1801, tz) == 1         # 10:00 peak
    assert B.code_at(b.m, parse_iso("2025-01-01T09:15:00Z"), tz) == 0   # 17:15 sharp
    assert B.code_at(b.m, parse_iso("2025-01-01T15:59:59Z"), tz) == 3   # 23:59:59 valley
    assert B.slot(parse_iso("2025-01-01T16:00:00Z"), tz) == 0           # local midnight
    assert B.slot(t, 0) == 2                         # the same instant in UTC


def test_cp56_round_trip_in_local_time():
    t = parse_iso("2025-01-01T04:00:00Z") + 0.25
    c = B.cp56(t, 480)
    assert c == (2025, 1, 1, 12, 0, 0, 250)
    assert codec.cp56_dec(codec.cp56_enc(c)) == c
    assert abs(B.epoch_of(c, 480) - t) < 0.001
    for bad in ((2025, 0, 1, 12, 0, 0, 0), (2025, 1, 0, 0, 0, 0, 0), (2025, 1, 1, 24, 0, 0, 0)):
        try:
            B.epoch_of(bad, 480)
            raise AssertionError("accepted %r" % (bad,))
        except ValueError:
            pass


def test_cost_per_period_and_rounding():
    b = fresh()
    b.set(MODEL)
    m = b.m
    assert [B.unit_price(m, k) for k in range(4)] == [200000, 160000, 120000, 70000]
    # 8.3333 kWh at 1.30000 yuan/kWh = 10.83329 yuan -> 10.8333 (0.0001 yuan units)
    m2 = {"p": [100000, 30000] * 4, "loss": 0, "slots": SLOTS}
    assert B.amount(m2, 0, 83333) == 108333
    # Half up: 1 x 0.0001 kWh at 0.5 yuan/kWh = 0.00005 yuan -> 0.0001; 0.4 yuan/kWh -> 0.
    assert B.amount({"p": [50000, 0] * 4, "loss": 0, "slots": SLOTS}, 0, 1) == 1
    assert B.amount({"p": [40000, 0] * 4, "loss": 0, "slots": SLOTS}, 0, 1) == 0
    # A session over two periods: 10 kWh flat + 2.5 kWh peak.
    e = [0, 25000, 100000, 0]
    te, tl, ta = B.totals(m, e)
    assert te == 125000 and tl == te
    assert ta == 100000 * 120000 // 100000 + 25000 * 160000 // 100000 == 160000   # 16.0000 yuan
    # Big numbers stay exact (ints): 999 kWh at the sharp price.
    assert B.amount(m, 0, 9990000) == 19980000    # 1998.0000 yuan


def test_loss_ratio_is_a_percentage():
    m = {"p": [100000, 0] * 4, "loss": 10, "slots": SLOTS}
    assert B.loss(m, 10000) == 11000
    assert B.amount(m, 2, 10000) == 11000         # 1 kWh billed as 1.1 kWh at 1 yuan: 1.1000 yuan
    assert B.totals(m, [0, 0, 10000, 0]) == (10000, 11000, 11000)


mptest.run(globals())
