# The reservation model on the emulated unix board, without any protocol: holder and group,
# Reserved status, use by the holder's transaction, cancel, expiry, replacement, connector 0,
# reboot.
import os
import asyncio
import mptest

mptest.flash()

import bus
import board as unix_board
from charger.charger import Charger
from charger.reservation import Reservation, Book

EVENTS = []


def fresh(connectors=1, keep=False):
    if not keep:
        for d in ("/state", "/hw"):
            try:
                for f in os.listdir(d):
                    os.remove(d + "/" + f)
            except OSError:
                pass
    bus.clear()
    del EVENTS[:]
    bus.subscribe(lambda kind, data: EVENTS.append((kind, data)))
    cfg = {"id": "R1", "connectors": connectors}
    b = unix_board.make_board(cfg)
    ch = Charger(b, cfg)
    ch.answers = {}

    async def authorizer(tag):
        return ch.answers.get(tag, ("Invalid", None))

    ch.authorizer = authorizer
    book = Book(ch)
    ch.start()
    return ch, b, book


def statuses(conn):
    return [d["status"] for k, d in EVENTS if k == "status" and d["conn"] == conn]


def starts():
    return [d["tx"] for k, d in EVENTS if k == "tx_start"]


async def settle():
    for _ in range(5):
        await asyncio.sleep_ms(10)


def test_admits_holder_and_group_only():
    r = Reservation(7, 1, "Tag1", 0, "Group")
    assert r.admits("TAG1") and r.admits("tag1", None)
    assert r.admits("OTHER", "group")
    assert not r.admits("OTHER") and not r.admits("OTHER", "ELSE")
    assert not Reservation(8, 1, "T", 0).admits("X", None)


async def test_reserved_refuses_others_and_is_used_by_holder():
    ch, b, book = fresh()
    c = ch.connectors[1]
    book.place(Reservation(3, 1, "HOLDER", ch.clock.now() + 60))
    assert c.status == "Reserved", c.status
    ch.answers.update({"OTHER": ("Accepted", None), "HOLDER": ("Accepted", None)})
    b.sim.plug(1)
    assert c.status == "Reserved"          # a cable alone does not end a reservation
    b.sim.card("OTHER", 1)
    await settle()
    assert not starts() and c.status == "Reserved"
    b.sim.card("HOLDER", 1)
    await settle()
    assert c.status == "Charging", c.status
    assert starts()[0].reservation_id == 3
    assert book.find(3) is None and c.reservation is None
    ch.stop(c, "Local")
    b.sim.unplug(1)
    assert c.status == "Available", c.status


async def test_group_tag_uses_reservation():
    ch, b, book = fresh()
    book.place(Reservation(4, 1, "HOLDER", ch.clock.now() + 60, "GRP"))
    ch.answers["CHILD"] = ("Accepted", "GRP")
    b.sim.plug(1)
    b.sim.card("CHILD", 1)
    await settle()
    assert starts() and starts()[0].reservation_id == 4 and starts()[0].id_tag == "CHILD"


async def test_group_start_learns_the_group_first():
    ch, b, book = fresh()
    book.place(Reservation(12, 1, "HOLDER", ch.clock.now() + 60, "GRP"))
    ch.answers.update({"CHILD": ("Accepted", "grp"), "LONER": ("Accepted", None)})
    c = ch.connectors[1]
    b.sim.plug(1)
    assert not ch.can_start(c, "CHILD") and ch.can_start(c)
    await book.group_start(c, "LONER")
    await settle()
    assert not starts()
    await book.group_start(c, "CHILD")
    await settle()
    assert starts()[0].id_tag == "CHILD" and starts()[0].reservation_id == 12


async def test_holder_first_shows_preparing_then_reserved_after_timeout():
    ch, b, book = fresh()
    ch.connection_timeout_s = 1
    c = ch.connectors[1]
    book.place(Reservation(5, 1, "HOLDER", ch.clock.now() + 60))
    ch.answers["HOLDER"] = ("Accepted", None)
    b.sim.card("HOLDER", 1)
    await settle()
    assert c.status == "Preparing" and c.pending[2] == 5, (c.status, c.pending)
    await asyncio.sleep_ms(1200)
    assert c.status == "Reserved", c.status   # no cable in time: still reserved until expiry


async def test_expiry_makes_available_and_clears_flash():
    ch, b, book = fresh()
    book.place(Reservation(6, 1, "HOLDER", ch.clock.now() + 0.3))
    assert ch.connectors[1].status == "Reserved"
    await asyncio.sleep_ms(600)
    assert ch.connectors[1].status == "Available"
    assert statuses(1)[-2:] == ["Reserved", "Available"], statuses(1)
    assert book.all() == [] and book._task is None
    ch2, b2, book2 = fresh(keep=True)
    assert book2.all() == []


async def test_cancel_and_replace():
    ch, b, book = fresh(2)
    assert not book.cancel(99)
    book.place(Reservation(1, 1, "A", ch.clock.now() + 60))
    book.place(Reservation(1, 2, "B", ch.clock.now() + 60))   # same id: moved, not added
    assert ch.connectors[1].status == "Available" and ch.connectors[2].status == "Reserved"
    assert len(book.all()) == 1 and book.find(1).id_tag == "B"
    assert book.cancel(1)
    assert ch.connectors[2].status == "Available" and book.all() == []


async def test_reservation_survives_reboot():
    ch, b, book = fresh()
    book.place(Reservation(9, 1, "HOLDER", ch.clock.now() + 60, "G"))
    ch2, b2, book2 = fresh(keep=True)
    r = book2.find(9)
    assert r is not None and r.id_tag == "HOLDER" and r.parent == "G"
    assert ch2.connectors[1].status == "Reserved"
    book2.cancel(9)


async def test_charge_point_reservation_keeps_one_connector():
    ch, b, book = fresh(2)
    ch.answers.update({"X": ("Accepted", None), "Y": ("Accepted", None), "H": ("Accepted", None)})
    book.place(Reservation(2, 0, "H", ch.clock.now() + 60))
    assert ch.connectors[1].status == "Available" and ch.connectors[0].status == "Available"
    c1, c2 = ch.connectors[1], ch.connectors[2]
    assert ch.can_start(c1, "X") and ch.can_start(c2, "X")
    b.sim.plug(1)
    b.sim.card("X", 1)
    await settle()
    assert c1.status == "Charging" and starts()[0].reservation_id is None
    assert book.find(2) is not None
    assert not ch.can_start(c2, "Y")        # the last free connector is the holder's
    b.sim.plug(2)
    b.sim.card("Y", 2)
    await settle()
    assert len(starts()) == 1
    b.sim.card("H", 2)
    await settle()
    assert len(starts()) == 2 and starts()[1].reservation_id == 2
    assert book.all() == []


async def test_expiry_during_pending_start_drops_reservation_id():
    ch, b, book = fresh()
    book.place(Reservation(11, 1, "H", ch.clock.now() + 0.3))
    ch.answers["H"] = ("Accepted", None)
    b.sim.card("H", 1)
    await settle()
    await asyncio.sleep_ms(500)
    b.sim.plug(1)
    await settle()
    assert starts() and starts()[0].reservation_id is None


async def test_check_answers():
    ch, b, book = fresh(2)
    t = ch.clock.now() + 60
    R = lambda rid, conn: Reservation(rid, conn, "H", t)   # noqa: E731
    assert book.check(R(1, 1)) == "Accepted" and book.check(R(1, 0)) == "Accepted"
    book.place(R(1, 1))
    assert book.check(R(2, 1)) == "Occupied"          # reserved by another reservation
    assert book.check(R(1, 1)) == "Accepted"          # its own replacement
    b.sim.plug(2)
    assert book.check(R(3, 2)) == "Occupied"
    assert book.check(R(3, 0)) == "Occupied"          # nothing free but the replaced one...
    assert book.check(R(1, 0)) == "Accepted"          # ...which a same-id reservation may take
    b.sim.unplug(2)
    book.cancel(1)
    b.sim.fault(1, "GroundFailure", True)
    assert book.check(R(4, 1)) == "Faulted" and book.check(R(4, 0)) == "Accepted"
    ch.set_availability(2, False)
    assert book.check(R(4, 2)) == "Unavailable" and book.check(R(4, 0)) == "Faulted"
    b.sim.fault(1, "GroundFailure", False)
    assert book.check(R(4, 0)) == "Accepted"
    ch.set_availability(1, False)
    assert book.check(R(4, 0)) == "Unavailable"
    ch.set_availability(1, True)
    ch.set_availability(2, True)
    book.place(R(5, 0))
    assert book.check(R(6, 0)) == "Occupied"          # one charge-point reservation at a time
    assert book.check(R(6, 1)) == "Accepted"          # connector 2 stays free for it
    book.place(R(6, 1))
    assert book.check(R(7, 2)) == "Occupied"          # the last free one is the charge point's
    b.sim.fault(0, "InternalError", True)
    assert book.check(R(8, 0)) == "Faulted"
    ch.set_availability(0, False)


mptest.run(globals())
