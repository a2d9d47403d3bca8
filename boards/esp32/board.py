# ESP32 board: the same HAL as boards/unix, mapped to real GPIO, ADC, PWM and UARTs. Pin numbers
# and polarity are board data (PINS below, overridable from /config.json "pins"); the charger logic
# above the HAL is the very same firmware that runs in the emulator.
import time
import asyncio
import machine
from machine import Pin, PWM, ADC, UART, Signal
from micropython import const
import log
from hal.pilot import Pilot
from hal.clock import Clock
from hal.meter import Reading
import store.kv

store.kv.flush_writes = True   # littlefs keeps writes to an open file cached until flushed

# Default wiring of one connector (an EVSE controller board with CP drive/sense, contactor with
# auxiliary contact, cable-lock motor with position switch, PP detect, RCD trip input).
PINS = {
    "cp_pwm": 25, "cp_adc": 34, "pp": 35, "relay": 26, "relay_fb": 27, "relay_active_low": False,
    "lock_a": 32, "lock_b": 33, "lock_fb": 39, "rcd": 36, "overtemp": 13,
    "led": 2, "rfid_uart": 2, "rfid_rx": 16, "meter_uart": 1, "meter_tx": 17, "meter_rx": 5,
}
_CP_FREQ = const(1000)          # IEC 61851 PWM frequency
_POLL_MS = const(50)            # pilot ADC sampling period
_METER_MS = const(2000)         # Modbus meter polling period
_EPOCH_2000 = const(946684800)  # ports whose time() counts from 2000


def _unix_time():
    # Seconds since 1970 whatever the port's epoch.
    t = time.time()
    return t + _EPOCH_2000 if time.gmtime(0)[0] == 2000 else t


class CpSense:
    # The CP voltage seen through the board's divider, as a pin-like object with irq(): the ADC
    # cannot interrupt, so Board.watch() samples it and calls the handler on a change of plateau.
    def __init__(self, adc_pin, scale=0.0063, offset=-12.6):
        self.adc = ADC(Pin(adc_pin))
        self.adc.atten(ADC.ATTN_11DB)
        self.scale = scale      # volts per ADC count, from calibration
        self.offset = offset
        self._irq = None
        self._last = None

    def value(self):
        # Peak of a few samples: the PWM high level is what names the state.
        peak = max(self.adc.read() for _ in range(8))
        return peak * self.scale + self.offset

    def irq(self, handler=None, trigger=None):
        self._irq = handler

    def poll(self):
        v = round(self.value())
        if v != self._last:
            self._last = v
            if self._irq is not None:
                self._irq(self)


class CpPwm:
    def __init__(self, pin):
        self.pwm = PWM(Pin(pin), freq=_CP_FREQ, duty_u16=65535)
        self._duty = 100

    def duty(self, d=None):
        if d is None:
            return self._duty
        self._duty = d
        self.pwm.duty_u16(65535 * d // 100)


class Relay:
    def __init__(self, pin, fb_pin, active_low):
        self._signal = Signal(Pin(pin, Pin.OUT, value=1 if active_low else 0), invert=active_low)
        self._fb = Pin(fb_pin, Pin.IN, Pin.PULL_UP)

    def set(self, on):
        self._signal.value(1 if on else 0)
        time.sleep_ms(30)   # contactor closing time before the auxiliary contact is read

    def state(self):
        return self._fb.value() == 0   # auxiliary contact to ground when closed


class Lock:
    def __init__(self, a, b, fb, fixed_cable):
        self.fixed_cable = fixed_cable
        self._a = Pin(a, Pin.OUT, value=0)
        self._b = Pin(b, Pin.OUT, value=0)
        self._fb = Pin(fb, Pin.IN)

    def _drive(self, forward):
        self._a.value(1 if forward else 0)
        self._b.value(0 if forward else 1)
        time.sleep_ms(300)   # actuator travel
        self._a.value(0)
        self._b.value(0)

    def lock(self):
        self._drive(True)
        return self.locked()

    def unlock(self):
        self._drive(False)
        return not self.locked()

    def locked(self):
        return self._fb.value() == 1


class ModbusMeter:
    # An energy meter on RS-485 (Modbus RTU, e.g. an SDM-class meter): polled by watch(), read()
    # returns the last values so the charger never waits on the bus.
    def __init__(self, uart, address=1, phases=3):
        self.uart = uart
        self.address = address
        self.phases = phases
        self._r = Reading(0, 0.0, 0.0, 230.0, None, 25.0, phases)
        self._ok = False

    def ok(self):
        return self._ok

    def read(self):
        return self._r

    def poll(self):
        try:
            regs = self._read_input(0x0000, 2)           # L1 voltage (float32)
            v = _f32(regs)
            regs = self._read_input(0x0006, 2)           # L1 current
            i = _f32(regs)
            regs = self._read_input(0x0034, 2)           # total power, W
            p = _f32(regs)
            regs = self._read_input(0x0156, 2)           # total import energy, kWh
            e = _f32(regs)
        except OSError as err:
            self._ok = False
            log.warn("meter", "no answer: %s" % err)
            return
        self._ok = True
        self._r = Reading(int(e * 1000), p, i, v, None, 25.0, self.phases)

    def _read_input(self, reg, count):
        req = bytes((self.address, 4, reg >> 8, reg & 0xFF, 0, count))
        crc = _crc16(req)
        self.uart.read()   # drop anything stale
        self.uart.write(req + bytes((crc & 0xFF, crc >> 8)))
        time.sleep_ms(30)
        resp = self.uart.read(5 + 2 * count)
        if not resp or len(resp) < 5 + 2 * count or _crc16(resp[:-2]) != resp[-2] | resp[-1] << 8:
            raise OSError("bad Modbus answer")
        return resp[3:3 + 2 * count]


def _crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _f32(b):
    import struct

    return struct.unpack(">f", b)[0]


class Rfid:
    # A 125 kHz reader on a UART (frames: STX, 10 hex digits, 2 checksum digits, ETX).
    def __init__(self, uart):
        self.uart = uart
        self._cb = None
        self._buf = b""

    def on_card(self, cb):
        self._cb = cb

    def poll(self):
        data = self.uart.read()
        if not data:
            return
        self._buf = (self._buf + data)[-64:]
        start = self._buf.find(b"\x02")
        end = self._buf.find(b"\x03", start + 1)
        if start < 0 or end < 0:
            return
        frame = self._buf[start + 1:end]
        self._buf = self._buf[end + 1:]
        if len(frame) == 12 and self._cb is not None:
            self._cb(frame[:10].decode(), None)


class Led:
    def __init__(self, pin):
        self._pin = Pin(pin, Pin.OUT)
        self.state = "off"

    def set(self, state):
        self.state = state
        self._pin.value(0 if state in ("off", "available") else 1)


class ConnectorHw:
    def __init__(self, pins, cfg):
        self._cp = CpSense(pins["cp_adc"])
        self.pilot = Pilot(self._cp, CpPwm(pins["cp_pwm"]))
        self.relay = Relay(pins["relay"], pins["relay_fb"], pins["relay_active_low"])
        self.lock = Lock(pins["lock_a"], pins["lock_b"], pins["lock_fb"], cfg.get("fixed_cable", False))
        self._pp = Pin(pins["pp"], Pin.IN)
        uart = UART(pins["meter_uart"], 9600, tx=pins["meter_tx"], rx=pins["meter_rx"], timeout=50)
        self.meter = ModbusMeter(uart, 1, cfg.get("phases", 3))
        self._fault_cb = None
        self._lines = {"GroundFailure": Pin(pins["rcd"], Pin.IN), "HighTemperature": Pin(pins["overtemp"], Pin.IN)}
        for code, pin in self._lines.items():
            pin.irq(lambda p, c=code: self._fault(c, p.value() == 1), Pin.IRQ_RISING | Pin.IRQ_FALLING)

    def cable(self):
        return self.lock.fixed_cable or self._pp.value() == 1

    def ev_info(self):
        return None   # an AC EVSE without ISO 15118 learns nothing about the battery

    def on_fault(self, cb):
        self._fault_cb = cb

    def _fault(self, code, active):
        if self._fault_cb is not None:
            micropython_schedule(self._fault_cb, (code, active))


def micropython_schedule(fn, args):
    # Pin IRQs may run in interrupt context: hand the work to the scheduler.
    import micropython

    micropython.schedule(lambda a: fn(*a), args)


class Board:
    name = "esp32"
    sim = None   # real hardware: nothing to emulate

    def __init__(self, cfg):
        pins = dict(PINS)
        pins.update(cfg.get("pins") or {})
        self.clock = Clock(_unix_time)
        self.led = Led(pins["led"])
        self.rfid = Rfid(UART(pins["rfid_uart"], 9600, rx=pins["rfid_rx"], timeout=0))
        if int(cfg.get("connectors", 1)) != 1:
            log.warn("board", "this board wires one connector; more need a PINS entry per connector")
        self.connectors = [ConnectorHw(pins, cfg)]
        self._fault_cb = None

    def on_fault(self, cb):
        self._fault_cb = cb

    async def watch(self):
        # Sample what cannot interrupt: the CP voltage, the RFID UART, the meter on its bus.
        meter_due = 0
        while True:
            for c in self.connectors:
                c._cp.poll()
            self.rfid.poll()
            meter_due -= _POLL_MS
            if meter_due <= 0:
                meter_due = _METER_MS
                for c in self.connectors:
                    c.meter.poll()
            await asyncio.sleep_ms(_POLL_MS)

    def reset(self, hard=False):
        log.info("board", "%s reset" % ("hard" if hard else "soft"))
        machine.reset() if hard else machine.soft_reset()


def make_board(cfg):
    # On the UART console 0x03 must reach the console task as a byte (see console.console.run).
    import micropython

    micropython.kbd_intr(-1)
    return Board(cfg)
