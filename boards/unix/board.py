# Unix (emulator) board: every input and output is a machine.PinBase pin driven from the console,
# with an emulated EV and energy meter behind the pilot, relay and meter, so the firmware above
# the HAL runs exactly as on hardware.
import sys
import asyncio
from timedevent import TimedEvent
import machine
from micropython import const
import log
import store.kv as kv
from store import slot
from hal.pilot import Pilot, VOLTS, amps_for_duty
from hal.clock import Clock
from sim.ev import Ev
from sim.meter import SimMeter

EXIT_REBOOT = const(99)   # the launcher restarts an instance that exits with this code

# Hardware fault lines per connector, named after the error code they raise.
FAULT_LINES = ("ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
               "InternalError", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
               "PowerSwitchFailure", "UnderVoltage", "LocalListConflict", "ReaderFailure",
               "ResetFailure", "WeakSignal")


class SimPin(machine.PinBase):
    # An emulated GPIO: value() reads or drives it; a change calls the IRQ handler like an edge.
    def __init__(self, name, value=0):
        self.name = name
        self._v = value
        self._irq = None

    def value(self, v=None):
        if v is None:
            return self._v
        if v != self._v:
            self._v = v
            if self._irq is not None:
                self._irq(self)

    def irq(self, handler=None, trigger=None):
        self._irq = handler


class SimPwm:
    # The EVSE's CP PWM generator; the emulated EV watches the duty it advertises.
    def __init__(self, watcher):
        self._duty = 100
        self._watcher = watcher

    def duty(self, d=None):
        if d is None:
            return self._duty
        if d != self._duty:
            self._duty = d
            self._watcher()


class Relay:
    # Contactor: coil through a Signal (polarity is board data), auxiliary contact as feedback.
    def __init__(self, n, invert, before_change):
        self.coil = SimPin("relay%d" % n)
        self.feedback = SimPin("relay%d_fb" % n)
        self._signal = machine.Signal(self.coil, invert=invert)
        self._before = before_change
        self.welded = False

    def set(self, on):
        self._before()
        self._signal.value(1 if on else 0)
        if not self.welded:
            self.feedback.value(1 if on else 0)

    def state(self):
        return bool(self.feedback.value())


class Lock:
    # Cable lock actuator with a position switch; a jammed lock leaves the switch where it was.
    def __init__(self, n, fixed_cable):
        self.fixed_cable = fixed_cable
        self.motor = SimPin("lock%d" % n)
        self.switch = SimPin("lock%d_fb" % n)
        self.jammed = False

    def lock(self):
        self.motor.value(1)
        if not self.jammed:
            self.switch.value(1)
        return self.switch.value() == 1

    def unlock(self):
        self.motor.value(0)
        if not self.jammed:
            self.switch.value(0)
        return self.switch.value() == 0

    def locked(self):
        return self.switch.value() == 1


class Rfid:
    def __init__(self):
        self._cb = None
        self.failed = False

    def on_card(self, cb):
        self._cb = cb

    def present(self, uid, conn=None):
        if self.failed:
            raise ValueError("RFID reader failure: the card was not read")
        if self._cb is None:
            raise ValueError("nothing listens to the reader yet")
        self._cb(uid, conn)


class Led:
    def __init__(self):
        self.state = "off"

    def set(self, state):
        self.state = state


class ConnectorHw:
    # One connector's hardware plus the emulated world behind it (cable, EV, meter register).
    def __init__(self, n, cfg):
        self.n = n
        self.dc = cfg.get("type", "AC") == "DC"
        phases = cfg.get("phases", 3)
        self.cp = SimPin("cp%d" % n, VOLTS["A"])
        self.pp = SimPin("pp%d" % n, 0)            # proximity: cable in the socket
        self.pwm = SimPwm(self._evse_changed)
        self.pilot = Pilot(self.cp, self.pwm)
        self.meter = SimMeter(cfg.get("voltage", 230), phases, self.dc)
        self.relay = Relay(n, cfg.get("relay_active_low", False), self.meter.update)
        self.lock = Lock(n, cfg.get("fixed_cable", False))
        self.fault_pins = {}
        self._fault_cb = None
        self.ev = None
        self.ev_defaults = cfg.get("ev") or {}
        self.pilot_override = None
        self.meter.drawing = lambda: self.relay.state() and self.cp.value() in (VOLTS["C"], VOLTS["D"])
        self.meter.cap_w = self._cap_w
        self._world = slot.Slot("/hw/conn%d.slot" % n)
        self.wake = None

    def cable(self):
        return self.lock.fixed_cable or self.pp.value() == 1

    def ev_info(self):
        # What the EV's BMS tells the charger (DC: over CAN; AC: only what ISO 15118 would): None
        # when no EV is connected.
        ev = self.ev
        if ev is None:
            return None
        return {"soc": ev.soc, "target_soc": ev.target_soc, "capacity_wh": ev.capacity_wh,
                "battery_v": ev.battery_v, "max_power_w": ev.max_power_w, "demand_w": ev.demand_w(),
                "phases": ev.phases, "full": ev.full()}

    def on_fault(self, cb):
        self._fault_cb = cb

    def _cap_w(self):
        amps = amps_for_duty(self.pwm.duty())
        if self.dc:
            return amps * (self.ev.battery_v if self.ev else 400)
        phases = min(self.meter.phases, self.ev.phases if self.ev else 3)
        return amps * self.meter.voltage_v * phases

    # -- the emulated world ------------------------------------------------------------------

    def _evse_changed(self):
        self.meter.update()
        self._ev_pilot()

    def _ev_pilot(self):
        # The EV's answer on the CP line: A unplugged, B plugged, C asking for energy.
        if self.pilot_override:
            v = VOLTS[self.pilot_override]
        elif self.ev is None:
            v = VOLTS["A"]
        elif amps_for_duty(self.pwm.duty()) > 0 and self.ev.wants_energy():
            v = VOLTS["C"]
        else:
            v = VOLTS["B"]
        if v != self.cp.value():
            self.meter.update()
            self.cp.value(v)
        if self.wake is not None:
            self.wake.set()

    def plug(self, **ev_params):
        if self.ev is not None:
            raise ValueError("connector %d already has an EV plugged in" % self.n)
        params = dict(self.ev_defaults)
        params.update(ev_params)
        try:
            ev = Ev(**params)
        except TypeError as e:
            raise ValueError("bad EV parameters: %s" % e)
        self.pp.value(1)
        self.ev = ev
        self.meter.ev = ev
        self.save_world()
        self._ev_pilot()

    def unplug(self, ev_only=False):
        if self.ev is None and (ev_only or not self.pp.value()):
            raise ValueError("connector %d has nothing plugged in" % self.n)
        self.meter.update()
        self.ev = None
        self.meter.ev = None
        if not ev_only:
            self.pp.value(0)
        self.save_world()
        self._ev_pilot()

    def set_ev(self, **params):
        if self.ev is None:
            raise ValueError("no EV on connector %d" % self.n)
        self.meter.update()
        self.ev.set(**params)
        self.save_world()
        self._ev_pilot()

    def fault(self, code, active):
        pin = self.fault_pins.get(code)
        if pin is None:
            pin = self.fault_pins[code] = SimPin("%s%d" % (code, self.n))
        # Some faults also change how the hardware behaves, not only the fault line.
        if code == "ConnectorLockFailure":
            self.lock.jammed = active
        elif code == "PowerSwitchFailure":
            self.relay.welded = active
        elif code == "PowerMeterFailure":
            self.meter.failed = active
        elif code == "EVCommunicationError":
            self.pilot_override = "E" if active else None
            self._ev_pilot()
        pin.value(1 if active else 0)
        if self._fault_cb is not None:
            self._fault_cb(code, active)

    # -- persistence of the world outside the charger (survives its reboots and power cuts) --

    def save_world(self):
        d = {"wh": self.meter.energy_wh, "cable": self.pp.value()}
        if self.ev is not None:
            d["ev"] = self.ev.info()
            d["ev"]["capacity_wh"] = self.ev.capacity_wh
        self._world.save(d)

    def load_world(self):
        d = slot.load(self._world.path)
        if not isinstance(d, dict):
            return
        self.meter.energy_wh = int(d.get("wh", 0))
        self.pp.value(1 if d.get("cable") else 0)
        ev = d.get("ev")
        if ev:
            self.ev = Ev(**{k: v for k, v in ev.items() if k != "paused"})
            self.meter.ev = self.ev
            self.cp.value(VOLTS["B"])


class MeterPersist:
    # A real meter keeps its register through power cuts; the emulated one writes it to flash
    # whenever it is read with a new value, so nothing ever reported is lost or goes backwards.
    def __init__(self, hw):
        self.hw = hw
        self._read = hw.meter.read
        self._saved = hw.meter.energy_wh
        hw.meter.read = self.read

    def read(self):
        r = self._read()
        if r.energy_wh != self._saved:
            self._saved = r.energy_wh
            self.hw.save_world()
        return r


class Sim:
    # Console-facing controls of the emulated world.
    def __init__(self, board):
        self.board = board

    def _conn(self, n):
        if not isinstance(n, int) or not 1 <= n <= len(self.board.connectors):
            raise ValueError("no connector %r (1..%d)" % (n, len(self.board.connectors)))
        return self.board.connectors[n - 1]

    def plug(self, n, **ev):
        self._conn(n).plug(**ev)

    def unplug(self, n, ev_only=False):
        self._conn(n).unplug(ev_only)

    def ev(self, n, **params):
        self._conn(n).set_ev(**params)

    def card(self, uid, n=None):
        if n is not None:
            self._conn(n)
        self.board.rfid.present(uid, n)

    def pilot(self, n, state):
        if state not in ("A", "B", "C", "D", "E", "F", None):
            raise ValueError("pilot state must be one of A B C D E F (or 'auto')")
        c = self._conn(n)
        c.pilot_override = state
        c._ev_pilot()

    def fault(self, n, code, active):
        if n == 0:
            self.board.fault(code, active)
        else:
            self._conn(n).fault(code, active)

    def jam_lock(self, n, jammed):
        # The lock mechanism sticks where it is; the firmware finds out when it next moves it.
        self._conn(n).lock.jammed = jammed

    def info(self, n):
        c = self._conn(n)
        return {"ev": None if c.ev is None else c.ev.info(), "cable": c.cable(), "duty": c.pwm.duty(),
                "cp_volts": c.cp.value(), "relay_coil": c.relay.coil.value(), "lock": c.lock.locked()}


class Board:
    name = "unix"

    def __init__(self, cfg):
        kv.ensure_dir("/hw")
        self.clock = Clock()
        self.led = Led()
        self.rfid = Rfid()
        n = int(cfg.get("connectors", 1))
        if not 1 <= n <= 4:
            raise ValueError("connectors must be 1..4, not %r" % n)
        self.connectors = [ConnectorHw(i + 1, cfg) for i in range(n)]
        for c in self.connectors:
            c.load_world()
            MeterPersist(c)
        self._fault_cb = None
        self.faults = {}
        self.sim = Sim(self)
        self._wake = TimedEvent()
        for c in self.connectors:
            c.wake = self._wake

    def on_fault(self, cb):
        # Charge-point level fault lines (connector 0).
        self._fault_cb = cb

    def fault(self, code, active):
        if code == "ReaderFailure":
            self.rfid.failed = active
        self.faults[code] = active
        if self._fault_cb is not None:
            self._fault_cb(code, active)

    async def watch(self):
        # Wake when an emulated EV becomes full, so it can stop drawing (SuspendedEV).
        while True:
            wait = None
            for c in self.connectors:
                c.meter.update()
                if c.ev is not None and c.ev.full() and c.cp.value() == VOLTS["C"]:
                    c._ev_pilot()
                ms = c.meter.ms_until_full()
                if ms is not None and (wait is None or ms < wait):
                    wait = ms
            self._wake.clear()
            await self._wake.wait_ms(wait)   # None: until an EV or the relay changes

    def reset(self, hard=False):
        log.info("board", "%s reset" % ("hard" if hard else "soft"))
        sys.exit(EXIT_REBOOT)


def make_board(cfg):
    return Board(cfg)
