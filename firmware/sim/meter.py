# Emulated energy meter: integrates the power the EV really draws over real elapsed time, in
# steps short enough to follow the tapering curve, and keeps the register as int Wh.
import time
import random
from micropython import const
from hal.meter import Reading

_STEP_MS = const(5000)     # integration step: the curve changes little within 5 s
_AMBIENT_C = const(25)


class SimMeter:
    def __init__(self, voltage_v=230.0, phases=3, dc=False, energy_wh=0):
        self.voltage_v = voltage_v
        self.phases = 1 if dc else phases
        self.dc = dc
        self.energy_wh = int(energy_wh)
        self._frac_wh = 0.0
        self.power_w = 0.0
        self.failed = False
        self._last = time.ticks_ms()
        self.ev = None
        self.drawing = lambda: False   # set by the board: relay closed and pilot in C/D
        self.cap_w = lambda: 0.0       # set by the board: what the EVSE offers, in W

    def update(self):
        # Bring energy and SoC up to now; returns the present power in W. Relay, pilot and offer
        # stand still between updates (whatever changes them updates first), so they are read
        # once; only the EV's demand follows its SoC from step to step.
        now = time.ticks_ms()
        left = time.ticks_diff(now, self._last)
        self._last = now
        ev = self.ev
        if ev is None or not self.drawing():
            self.power_w = 0.0
            return 0.0
        cap = self.cap_w()
        while left > 0:
            step = min(left, _STEP_MS)
            wh = min(ev.demand_w(), cap) * step / 3600000.0
            self._frac_wh += wh
            whole = int(self._frac_wh)
            self.energy_wh += whole
            self._frac_wh -= whole
            if wh:
                ev.absorb(wh)
            left -= step
        self.power_w = min(ev.demand_w(), cap)
        return self.power_w

    def ms_until_full(self):
        # Time until the EV reaches its target at the present power (None if it is not charging).
        p = self.power_w
        if self.ev is None or p <= 0:
            return None
        left_wh = (self.ev.target_soc - self.ev.soc) * self.ev.capacity_wh / 100.0
        # The taper makes this an underestimate, so the caller simply checks again.
        return max(1000, int(left_wh * 3600000.0 / p))

    def ok(self):
        return not self.failed

    def read(self):
        p = self.update()
        v = self.voltage_v
        if self.dc and self.ev is not None:
            v = self.ev.battery_v
        if p > 0:
            v = v * (1 + (random.getrandbits(8) - 128) / 25600)  # ±0.5 % supply ripple
        i = p / (v * self.phases) if v else 0.0
        soc = None if self.ev is None else self.ev.soc
        temp = _AMBIENT_C + 0.02 * i * i  # contacts warm with I²
        return Reading(self.energy_wh, p, i, v, soc, temp, self.phases)
