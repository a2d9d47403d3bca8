# Security extension, on demand (security.py imports it for one call and drops it again): the
# feature's setup, security events (log on flash, queue, delivery), the configuration rules, and
# each connection attempt with the security profile's transport and credentials.
import time
import log
import store.kv as kv
from hal.clock import iso
from proto.ocpp16 import security as S
from proto.ocpp16.keys import RO

_QUEUE = "/state/secq.json"   # security events not yet delivered: [type, epoch, techInfo]
_QMAX = 40
_LOG_MAX = 16384              # rotate the security log beyond this many bytes
_FALLBACK_AFTER = 5           # failed connects with a new profile before going back to the old one

KEYS = {
    "SecurityProfile": ("i", 0, 0),
    "CpoName": ("s", "", 0),
    "CertificateSignedMaxChainSize": ("i", 10000, RO),
    "CertificateStoreMaxLength": ("i", 8, RO),
    "AdditionalRootCertificateCheck": ("b", False, RO),
}


def setup(sec):
    # The feature's keys with this charger's factory values (cfg "ocpp" overrides and
    # "security_profile"), the persisted state and event queue, the bus subscription.
    st = sec.st
    keys = dict(KEYS)
    over = st.cfg.get("ocpp") or {}
    if "security_profile" in st.cfg:
        over = dict(over, SecurityProfile=st.cfg["security_profile"])
    for name, v in over.items():
        if name in keys and isinstance(v, (int, str)) and not isinstance(v, bool):
            t, d, f = keys[name]
            keys[name] = (t, int(v) if t == "i" else str(v), f)
    st.keys.add(keys)
    sec.state = kv.load(S.STATE, {}) or {}   # prev: profile before an unconfirmed upgrade; fw
    sec.queue = kv.load(_QUEUE, []) or []
    import bus

    bus.subscribe(sec.on_bus, ("boot", "net"))


# -- security events ----------------------------------------------------------------------------


def event(sec, kind, info=None, send=True):
    ts = int(sec.st.charger.clock.now())
    log.warn("security", "%s%s" % (kind, ": " + info if info else ""))
    try:
        import os

        try:
            if os.stat(S.LOG_PATH)[6] > _LOG_MAX:
                kv.remove(S.LOG_OLD)
                kv.rename(S.LOG_PATH, S.LOG_OLD)
        except OSError:
            pass
        with open(S.LOG_PATH, "a") as f:
            f.write("%s %s%s\n" % (iso(ts), kind, " " + info if info else ""))
    except OSError as e:
        log.warn("security", "security log not written: %s" % e)
    if send:
        q = sec.queue
        if len(q) >= _QMAX:
            q.pop(0)
        q.append([kind, ts, info])
        _save_queue(sec)
        sec.wake.set()


def _save_queue(sec):
    try:
        kv.save(_QUEUE, sec.queue)
    except OSError as e:
        log.warn("security", "event queue not saved: %s" % e)


async def deliver(sec):
    # SecurityEventNotification for the queued events, in order, while registered and online.
    import asyncio
    from proto.rpc import CallError

    st = sec.st
    while sec.queue and st.registered and st.online:
        kind, ts, info = sec.queue[0]
        p = {"type": kind, "timestamp": iso(ts)}
        if info:
            p["techInfo"] = info[:255]
        try:
            await st.rpc.call("SecurityEventNotification", p)
        except CallError as e:
            log.warn("security", "SecurityEventNotification refused: %s" % e)
        except Exception as e:   # link lost (NotConnected, WsClosed) or no answer: later
            log.warn("security", "SecurityEventNotification not delivered: %s" % e)
            asyncio.create_task(_wake_later(sec.wake))
            return
        if sec.queue and sec.queue[0][1] == ts and sec.queue[0][0] == kind:
            sec.queue.pop(0)
            _save_queue(sec)


async def _wake_later(wake):
    import asyncio

    await asyncio.sleep(5)
    wake.set()


def boot_events(sec):
    # Once the model has started: it knows why it booted.
    st = sec.st
    reason = st.charger.boot_reason
    event(sec, "StartupOfTheDevice", None if reason == "PowerUp" else reason)
    if reason != "PowerUp":
        event(sec, "ResetOrReboot", reason)
    fw = st.cfg.get("fw_version")
    old = sec.state.get("fw")
    if fw and old != fw:
        if old is not None:
            event(sec, "FirmwareUpdated", "%s -> %s" % (old, fw))
        sec.state["fw"] = fw
        sec.save_state()


def time_set(sec, before, after):
    event(sec, "SettingSystemTime", "%s -> %s" % (iso(before), iso(after)))


def invalid_message(sec, code, description):
    # The central system sent something we had to refuse: logged, not sent (a noisy peer must not
    # flood the link), at most once a minute.
    now = time.ticks_ms()
    if sec.invalid_ms is None or time.ticks_diff(now, sec.invalid_ms) > 60000:
        sec.invalid_ms = now
        event(sec, "InvalidMessages", ("%s %s" % (code, description))[:255], False)


def memory_check(sec):
    # MemoryExhaustion: the heap stays nearly full (< 1/32, at least 4 KB) after a collection.
    import gc

    gc.collect()
    free = gc.mem_free()
    total = free + gc.mem_alloc()
    mark = max(4096, total >> 5)
    if not sec.mem_low and free < mark:
        sec.mem_low = True
        event(sec, "MemoryExhaustion", "%d of %d bytes free" % (free, total))
    elif sec.mem_low and free > 2 * mark:
        sec.mem_low = False


# -- configuration ------------------------------------------------------------------------------


def checked_change(sec, change, name, text):
    # ChangeConfiguration of SecurityProfile and AuthorizationKey.
    if name == "SecurityProfile":
        return sec.jobs("seccerts").change_profile(sec, text, change)
    if sec.profile() in (1, 2) and not 16 <= len(text) <= 40:
        log.warn("security", "AuthorizationKey must be 16 to 40 characters")
        return "Rejected"
    return change(name, text)


# -- the link -----------------------------------------------------------------------------------


def url(sec):
    # csms_url_sp<profile> if the config has one, else csms_url; profile 1 is plain ws, 2 and 3 wss.
    cfg = sec.st.cfg
    prof = sec.profile()
    base = cfg.get("csms_url_sp%d" % prof) or cfg.get("csms_url") or "ws://127.0.0.1:9000/ocpp"
    i = base.find("://")
    if prof and i > 0:
        base = ("wss" if prof >= 2 else "ws") + base[i:]
    return base.rstrip("/") + "/" + sec.st.charger.id


async def connect(sec):
    # One connection attempt with the current profile: 0 as the core station does (wss with the
    # config's CA), 1 Basic auth, 2 TLS trusting the installed CentralSystemRootCertificates + Basic
    # auth, 3 mutual TLS with the charge point certificate.
    from net import ws as wsock

    st = sec.st
    cfg = st.cfg
    prof = sec.profile()
    where = url(sec)
    key = st.keys["AuthorizationKey"]
    auth = (st.charger.id, key) if key and prof != 3 else None
    ctx = None
    try:
        if prof >= 2:
            ctx = sec.jobs("seccerts").tls_context(sec, prof)
        elif where.startswith("wss"):
            from net import tls

            ctx = tls.context(ca=cfg.get("ca", "/certs/ca.der"), cert=cfg.get("client_cert"),
                              key=cfg.get("client_key"))
        ws = await wsock.connect(where, "ocpp1.6", auth=auth, ssl=ctx,
                                 server_hostname=cfg.get("server_hostname"),
                                 timeout_ms=cfg.get("connect_timeout_ms", 10000))
    except Exception as e:
        _failed(sec, e, ctx is not None)
        raise
    sec.noted = []
    sec.fails = 0
    if sec.state.get("prev") is not None:
        log.info("security", "security profile %d works" % prof)
        del sec.state["prev"]
        sec.save_state()
    return ws


def _failed(sec, e, tls):
    msg = str(e).strip()
    status = getattr(e, "status", None)
    if tls and "ertificate" in msg:
        # mbedtls says what was wrong with the server's certificate: we refused the link
        _once(sec, "InvalidCentralSystemCertificate", msg)
    elif status in (401, 403):
        _once(sec, "FailedToAuthenticateAtCentralSystem", "HTTP %d" % status)
    prev = sec.state.get("prev")
    if prev is not None:
        sec.fails += 1
        if sec.fails >= _FALLBACK_AFTER:
            # the new profile cannot reach the back-end: stay manageable with the old one
            cur = sec.profile()
            sec.st.keys.force("SecurityProfile", prev)
            del sec.state["prev"]
            sec.save_state()
            sec.fails = 0
            event(sec, "ReconfigurationOfSecurityParameters",
                  "SecurityProfile %d failed (%s); back to %d" % (cur, msg[:120], prev))


def _once(sec, kind, info):
    # One event per outage, not one per retry.
    if kind not in sec.noted:
        sec.noted.append(kind)
        event(sec, kind, info[:255])
