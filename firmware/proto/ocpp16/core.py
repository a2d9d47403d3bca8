# OCPP 1.6 Core profile: handlers for the central system's CALLs. Each translates the request,
# asks the model, and answers; effects that must follow the answer are returned as `after`.
import asyncio
import log
from proto.ocpp16 import auth

ROUTES = {}


def on(action):
    # MicroPython functions cannot carry attributes, so routes live in a dict.
    def register(fn):
        ROUTES[action] = fn
        return fn
    return register


def _conn_ok(st, cid, allow_zero=True):
    n = len(st.charger.connectors)
    return isinstance(cid, int) and (0 if allow_zero else 1) <= cid < n


@on("ChangeAvailability")
def change_availability(st, p):
    cid = p["connectorId"]
    if not _conn_ok(st, cid):
        return {"status": "Rejected"}
    return {"status": st.charger.set_availability(cid, p["type"] == "Operative")}


@on("ChangeConfiguration")
def change_configuration(st, p):
    return {"status": st.keys.change(p["key"], p["value"])}


@on("GetConfiguration")
def get_configuration(st, p):
    known, unknown = st.keys.report(p.get("key"))
    r = {"configurationKey": known}
    if unknown:
        r["unknownKey"] = unknown
    return r


@on("ClearCache")
def clear_cache(st, p):
    st.charger.auth.clear_cache()
    return {"status": "Accepted"}


@on("DataTransfer")
def data_transfer(st, p):
    if p["vendorId"] != st.cfg.get("vendor_id", "EVFleet"):
        return {"status": "UnknownVendorId"}
    if p.get("messageId") == "Echo":   # a harmless message back-end teams can test with
        return {"status": "Accepted", "data": p.get("data", "")}
    return {"status": "UnknownMessageId"}


@on("RemoteStartTransaction")
def remote_start(st, p):
    ch = st.charger
    tag = p["idTag"]
    cid = p.get("connectorId")
    profile = p.get("chargingProfile")
    if cid is not None and not _conn_ok(st, cid, False):
        return {"status": "Rejected"}   # connector 0 or unknown (TC_027)
    if profile is not None:
        if profile.get("chargingProfilePurpose") != "TxProfile" or st.smart is None:
            return {"status": "Rejected"}
    if cid is None:
        free = [c for c in ch.connectors[1:] if ch.can_start(c, tag)]
        plugged = [c for c in free if c.plugged()]
        c = (plugged or free or [None])[0]
    else:
        c = ch.connectors[cid]
    if c is None or not ch.can_start(c, tag):
        return {"status": "Rejected"}

    async def start():
        parent = None
        if st.keys["AuthorizeRemoteTxRequests"]:
            status, parent = await auth.authorize(st, tag)
            if status != "Accepted":
                log.info("ocpp", "remote start for %s refused: %s" % (tag, status))
                return
        if ch.can_start(c, tag, parent):
            if profile is not None:
                st.smart.remote_start_profile(c.id, profile)
            ch.start_authorized(c, tag, parent)

    return {"status": "Accepted"}, start


@on("RemoteStopTransaction")
def remote_stop(st, p):
    tx_id = p["transactionId"]
    if st.charger.find_tx(tx_id) is None:
        return {"status": "Rejected"}
    return {"status": "Accepted"}, lambda: st.charger.remote_stop(tx_id)


@on("Reset")
def reset(st, p):
    return {"status": "Accepted"}, lambda: do_reset(st, p["type"] == "Hard")


async def do_reset(st, hard):
    ch = st.charger
    if hard:
        ch.stop_all("HardReset")        # the stop is on flash; it is delivered after the reboot
        ch.prepare_reboot("HardReset")
        # Let the back-end read our answer first: a reset right away makes the kernel send a TCP
        # reset that can discard the answer still unread on the other side.
        await asyncio.sleep_ms(200)
        st.board.reset(True)
    ch.stop_all("SoftReset")
    for _ in range(100):                # let StopTransaction reach the back-end first (≤ 10 s)
        if not st.queue.items or not st.online:
            break
        await asyncio.sleep_ms(100)
    ch.prepare_reboot("SoftReset")
    if st.ws is not None:
        try:
            await st.ws.close()
        except Exception:
            pass
    st.board.reset(False)


@on("UnlockConnector")
def unlock_connector(st, p):
    return {"status": st.charger.unlock(p["connectorId"])}
