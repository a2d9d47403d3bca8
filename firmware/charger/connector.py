# One connector: IEC 61851 pilot state, relay, lock, faults and transaction, and the status they
# add up to. Connector 0 stands for the charge point as a whole and has no hardware.
import bus
import log
from charger import status as st

_PLUGGED = "BCD"
_DRAWING = "CD"


class Connector:
    def __init__(self, charger, cid, hw):
        self.charger = charger
        self.id = cid
        self.hw = hw
        self.tx = None            # the running Transaction
        self.pending = None       # authorized, waiting for the cable: (id_tag, parent, reservation_id)
        self._pending_token = 0
        self.reservation = None   # set by a reservation feature: object with id_tag, parent, id
        self.faults = {}          # active error code -> info text
        self.operative = True
        self.scheduled = None     # availability to apply when the transaction ends (True/False)
        self.finishing = False    # a transaction ended while the cable is still in
        self.suspended_evse = False   # energy withheld by the EVSE (e.g. back-end refused the id)
        self.limit_a = None       # smart-charging current limit (None: no limit)
        self.status = None
        self.error = st.NO_ERROR
        self.info = None
        if hw is not None:
            hw.pilot.on_change(self._on_pilot)
            hw.on_fault(self._on_fault)

    # -- inputs ---------------------------------------------------------------------------------

    def pilot(self):
        return "A" if self.hw is None else self.hw.pilot.state()

    def plugged(self):
        return self.pilot() in _PLUGGED

    def occupied(self):
        # A cable in the socket counts even when the EV end is unplugged.
        if self.hw is None:
            return False
        return self.plugged() or (not self.hw.lock.fixed_cable and self.hw.cable())

    def fatal_error(self):
        # The fault that keeps this connector from delivering energy, or None.
        for code in self.faults:
            if code in st.FATAL:
                return code
        p = self.pilot()
        if p == "E":
            return "EVCommunicationError"
        if p == "F":
            return "OtherError"
        if self.id:
            return self.charger.connectors[0].fatal_error()
        return None

    def error_code(self):
        f = self.fatal_error()
        if f:
            return f
        for code in self.faults:
            return code
        if self.id:
            for code in self.charger.connectors[0].faults:
                return code
        return st.NO_ERROR

    def _on_pilot(self, state):
        if log.level <= log.DEBUG:   # not the two strings at every pilot change otherwise
            log.debug("conn%d" % self.id, "pilot %s" % state)
        ch = self.charger
        if state == "A":
            if self.tx is not None and ch.stop_on_ev_disconnect:
                ch.stop(self, "EVDisconnected")
            self.finishing = self.tx is None and self.occupied()
        elif state in _PLUGGED:
            if self.tx is None and self.pending is not None and not self.fatal_error():
                ch.begin(self)
        elif self.tx is not None:  # E or F: the pilot reports an error
            ch.stop(self, "Other")
        self.update_power()
        self.refresh()

    def _on_fault(self, code, active):
        self.set_fault(code, active)

    def set_fault(self, code, active, info=None):
        if active:
            self.faults[code] = info
        else:
            self.faults.pop(code, None)
        log.warn("conn%d" % self.id, "fault %s %s" % (code, "on" if active else "cleared"))
        targets = self.charger.connectors[1:] if self.id == 0 else (self,)
        for c in targets:
            if active and c.tx is not None and c.fatal_error():
                self.charger.stop(c, "Other")
            c.update_power()
        self.charger.refresh_all()

    # -- outputs --------------------------------------------------------------------------------

    def offered_amps(self):
        # Current the EVSE advertises to the EV now (0: no EV, or energy withheld).
        if self.pilot() not in _PLUGGED:
            return 0
        return self.evse_amps()

    def evse_amps(self):
        # Current the EVSE is willing to deliver during the transaction (0: it withholds energy).
        if self.hw is None or self.tx is None or self.suspended_evse or self.fatal_error():
            return 0
        amps = self.charger.max_current_a
        if self.limit_a is not None and self.limit_a < amps:
            amps = self.limit_a
        return amps if amps >= 6 or self.charger.dc else 0  # IEC 61851: below 6 A AC means pause

    def update_power(self):
        # Drive PWM and contactor from the state; close the relay only while the EV asks (state C/D).
        hw = self.hw
        if hw is None:
            return
        amps = self.offered_amps()
        hw.pilot.offer(amps)
        want = amps > 0 and self.pilot() in _DRAWING
        if hw.relay.state() != want:
            hw.relay.set(want)
            if hw.relay.state() != want:
                self.faults["PowerSwitchFailure"] = "relay feedback stuck " + ("open" if want else "closed")
                log.error("conn%d" % self.id, "relay does not follow (%s)" % want)
                hw.relay.set(False)
                if self.tx is not None:
                    self.charger.stop(self, "Other")

    # -- status ---------------------------------------------------------------------------------

    def compute_status(self):
        if self.id == 0:
            if self.fatal_error():
                return st.FAULTED
            return st.AVAILABLE if self.operative else st.UNAVAILABLE
        if self.fatal_error():
            return st.FAULTED
        if self.tx is not None:
            if self.evse_amps() <= 0:
                return st.SUSPENDED_EVSE
            return st.CHARGING if self.pilot() in _DRAWING else st.SUSPENDED_EV
        if not self.operative or not self.charger.connectors[0].operative:
            return st.UNAVAILABLE
        if self.finishing and self.occupied():
            return st.FINISHING
        if self.reservation is not None and self.pending is None:   # the holder came: Preparing
            return st.RESERVED
        if self.plugged() or self.pending is not None:
            return st.PREPARING
        return st.AVAILABLE

    def refresh(self):
        # Recompute the status and publish it when it (or the error code) changed.
        s = self.compute_status()
        e = self.error_code()
        if s == self.status and e == self.error:
            return
        self.status = s
        self.error = e
        self.info = self.faults.get(e) if e != st.NO_ERROR else None
        # No log line: the event is the record (the console shows it; the harness writes it to the
        # fleet log). A line as well doubled what every charger of a fleet writes per change.
        bus.emit("status", {"conn": self.id, "status": s, "error": e, "info": self.info})
        if self.id == 1 or (self.id == 0 and len(self.charger.connectors) == 1):
            self.charger.show_led()

    # -- pending authorization (identification first) -------------------------------------------

    def set_pending(self, id_tag, parent, reservation_id, timeout_s):
        import asyncio

        self.pending = (id_tag, parent, reservation_id)
        self._pending_token += 1
        asyncio.create_task(self._expire(self._pending_token, timeout_s))
        self.refresh()

    def clear_pending(self):
        self.pending = None
        self._pending_token += 1

    async def _expire(self, token, timeout_s):
        import asyncio

        await asyncio.sleep(timeout_s)
        if token == self._pending_token and self.pending is not None and self.tx is None:
            log.info("conn%d" % self.id, "no cable within ConnectionTimeOut (%ds)" % timeout_s)
            self.pending = None
            self.refresh()
