# The charger model on the emulated unix board: IEC 61851 pilot → status, sessions, faults,
# availability and power-loss recovery, without any protocol (a scripted authorizer instead).
import os
import asyncio
import mptest

mptest.flash()

import bus
import board as unix_board
from charger.charger import Charger

EVENTS = []


def _record(kind, data):
    EVENTS.append((kind, data))


def fresh(cfg=None, keep=False):
    # A new charger on a new board; keep=True keeps the flash (a reboot), else it is wiped.
    if not keep:
        for d in ("/state", "/hw"):
            try:
                for f in os.listdir(d):
                    os.remove(d + "/" + f)
            except OSError:
                pass
    bus.clear()
    del EVENTS[:]
    bus.subscribe(_record)
    c = {"id": "T1", "connectors": 2}
    c.update(cfg or {})
    b = unix_board.make_board(c)
    ch = Charger(b, c)
    ch.answers = {}

    async def authorizer(tag):
        return ch.answers.get(tag, ("Invalid", None))

    ch.authorizer = authorizer
    ch.start()
    return ch, b


def statuses(conn):
    return [d["status"] for k, d in EVENTS if k == "status" and d["conn"] == conn]


def txs(kind):
    return [d["tx"] for k, d in EVENTS if k == kind]


async def settle():
    for _ in range(5):
        await asyncio.sleep_ms(10)


async def test_plug_first_session():
    ch, b = fresh()
    ch.answers["TAG1"] = ("Accepted", "GRP")
    b.sim.plug(1)
    assert ch.connectors[1].status == "Preparing", ch.connectors[1].status
    b.sim.card("TAG1", 1)
    await settle()
    c = ch.connectors[1]
    assert c.status == "Charging", c.status
    assert b.connectors[0].relay.state() and b.connectors[0].lock.locked()
    assert statuses(1) == ["Available", "Preparing", "Charging"], statuses(1)
    tx = txs("tx_start")[0]
    assert tx.id_tag == "TAG1" and tx.parent_id_tag == "GRP" and tx.meter_start == 0
    await asyncio.sleep_ms(1200)
    r = ch.meter(1)
    assert r.power_w > 10000 and r.energy_wh >= 3, (r.power_w, r.energy_wh)
    b.sim.card("TAG1", 1)   # the same card stops it, no authorization needed
    await settle()
    stop = txs("tx_stop")[0]
    assert stop.reason == "Local" and stop.meter_stop >= r.energy_wh
    assert c.status == "Finishing" and not b.connectors[0].relay.state()
    b.sim.unplug(1)
    assert c.status == "Available"


async def test_invalid_tag_no_session():
    ch, b = fresh()
    b.sim.plug(1)
    b.sim.card("BAD", 1)
    await settle()
    assert not txs("tx_start") and ch.connectors[1].status == "Preparing"


async def test_authorize_first_then_timeout():
    ch, b = fresh()
    ch.connection_timeout_s = 1
    ch.answers["T"] = ("Accepted", None)
    b.sim.card("T")
    await settle()
    assert ch.connectors[1].status == "Preparing"
    await asyncio.sleep_ms(1300)
    assert ch.connectors[1].status == "Available" and not txs("tx_start")
    b.sim.card("T")
    await settle()
    b.sim.plug(1)   # within the timeout: the session starts on plug-in
    await settle()
    assert ch.connectors[1].status == "Charging" and len(txs("tx_start")) == 1


async def test_ev_full_suspends():
    ch, b = fresh({"ev": {"capacity_wh": 20, "soc": 99.5, "taper_soc": 100}})
    ch.answers["T"] = ("Accepted", None)
    b.sim.plug(1)
    b.sim.card("T", 1)
    watcher = asyncio.create_task(b.watch())
    await settle()
    assert ch.connectors[1].status == "Charging"
    for _ in range(40):
        await asyncio.sleep_ms(100)
        if ch.connectors[1].status == "SuspendedEV":
            break
    watcher.cancel()
    assert ch.connectors[1].status == "SuspendedEV", ch.connectors[1].status
    assert ch.connectors[1].tx is not None


async def test_fault_during_charging_and_recovery():
    ch, b = fresh()
    ch.answers["T"] = ("Accepted", None)
    b.sim.plug(1)
    b.sim.card("T", 1)
    await settle()
    b.sim.fault(1, "GroundFailure", True)
    c = ch.connectors[1]
    assert c.status == "Faulted" and c.error == "GroundFailure"
    assert txs("tx_stop")[0].reason == "Other" and not b.connectors[0].relay.state()
    assert ch.connectors[2].status == "Available"   # the other connector is not affected
    b.sim.fault(1, "GroundFailure", False)
    assert c.status == "Finishing" and c.error == "NoError"


async def test_warning_keeps_status():
    ch, b = fresh()
    b.sim.fault(0, "ReaderFailure", True)
    assert ch.connectors[0].status == "Available" and ch.connectors[0].error == "ReaderFailure"
    b.sim.fault(0, "InternalError", True)
    assert ch.connectors[1].status == "Faulted" and ch.connectors[2].status == "Faulted"


async def test_lock_failure_prevents_session():
    ch, b = fresh()
    ch.answers["T"] = ("Accepted", None)
    b.connectors[0].lock.jammed = True
    b.sim.plug(1)
    b.sim.card("T", 1)
    await settle()
    assert ch.connectors[1].status == "Faulted" and ch.connectors[1].error == "ConnectorLockFailure"
    assert not txs("tx_start")


async def test_availability_scheduled_and_persisted():
    ch, b = fresh()
    ch.answers["T"] = ("Accepted", None)
    b.sim.plug(1)
    b.sim.card("T", 1)
    await settle()
    assert ch.set_availability(0, False) == "Scheduled"
    assert ch.connectors[2].status == "Unavailable" and ch.connectors[1].status == "Charging"
    ch.stop(ch.connectors[1], "Remote")
    assert ch.connectors[1].status == "Unavailable"
    ch2, b2 = fresh(keep=True)   # reboot: still unavailable (OCPP TC_034)
    assert ch2.connectors[0].status == "Unavailable" and ch2.connectors[2].status == "Unavailable"


async def test_power_loss_closes_transaction_on_boot():
    ch, b = fresh()
    ch.answers["T"] = ("Accepted", None)
    b.sim.plug(1)
    b.sim.card("T", 1)
    await settle()
    await asyncio.sleep_ms(600)
    last = ch.meter(1).energy_wh   # checkpointed on flash
    assert last > 0
    ch2, b2 = fresh(keep=True)     # no reboot marker: a power cut
    stops = txs("tx_stop")
    assert len(stops) == 1 and stops[0].reason == "PowerLoss", stops
    assert stops[0].meter_stop == last, (stops[0].meter_stop, last, stops[0].last_meter)
    assert ch2.meter(1).energy_wh >= last   # the meter register never goes backwards
    assert ch2.connectors[1].plugged()      # the EV is still there after the cut


async def test_ev_side_unplug_keeps_tx_when_configured():
    ch, b = fresh()
    ch.stop_on_ev_disconnect = False
    ch.answers["T"] = ("Accepted", None)
    b.sim.plug(1)
    b.sim.card("T", 1)
    await settle()
    b.sim.unplug(1, True)
    assert ch.connectors[1].tx is not None and ch.connectors[1].status == "SuspendedEV"
    b.connectors[0].plug()
    await settle()
    assert ch.connectors[1].status == "Charging"


mptest.run(globals())
