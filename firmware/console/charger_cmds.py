# Charger commands on the serial console: what a technician (or the harness) does to the emulated
# hardware and what they can ask the firmware. Every bad input is a CommandError: nothing changes.
from console.commands import command, CommandError, arg_int, arg_str, arg_choice
from console.console import emit_event
from charger import status as st

_ch = None
_board = None
_proto = None
_capture = False   # forward every protocol message as an event (the harness's capture)


def install(charger, board, proto):
    import bus

    global _ch, _board, _proto
    _ch, _board, _proto = charger, board, proto
    bus.subscribe(_model_event)


def _frame_event(kind, data):
    # Protocol frames (captures) become console event records, as they are.
    emit_event(kind, data)


def _model_event(kind, data):
    # Model events become console event records (for subscribed channels).
    if kind in ("tx_start", "tx_stop"):
        tx = data["tx"]
        d = tx.to_dict()
        if kind == "tx_stop":
            d.update({"m1": tx.meter_stop, "t1": tx.stop_time, "reason": tx.reason})
        emit_event(kind, {"conn": data["conn"], "tx": d})
        return
    emit_event(kind, data)


@command("capture", "capture [on|off]", "protocol messages as events (for message captures)")
def _capture_cmd(args):
    global _capture
    if args:
        import bus

        _capture = arg_choice(args, 0, "on|off", ("on", "off")) == "on"
        if _capture:
            bus.subscribe(_frame_event, ("proto",))   # only now does every frame become an event
        else:
            bus.unsubscribe(_frame_event)
    return {"capture": "on" if _capture else "off"}


def _sim():
    sim = getattr(_board, "sim", None)
    if sim is None:
        raise CommandError("this board has real hardware: nothing to emulate")
    return sim


def _conn(args, i=0, zero=False):
    n = arg_int(args, i, "conn")
    if not (0 if zero else 1) <= n < len(_ch.connectors):
        raise CommandError("no connector %d (1..%d)" % (n, len(_ch.connectors) - 1))
    return n


def _params(args, start):
    # key=value words (human) or one dict (machine request) after the fixed arguments.
    out = {}
    for a in args[start:]:
        if isinstance(a, dict):
            out.update(a)
            continue
        k, eq, v = str(a).partition("=")
        if not eq or not k:
            raise CommandError("expected key=value, got %r" % a)
        try:
            v = float(v) if "." in v else int(v)
        except ValueError:
            if v.lower() in ("true", "false"):
                v = v.lower() == "true"
        out[k] = v
    return out


def _brief(n):
    # What a hardware command changed, without the cost of a full status snapshot.
    c = _ch.connectors[n]
    return {"conn": n, "status": c.status, "error": c.error, "pilot": c.pilot()}


def _do(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except (ValueError, TypeError) as e:
        raise CommandError(str(e))


@command("status", "status [<conn>]", "connector statuses, meter, transaction and link")
def _status(args):
    snap = _ch.snapshot()
    if args:
        return snap[_conn(args, 0, True)]
    return {"id": _ch.id, "connectors": snap, "link": _proto.counters()}


@command("plug", "plug <conn> [soc=20 capacity_wh=60000 max_power_w=11000 target_soc=100]",
         "plug an EV into a connector")
def _plug(args):
    n = _conn(args)
    _do(_sim().plug, n, **_params(args, 1))
    return _brief(n)


@command("unplug", "unplug <conn> [ev]", "unplug the cable (or only its EV end, 'ev')")
def _unplug(args):
    n = _conn(args)
    ev_only = arg_choice(args, 1, "side", ("ev", "all"), "all") == "ev"
    _do(_sim().unplug, n, ev_only)
    return _brief(n)


@command("swipe", "swipe <conn> <idTag>", "present an RFID card (conn 0: reader not tied to a connector)")
def _swipe(args):
    n = _conn(args, 0, True)
    tag = arg_str(args, 1, "idTag")
    if not 0 < len(tag) <= 20:
        raise CommandError("idTag must be 1..20 characters")
    _do(_sim().card, tag, n or None)
    return {"conn": n, "idTag": tag}


@command("atg", "atg [on [session_s=60-180 gap_s=15-30 first_s=60 tags=TAG1,TAG2 wait_s=60]|off]",
         "automatic transaction generator: an emulated driver cycling sessions on every connector")
def _atg(args):
    sim = _sim()   # first: a board with real hardware has no sim package either
    from sim import atg

    gen = atg.get(_ch, sim)
    if args:
        if arg_choice(args, 0, "on|off", ("on", "off")) == "on":
            _do(gen.start, _params(args, 1))
        else:
            gen.stop()
    return gen.info()


@command("ev", "ev <conn> [soc=.. target_soc=.. max_power_w=.. capacity_wh=.. paused=true]",
         "show or change the plugged EV")
def _ev(args):
    n = _conn(args)
    params = _params(args, 1)
    if params:
        _do(_sim().ev, n, **params)
    return _sim().info(n)


@command("fault", "fault <conn> <ErrorCode>|clear [on|off]",
         "inject a hardware fault (conn 0: the whole charger) or clear it")
def _fault(args):
    n = _conn(args, 0, True)
    name = arg_str(args, 1, "ErrorCode")
    if name == "clear":
        c = _ch.connectors[n]
        for code in list(c.faults):
            _do(_sim().fault, n, code, False)
        return {"conn": n, "faults": list(c.faults)}
    code = _do(st.error_code, name)
    on = arg_choice(args, 2, "on|off", ("on", "off"), "on") == "on"
    _do(_sim().fault, n, code, on)
    return {"conn": n, "faults": list(_ch.connectors[n].faults)}


@command("faults", "faults", "list the error codes 'fault' accepts")
def _faults(args):
    return list(st.ERROR_CODES)


@command("pilot", "pilot <conn> A|B|C|D|E|F|auto", "force the control-pilot state (auto: the EV decides)")
def _pilot(args):
    n = _conn(args)
    s = arg_choice(args, 1, "state", ("A", "B", "C", "D", "E", "F", "auto"))
    _do(_sim().pilot, n, None if s == "auto" else s)
    return _sim().info(n)


@command("lock", "lock <conn> jam|free", "jam the cable lock where it is (found out when it next moves)")
def _lock(args):
    n = _conn(args)
    jam = arg_choice(args, 1, "jam|free", ("jam", "free")) == "jam"
    _do(_sim().jam_lock, n, jam)
    return _sim().info(n)


@command("net", "net down|up|delay <ms>|stall|partition tx|rx|heal|status [<seconds>]",
         "cut the network, add latency, stall or partition the link one way, heal it")
def _net(args):
    from net import netctl

    what = arg_choice(args, 0, "action", ("down", "up", "delay", "stall", "partition", "heal", "status"))
    if what == "down":
        netctl.down(_seconds(args, 1))
    elif what == "up":
        netctl.up()
    elif what == "delay":
        ms = arg_int(args, 1, "ms")
        if not 0 <= ms <= 60000:
            raise CommandError("<ms> must be 0..60000")
        netctl.set_delay(ms)
    elif what == "stall":
        netctl.impair("both", _seconds(args, 1))
    elif what == "partition":
        direction = arg_choice(args, 1, "tx|rx", ("tx", "rx"))
        netctl.impair(direction, _seconds(args, 2))
    elif what == "heal":
        netctl.heal()
    d = netctl.impairments()
    d["network"] = "up" if netctl.is_up() else "down"
    return d


def _seconds(args, i):
    secs = arg_int(args, i, "seconds", None)
    if secs is not None and secs <= 0:
        raise CommandError("<seconds> must be positive")
    return secs


@command("reboot", "reboot [hard]", "restart the firmware (running transactions end with reason Reboot)")
def _reboot(args):
    hard = arg_choice(args, 0, "kind", ("soft", "hard"), "soft") == "hard"

    async def go():
        import asyncio

        _ch.stop_all("Reboot")
        _ch.prepare_reboot("Reboot")
        await asyncio.sleep_ms(200)   # let the reply reach the console first
        _board.reset(hard)

    return go()


@command("config", "config get [<key>...] | config set <key> <value>", "read or change protocol settings")
def _config(args):
    what = arg_choice(args, 0, "get|set", ("get", "set"))
    keys = getattr(_proto, "keys", None)
    if keys is None:
        raise CommandError("this protocol has no configuration keys")
    if what == "get":
        names = [str(a) for a in args[1:]] or None
        known, unknown = keys.report(names)
        if unknown and not known:
            raise CommandError("unknown key(s): " + ", ".join(unknown))
        out = {k["key"]: k["value"] for k in known}
        if unknown:
            out["unknownKey"] = unknown
        return out
    name = arg_str(args, 1, "key")
    if len(args) < 3:
        raise CommandError("missing <value>")
    value = args[2]
    if isinstance(value, bool):
        value = "true" if value else "false"
    value = str(value)
    result = keys.change(name, value)
    if result in ("Rejected", "NotSupported"):
        raise CommandError("%s %s=%s" % (result, name, value))
    return {"key": name, "status": result}


@command("datatransfer", "datatransfer <vendorId> [<messageId>] [<data>]", "send DataTransfer to the back-end")
def _datatransfer(args):
    vendor = arg_str(args, 0, "vendorId")
    p = {"vendorId": vendor}
    if len(args) > 1:
        p["messageId"] = arg_str(args, 1, "messageId")
    if len(args) > 2:
        p["data"] = arg_str(args, 2, "data")
    if not hasattr(_proto, "call"):
        raise CommandError("this protocol has no DataTransfer")

    async def go():
        try:
            return await _proto.call("DataTransfer", p)
        except Exception as e:
            raise CommandError("DataTransfer failed: %s" % e)

    return go()


@command("ping", "ping", "answers pong (console round-trip measurements)")
def _ping(args):
    return "pong"


@command("info", "info", "charger identity, board and firmware")
def _info(args):
    cfg = _ch.cfg
    return {"id": _ch.id, "board": _board.name, "fw_version": cfg.get("fw_version"),
            "protocol": cfg.get("protocol", "ocpp16"), "connectors": len(_ch.connectors) - 1,
            "boot_reason": _ch.boot_reason, "led": _board.led.state}
