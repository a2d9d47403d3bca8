# The emulated EV: a battery with a state of charge, a power limit and a charging curve that tapers
# near full, answering the EVSE's pilot like a real car (B when plugged, C when it wants energy).
from micropython import const

_TAPER_FLOOR = const(5)  # % of max power still drawn just below the target SoC


class Ev:
    def __init__(self, capacity_wh=60000, soc=20.0, max_power_w=11000, target_soc=100.0,
                 taper_soc=80.0, phases=3, battery_v=400.0):
        self.capacity_wh = capacity_wh
        self.soc = float(soc)
        self.max_power_w = max_power_w
        self.target_soc = float(target_soc)
        self.taper_soc = float(taper_soc)
        self.phases = phases          # phases the on-board charger uses (AC)
        self.battery_v = battery_v    # pack voltage (DC)
        self.paused = False           # the driver/car asked to stop drawing (e.g. climate only)

    def set(self, **kw):
        # Change parameters from the console; unknown names are a ValueError, nothing changes.
        for k in kw:
            if not hasattr(self, k) or k.startswith("_"):
                raise ValueError("unknown EV parameter %r" % k)
        for k, v in kw.items():
            setattr(self, k, type(getattr(self, k))(v))

    def full(self):
        return self.soc >= self.target_soc - 0.001

    def wants_energy(self):
        return not self.paused and not self.full()

    def demand_w(self):
        # Power the car asks for at its present SoC: flat, then a linear taper to the target.
        # (wants_energy() written out: the meter asks at every integration step)
        soc = self.soc
        target = self.target_soc
        if self.paused or soc >= target - 0.001:
            return 0.0
        if soc <= self.taper_soc or target <= self.taper_soc:
            return float(self.max_power_w)
        frac = (target - soc) / (target - self.taper_soc)
        floor = _TAPER_FLOOR / 100
        return self.max_power_w * (floor + (1 - floor) * frac)

    def absorb(self, wh):
        self.soc = min(100.0, self.soc + wh * 100.0 / self.capacity_wh)

    def info(self):
        return {"soc": round(self.soc, 2), "capacity_wh": self.capacity_wh, "max_power_w": self.max_power_w,
                "target_soc": self.target_soc, "phases": self.phases, "paused": self.paused}
