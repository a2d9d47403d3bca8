# One charging transaction, persisted on flash while it runs so a power cut cannot lose it.
from store import slot

_DIR = "/state"


class Transaction:
    def __init__(self, ref, conn, id_tag, meter_start, start_time, parent_id_tag=None, reservation_id=None):
        self.ref = ref                  # local number, unique on this charger (flash counter)
        self.id = None                  # id given by the back-end once it confirmed the start
        self.conn = conn
        self.id_tag = id_tag
        self.parent_id_tag = parent_id_tag
        self.reservation_id = reservation_id
        self.meter_start = meter_start  # Wh
        self.start_time = start_time    # epoch s
        self.last_meter = meter_start   # last persisted register value, used after a power cut
        self.last_time = start_time
        self.meter_stop = None
        self.stop_time = None
        self.reason = None
        self.stop_id_tag = None
        self._slot = None

    def energy_wh(self):
        end = self.meter_stop if self.meter_stop is not None else self.last_meter
        return end - self.meter_start

    def to_dict(self):
        return {"ref": self.ref, "id": self.id, "conn": self.conn, "tag": self.id_tag,
                "parent": self.parent_id_tag, "res": self.reservation_id, "m0": self.meter_start,
                "t0": self.start_time, "m": self.last_meter, "t": self.last_time}

    @staticmethod
    def from_dict(d):
        tx = Transaction(d["ref"], d["conn"], d["tag"], d["m0"], d["t0"], d.get("parent"), d.get("res"))
        tx.id = d.get("id")
        tx.last_meter = d.get("m", tx.meter_start)
        tx.last_time = d.get("t", tx.start_time)
        return tx

    def save(self):
        # Checkpointed in place (store.slot): cheap enough to do at every meter reading.
        if self._slot is None:
            self._slot = slot.Slot(_path(self.conn))
        self._slot.save(self.to_dict())

    def forget(self):
        if self._slot is None:
            self._slot = slot.Slot(_path(self.conn))
        self._slot.remove()


def _path(conn):
    return "%s/tx%d.slot" % (_DIR, conn)


def load_active(conn):
    # The transaction that was running on a connector when the charger went down, if any.
    d = slot.load(_path(conn))
    if not d:
        return None
    try:
        tx = Transaction.from_dict(d)
    except (KeyError, TypeError, ValueError):
        return None
    commit_ref(tx.ref)   # cut between its checkpoint and the counter: count it now
    return tx


_ref = None


def _counter():
    global _ref
    if _ref is None:
        _ref = slot.Slot(_DIR + "/txref.slot")
    return _ref


def started():
    # How many transactions this flash has ever started (each had its checkpoint written).
    return slot.load(_counter().path, 0) or 0


def next_ref():
    # The reference the next transaction will get; commit_ref() after its checkpoint is on flash,
    # so the counter never counts a transaction a power cut prevented from existing.
    return started() + 1


def commit_ref(ref):
    if ref > started():
        _counter().save(ref)
