# OCPP 1.6 Local Auth List Management profile: GetLocalListVersion and SendLocalList on the
# charger's local authorization list (charger.auth, on flash); proto.ocpp16.auth consults it.
import log
from charger.auth import LIST_MAX
from proto.ocpp16.keys import RO

KEYS = {"LocalAuthListEnabled": ("b", True, 0),
        "LocalAuthListMaxLength": ("i", 50, RO),   # the whole list is held in RAM
        "SendLocalListMaxLength": ("i", 20, RO)}


def install(st):
    st.add_feature("LocalAuthListManagement", KEYS)
    k = st.keys.values
    ov = st.cfg.get("ocpp") or {}   # factory settings, read-only keys included
    for name in KEYS:
        if type(ov.get(name)) is type(KEYS[name][1]):
            k[name] = ov[name]
    k["LocalAuthListMaxLength"] = min(k["LocalAuthListMaxLength"], LIST_MAX)
    st.routes["GetLocalListVersion"] = lambda st, p: {"listVersion": st.charger.auth.list_version()}
    st.routes["SendLocalList"] = send_local_list


def send_local_list(st, p):
    auth = st.charger.auth
    version = p["listVersion"]
    full = p["updateType"] == "Full"
    items = p.get("localAuthorizationList") or ()
    if len(items) > st.keys["SendLocalListMaxLength"] or version < 0:
        return {"status": "Failed"}
    # A differential update must bring a newer list than ours (UpdateStatus VersionMismatch).
    if not full and version <= auth.list_version():
        return {"status": "VersionMismatch"}
    ops = {}
    one = {}   # one string object per distinct status / parent: entries stay in RAM
    for it in items:
        info = it.get("idTagInfo")
        if info is None:
            ops[it["idTag"]] = None   # differential: remove; full: not listed
        else:
            s, parent = info["status"], info.get("parentIdTag")
            ops[it["idTag"]] = (one.setdefault(s, s), _epoch(info.get("expiryDate")),
                                parent and one.setdefault(parent, parent))
    now = st.charger.clock.now()
    size = 0 if full else auth.list_size()
    for tag, e in ops.items():
        if e is not None:
            size += 1
        if not full and auth.listed(tag, now) is not None:
            size -= 1
    if size > st.keys["LocalAuthListMaxLength"]:
        log.warn("auth", "local list of %d entries refused: too long" % size)
        return {"status": "Failed"}
    try:
        ok = auth.update_list(version, ops.items(), full)
    except OSError as e:
        log.error("auth", "local list not stored: %s" % e)
        ok = False
    if ok:
        log.info("auth", "local list version %d: %d entries" % (version, auth.list_size()))
    return {"status": "Accepted" if ok else "Failed"}


def _epoch(text):
    from hal.clock import parse_iso

    try:
        return int(parse_iso(text)) if text else None
    except ValueError:
        return None
