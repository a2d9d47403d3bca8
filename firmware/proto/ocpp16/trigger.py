# OCPP 1.6 Remote Trigger profile: TriggerMessage makes the charge point send one of its own
# messages right after the answer, for one connector or for all where a connector applies.
import log


def install(st):
    st.add_feature("RemoteTrigger")
    st.routes["TriggerMessage"] = trigger_message


def trigger_message(st, p):
    what = p["requestedMessage"]
    cid = p.get("connectorId")
    if cid is not None and not 0 <= cid < len(st.charger.connectors):
        return {"status": "Rejected"}
    return {"status": "Accepted"}, lambda: _send(st, what, cid)


async def _call(st, action, payload):
    try:
        return await st.rpc.call(action, payload)
    except Exception as e:
        log.warn("trigger", "%s failed: %s" % (action, e))
        return {}


async def _send(st, what, cid):
    ch = st.charger
    conns = ch.connectors if cid is None else [ch.connectors[cid]]
    if what == "StatusNotification":
        for c in conns:
            if c.status is not None:
                st._queue_status(c.id, c.status, c.error, c.info)
    elif what == "MeterValues":
        # No main meter: connector 0 (the charge point) is answered with every connector's values.
        from proto.ocpp16.meter import queue_sample

        ms = st.keys.measurands("MeterValuesSampledData") or ["Energy.Active.Import.Register"]
        for c in ch.connectors[1:] if not cid else conns:
            queue_sample(st, c.id, ms, "Trigger")
    elif what == "Heartbeat" or what == "BootNotification":
        res = await _call(st, what, st.boot_payload() if what[0] == "B" else {})
        st._set_time(res.get("currentTime"))
        if res.get("status") == "Accepted" and res.get("interval", 0) > 0:
            st.keys.force("HeartbeatInterval", res["interval"])
            st.wake_hb.set()
    else:
        # Diagnostics-/FirmwareStatusNotification: the firmware-management feature keeps the
        # current status on the station (st.diagnostics_status / st.firmware_status); else Idle.
        s = getattr(st, ("diagnostics" if what[0] == "D" else "firmware") + "_status", None)
        if callable(s):
            s = s()
        await _call(st, what, {"status": s or "Idle"})
