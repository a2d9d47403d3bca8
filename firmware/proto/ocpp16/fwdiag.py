# The diagnostics and log files of GetDiagnostics / GetLog, written to flash line by line: recent
# log lines (the ring of proto.ocpp16.firmware), configuration keys, state files. Imported by the
# jobs (proto.ocpp16.fwup) only while they write.
import os
import log
import store.kv as kv
from proto.ocpp16 import firmware as fw

_MAX_DUMP = 2048           # bytes of one state file copied into the diagnostics
_SECRET = ("password", "key", "secret", "token")


def _now(st):
    from hal.clock import iso

    return iso(st.charger.clock.now())


def lines():
    # The ring's complete lines, oldest first, as (epoch s, level letter, tag, msg).
    ring, at = fw.ring, fw.ring_at
    if ring is None:
        return []
    data = bytes(ring[at:]) + bytes(ring[:at]) if fw.ring_wrapped else bytes(ring[:at])
    if fw.ring_wrapped:
        data = data[data.find(b"\n") + 1:]   # the oldest line lost its head
    out = []
    for ln in data.decode().split("\n"):
        ts, _, rest = ln.partition(" ")
        lvl, _, rest = rest.partition(" ")
        tag, _, msg = rest.partition(": ")
        if ts.isdigit():
            out.append((int(ts), lvl, tag, msg))
    return out


def _ring_lines(f, start, stop, tag=None):
    from hal.clock import iso

    for ts, lvl, t, msg in lines():
        if (start is not None and ts < start) or (stop is not None and ts > stop):
            continue
        if tag is None or t == tag:
            f.write("%s %s %s: %s\n" % (iso(ts), lvl, t, msg))


def _copy(f, path, limit):
    # Append a flash file (at most limit bytes); JSON objects get their secrets masked.
    try:
        size = os.stat(path)[6]
    except OSError:
        return
    f.write("--- %s (%d bytes)\n" % (path, size))
    if limit is not None and size > limit:
        f.write("(not copied: over %d bytes)\n" % limit)
        return
    if path.endswith(".json"):
        obj = kv.load(path)
        if isinstance(obj, dict):
            import json

            obj = {k: ("***" if any(s in k.lower() for s in _SECRET) else v) for k, v in obj.items()}
            f.write(json.dumps(obj) + "\n")
            return
    buf = bytearray(256)
    mv = memoryview(buf)
    with open(path, "rb") as src:
        while True:
            n = src.readinto(buf)
            if not n:
                break
            f.write(mv[:n])   # the port's text files take bytes as they are
    f.write("\n")


def _tree(f, d, depth=0):
    try:
        entries = sorted(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        p = d + "/" + e[0]
        if e[1] == 0x4000:
            if depth < 2:
                _tree(f, p, depth + 1)
        elif not e[0].endswith((".tar", ".part", ".tmp")):
            try:
                _copy(f, p, _MAX_DUMP)
            except OSError as x:
                f.write("(unreadable: %s)\n" % x)


def write_log(st, path, kind, start, stop):
    security = kind == "security"
    with open(path, "w") as f:
        f.write("# %s %s log, %s\n" % (st.charger.id, kind, _now(st)))
        _ring_lines(f, start, stop, "security" if security else None)
        if security:
            for p in (fw.SECURITY_LOG + ".1", fw.SECURITY_LOG):   # the rotated one first
                _copy(f, p, None)


def write_diagnostics(st, path, start, stop):
    import gc
    import json
    import sys
    from proto.ocpp16.keys import HIDDEN, RO

    ch = st.charger
    cfg = st.cfg
    where = (getattr(sys.modules.get("app"), "__file__", "") or "?").rpartition("/")[0]
    gc.collect()
    with open(path, "w") as f:
        w = f.write
        w("# %s %s diagnostics\n" % (cfg.get("vendor", "EVFleet"), cfg.get("model", "Emu-AC22")))
        w("charger: %s\nfirmware: %s (running from %s)\nboard: %s\n" % (
            ch.id, cfg.get("fw_version"), where or "?", st.board.name))
        w("created: %s\nuptime_s: %d\nboot_reason: %s\n" % (
            _now(st), ch.clock.uptime_ms() // 1000, ch.boot_reason))
        w("heap: %d used, %d free\nlink: %s\n" % (gc.mem_alloc(), gc.mem_free(), json.dumps(st.counters())))
        w("firmware_status: %s\n" % st.firmware_status)
        w("\n== connectors ==\n")
        for c in ch.snapshot():
            w(json.dumps(c) + "\n")
        w("\n== log ==\n")
        if start is not None or stop is not None:
            from hal.clock import iso

            w("(lines from %s to %s)\n" % (iso(start) if start is not None else "-",
                                           iso(stop) if stop is not None else "-"))
        _ring_lines(f, start, stop)
        w("\n== configuration ==\n")
        keys = st.keys
        for name in sorted(keys.table):
            flags = keys.table[name][2]
            if not flags & HIDDEN:
                v = keys.values.get(name)
                v = "true" if v is True else "false" if v is False else str(v)
                w("%s = %s%s\n" % (name, v, " (read-only)" if flags & RO else ""))
        w("\n== files ==\n")
        _copy(f, "/config.json", _MAX_DUMP)
        for d in ("/state", "/txq", "/hw", "/fw"):
            _tree(f, d)
