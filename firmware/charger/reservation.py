# Reservations: a connector (or, as connector 0, one connector of the charge point) held for an id
# tag or its group until an expiry time; it ends when its holder starts, on cancel, or at expiry.
import asyncio
from timedevent import TimedEvent
import bus
import log
import store.kv as kv
from charger import status as st

_PATH = "/state/resv.json"   # exists only while there are reservations (looked for at boot)


def _same(a, b):
    # Id tags compare case-insensitively (OCPP IdToken).
    return a is not None and b is not None and a.lower() == b.lower()


def _answer(c, old):
    s = c.status
    if s == st.AVAILABLE or (s == st.RESERVED and c.reservation is old):
        return "Accepted"
    return s if s in (st.FAULTED, st.UNAVAILABLE) else "Occupied"


class Reservation:
    def __init__(self, rid, connector, id_tag, expiry, parent=None):
        self.id = rid
        self.connector = connector   # connector id; 0: any connector of the charge point
        self.id_tag = id_tag
        self.expiry = expiry         # seconds since 1970 on the charger clock
        self.parent = parent         # group (parentIdTag) whose tags may use it too

    def admits(self, id_tag, parent_id_tag=None):
        return _same(id_tag, self.id_tag) or _same(parent_id_tag, self.parent)


class Book:
    # A charger's reservations: they live on the connectors (connector.reservation), saved on flash.
    def __init__(self, charger):
        self.ch = charger
        self._wake = TimedEvent()
        self._task = None
        n = len(charger.connectors)
        for rid, cid, tag, exp, parent in kv.load(_PATH, None) or ():   # kept across reboots
            if 0 <= cid < n:
                charger.connectors[cid].reservation = Reservation(rid, cid, tag, exp, parent)
        bus.subscribe(self._on_event, ("tx_start",))
        if charger.connectors[0].status is not None:   # already started: show what was restored
            charger.refresh_all()
        self._kick()

    def all(self):
        return [c.reservation for c in self.ch.connectors if c.reservation is not None]

    def find(self, rid):
        for r in self.all():
            if r.id == rid:
                return r
        return None

    def check(self, r):
        # Whether r can be placed: "Accepted", "Occupied", "Faulted" or "Unavailable" (OCPP names);
        # a reservation with the same id counts as gone, since r replaces it.
        ch = self.ch
        old = self.find(r.id)
        r0 = ch.connectors[0].reservation
        if r.connector:
            c = ch.connectors[r.connector]
            s = _answer(c, old)
            if s == "Accepted" and r0 not in (None, old) and not ch.spare(c):
                s = "Occupied"   # the last free connector is kept for the charge-point reservation
            return s
        s = ch.connectors[0].status
        if s in (st.FAULTED, st.UNAVAILABLE):
            return s
        if r0 not in (None, old):
            return "Occupied"    # one charge-point reservation at a time
        found = [_answer(c, old) for c in ch.connectors[1:]]
        for s in ("Accepted", "Occupied", "Faulted"):
            if s in found:
                return s
        return "Unavailable"

    def place(self, r):
        # Hold r.connector for r; a reservation with the same id is replaced (OCPP 1.6 ReserveNow).
        old = self.find(r.id)
        if old is not None:
            self.ch.connectors[old.connector].reservation = None
        self.ch.connectors[r.connector].reservation = r
        log.info("resv", "reservation %d: connector %d for %s" % (r.id, r.connector, r.id_tag))
        self._changed()

    def cancel(self, rid):
        r = self.find(rid)
        if r is None:
            return False
        self._drop(r)
        log.info("resv", "reservation %d cancelled" % rid)
        self._changed()
        return True

    def _drop(self, r):
        self.ch.connectors[r.connector].reservation = None
        for c in self.ch.connectors:   # a start already granted goes on, no longer under r
            p = c.pending
            if p is not None and p[2] == r.id:
                c.pending = (p[0], p[1], None)

    def _save(self):
        rs = self.all()
        if rs:
            kv.save(_PATH, [[r.id, r.connector, r.id_tag, r.expiry, r.parent] for r in rs])
        else:
            kv.remove(_PATH)

    def _changed(self):
        self._save()
        self.ch.refresh_all()
        self._wake.set()
        self._kick()

    async def group_start(self, c, id_tag):
        # A tag whose group is not known yet: authorize it to learn its parent, start if admitted.
        ch = self.ch
        status, parent = await ch._authorize(id_tag)
        if status == "Accepted" and ch.can_start(c, id_tag, parent):
            ch.start_authorized(c, id_tag, parent)
        else:
            log.info("resv", "%s may not use connector %d: %s, group %s" % (id_tag, c.id, status,
                                                                              parent))

    def _on_event(self, kind, data):
        # The holder's transaction uses the reservation up. The connector's status is refreshed by
        # the start itself: doing it here, before the power is switched on, would show a transient.
        if kind == "tx_start" and data["tx"].reservation_id is not None:
            r = self.find(data["tx"].reservation_id)
            if r is not None:
                self.ch.connectors[r.connector].reservation = None
                log.info("resv", "reservation %d used" % r.id)
                self._save()

    def _kick(self):
        if self._task is None and self.all():
            self._task = asyncio.create_task(self._expire())

    async def _expire(self):
        # Ends reservations at their expiry; exits when none is left.
        try:
            while True:
                rs = self.all()
                if not rs:
                    return
                now = self.ch.clock.now()
                gone = [r for r in rs if r.expiry <= now]
                for r in gone:
                    log.info("resv", "reservation %d expired" % r.id)
                    self._drop(r)
                if gone:
                    self._changed()
                    continue
                self._wake.clear()
                wait = min(r.expiry for r in rs) - now
                await self._wake.wait(min(wait, 60))   # at most a minute: the clock may be set
        finally:
            self._task = None
