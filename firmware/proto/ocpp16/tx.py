# OCPP 1.6 transaction messages: StartTransaction / StopTransaction / transaction MeterValues go
# through the flash queue in order, with TransactionMessageAttempts and ...RetryInterval, and the
# back-end's transaction id is mapped onto the charger's local reference.
import asyncio
import bus
import log
from hal.clock import iso
from proto.rpc import CallError, CallTimeout, NotConnected
from proto.ocpp16 import auth
from proto.ocpp16.meter import stop_data


def attach(st):
    bus.subscribe(lambda kind, data: _on_event(st, kind, data), ("tx_start", "tx_stop"))


def _on_event(st, kind, data):
    if kind == "tx_start":
        tx = data["tx"]
        p = {"connectorId": tx.conn, "idTag": tx.id_tag, "meterStart": tx.meter_start,
             "timestamp": iso(tx.start_time)}
        if tx.reservation_id is not None:
            p["reservationId"] = tx.reservation_id
        st.queue.push("StartTransaction", p, tx.ref)
        st.wake_tx.set()
    elif kind == "tx_stop":
        tx = data["tx"]
        if tx.ref not in st.queue.ids and not st.queue.has_ref(tx.ref):
            # The power went between the transaction's checkpoint and its StartTransaction
            # reaching the queue: the back-end must still hear of it, start first.
            _on_event(st, "tx_start", {"conn": tx.conn, "tx": tx})
        p = {"transactionId": 0, "meterStop": tx.meter_stop, "timestamp": iso(tx.stop_time),
             "reason": tx.reason}
        if tx.stop_id_tag:
            p["idTag"] = tx.stop_id_tag
        td = stop_data(st, tx)
        if td:
            p["transactionData"] = td
        st.queue.push("StopTransaction", p, tx.ref)
        st.wake_tx.set()


async def sender(st):
    q = st.queue
    attempts = 0
    while True:
        if not (st.registered and st.online and q.items):
            await st.wake_tx.wait()
            st.wake_tx.clear()
            continue
        item = q.head()
        seq, action, payload, ref = item
        if ref is not None and action != "StartTransaction":
            tx_id = q.ids.get(ref)
            if tx_id is None:
                log.error("tx", "%s for transaction %s dropped: its start was never accepted" % (action, ref))
                q.done(seq)
                continue
            if isinstance(payload, str):   # JSON text from a template: the id goes in as text
                # (no copy when it was known when queued: replace() finds no placeholder)
                payload = item[2] = payload.replace('"transactionId":0', '"transactionId":%d' % tx_id, 1)
            else:
                payload["transactionId"] = tx_id
        try:
            res = await st.rpc.call(action, payload,
                                    on_result=lambda r: _confirmed(st, action, payload, ref, r))
        except NotConnected:
            # The link just went: let the link task see it (and set online False) before trying
            # again. A bare `continue` spun here without ever yielding, and the charger froze.
            await asyncio.sleep_ms(100)
            continue
        except (CallError, CallTimeout) as e:
            attempts += 1
            if attempts >= max(1, st.keys["TransactionMessageAttempts"]):
                log.error("tx", "%s given up after %d attempts: %s" % (action, attempts, e))
                attempts = 0
                q.done(seq)
                if action == "StopTransaction":
                    q.unmap(ref)
            else:
                wait = st.keys["TransactionMessageRetryInterval"] * attempts
                log.warn("tx", "%s failed (%s); attempt %d in %d s" % (action, e, attempts + 1, wait))
                await asyncio.sleep(wait)
            continue
        attempts = 0
        q.done(seq)


def _confirmed(st, action, payload, ref, res):
    ch = st.charger
    if action == "StartTransaction":
        tx_id = res.get("transactionId")
        info = res.get("idTagInfo") or {}
        st.queue.map_id(ref, tx_id)
        ch.tx_confirmed(ref, tx_id)
        auth.remember(st, payload["idTag"], info)
        bus.emit("tx_id", {"ref": ref, "id": tx_id})
        if info.get("status") != "Accepted":
            log.warn("tx", "back-end refused %s for transaction %s: %s" % (payload["idTag"], tx_id, info.get("status")))
            ch.tx_refused(ref)
    elif action == "StopTransaction":
        st.queue.unmap(ref)
        if payload.get("idTag") and res.get("idTagInfo"):
            auth.remember(st, payload["idTag"], res["idTagInfo"])
