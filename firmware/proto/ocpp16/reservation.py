# OCPP 1.6 Reservation profile: ReserveNow / CancelReservation on the model's reservations, and
# remote starts by a tag of a reservation's group (its parentIdTag is learnt by authorizing).
from proto.ocpp16.keys import RO

KEYS = {"ReserveConnectorZeroSupported": ("b", True, RO)}
_PATH = "/state/resv.json"   # charger.reservation keeps them there


def install(st):
    st.add_feature("Reservation", KEYS)
    v = (st.cfg.get("ocpp") or {}).get("ReserveConnectorZeroSupported")   # factory setting
    if isinstance(v, bool):
        st.keys.values["ReserveConnectorZeroSupported"] = v
    st.reservations = None
    try:   # the model is loaded only when there are reservations (heap)
        open(_PATH).close()
        _book(st)
    except OSError:
        pass
    st.routes["ReserveNow"] = reserve_now
    st.routes["CancelReservation"] = cancel_reservation
    prev = st.routes["RemoteStartTransaction"]
    st.routes["RemoteStartTransaction"] = lambda st, p: remote_start(st, p, prev)


def _book(st):
    if st.reservations is None:
        from charger.reservation import Book

        st.reservations = Book(st.charger)
    return st.reservations


def reserve_now(st, p):
    from hal.clock import parse_iso
    from charger.reservation import Reservation

    ch = st.charger
    cid = p["connectorId"]
    if not st.cfg.get("reservations", True) or not 0 <= cid < len(ch.connectors) or (
            cid == 0 and not st.keys["ReserveConnectorZeroSupported"]):
        return {"status": "Rejected"}
    try:
        expiry = parse_iso(p["expiryDate"])
    except ValueError:
        return {"status": "Rejected"}
    r = Reservation(p["reservationId"], cid, p["idTag"], expiry, p.get("parentIdTag"))
    status = _book(st).check(r)
    if status == "Accepted":
        st.reservations.place(r)
    return {"status": status}


def cancel_reservation(st, p):
    book = st.reservations
    ok = book is not None and book.cancel(p["reservationId"])
    return {"status": "Accepted" if ok else "Rejected"}


def remote_start(st, p, prev):
    # Core refuses a tag a reservation does not admit. Another tag of the reservation's group is
    # admitted once its parentIdTag is known: accept, authorize, then start (OCPP 1.6 §5.13).
    ch = st.charger
    tag = p["idTag"]
    cid = p.get("connectorId")
    if "chargingProfile" not in p and (cid is None or 0 < cid < len(ch.connectors)):
        cands = ch.connectors[1:] if cid is None else [ch.connectors[cid]]
        if not [c for c in cands if ch.can_start(c, tag)]:
            for c in cands:
                r = c.reservation or ch.connectors[0].reservation
                if r is not None and r.parent and ch.can_start(c):
                    return {"status": "Accepted"}, lambda: _book(st).group_start(c, tag)
    return prev(st, p)
