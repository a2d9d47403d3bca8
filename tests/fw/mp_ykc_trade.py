# YKC sessions on the unix port, with the real charger model and emulated board and a recording
# link instead of TCP: trade numbers, remote start/stop, energy per price period across a boundary,
# the 0x3B record, power-cut recovery from flash, 0x13 fields, and frames the stack must survive.
import os
import asyncio
import mptest

mptest.flash()

import gc
import bus
import board as unix_board
from net import netctl
from charger.charger import Charger
from hal.clock import parse_iso
from proto import ykc
from proto.ykc import billing as B
from proto.ykc import frames, trade
from proto.ykc.cards import card_hex

PILE = "32010200000001"
T = "32010200000001012501010950000001"
SLOTS = "3" * 16 + "2" * 4 + "1" * 4 + "2" * 4 + "1" * 6 + "0" * 4 + "1" * 4 + "2" * 4 + "3" * 2
MODEL = {"pile": PILE, "model": "0100", "elec0": 120000, "svc0": 80000, "elec1": 100000, "svc1": 60000,
         "elec2": 70000, "svc2": 50000, "elec3": 40000, "svc3": 30000, "loss": 0, "slots": SLOTS}
START = {"trade": T, "pile": PILE, "gun": 1, "logical": "1000000000000573", "card": "00000000D14B0A54",
         "balance": 100000}
T0 = parse_iso("2025-01-01T01:50:00Z")   # 09:50 in China: flat (code 2) until 10:00, then peak


def make(keep=False, cfg=None):
    # A charger + YKC stack on the emulated board; keep=True keeps the flash (a power cut).
    if not keep:
        for d in ("/state", "/hw", "/ykc"):
            try:
                for f in os.listdir(d):
                    os.remove(d + "/" + f)
            except OSError:
                pass
    bus.clear()
    netctl._closers[:] = []     # the old stack goes (and its memory with it)
    gc.collect()
    c = {"id": "T1", "connectors": 1, "protocol": "ykc", "pile_code": PILE, "ykc_tz_min": 480}
    c.update(cfg or {})
    b = unix_board.make_board(c)
    ch = Charger(b, c)
    st, tasks = ykc.start(ch, b, c)   # the tasks are not run: the test drives the stack
    sent = []

    def send(typ, f, seq=None):
        frames.encode(typ, f)   # everything the stack sends must encode
        sent.append((typ, f, seq))
        return True

    st.send = send
    st.registered = True
    b.clock.set(T0)
    ch.start()
    return ch, b, st, sent


def of(sent, typ):
    return [f for t, f, s in sent if t == typ]


def started():
    ch, b, st, sent = make()
    assert st.billing.set(MODEL)
    b.sim.plug(1, max_power_w=0)     # no power: the test moves the meter itself
    st.trades.remote_start(5, START)
    return ch, b, st, sent


def test_trade_numbers_and_cards():
    assert trade.make_trade(PILE, 1, parse_iso("2025-01-01T04:00:00Z"), 480, 12345) == \
        PILE + "01" + "250101120000" + "2345"
    assert card_hex("D14B0A54") == "00000000D14B0A54" and card_hex("d14b0a54") == "00000000D14B0A54"
    assert card_hex("TAG1") == "0000000054414731"     # not hex: its ASCII bytes
    assert trade.stop_code("Remote", None, False) == 0x40
    assert trade.stop_code("PowerLoss", None, True) == 0x83
    assert trade.stop_code("Other", "GroundFailure", False) == 0x6F
    assert trade.stop_code("Other", "GroundFailure", True) == 0x70
    assert trade.stop_code("Reboot", None, False) == 0x90


def test_address_and_pile_code_from_config():
    from proto.ykc import station

    assert station.address({"csms_url": "tcp://10.0.0.1:9000/"}) == ("10.0.0.1", 9000)
    assert station.address({"ykc_host": "h", "ykc_port": 7, "csms_url": "tcp://x:1"}) == ("h", 7)
    assert station.address({}) == ("127.0.0.1", 8767)
    assert station.pile_code({"pile_code": "32010200000001"}) == "32010200000001"
    a = station.pile_code({"id": "CP-7"})
    assert len(a) == 14 and a.isdigit() and a == station.pile_code({"id": "CP-7", "pile_code": "12"})
    assert a != station.pile_code({"id": "CP-8"})


def test_remote_start_needs_a_model_and_a_free_gun():
    ch, b, st, sent = make()
    b.sim.plug(1)
    st.trades.remote_start(1, START)
    assert of(sent, 0x33)[-1]["result"] == 0 and of(sent, 0x33)[-1]["reason"] == 3   # no model
    st.billing.set(MODEL)
    st.trades.remote_start(2, dict(START, pile="32010200000009"))
    assert of(sent, 0x33)[-1]["reason"] == 1                                          # not this pile
    st.trades.remote_start(3, START)
    assert of(sent, 0x33)[-1]["result"] == 1 and ch.connectors[1].tx.id == T
    st.trades.remote_start(4, START)
    assert of(sent, 0x33)[-1]["reason"] == 2                                          # busy


def test_session_priced_per_period_and_recorded():
    ch, b, st, sent = started()
    assert sent[-2][0] == 0x33 and sent[-2][2] == 5 and sent[-2][1]["result"] == 1   # seq echoed
    rt = sent[-1][1]
    assert sent[-1][0] == 0x13 and rt["status"] == 3 and rt["trade"] == T           # 0x13 after 0x33
    m = b.connectors[0].meter
    m0 = m.energy_wh
    m.energy_wh += 1000                        # 1 kWh at 09:50-09:55 (flat)
    b.clock.set(T0 + 300)
    st.trades.sample(1)
    b.clock.set(T0 + 605)                      # 10:00:05: the realtime task samples at the boundary
    st.trades.sample(1)
    m.energy_wh += 500                         # 0.5 kWh after 10:00 (peak)
    b.clock.set(T0 + 700)
    f = st.rt.frame(1)
    assert f["energy"] == 15000 and f["amount"] == 12000 + 8000 and f["minutes"] == 11
    assert f["status"] == 3 and f["plugged"] == 1 and f["trade"] == T
    st.trades.remote_stop(6, {"pile": PILE, "gun": 1})
    stop = of(sent, 0x35)[-1]
    assert stop["result"] == 1 and of(sent, 0x13)[-1]["status"] == 2
    left = os.listdir("/ykc")
    assert "s1.json" not in left and "s1.slot" not in left   # the session state is gone from flash
    items = st.records.q.items
    assert len(items) == 1
    r = items[0][2]
    assert r["trade"] == T and r["reason"] == 0x40 and r["trade_type"] == 1 and r["card"] == START["card"]
    assert (r["energy2"], r["energy1"], r["energy0"], r["energy3"]) == (10000, 5000, 0, 0)
    assert (r["amount2"], r["amount1"], r["amount"]) == (12000, 8000, 20000)
    assert (r["price2"], r["price1"]) == (120000, 160000)
    assert r["meter_start"] == m0 * 10 and r["meter_end"] == (m0 + 1500) * 10 and r["energy"] == 15000
    assert r["start"] == (2025, 1, 1, 9, 50, 0, 0) and r["end"][:5] == (2025, 1, 1, 10, 1)
    frames.encode(0x3B, r)
    st.records.kick()
    assert of(sent, 0x3B)[-1] is r
    st.records.confirm(0, {"trade": T, "result": 0})
    assert not st.records.q.items


def test_power_cut_mid_session_gives_a_record_after_boot():
    ch, b, st, sent = started()
    m = b.connectors[0].meter
    m0 = m.energy_wh
    m.energy_wh += 700
    b.clock.set(T0 + 60)
    st.trades.sample(1)                        # checkpointed: tx and session state on flash
    assert "s1.slot" in os.listdir("/ykc")
    m.energy_wh += 50                          # never read: lost with the power
    ch, b, st, sent = make(keep=True)          # power back: the model closes the transaction
    items = st.records.q.items
    assert len(items) == 1
    r = items[0][2]
    assert r["trade"] == T and r["reason"] == 0x83 and r["energy2"] == 7000 and r["energy"] == 7000
    assert r["amount"] == 7000 * 120000 // 100000 and r["meter_start"] == m0 * 10
    # And it survives another restart until a 0x40 confirms it.
    ch, b, st, sent = make(keep=True)
    assert [i[3] for i in st.records.q.items] == [T]
    st.records.reset()                         # what a login does
    assert of(sent, 0x3B)[-1]["trade"] == T
    st.records.confirm(0, {"trade": T, "result": 0})
    ch, b, st, sent = make(keep=True)
    assert not st.records.q.items


def test_idle_realtime_faults_and_unsupported_frames():
    ch, b, st, sent = make()
    f = st.rt.frame(1)
    assert f == {"pile": PILE, "gun": 1, "status": 2, "homed": 1, "plugged": 0, "faults": 0}
    b.sim.fault(1, "GroundFailure", True)
    f = st.rt.frame(1)
    assert f["status"] == 1 and f["faults"] == 0x20
    st.rt.flush()
    assert of(sent, 0x13)[-1]["status"] == 1      # the status change was due at once
    # 0x12 is answered with a 0x13 that echoes its seq.
    body = frames.encode(0x12, {"pile": PILE, "gun": 1})
    st._dispatch((77, 0, 0x12, body, 0))
    assert sent[-1][0] == 0x13 and sent[-1][2] == 77
    n = len(sent)
    st._dispatch((1, 0, 0x62, frames.encode(0x62, {"pile": PILE, "gun": 1, "cmd": 0x55}), 0))  # lock
    st._dispatch((2, 0, 0x94, frames.encode(0x94, {"pile": PILE}), 0))                     # update
    st._dispatch((3, 0, 0x34, b"\x01\x02\x03", 0))                                         # too short
    st._dispatch((4, 1, 0x34, frames.encode(0x34, START), 0))                              # encrypted
    st._dispatch((5, 0, 0x77, b"", 0))                                                     # unknown
    st._dispatch((6, 0, 0x36, frames.encode(0x36, {"pile": PILE, "gun": 9}), 0))           # no such gun
    assert sent[n:] == [(0x35, {"pile": PILE, "gun": 9, "result": 0, "reason": 1}, 6)]


def test_time_sync_params_and_cards():
    ch, b, st, sent = make(cfg={"max_current_a": 32})
    body = frames.encode(0x56, {"pile": PILE, "time": (2024, 6, 1, 8, 0, 0, 0)})
    st._dispatch((9, 0, 0x56, body, 0))
    assert abs(b.clock.now() - parse_iso("2024-06-01T00:00:00Z")) < 2
    assert sent[-1][0] == 0x55 and sent[-1][1]["time"][:4] == (2024, 6, 1, 8)
    st._dispatch((10, 0, 0x52, frames.encode(0x52, {"pile": PILE, "disabled": 1, "max_power": 50}), 0))
    assert sent[-1][1]["result"] == 1 and ch.connectors[1].status == "Unavailable"
    assert ch.connectors[1].limit_a == 16
    ch, b, st, sent = make(keep=True, cfg={"max_current_a": 32})   # both survive a reboot
    assert ch.connectors[1].status == "Unavailable" and ch.connectors[1].limit_a == 16
    cards = [("1000000000000573", "00000000D14B0A54")]
    st._dispatch((11, 0, 0x44, frames.encode(0x44, {"pile": PILE, "cards": cards}), 0))
    assert sent[-1][1] == {"pile": PILE, "result": 1, "reason": 0}
    assert ch.auth.listed("00000000D14B0A54", 0) == ("Accepted", "1000000000000573")
    st._dispatch((12, 0, 0x48, frames.encode(0x48, {"pile": PILE, "cards": ["00000000D14B0A54"]}), 0))
    assert sent[-1][1]["cards"] == [("00000000D14B0A54", 1)]


async def test_offline_card_start_uses_the_local_list():
    ch, b, st, sent = make()
    st.billing.set(MODEL)
    ch.auth.update_list(1, [("00000000D14B0A54", ["Accepted", None, "1000000000000573"])], False)
    st.registered = False
    b.sim.plug(1, max_power_w=0)
    b.sim.card("d14b0a54", 1)
    for _ in range(5):
        await asyncio.sleep_ms(10)
    tx = ch.connectors[1].tx
    assert tx is not None and tx.id.startswith(PILE + "01") and len(tx.id) == 32
    s = st.trades.sess[1]
    assert s["k"] == 4 and s["card"] == "00000000D14B0A54" and s["lc"] == "1000000000000573"
    b.sim.card("d14b0a54", 1)                  # the same card stops it
    for _ in range(5):
        await asyncio.sleep_ms(10)
    r = st.records.q.items[-1][2]
    assert r["trade_type"] == 4 and r["reason"] == 0x45 and r["trade"] == tx.id
    b.sim.unplug(1)
    b.sim.plug(1, max_power_w=0)
    b.sim.card("CAFE0001", 1)                  # not in the list: refused offline
    for _ in range(5):
        await asyncio.sleep_ms(10)
    assert ch.connectors[1].tx is None


mptest.run(globals())
