# YKC pile administration: time sync 0x56->0x55, remote reboot 0x92->0x91, work parameters
# 0x52->0x51 (enable/disable, max output power in % applied as the guns' current limit).
import asyncio
import log
import store.kv as kv
from proto.ykc import billing as B

_PARAMS = "/ykc/params.json"


def attach(st):
    st.routes[0x56] = lambda seq, f: time_sync(st, seq, f)
    st.routes[0x92] = lambda seq, f: reboot(st, seq, f)
    st.routes[0x52] = lambda seq, f: params(st, seq, f)
    p = kv.load(_PARAMS)
    if isinstance(p, dict):   # before charger.start(), which applies power and statuses itself
        limit(st, p.get("pct", 100), False)


def time_sync(st, seq, f):
    # Adopt the platform's local time; the reply carries the pile's time after setting it.
    clock = st.charger.clock
    try:
        clock.set(B.epoch_of(f["time"], st.tz))
        log.info("ykc", "clock set to %04d-%02d-%02d %02d:%02d:%02d (platform time)" % tuple(f["time"][:6]))
    except ValueError as e:
        log.warn("ykc", "time sync ignored: %s" % e)
    st.send(0x55, {"pile": st.pile, "time": B.cp56(clock.now(), st.tz)}, seq)


def reboot(st, seq, f):
    # control 1: now (running sessions end first), 2: once every gun is idle.
    ctl = f["control"]
    ok = ctl in (1, 2)
    st.send(0x91, {"pile": st.pile, "result": 1 if ok else 0}, seq)
    if ok:
        return _reboot(st, ctl == 2)
    log.warn("ykc", "reboot control %d unknown: ignored" % ctl)


async def _reboot(st, when_idle):
    ch = st.charger
    if when_idle:
        while any(c.tx is not None for c in ch.connectors[1:]):
            await asyncio.sleep(1)
    else:
        ch.stop_all("Reboot")
    # Let the records reach the platform (at most 5 s), as a soft reset does.
    for _ in range(50):
        await asyncio.sleep_ms(100)
        if not st.records.q.items or not st.registered:
            break
    log.info("ykc", "rebooting on the platform's request")
    ch.prepare_reboot("Reboot")
    await st.close()
    st.board.reset(False)


def limit(st, pct, apply=True):
    # Max output power as a share of the pile's current: the model's per-connector limit.
    ch = st.charger
    a = None if pct >= 100 else ch.max_current_a * pct // 100
    for c in ch.connectors[1:]:
        c.limit_a = a
        if apply:
            c.update_power()
            c.refresh()


def params(st, seq, f):
    ok = f["disabled"] in (0, 1) and 30 <= f["max_power"] <= 100
    if ok:
        st.charger.set_availability(0, f["disabled"] == 0)
        limit(st, f["max_power"])
        kv.save(_PARAMS, {"pct": f["max_power"]})
        log.info("ykc", "pile %s, max power %d %%" %
                 ("disabled" if f["disabled"] else "enabled", f["max_power"]))
    else:
        log.warn("ykc", "work parameters %d/%d refused" % (f["disabled"], f["max_power"]))
    st.send(0x51, {"pile": st.pile, "result": 1 if ok else 0}, seq)
