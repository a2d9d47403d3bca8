# OCPP 1.6 meter values: sampled values from a meter reading, the periodic (Sample.Periodic)
# and clock-aligned (Sample.Clock) senders, and the data that goes into StopTransaction.
import asyncio
import log
from hal.clock import iso

# measurand -> (unit, location, format of its value in the template)
_UNITS = {
    "Energy.Active.Import.Register": ("Wh", "Outlet", "%d"),
    "Power.Active.Import": ("W", "Outlet", "%.1f"),
    "Current.Import": ("A", "Outlet", "%.2f"),
    "Voltage": ("V", "Outlet", "%.1f"),
    "SoC": ("Percent", "EV", "%d"),
    "Temperature": ("Celsius", "Body", "%.1f"),
    "Current.Offered": ("A", "Outlet", "%.1f"),
    "Power.Offered": ("W", "Outlet", "%.1f"),
}


def _value(c, r, m):
    # The measurand's number now (the template formats it), None when there is none (no EV: SoC).
    if m == "Energy.Active.Import.Register":
        return r.energy_wh
    if m == "Power.Active.Import":
        return r.power_w
    if m == "Current.Import":
        return r.current_a
    if m == "Voltage":
        return r.voltage_v
    if m == "SoC":
        return None if r.soc is None else int(r.soc)
    if m == "Temperature":
        return r.temp_c
    amps = c.offered_amps()
    if m == "Current.Offered":
        return amps
    if m == "Power.Offered":
        return amps * r.voltage_v * r.phases
    return None


_SV = '{"value":"%s","context":"%s","format":"Raw","measurand":"%s","location":"%s","unit":"%s"}'
_IN_TX = '{"connectorId":%d,"transactionId":%d,"meterValue":['
_NO_TX = '{"connectorId":%d,"meterValue":['
_templates = {}   # (head, context, measurands present) -> the payload's JSON with a format per value


def _template(head, context, present):
    key = (head, context) + present
    t = _templates.get(key)
    if t is None:
        if len(_templates) > 8:   # configuration changed a few times: start again
            _templates.clear()
        sv = ",".join(_SV % (_UNITS[m][2], context, m, _UNITS[m][1], _UNITS[m][0]) for m in present)
        t = _templates[key] = head + '{"timestamp":"%s","sampledValue":[' + sv + ']}]}'
    return t


def _payload(st, conn, measurands, context, when, tx_id=None):
    # The MeterValues payload as JSON text, made by one format of a cached template. This runs for
    # every sample of every transaction: dicts and json.dumps, a string per sampled value, or a
    # MeterValue text formatted into the payload's (its buffer grown twice over ~700 bytes) each
    # cost a multiple. None when no measurand has a value.
    ch = st.charger
    c = ch.connectors[conn]
    r = ch.meter(conn)
    present = []
    values = [conn] if tx_id is None else [conn, tx_id]
    values.append(iso(ch.clock.now() if when is None else when))
    for m in measurands:
        v = _value(c, r, m)
        if v is not None:
            present.append(m)
            values.append(v)
    if not present:
        return None
    return _template(_NO_TX if tx_id is None else _IN_TX, context, tuple(present)) % tuple(values)


def queue_sample(st, conn, measurands, context, when=None):
    # Transaction meter values go through the flash queue; others are sent if we are online.
    tx = st.charger.connectors[conn].tx
    if tx is not None:
        # The back-end's transaction id when it is known already; 0 is the sender's placeholder.
        payload = _payload(st, conn, measurands, context, when, st.queue.ids.get(tx.ref) or 0)
        if payload is not None:
            st.queue.push("MeterValues", payload, tx.ref)
            st.wake_tx.set()
    elif st.registered and st.online:
        payload = _payload(st, conn, measurands, context, when)
        if payload is not None:
            asyncio.create_task(_send_now(st, payload))


async def _send_now(st, payload):
    try:
        await st.rpc.call("MeterValues", payload)
    except Exception as e:
        log.warn("meter", "MeterValues failed: %s" % e)


async def sampled(st):
    # Every MeterValueSampleInterval seconds counted from each transaction's start (context
    # Sample.Periodic), as real chargers do: a fleet that booted together does not send all its
    # samples in the same few seconds. A sample that fell due while the loop was held up (clock
    # set forward, a busy loop) is sent once, not as a backlog.
    import bus

    def _on_event(kind, data):
        if kind == "tx_start":
            st.wake_meter.set()

    bus.subscribe(_on_event, ("tx_start",))
    sent = {}   # connector -> (transaction ref, samples counted)
    while True:
        interval = st.keys["MeterValueSampleInterval"]
        st.wake_meter.clear()
        wait = 3600   # no transaction, nothing to sample: a start wakes this loop
        if interval > 0:
            now = st.charger.clock.now()
            ms = None
            for c in st.charger.connectors[1:]:
                tx = c.tx
                if tx is None:
                    continue
                ref, n = sent.get(c.id, (None, 0))
                if ref != tx.ref:
                    n = 0
                at = tx.start_time + (n + 1) * interval
                if at <= now:
                    n = max(n + 1, int((now - tx.start_time) // interval))
                    at = tx.start_time + (n + 1) * interval
                    if ms is None:
                        ms = st.keys.measurands("MeterValuesSampledData")
                    try:
                        queue_sample(st, c.id, ms, "Sample.Periodic")
                    except Exception as e:
                        log.exc("meter", e, "sample")
                sent[c.id] = (tx.ref, n)
                wait = min(wait, at - now)
        await st.wake_meter.wait(max(wait, 0.05))


async def aligned(st):
    # On wall-clock multiples of ClockAlignedDataInterval (context Sample.Clock), every connector.
    while True:
        interval = st.keys["ClockAlignedDataInterval"]
        if interval <= 0:
            await asyncio.sleep(60)
            continue
        now = st.charger.clock.now()
        boundary = (int(now) // interval + 1) * interval
        await asyncio.sleep(boundary - now + 0.01)
        if st.keys["ClockAlignedDataInterval"] != interval:
            continue
        ms = st.keys.measurands("MeterValuesAlignedData")
        for c in st.charger.connectors[1:]:
            try:
                queue_sample(st, c.id, ms, "Sample.Clock", boundary)
            except Exception as e:
                log.exc("meter", e, "aligned")


def stop_data(st, tx):
    # transactionData for StopTransaction: begin and end values of StopTxnSampledData.
    ms = st.keys.measurands("StopTxnSampledData")
    if "Energy.Active.Import.Register" not in ms:
        return None
    def sv(v, ctx):
        return [{"value": str(v), "context": ctx, "format": "Raw", "measurand": "Energy.Active.Import.Register",
                 "location": "Outlet", "unit": "Wh"}]
    return [{"timestamp": iso(tx.start_time), "sampledValue": sv(tx.meter_start, "Transaction.Begin")},
            {"timestamp": iso(tx.stop_time), "sampledValue": sv(tx.meter_stop, "Transaction.End")}]
