# YKC real-time data: 0x13 per gun every 15 s while charging, every 5 min idle, at once on a status
# or plug change and on 0x12; the DC BMS frames around and during a session; the half-hour samples
# that keep each session's energy in the right price period.
import asyncio
from timedevent import TimedEvent
import time
from micropython import const
from charger import status as cst
from proto.ykc import bms
from proto.ykc import billing as B

_GUN_TEMP_OFS = const(50)
_BATT_TEMP = const(80)      # 30 °C + 50 (the emulated EV reports no battery temperature)

# Error code -> 0x13 hardware-fault bit (§4.8): the nearest of the platform's fixed list.
_FAULT_BITS = {"InternalError": 0x0002, "HighTemperature": 0x0004, "OverVoltage": 0x0008,
               "UnderVoltage": 0x0008, "GroundFailure": 0x0020, "PowerMeterFailure": 0x0040,
               "ReaderFailure": 0x0080, "OverCurrentFailure": 0x0400, "PowerSwitchFailure": 0x0800}


def fault_bits(c, cp):
    bits = 0
    for f in (c.faults, cp.faults):
        for code in f:
            bits |= _FAULT_BITS.get(code, 0)
    return bits


def gun_status(c):
    # 0 offline, 1 fault, 2 idle, 3 charging; a running session is never idle (§5 invariants).
    if c.status == cst.FAULTED:
        return 1
    return 3 if c.tx is not None else 2


class Realtime:
    def __init__(self, st, cfg):
        self.st = st
        self.ch = st.charger
        self.busy_ms = int(cfg.get("ykc_realtime_s", 15) * 1000)
        self.idle_ms = int(cfg.get("ykc_idle_s", 300) * 1000)
        self.stop_full = cfg.get("ykc_dc_stop_full", True)
        n = len(self.ch.connectors)
        self.last = [time.ticks_ms()] * n   # when each gun's last 0x13 went out
        self.dirty = 0                      # bit g: gun g needs a 0x13 now
        self.before = []                    # (type, fields) to send ahead of the 0x13s (session end)
        self.after = []                     # ... and after them (session start, periodic BMS)
        self.wake = TimedEvent()
        st.routes[0x12] = self.read
        st.on_model.append(lambda: self.mark(0))   # §5: every gun's 0x13 after the model check

    def mark(self, gun):
        # Gun 0 means every gun (the pile's own status changed, or a new login).
        self.dirty |= ((1 << len(self.ch.connectors)) - 2) if gun == 0 else (1 << gun)
        self.wake.set()

    def flush(self):
        # Send what is due, in protocol order; called by the task and after command replies.
        st = self.st
        if not st.registered:
            self.dirty = 0
            self.before = []
            self.after = []
            return
        frames = self.before
        self.before = []
        for typ, f in frames:
            st.send(typ, f)
        n = len(self.ch.connectors)
        while self.dirty:
            d = self.dirty
            self.dirty = 0
            for g in range(1, n):
                if d & (1 << g):
                    st.send(0x13, self.frame(g))
                    self.last[g] = time.ticks_ms()
        frames = self.after
        self.after = []
        for typ, f in frames:
            st.send(typ, f)

    def read(self, seq, f):
        # 0x12: the answer is a 0x13 that echoes the request's seq.
        g = f["gun"]
        if isinstance(g, int) and 1 <= g < len(self.ch.connectors):
            self.st.send(0x13, self.frame(g), seq)
            self.last[g] = time.ticks_ms()

    def frame(self, gun):
        # The 0x13 fields of a gun (§4.8).
        st = self.st
        ch = self.ch
        c = ch.connectors[gun]
        s = r = None
        if c.tx is not None:
            r = ch.meter(gun)
            s = st.trades.sample(gun, r)
        f = {"pile": st.pile, "gun": gun, "status": gun_status(c), "homed": 0 if c.occupied() else 1,
             "plugged": 1 if c.plugged() else 0, "faults": fault_bits(c, ch.connectors[0])}
        if s is None or c.tx is None:
            return f
        mins = (int(ch.clock.now()) - s["t0"]) // 60
        e, l, a = B.totals(s["bm"], s["e"])
        f.update({"trade": s["t"], "voltage": int(r.voltage_v * 10), "current": int(r.current_a * 10),
                  "gun_temp": min(255, max(0, int(r.temp_c) + _GUN_TEMP_OFS)), "minutes": mins, "energy": e,
                  "loss_energy": l, "amount": a})
        if ch.dc:
            info = c.hw.ev_info()
            if info:
                f["soc"] = int(info["soc"])
                f["batt_temp"] = _BATT_TEMP
                f["remaining"] = bms.remaining_min(info, r.power_w)
        return f

    # -- DC: the BMS frames ---------------------------------------------------------------------

    def _bms(self, typ, s, gun, data):
        return (typ, {"trade": s["t"], "pile": self.st.pile, "gun": gun, "data": data})

    def dc_start(self, gun):
        s = self.st.trades.sess.get(gun)
        info = self.ch.connectors[gun].hw.ev_info()
        if s is None or not info:
            return
        self.after.append(self._bms(0x15, s, gun, bms.handshake(info)))
        self.after.append(self._bms(0x17, s, gun, bms.params(info, self.ch.max_current_a)))

    def dc_stop(self, gun, s, tx, code):
        # BMS abort (0x1D) when the EV side ended it, else charger abort (0x21); then 0x19.
        info = self.ch.connectors[gun].hw.ev_info()
        if code == 0x41:
            self.before.append(self._bms(0x1D, s, gun, bms.abort(0x01)))
        elif code in (0x6B, 0x84):
            if code == 0x84:
                self.before.append(self._bms(0x1B, s, gun, bms.error()))
            self.before.append(self._bms(0x1D, s, gun, bms.abort(0, 0x40)))
        elif code in (0x40, 0x45):
            self.before.append(self._bms(0x21, s, gun, bms.abort(0x04)))
        elif 0x41 <= code <= 0x44 or code == 0x6E:
            self.before.append(self._bms(0x21, s, gun, bms.abort(0x01)))
        else:
            fault = 0x01 if code == 0x74 else (0x04 if code == 0x77 else 0x400)
            self.before.append(self._bms(0x21, s, gun, bms.abort(0x10, fault)))
        end = tx.stop_time if tx.stop_time is not None else tx.last_time
        wh = (tx.meter_stop if tx.meter_stop is not None else tx.last_meter) - tx.meter_start
        self.before.append(self._bms(0x19, s, gun, bms.end(info, (end - s["t0"]) // 60, wh)))
        self.wake.set()

    def _dc_tick(self, c, s):
        # Periodic 0x23/0x25; a full battery ends the session as its BMS would (BST, code 0x41).
        info = c.hw.ev_info()
        if not info:
            return
        if self.stop_full and info["full"]:
            self.st.trades.codes[c.id] = 0x41
            self.ch.stop(c, "Other")
            return
        r = self.ch.meter(c.id)
        mins = (int(self.ch.clock.now()) - s["t0"]) // 60
        self.after.append(self._bms(0x23, s, c.id, bms.demand(info, r, mins)))
        self.after.append(self._bms(0x25, s, c.id, bms.status(info)))

    # -- the task ------------------------------------------------------------------------------

    async def run(self):
        st = self.st
        ch = self.ch
        while True:
            now = time.ticks_ms()
            wait = 3600000
            busy = False
            for c in ch.connectors[1:]:
                if c.tx is None:
                    period = self.idle_ms
                else:
                    busy = True
                    period = self.busy_ms
                    st.trades.sample(c.id)   # also ends a session whose balance ran out
                if not st.registered:   # offline: keep sampling (flash checkpoints), send nothing
                    if c.tx is not None:
                        wait = min(wait, period)
                    continue
                left = time.ticks_diff(time.ticks_add(self.last[c.id], period), now)
                if left <= 0:
                    self.dirty |= 1 << c.id
                    s = st.trades.sess.get(c.id)
                    if ch.dc and c.tx is not None and s is not None:
                        self._dc_tick(c, s)
                    left = period
                wait = min(wait, left)
            if busy:   # sample on the half-hour boundary where the price period may change
                wait = min(wait, B.next_boundary(ch.clock.now(), st.tz) * 1000 + 20)
            self.flush()
            if self.before or self.after or self.dirty:
                continue       # a session ended while flushing: its frames go now
            self.wake.clear()
            await self.wake.wait_ms(max(1, wait))
