# The charge point: its connectors and the rules that start and stop sessions. Protocols drive it
# through these methods and learn what happened from bus events; it never knows which protocol.
import asyncio
import bus
import log
import store.kv as kv
from charger import status as st
from charger import session
from charger.auth import AuthStore
from charger.connector import Connector

_AVAIL = "/state/avail.json"
_REBOOT = "/state/reboot.json"


class Charger:
    def __init__(self, board, cfg):
        self.board = board
        self.cfg = cfg
        self.clock = board.clock
        self.id = cfg.get("id", "CP")
        self.dc = cfg.get("type", "AC") == "DC"
        self.max_current_a = cfg.get("max_current_a", 32)
        # Behaviour switches; protocols map their configuration keys onto these.
        self.connection_timeout_s = 60
        self.stop_on_ev_disconnect = True
        self.unlock_on_ev_disconnect = True
        self.stop_on_invalid_id = True
        self.authorizer = None    # async fn(id_tag) -> (status, parent_id_tag), set by the protocol
        self.auth_conn = None     # connector the card being authorized was presented at (None: any)
        self.auth = AuthStore()
        self.boot_reason = "PowerUp"
        kv.ensure_dir("/state")
        self.connectors = [Connector(self, 0, None)]
        for i, hw in enumerate(board.connectors):
            self.connectors.append(Connector(self, i + 1, hw))
        avail = kv.load(_AVAIL, {}) or {}
        for c in self.connectors:
            c.operative = avail.get(str(c.id), True)
        board.rfid.on_card(self.present_tag)
        board.on_fault(self.connectors[0].set_fault)

    def connector(self, cid):
        # Connector by id; ValueError for an id this charger does not have.
        if not isinstance(cid, int) or not 0 <= cid < len(self.connectors):
            raise ValueError("no connector %r (1..%d)" % (cid, len(self.connectors) - 1))
        return self.connectors[cid]

    # -- boot -----------------------------------------------------------------------------------

    def start(self):
        # Close transactions a reboot or power cut interrupted, then publish the initial statuses.
        marker = kv.load(_REBOOT)
        kv.remove(_REBOOT)
        reason = marker.get("reason", "Reboot") if isinstance(marker, dict) else "PowerLoss"
        self.boot_reason = reason if marker else "PowerUp"
        for c in self.connectors[1:]:
            tx = session.load_active(c.id)
            if tx is None:
                continue
            tx.meter_stop = tx.last_meter
            tx.stop_time = tx.last_time
            tx.reason = reason
            log.warn("conn%d" % c.id, "transaction %s interrupted (%s), %d Wh" % (tx.ref, reason, tx.energy_wh()))
            bus.emit("tx_stop", {"conn": c.id, "tx": tx})
            tx.forget()
        for c in self.connectors:
            c.update_power()
        self.refresh_all()

    def refresh_all(self):
        for c in self.connectors:
            c.refresh()

    def show_led(self):
        s = self.connectors[1].status if len(self.connectors) > 1 else self.connectors[0].status
        self.board.led.set(s.lower() if s else "off")

    # -- meter ----------------------------------------------------------------------------------

    def meter(self, cid):
        # A meter reading; while a transaction runs its last value is checkpointed on flash.
        c = self.connectors[cid]
        r = c.hw.meter.read()
        tx = c.tx
        if tx is not None and r.energy_wh != tx.last_meter:
            tx.last_meter = r.energy_wh
            tx.last_time = int(self.clock.now())
            tx.save()
        return r

    # -- authorization and start ----------------------------------------------------------------

    def present_tag(self, id_tag, cid=None):
        # An RFID card (or a console swipe); the decision needs the back-end, so it runs as a task.
        asyncio.create_task(self._tag(id_tag, cid))

    async def _authorize(self, id_tag):
        if self.authorizer is None:
            log.warn("auth", "no protocol to authorize %s" % id_tag)
            return "Invalid", None
        try:
            return await self.authorizer(id_tag)
        except Exception as e:
            log.exc("auth", e, "authorize " + id_tag)
            return "Invalid", None

    async def _tag(self, id_tag, cid):
        conns = self.connectors[1:] if cid is None else [self.connector(cid)]
        # The tag that started a transaction stops it, without asking anyone (OCPP TC_068).
        for c in conns:
            if c.tx is not None and c.tx.id_tag == id_tag:
                self.stop(c, "Local", id_tag)
                return
        self.auth_conn = cid      # read by the authorizer before its first await
        status, parent = await self._authorize(id_tag)
        bus.emit("auth", {"tag": id_tag, "status": status})
        if status != "Accepted":
            log.info("auth", "%s refused: %s" % (id_tag, status))
            return
        # Another tag of the same group stops it too (TC_069).
        for c in conns:
            if c.tx is not None and parent and c.tx.parent_id_tag == parent:
                self.stop(c, "Local", id_tag)
                return
        c = self._start_target(conns, id_tag, parent)
        if c is None:
            log.info("auth", "%s accepted but no connector is free" % id_tag)
            return
        self.start_authorized(c, id_tag, parent)

    def _start_target(self, conns, id_tag, parent):
        free = [c for c in conns if self.can_start(c, id_tag, parent)]
        for c in free:  # a plugged connector first (plug-in first), then any free one
            if c.plugged():
                return c
        return free[0] if free else None

    def can_start(self, c, id_tag=None, parent=None):
        # Whether a session may begin on this connector for this tag (reservations honoured).
        if c.id == 0 or c.tx is not None or c.fatal_error():
            return False
        if not c.operative or not self.connectors[0].operative:
            return False
        r = c.reservation or self.connectors[0].reservation
        if r is not None and id_tag is not None and not r.admits(id_tag, parent):
            # A charge-point reservation (connector 0) only keeps one connector free for its holder.
            if c.reservation is not None or not self.spare(c):
                return False
        return True

    def spare(self, c):
        # Whether another connector than c is free (Available, not reserved).
        for o in self.connectors[1:]:
            if o is not c and o.reservation is None and o.status == st.AVAILABLE:
                return True
        return False

    def start_authorized(self, c, id_tag, parent=None):
        # An accepted tag (card or remote start): start now if the EV is plugged, else wait for it.
        r = c.reservation or self.connectors[0].reservation
        res_id = r.id if r is not None and r.admits(id_tag, parent) else None
        if c.plugged():
            c.pending = (id_tag, parent, res_id)
            self.begin(c)
        else:
            c.set_pending(id_tag, parent, res_id, self.connection_timeout_s)

    def begin(self, c):
        # Lock the cable, open the transaction on flash, then offer energy to the EV.
        id_tag, parent, res_id = c.pending
        c.clear_pending()
        hw = c.hw
        if not hw.lock.fixed_cable and not hw.lock.lock():
            c.set_fault("ConnectorLockFailure", True, "cable lock did not engage")
            return
        r = self.meter(c.id)
        tx = session.Transaction(session.next_ref(), c.id, id_tag, r.energy_wh, int(self.clock.now()),
                                 parent, res_id)
        tx.save()
        session.commit_ref(tx.ref)
        c.tx = tx
        c.finishing = False
        c.suspended_evse = False
        # The event is the record of it, with no log line besides (Connector.refresh says why).
        bus.emit("tx_start", {"conn": c.id, "tx": tx})
        c.update_power()
        c.refresh()

    # -- stop -----------------------------------------------------------------------------------

    def stop(self, c, reason, id_tag=None):
        # End the connector's transaction: record the final meter value, cut energy, publish it.
        tx = c.tx
        if tx is None:
            return False
        r = c.hw.meter.read()
        tx.meter_stop = r.energy_wh
        tx.stop_time = int(self.clock.now())
        tx.reason = reason
        tx.stop_id_tag = id_tag
        # Finishing is decided before energy is cut, so the EV's reaction (C→B) never shows a
        # transient Preparing.
        c.finishing = c.occupied()
        c.tx = None
        c.suspended_evse = False
        c.update_power()
        if reason != "EVDisconnected" or self.unlock_on_ev_disconnect:
            if not c.hw.lock.fixed_cable:
                c.hw.lock.unlock()
        bus.emit("tx_stop", {"conn": c.id, "tx": tx})
        tx.forget()
        if c.scheduled is not None:
            self._set_operative(c, c.scheduled)
        c.refresh()
        return True

    def stop_all(self, reason):
        for c in self.connectors[1:]:
            self.stop(c, reason)

    def tx_confirmed(self, ref, tx_id):
        # The back-end gave a running transaction its id.
        for c in self.connectors[1:]:
            if c.tx is not None and c.tx.ref == ref:
                c.tx.id = tx_id
                c.tx.save()

    def tx_refused(self, ref):
        # The back-end refused the id that started a running transaction.
        for c in self.connectors[1:]:
            if c.tx is not None and c.tx.ref == ref:
                if self.stop_on_invalid_id:
                    self.stop(c, "DeAuthorized")
                else:
                    c.suspended_evse = True
                    c.update_power()
                    c.refresh()

    def find_tx(self, tx_id):
        for c in self.connectors[1:]:
            if c.tx is not None and c.tx.id == tx_id:
                return c
        return None

    # -- commands from the back-end -------------------------------------------------------------

    def remote_stop(self, tx_id):
        c = self.find_tx(tx_id)
        return c is not None and self.stop(c, "Remote")

    def set_availability(self, cid, operative):
        # "Accepted", or "Scheduled" when a running transaction must end first.
        targets = self.connectors if cid == 0 else [self.connector(cid)]
        result = "Accepted"
        for c in targets:
            if c.tx is not None and not operative:
                c.scheduled = operative
                result = "Scheduled"
            else:
                self._set_operative(c, operative)
        self.refresh_all()
        return result

    def _set_operative(self, c, operative):
        c.scheduled = None
        if c.operative == operative:
            return
        c.operative = operative
        avail = kv.load(_AVAIL, {}) or {}
        avail[str(c.id)] = operative
        kv.save(_AVAIL, avail)

    def unlock(self, cid):
        # "Unlocked", "UnlockFailed" or "NotSupported" (fixed cable or no such connector).
        if not isinstance(cid, int) or cid < 1 or cid >= len(self.connectors):
            return "NotSupported"
        c = self.connectors[cid]
        if c.hw.lock.fixed_cable:
            return "NotSupported"
        if c.tx is not None:
            self.stop(c, "UnlockCommand")
        if c.hw.lock.unlock():
            return "Unlocked"
        c.set_fault("ConnectorLockFailure", True, "cable lock did not release")
        return "UnlockFailed"

    def prepare_reboot(self, reason):
        # Remember why we go down so the next boot closes leftovers with the right reason.
        kv.save(_REBOOT, {"reason": reason})

    # -- views ----------------------------------------------------------------------------------

    def snapshot(self):
        # Everything a status display needs, as plain data.
        out = []
        for c in self.connectors:
            d = {"conn": c.id, "status": c.status, "error": c.error, "operative": c.operative}
            if c.id:
                r = c.hw.meter.read()
                d.update({"pilot": c.pilot(), "relay": c.hw.relay.state(), "locked": c.hw.lock.locked(),
                          "energy_wh": r.energy_wh, "power_w": int(r.power_w), "soc": r.soc,
                          "offered_a": c.offered_amps()})
                if c.tx is not None:
                    d["tx"] = {"ref": c.tx.ref, "id": c.tx.id, "tag": c.tx.id_tag,
                               "energy_wh": r.energy_wh - c.tx.meter_start}
                if c.pending is not None:
                    d["pending"] = c.pending[0]
            out.append(d)
        return out
