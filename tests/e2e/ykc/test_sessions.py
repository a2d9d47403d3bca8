"""YKC charging sessions end to end: remote start/stop, real-time data, the 0x3B record priced with
the platform's billing model, resending until 0x40, card starts online and offline, DC BMS frames,
balance, faults and a power cut in the middle of a session."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct
from typing import Any

from harness.instance import Instance
from tools.ykc_peer import BillingModel, Record, YkcPeer
from tools.ykc_peer.codec import datetime_from_cp56

PILE = "32010200000001"
CARD = "00000000D14B0A54"


def price(model: BillingModel, code: int) -> int:
    return model.elec[code] + model.svc[code]


def amount(energy: int, unit_price: int) -> int:
    # 0.0001 kWh x 0.00001 yuan/kWh -> 0.0001 yuan, half up (the firmware's documented rounding).
    return (energy * unit_price + 50_000) // 100_000


def codes_between(model: BillingModel, start: dt.datetime, end: dt.datetime) -> set[int]:
    """Price periods of every half-hour slot the interval touches (local time)."""
    out = set()
    t = start
    while t <= end:
        out.add(int(model.slots[(t.hour * 60 + t.minute) // 30]))
        t += dt.timedelta(minutes=1)
    out.add(int(model.slots[(end.hour * 60 + end.minute) // 30]))
    return out


def check_priced(f: dict[str, Any], model: BillingModel, energy: int, start: dt.datetime,
                 end: dt.datetime) -> None:
    """Energy and cost of a 0x13/0x3B against the platform's model, computed here on our own."""
    codes = codes_between(model, start, end)
    if len(codes) == 1:
        assert f["amount"] == amount(energy, price(model, codes.pop()))
    else:   # the session crossed a period boundary: each period is priced on its own
        assert f["amount"] <= max(amount(energy, price(model, k)) for k in codes) + 4


def check_record(rec: Record, model: BillingModel, m0_wh: int, m1_wh: int) -> None:
    f = rec.fields
    assert f["meter_start"] == m0_wh * 10 and f["meter_end"] == m1_wh * 10   # 0.0001 kWh
    assert f["energy"] == (m1_wh - m0_wh) * 10 and f["loss_energy"] == f["energy"]
    for k in range(4):
        assert f[f"price{k}"] == price(model, k)
        assert f[f"loss{k}"] == f[f"energy{k}"]
        assert f[f"amount{k}"] == amount(f[f"energy{k}"], price(model, k))
    assert sum(f[f"energy{k}"] for k in range(4)) == f["energy"]
    assert sum(f[f"amount{k}"] for k in range(4)) == f["amount"]
    start, end = datetime_from_cp56(f["start"]), datetime_from_cp56(f["end"])
    now = dt.datetime.now()
    assert now - dt.timedelta(minutes=2) < start <= end <= now + dt.timedelta(seconds=2)
    used = {k for k in range(4) if f[f"energy{k}"]}
    assert used <= codes_between(model, start, end)
    check_priced(f, model, f["energy"], start, end)


async def last_tx(cp: Instance, conn: int = 1, timeout: float = 5.0) -> dict[str, Any]:
    """The model's own view of the last finished transaction (console tx_stop event)."""
    for _ in range(int(timeout * 20)):
        tx = cp.state.last_tx.get(conn)
        if tx:
            return tx
        await asyncio.sleep(0.05)
    raise AssertionError("no tx_stop event")


async def running_tx(cp: Instance, conn: int = 1, timeout: float = 5.0) -> dict[str, Any]:
    """The model's running transaction (console tx_start event, with its meter start m0)."""
    for _ in range(int(timeout * 20)):
        tx = cp.state.connectors.get(conn, {}).get("tx")
        if tx and tx.get("id"):
            return tx
        await asyncio.sleep(0.05)
    raise AssertionError("no tx_start event")


async def meter_wh(cp: Instance, conn: int = 1) -> int:
    return int((await cp.request("status", conn))["energy_wh"])


async def queued(cp: Instance) -> int:
    return int((await cp.request("status"))["link"]["queued"])


async def drained(cp: Instance, timeout: float = 3.0) -> None:
    """Wait until the charger holds no unconfirmed record (a 0x40 takes a moment to land)."""
    for _ in range(int(timeout * 10)):
        if await queued(cp) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("records still queued")


async def remote_charge(cp: Instance, peer: YkcPeer, plug: bool = True, **kw: Any) -> str:
    if plug:
        await cp.request("plug", 1)
    mark = peer.mark()
    sent = await peer.remote_start(PILE, 1, **kw)
    trade = sent.fields["trade"]
    reply = await peer.wait_for(0x33, pile=PILE, since=mark)
    assert reply.fields == {"trade": trade, "pile": PILE, "gun": 1, "result": 1, "reason": 0}
    assert reply.seq == sent.seq   # a reply echoes the request's sequence number
    charging = await peer.wait_for(0x13, pile=PILE, since=reply.id, match={"trade": trade, "status": 3})
    assert charging.id > reply.id
    return trade


async def test_remote_session_realtime_and_record(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    model = peer.config.billing
    trade = await remote_charge(cp, peer)
    assert trade.startswith(PILE + "01")
    m0 = (await running_tx(cp))["m0"]
    m1 = await meter_wh(cp)
    a = await peer.wait_for(0x13, pile=PILE, since=peer.mark(), match={"trade": trade})
    b = await peer.wait_for(0x13, pile=PILE, since=a.id, match={"trade": trade})
    assert 0.6 < b.mono - a.mono < 1.6        # every ykc_realtime_s (1 s here) while charging
    while b.fields["energy"] <= a.fields["energy"]:
        b = await peer.wait_for(0x13, pile=PILE, since=b.id, match={"trade": trade})
    m2 = await meter_wh(cp)
    # Energy as the meter says (0.0001 kWh = 0.1 Wh): between two console readings around it.
    assert (m1 - m0) * 10 <= b.fields["energy"] <= (m2 - m0) * 10
    for r in (a, b):
        f = r.fields
        assert f["status"] == 3 and f["plugged"] == 1 and f["homed"] == 0
        assert 2200 < f["voltage"] < 2400 and f["current"] > 100   # 0.1 V, 0.1 A
        assert f["loss_energy"] == f["energy"] and f["minutes"] == 0
        now = dt.datetime.now()
        check_priced(f, model, f["energy"], now - dt.timedelta(seconds=5), now)
    assert b.fields["amount"] > a.fields["amount"]
    # Remote stop: 0x35, the idle 0x13 (trade zeroed), then the record, confirmed by 0x40.
    mark = peer.mark()
    await peer.remote_stop(PILE, 1)
    stop = await peer.wait_for(0x35, pile=PILE, since=mark)
    assert stop.fields == {"pile": PILE, "gun": 1, "result": 1, "reason": 0}
    idle = await peer.wait_for(0x13, pile=PILE, since=stop.id, match={"status": 2})
    assert idle.fields["trade"] == "0" * 32 and idle.fields["energy"] == 0
    rec = await peer.wait_for(0x3B, pile=PILE, since=mark)
    assert stop.id < idle.id < rec.id
    f = rec.fields
    assert f["trade"] == trade and f["gun"] == 1 and f["trade_type"] == 1 and f["reason"] == 0x40
    assert f["card"] == trade[-16:] and f["energy"] >= b.fields["energy"]
    tx = await last_tx(cp)
    assert tx["id"] == trade and tx["reason"] == "Remote"
    check_record(rec, model, tx["m0"], tx["m1"])
    await peer.wait_for(0x40, pile=PILE, since=rec.id, direction="out")
    await drained(cp)
    # A second stop finds no session.
    mark = peer.mark()
    await peer.remote_stop(PILE, 1)
    again = await peer.wait_for(0x35, pile=PILE, since=mark)
    assert again.fields["result"] == 0 and again.fields["reason"] == 2


async def test_remote_start_before_plug_in(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    mark = peer.mark()
    sent = await peer.remote_start(PILE, 1)
    trade = sent.fields["trade"]
    first = await peer.wait_for(0x33, pile=PILE, since=mark)
    assert first.fields["result"] == 0 and first.fields["reason"] == 5   # not plugged
    await cp.request("plug", 1)
    second = await peer.wait_for(0x33, pile=PILE, since=first.id)
    assert second.fields == {"trade": trade, "pile": PILE, "gun": 1, "result": 1, "reason": 0}
    await peer.wait_for(0x13, pile=PILE, since=second.id, match={"trade": trade, "status": 3})


async def test_record_resent_until_confirmed_across_platform_restart(start_ykc_charger,
                                                                    peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    peer.config.confirm_records = False
    trade = await remote_charge(cp, peer)
    await asyncio.sleep(0.5)
    mark = peer.mark()
    await peer.remote_stop(PILE, 1)
    first = await peer.wait_for(0x3B, pile=PILE, since=mark)
    second = await peer.wait_for(0x3B, pile=PILE, since=first.id, timeout=5)
    assert first.fields == second.fields and first.fields["trade"] == trade
    assert 1.5 < second.mono - first.mono < 3.5     # ykc_record_retry_s = 2
    assert await queued(cp) == 1
    # The platform goes down and comes back confirming: the record goes again after the new login.
    await peer.stop()
    peer.config.confirm_records = True
    mark = peer.mark()
    await peer.start()
    login = await peer.wait_for(0x01, pile=PILE, since=mark, timeout=10)
    rec = await peer.wait_for(0x3B, pile=PILE, since=login.id)
    assert rec.fields == first.fields
    await peer.wait_for(0x40, pile=PILE, since=rec.id, direction="out")
    await drained(cp)
    await asyncio.sleep(2.5)   # nothing more once confirmed
    assert len(peer.records(0x3B, pile=PILE, since=rec.id)) == 0


async def test_power_cut_mid_session_record_after_reboot(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    model = peer.config.billing
    trade = await remote_charge(cp, peer)
    last = await peer.wait_for(0x13, pile=PILE, since=peer.mark(), match={"trade": trade})
    while last.fields["energy"] == 0:
        last = await peer.wait_for(0x13, pile=PILE, since=last.id, match={"trade": trade})
    started = await running_tx(cp)   # the model's tx_start event: meter start
    assert started["id"] == trade
    mark = peer.mark()
    cp.power_cut()
    login = await peer.wait_for(0x01, pile=PILE, since=mark, timeout=15)
    rec = await peer.wait_for(0x3B, pile=PILE, since=login.id)
    f = rec.fields
    assert f["trade"] == trade and f["reason"] == 0x83 and f["trade_type"] == 1
    # The model closed the interrupted transaction at boot with its last checkpointed meter value:
    # never below what 0x13 reported, never above the meter now (the relay is open after boot).
    meter_now = (await cp.request("status", 1))["energy_wh"]
    assert last.fields["energy"] <= f["energy"] and f["meter_end"] <= meter_now * 10
    check_record(rec, model, started["m0"], f["meter_end"] // 10)
    await peer.wait_for(0x40, pile=PILE, since=rec.id, direction="out")
    await drained(cp)
    assert cp.exits[-1].why == "killed by SIGKILL"


async def test_card_start_online_and_offline(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    await cp.request("plug", 1)
    mark = peer.mark()
    await cp.request("swipe", 1, "D14B0A54")
    req = await peer.wait_for(0x31, pile=PILE, since=mark)
    assert req.fields["card"] == CARD and req.fields["gun"] == 1 and req.fields["mode"] == 1
    auth = await peer.wait_for(0x32, pile=PILE, since=req.id, direction="out")
    trade = auth.fields["trade"]
    await peer.wait_for(0x13, pile=PILE, since=auth.id, match={"trade": trade, "status": 3})
    await asyncio.sleep(0.5)
    await cp.request("swipe", 1, "D14B0A54")   # the same card ends it
    rec = await peer.wait_for(0x3B, pile=PILE, since=auth.id)
    f = rec.fields
    assert f["trade"] == trade and f["trade_type"] == 2 and f["reason"] == 0x45 and f["card"] == CARD
    tx = await last_tx(cp)
    check_record(rec, peer.config.billing, tx["m0"], tx["m1"])
    # Refused by the platform: nothing starts.
    await cp.request("unplug", 1)
    await cp.request("plug", 1)
    peer.config.card_result, peer.config.card_reason = 0, 1
    mark = peer.mark()
    await cp.request("swipe", 1, "AABBCCDD")
    await peer.wait_for(0x32, pile=PILE, since=mark, direction="out")
    await asyncio.sleep(0.3)
    assert (await cp.request("status", 1))["status"] == "Preparing"
    # Offline-card list: synced, queried, then used while the platform is unreachable.
    _, ack = await peer.request(PILE, 0x44, {"cards": [["1000000000000573", "00000000AABBCCDD"]]})
    assert ack.fields == {"pile": PILE, "result": 1, "reason": 0}
    _, found = await peer.request(PILE, 0x48, {"cards": ["00000000AABBCCDD", "0000000000000001"]})
    assert found.fields["cards"] == [["00000000AABBCCDD", 1], ["0000000000000001", 0]]
    await cp.request("net", "down")
    await asyncio.sleep(0.3)
    await cp.request("swipe", 1, "AABBCCDD")
    await cp.wait_status(1, "Charging", timeout=5)
    await asyncio.sleep(0.5)
    await cp.request("swipe", 1, "AABBCCDD")
    await cp.wait_status(1, "Finishing", timeout=5)
    mark = peer.mark()
    await cp.request("net", "up")
    rec = await peer.wait_for(0x3B, pile=PILE, since=mark, timeout=10)
    f = rec.fields
    assert f["trade_type"] == 4 and f["card"] == "00000000AABBCCDD" and f["reason"] == 0x45
    assert f["trade"].startswith(PILE + "01") and len(f["trade"]) == 32   # made by the pile
    _, cleared = await peer.request(PILE, 0x46, {"cards": ["00000000AABBCCDD", "0000000000000002"]})
    assert cleared.fields["cards"] == [["00000000AABBCCDD", 1, 0], ["0000000000000002", 0, 1]]


async def test_dc_session_bms_frames(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger(type="DC", max_current_a=100)
    assert peer.records(0x01, pile=PILE)[0].fields["pile_type"] == 0   # DC
    await cp.request("plug", 1, {"soc": 50, "battery_v": 400.0, "capacity_wh": 60000,
                                 "max_power_w": 30000})
    trade = await remote_charge(cp, peer, plug=False)
    hs = await peer.wait_for(0x15, pile=PILE, match={"trade": trade})
    data = bytes.fromhex(hs.fields["data"])
    assert struct.unpack_from("<HH", data, 4) == (1500, 4000)   # 150.0 Ah, 400.0 V
    cfg = await peer.wait_for(0x17, pile=PILE, match={"trade": trade})
    data = bytes.fromhex(cfg.fields["data"])
    max_a, energy, _, _, soc10 = struct.unpack_from("<HHHBH", data, 2)
    assert max_a == (75 + 400) * 10 and energy == 600 and 500 <= soc10 <= 510
    demand = await peer.wait_for(0x23, pile=PILE, since=cfg.id, match={"trade": trade})
    data = bytes.fromhex(demand.fields["data"])
    v_out, i_out = struct.unpack_from("<HH", data, 14)
    assert 3960 < v_out < 4040 and i_out > 4000 and 50 <= data[11] <= 51   # ~400 V, > 0 A, SoC
    bsm = await peer.wait_for(0x25, pile=PILE, since=cfg.id, match={"trade": trade})
    assert bytes.fromhex(bsm.fields["data"])[6] == 0x10                # charging allowed
    rt = await peer.wait_for(0x13, pile=PILE, since=demand.id, match={"trade": trade})
    assert 50 <= rt.fields["soc"] <= 51 and rt.fields["remaining"] > 0
    mark = peer.mark()
    await peer.remote_stop(PILE, 1)
    cst = await peer.wait_for(0x21, pile=PILE, since=mark)
    assert bytes.fromhex(cst.fields["data"])[0] == 0x04                # manual stop
    end = await peer.wait_for(0x19, pile=PILE, since=mark)
    idle = await peer.wait_for(0x13, pile=PILE, since=mark, match={"status": 2})
    rec = await peer.wait_for(0x3B, pile=PILE, since=mark)
    assert peer.records(0x35, pile=PILE, since=mark)[0].id < cst.id < end.id < idle.id < rec.id
    assert bytes.fromhex(end.fields["data"])[0] in (50, 51)            # SoC at the end
    tx = await last_tx(cp)
    check_record(rec, peer.config.billing, tx["m0"], tx["m1"])


async def test_balance_update_and_exhaustion(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    trade = await remote_charge(cp, peer, card="00000000000000AA", balance=100000)
    _, ok = await peer.request(PILE, 0x42, {"gun": 1, "card": "00000000000000AA", "balance": 1})
    assert ok.fields == {"pile": PILE, "card": "00000000000000AA", "result": 0}
    _, bad = await peer.request(PILE, 0x42, {"gun": 1, "card": "00000000000000BB", "balance": 5})
    assert bad.fields["result"] == 2
    # 0.01 yuan buys ~8 Wh at the highest price: the session ends by itself (balance used up).
    rec = await peer.wait_for(0x3B, pile=PILE, match={"trade": trade}, timeout=20)
    assert rec.fields["reason"] == 0x6E and rec.fields["amount"] >= 100
    await cp.wait_status(1, "Finishing", timeout=5)


async def test_fault_during_session_ends_it(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    trade = await remote_charge(cp, peer)
    mark = peer.mark()
    await cp.request("fault", 1, "HighTemperature")
    rt = await peer.wait_for(0x13, pile=PILE, since=mark, match={"status": 1})
    assert rt.fields["faults"] & 0x04 and rt.fields["trade"] == "0" * 32
    rec = await peer.wait_for(0x3B, pile=PILE, since=mark)
    assert rec.fields["trade"] == trade and rec.fields["reason"] == 0x74   # temperature


async def test_dc_bms_abort_when_full_and_on_ev_communication_loss(start_ykc_charger,
                                                                   peer: YkcPeer) -> None:
    cp = await start_ykc_charger(type="DC", max_current_a=100)
    # A nearly full small battery: its BMS ends the session (BST, 0x1D) and the record says "SoC full".
    await cp.request("plug", 1, {"soc": 99.8, "taper_soc": 99.5, "capacity_wh": 1000,
                                 "max_power_w": 30000})
    trade = await remote_charge(cp, peer, plug=False)
    bst = await peer.wait_for(0x1D, pile=PILE, match={"trade": trade}, timeout=10)
    assert bytes.fromhex(bst.fields["data"])[0] == 0x01           # SoC target reached
    rec = await peer.wait_for(0x3B, pile=PILE, since=bst.id, match={"trade": trade})
    assert rec.fields["reason"] == 0x41 and rec.fields["energy"] > 0
    await cp.request("unplug", 1)
    # The EV stops talking mid-session: BMS error (0x1B) and abort, record "BMS message timeout".
    await cp.request("plug", 1, {"soc": 50})
    trade = await remote_charge(cp, peer, plug=False)
    await cp.request("fault", 1, "EVCommunicationError")
    bem = await peer.wait_for(0x1B, pile=PILE, match={"trade": trade})
    assert bytes.fromhex(bem.fields["data"])[4] == 0x01
    rec = await peer.wait_for(0x3B, pile=PILE, since=bem.id, match={"trade": trade})
    assert rec.fields["reason"] == 0x84
    assert peer.records(0x1D, pile=PILE, match={"trade": trade})
