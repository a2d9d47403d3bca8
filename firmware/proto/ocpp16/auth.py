# OCPP 1.6 authorization: local list and cache first when allowed (LocalPreAuthorize), the
# back-end when online, the offline rules (LocalAuthorizeOffline, AllowOfflineTxForUnknownId) else.
import log
from hal.clock import parse_iso
from proto.rpc import CallError, CallTimeout, NotConnected


def remember(st, id_tag, info):
    # Keep the back-end's answer in the authorization cache (when it is enabled).
    if not st.keys["AuthorizationCacheEnabled"] or not isinstance(info, dict):
        return
    expiry = None
    if info.get("expiryDate"):
        try:
            expiry = parse_iso(info["expiryDate"])
        except ValueError:
            pass
    st.charger.auth.remember(id_tag, info.get("status", "Invalid"), expiry, info.get("parentIdTag"))


def _local(st, id_tag):
    k = st.keys
    auth = st.charger.auth
    now = st.charger.clock.now()
    found = None
    if k.get("LocalAuthListEnabled"):
        found = auth.listed(id_tag, now)
    if found is None and k["AuthorizationCacheEnabled"]:
        found = auth.cached(id_tag, now)
    return found


async def authorize(st, id_tag):
    # (status, parentIdTag) for a tag; never raises.
    k = st.keys
    local = _local(st, id_tag)
    if st.online and st.registered:
        if k["LocalPreAuthorize"] and local is not None and local[0] == "Accepted":
            log.info("auth", "%s accepted locally" % id_tag)
            return local
        try:
            res = await st.rpc.call("Authorize", {"idTag": id_tag})
            info = res.get("idTagInfo") or {}
            remember(st, id_tag, info)
            return info.get("status", "Invalid"), info.get("parentIdTag")
        except CallError as e:
            log.warn("auth", "Authorize refused by back-end: %s" % e)
            return "Invalid", None
        except (CallTimeout, NotConnected):
            log.warn("auth", "back-end unreachable: authorizing %s offline" % id_tag)
    if local is not None:
        if k["LocalAuthorizeOffline"]:
            return local
        return "Invalid", None
    if k["AllowOfflineTxForUnknownId"]:
        return "Accepted", None
    return "Invalid", None
