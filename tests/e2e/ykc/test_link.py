"""YKC link end to end: login (refused, retried, CRC quirk), heartbeats and the dead-link rule,
billing-model check/request/push, time sync, remote reboot, work parameters, faults on the gun."""

from __future__ import annotations

import asyncio
import datetime as dt

from tools.ykc_peer import BillingModel, YkcPeer
from tools.ykc_peer.codec import cp56_from_datetime, datetime_from_cp56

PILE = "32010200000001"


async def until(pred, timeout: float = 5.0) -> None:
    for _ in range(int(timeout * 20)):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_login_heartbeat_and_dead_link(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger(connectors=2, ykc_heartbeat_s=1, ykc_idle_s=1, crc_high_first=True)
    login = peer.records(0x01, pile=PILE)[0]
    assert login.seq == 0 and login.crc == "hi"   # SEQ starts at 0; the quirk switch is honoured
    assert login.fields == {"pile": PILE, "pile_type": 1, "guns": 2, "proto": 0x10, "fw": "1.0.0",
                            "net": 1, "sim": "0" * 20, "operator": 4}
    # SEQ counts up per frame the pile sends; replies echo it.
    seqs = [r.seq for r in peer.records(pile=PILE, direction="in")]
    assert seqs == list(range(len(seqs)))
    a = await peer.wait_for(0x03, pile=PILE, since=peer.mark(), match={"gun": 1})
    a2 = await peer.wait_for(0x03, pile=PILE, since=a.id)
    b = await peer.wait_for(0x03, pile=PILE, since=a.id, match={"gun": 1})
    assert a.fields == {"pile": PILE, "gun": 1, "state": 0}
    assert a2.fields == {"pile": PILE, "gun": 2, "state": 0}   # one heartbeat per gun
    assert 0.6 < b.mono - a.mono < 1.6
    # Idle real-time data every ykc_idle_s (1 s here; 5 min by default).
    r1 = await peer.wait_for(0x13, pile=PILE, since=b.id, match={"gun": 1})
    r2 = await peer.wait_for(0x13, pile=PILE, since=r1.id, match={"gun": 1})
    assert r1.fields["status"] == 2 and r1.fields["trade"] == "0" * 32
    assert 0.6 < r2.mono - r1.mono < 1.6
    link = (await cp.request("status"))["link"]
    assert link["online"] and link["registered"] and link["received"] > 0 and link["queued"] == 0
    # Three unanswered heartbeats: the pile drops the link, reconnects and logs in again.
    peer.config.answer_heartbeat = False
    mark = peer.mark()
    gone = await peer.wait_for(pile=PILE, event="disconnect", since=mark, timeout=8)
    assert len(peer.records(0x03, pile=PILE, since=mark)) >= 3
    peer.config.answer_heartbeat = True
    again = await peer.wait_for(0x01, pile=PILE, since=gone.id, timeout=5)
    assert again.seq == 0


async def test_one_way_partition_is_detected_by_heartbeats(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger(ykc_heartbeat_s=1)
    mark = peer.mark()
    await cp.request("net", "partition", "rx")       # the platform's answers no longer get through
    gone = await peer.wait_for(pile=PILE, event="disconnect", since=mark, timeout=8)
    assert len(peer.records(0x04, pile=PILE, since=mark, direction="out")) >= 3
    login = await peer.wait_for(0x01, pile=PILE, since=gone.id, timeout=5)
    assert not peer.records(0x03, pile=PILE, since=login.id)   # no 0x02 read yet: nothing else
    await cp.request("net", "heal")
    await peer.wait_for(0x03, pile=PILE, since=login.id, timeout=5)   # logged in once healed
    await until(lambda: cp.state.registered, timeout=5)


async def test_login_refused_then_retried(start_ykc_charger, peer: YkcPeer) -> None:
    peer.config.login_accept = False
    cp = await start_ykc_charger(wait=False, ykc_login_retry_s=1)
    await peer.wait_for(pile=PILE, event="login_refused", timeout=20)
    await until(lambda: cp.state.boot_status == "Rejected")
    assert not peer.records(0x03, pile=PILE)   # nothing but 0x01 before a successful login
    peer.config.login_accept = True
    await peer.wait_for(0x0A, pile=PILE, direction="out", timeout=10)
    await until(lambda: cp.state.boot_status == "Accepted" and cp.state.registered)


async def test_billing_model_check_request_and_push(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    check = peer.records(0x05, pile=PILE)[0]
    assert check.fields == {"pile": PILE, "model": "0000"}   # no model yet
    reply = peer.records(0x06, pile=PILE, direction="out")[0]
    request = peer.records(0x09, pile=PILE)[0]
    assert reply.fields["result"] == 1 and request.id > reply.id
    # A pushed model is stored and echoed in the next check.
    pushed = BillingModel(model="0200", elec=[10000, 20000, 30000, 40000], svc=[1000, 2000, 3000, 4000])
    mark = peer.mark()
    await peer.push_billing(PILE, pushed)
    ack = await peer.wait_for(0x57, pile=PILE, since=mark)
    assert ack.fields == {"pile": PILE, "result": 1}
    assert (await cp.request("status"))["link"]["model"] == "0200"
    # A bad model (slot code 7) is refused and changes nothing.
    bad = await peer.send(PILE, 0x58, {**pushed.fields(PILE), "model": "0300", "slots": "7" * 48})
    ack = await peer.wait_for(0x57, pile=PILE, since=bad.id)
    assert ack.fields["result"] == 0
    mark = peer.mark()
    await peer.disconnect(PILE)
    check = await peer.wait_for(0x05, pile=PILE, since=mark)
    assert check.fields["model"] == "0200"
    # The platform's model differs (0100): the pile asks for it again.
    await peer.wait_for(0x0A, pile=PILE, since=check.id, direction="out")
    await peer.wait_for(0x13, pile=PILE, since=check.id)
    for _ in range(20):
        if (await cp.request("status"))["link"]["model"] == "0100":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the platform's model was not stored")


async def test_model_first_order(start_ykc_charger, peer: YkcPeer) -> None:
    # The iot firmware's order: 0x09 straight after the login, no 0x05.
    await start_ykc_charger(ykc_order="model_first")
    kinds = [r.type for r in peer.records(pile=PILE, direction="in")]
    assert kinds.index(0x09) < kinds.index(0x13) and 0x05 not in kinds


async def test_time_sync_sets_the_clock(start_ykc_charger, peer: YkcPeer) -> None:
    await start_ykc_charger()
    when = dt.datetime(2025, 1, 1, 12, 0, 0)
    _, reply = await peer.request(PILE, 0x56, {"time": cp56_from_datetime(when)})
    assert reply.type == 0x55 and reply.seq == peer.records(0x56, direction="out")[-1].seq
    assert abs((datetime_from_cp56(reply.fields["time"]) - when).total_seconds()) < 2
    await asyncio.sleep(1.2)
    # An impossible date is ignored; the answer shows the pile's clock running on from 12:00:00.
    _, reply = await peer.request(PILE, 0x56, {"time": [2025, 0, 1, 12, 0, 0, 0]})
    now = datetime_from_cp56(reply.fields["time"])
    assert when + dt.timedelta(seconds=1) <= now < when + dt.timedelta(seconds=4)


async def test_remote_reboot(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    _, reply = await peer.request(PILE, 0x92, {"control": 1})
    assert reply.fields == {"pile": PILE, "result": 1}
    login = await peer.wait_for(0x01, pile=PILE, since=reply.id, timeout=15)
    assert login.seq == 0
    assert cp.exits and cp.exits[-1].why == "reboot"
    await peer.wait_for(0x05, pile=PILE, since=login.id, match={"model": "0100"})   # kept on flash


async def test_work_parameters(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger(max_current_a=32)
    _, reply = await peer.request(PILE, 0x52, {"disabled": 1, "max_power": 100})
    assert reply.fields == {"pile": PILE, "result": 1}
    await cp.wait_status(1, "Unavailable", timeout=5)
    await cp.request("plug", 1)
    mark = peer.mark()
    await peer.remote_start(PILE, 1)
    refused = await peer.wait_for(0x33, pile=PILE, since=mark)
    assert refused.fields["result"] == 0 and refused.fields["reason"] == 3
    _, reply = await peer.request(PILE, 0x52, {"disabled": 0, "max_power": 50})
    assert reply.fields["result"] == 1
    await cp.wait_status(1, "Preparing", timeout=5)
    mark = peer.mark()
    await peer.remote_start(PILE, 1)
    ok = await peer.wait_for(0x33, pile=PILE, since=mark)
    assert ok.fields["result"] == 1
    await cp.wait_status(1, "Charging", timeout=5)
    assert (await cp.request("status", 1))["offered_a"] == 16   # 50 % of 32 A
    _, reply = await peer.request(PILE, 0x52, {"disabled": 0, "max_power": 20})
    assert reply.fields["result"] == 0    # below the 30 % floor


async def test_fault_maps_to_gun_status(start_ykc_charger, peer: YkcPeer) -> None:
    cp = await start_ykc_charger()
    mark = peer.mark()
    await cp.request("fault", 1, "GroundFailure")
    rt = await peer.wait_for(0x13, pile=PILE, since=mark, match={"status": 1})
    assert rt.fields["faults"] & 0x20          # insulation fault bit
    await peer.wait_for(0x03, pile=PILE, since=mark, match={"state": 1}, timeout=5)
    sent, read = await peer.request(PILE, 0x12, {"gun": 1})    # read real-time data
    assert read.seq == sent.seq and read.fields["status"] == 1
    await peer.remote_start(PILE, 1)
    refused = await peer.wait_for(0x33, pile=PILE, since=mark)
    assert refused.fields["result"] == 0 and refused.fields["reason"] == 3
    mark = peer.mark()
    await cp.request("fault", 1, "clear")
    rt = await peer.wait_for(0x13, pile=PILE, since=mark, match={"status": 2})
    assert rt.fields["faults"] == 0
    await peer.wait_for(0x03, pile=PILE, since=mark, match={"state": 0}, timeout=5)
