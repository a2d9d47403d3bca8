# IEC 61851 control pilot: the CP line voltage the EV pulls down names the state (A–F).
from micropython import const

# Nominal positive CP voltages: A 12 V, B 9 V, C 6 V, D 3 V, E 0 V, F -12 V.
_TOLERANCE = const(1)


def state_from_volts(v):
    # Pilot state letter for a measured CP voltage (positive plateau; F is the negative rail).
    if v <= -12 + _TOLERANCE:
        return "F"
    for nominal, state in ((12, "A"), (9, "B"), (6, "C"), (3, "D"), (0, "E")):
        if nominal - _TOLERANCE <= v <= nominal + _TOLERANCE:
            return state
    return "E"  # anything else is an error on the CP line


VOLTS = {"A": 12, "B": 9, "C": 6, "D": 3, "E": 0, "F": -12}


def duty_for_amps(amps):
    # PWM duty (%) advertising a current limit, IEC 61851-1 Annex A: 6–51 A → A/0.6, above → A/2.5+64.
    if amps <= 0:
        return 100  # no PWM: steady +12 V / 9 V, charging not allowed
    if amps < 6:
        amps = 6
    if amps <= 51:
        return int(amps / 0.6 + 0.5)
    return min(96, int(amps / 2.5 + 64 + 0.5))


def amps_for_duty(duty):
    # Current limit an EV reads from a PWM duty (%), the inverse of duty_for_amps.
    if duty >= 97 or duty < 8:
        return 0
    if duty <= 85:
        return duty * 0.6
    return (duty - 64) * 2.5


class Pilot:
    # A CP input (anything with value() giving volts, and irq()) plus the EVSE's PWM output.

    def __init__(self, volts_pin, pwm):
        self._pin = volts_pin
        self._pwm = pwm
        self._cb = None
        self._last = self.state()
        volts_pin.irq(self._irq)

    def state(self):
        return state_from_volts(self._pin.value())

    def on_change(self, cb):
        self._cb = cb

    def offer(self, amps):
        # Advertise a current limit to the EV (0 stops the PWM: the EV must stop drawing).
        self._pwm.duty(duty_for_amps(amps))

    def offered(self):
        return amps_for_duty(self._pwm.duty())

    def _irq(self, pin):
        s = self.state()
        if s != self._last:
            self._last = s
            if self._cb:
                self._cb(s)
