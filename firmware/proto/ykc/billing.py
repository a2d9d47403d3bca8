# YKC time-of-use billing: the model from 0x0A/0x58 (kept on flash), local time for the half-hour
# slots and CP56Time2a, and the cost of a session's energy per price period (ykc-protocol.md §4.6).
# Units stay the wire's, all ints: energy 0.0001 kWh, prices 0.00001 yuan/kWh, amounts 0.0001 yuan.
from micropython import const
import store.kv as kv
from hal.clock import civil, parse_iso

PATH = "/ykc/billing.json"
_SLOT_S = const(1800)
_DAY_S = const(86400)
_DIV = const(100000)   # 0.0001 kWh x 0.00001 yuan/kWh = 1e-9 yuan; amounts are 1e-4 yuan


def valid(m):
    # A stored or received model: {"id": 4 digits, "p": 8 prices, "loss": 0..255, "slots": 48 codes 0-3}.
    try:
        s = m["slots"]
        if len(m["id"]) != 4 or len(m["p"]) != 8 or len(s) != 48 or not 0 <= m["loss"] <= 255:
            return False
        for ch in s:
            if ch not in "0123":
                return False
        for p in m["p"]:
            if not 0 <= p < 0x100000000:
                return False
        return True
    except (KeyError, TypeError, ValueError):
        return False


class Billing:
    def __init__(self, path=PATH):
        self.path = path
        m = kv.load(path)
        self.m = m if valid(m) else None

    def ready(self):
        # Without a model the pile must not charge (§3, 0x09).
        return self.m is not None

    def model_id(self):
        # Echoed in 0x05; 0000 before the first model (§4.4).
        return self.m["id"] if self.m else "0000"

    def set(self, f):
        # Adopt the body of a 0x0A/0x58; False (nothing changed) when it is not a usable model.
        # The id is opaque BCD: stored as received and echoed (reference Decisions table).
        p = []
        for k in range(4):
            p.append(f["elec%d" % k])
            p.append(f["svc%d" % k])
        m = {"id": f["model"], "p": p, "loss": f["loss"], "slots": f["slots"]}
        if not valid(m):
            return False
        self.m = m
        kv.save(self.path, m)
        return True


# -- time: the platform works in local (China) time with no zone field; tz is minutes east of UTC --


def cp56(epoch, tz):
    # (y, mo, d, h, mi, s, ms) local time of a UTC epoch, as codec.cp56_enc wants it.
    t = epoch + tz * 60
    y, mo, d, h, mi, s = civil(t)
    return (y, mo, d, h, mi, s, int((t - int(t)) * 1000) % 1000)


def epoch_of(t, tz):
    # UTC epoch of a decoded CP56Time2a local time; ValueError for an impossible date.
    if not (1 <= t[1] <= 12 and 1 <= t[2] <= 31 and t[3] < 24 and t[4] < 60 and t[5] < 60):
        raise ValueError("bad CP56Time2a %r" % (t,))
    e = parse_iso("%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5]))
    return e + t[6] / 1000 - tz * 60


def slot(epoch, tz):
    # Half-hour slot (0..47) of the local day.
    return int(epoch + tz * 60) % _DAY_S // _SLOT_S


def next_boundary(epoch, tz):
    # Seconds until the next local half-hour boundary (where the price period may change).
    return _SLOT_S - int(epoch + tz * 60) % _SLOT_S


# -- cost of a session (m is the model the session started with) --------------------------------


def code_at(m, epoch, tz):
    # Price period (0 sharp, 1 peak, 2 flat, 3 valley) in force at a time.
    return ord(m["slots"][slot(epoch, tz)]) - 48


def unit_price(m, k):
    # Energy + service price of period k (0x3B carries the sum).
    return m["p"][2 * k] + m["p"][2 * k + 1]


def loss(m, e):
    # "Loss" energy: the loss ratio byte read as a percentage added to the energy (0 = none).
    r = m["loss"]
    return e + e * r // 100 if r else e


def amount(m, k, e):
    # Amount of e (0.0001 kWh) in period k, rounded half up to 0.0001 yuan.
    return (loss(m, e) * unit_price(m, k) + _DIV // 2) // _DIV


def totals(m, e):
    # (energy, loss energy, amount) of per-period energies e[0..3]: the total amount is the sum of
    # the rounded period amounts, so the record adds up exactly.
    te = tl = ta = 0
    for k in range(4):
        te += e[k]
        tl += loss(m, e[k])
        ta += amount(m, k, e[k])
    return te, tl, ta
