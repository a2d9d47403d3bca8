# Smart-charging limit maths: which charging profile prevails at a moment, the current it allows,
# when that may change next, and the composite schedule over a span. Pure: no clock, no I/O, no
# protocol messages. Times are int epoch seconds passed in (a single-precision float cannot hold
# an epoch on an ESP32); limits are floats in A (per phase) or W as the profile says.
from micropython import const

# Purposes (OCPP 1.6 §3.13.2 names them ChargePointMaxProfile, TxDefaultProfile, TxProfile).
CP_MAX = const(0)       # caps the whole charge point; lives on connector 0
TX_DEFAULT = const(1)   # the limit of any transaction unless a TX profile says something
TX = const(2)           # the limit of one transaction, bound to it

# Kinds: an absolute schedule starts at `start`; a recurring one at `start` and every day/week
# after; a relative one at an origin the caller gives (the transaction's start).
ABSOLUTE = const(0)
DAILY = const(1)
WEEKLY = const(2)
RELATIVE = const(3)

_DAY = const(86400)
_WEEK = const(604800)


class Profile:
    # periods: [(start offset s, limit, phases or 0)] sorted by offset, offsets distinct.
    # duration None or 0: the last period goes on (for a recurring one: until the next occurrence).
    # tx: the transaction a TX profile is bound to (the caller's reference), else None.
    def __init__(self, pid, conn, purpose, level, kind, periods, unit_w=False, start=None,
                 duration=None, valid_from=None, valid_to=None, tx=None):
        self.id = pid
        self.conn = conn
        self.purpose = purpose
        self.level = level
        self.kind = kind
        self.periods = periods
        self.unit_w = unit_w
        self.start = start
        self.duration = duration
        self.valid_from = valid_from
        self.valid_to = valid_to
        self.tx = tx

    def to_list(self):
        return [self.id, self.conn, self.purpose, self.level, self.kind, self.periods, self.unit_w,
                self.start, self.duration, self.valid_from, self.valid_to, self.tx]

    @staticmethod
    def from_list(a):
        return Profile(*a)


def _cycle(kind):
    return _DAY if kind == DAILY else _WEEK if kind == WEEKLY else 0


def _base(p, t, origin):
    # Start of the schedule occurrence that covers t (later than t when none has begun yet).
    k = p.kind
    if k == RELATIVE or p.start is None:
        return t if origin is None else origin
    if k == ABSOLUTE or t < p.start:
        return p.start
    cycle = _cycle(k)
    return p.start + (t - p.start) // cycle * cycle


def _span(p):
    # Length of one occurrence in s; None when open-ended.
    cycle = _cycle(p.kind)
    d = p.duration
    if cycle:
        return cycle if not d or d > cycle else d
    return d or None


def at(p, t, origin=None):
    # (limit, phases) that p sets at t, or None when p says nothing then: outside validFrom/validTo,
    # before its schedule starts, after its duration, or before its first period.
    if p.valid_from is not None and t < p.valid_from:
        return None
    if p.valid_to is not None and t >= p.valid_to:
        return None
    off = t - _base(p, t, origin)
    span = _span(p)
    if off < 0 or (span is not None and off >= span):
        return None
    found = None
    for per in p.periods:
        if per[0] > off:
            break
        found = per
    return None if found is None else (found[1], found[2])


def edge(p, t, origin=None):
    # First moment after t at which what p says may change; None if never. A relative profile
    # without an origin has no time base yet (no transaction), so it has no edges.
    best = None
    for x in (p.valid_from, p.valid_to):
        if x is not None and x > t and (best is None or x < best):
            best = x
    if p.kind == RELATIVE and origin is None:
        return best
    s = _base(p, t, origin)
    cand = [s + per[0] for per in p.periods]
    span = _span(p)
    if span is not None:
        cand.append(s + span)
    cycle = _cycle(p.kind)
    if cycle:
        cand.append(s + cycle)
        cand.append(s + cycle + p.periods[0][0])
    for x in cand:
        if x > t and (best is None or x < best):
            best = x
    return best


def _relevant(p, conn):
    # CP_MAX profiles concern every connector; TX and TX_DEFAULT ones their own connector, and
    # TX_DEFAULT ones set on connector 0 every connector (but not connector 0 itself).
    if p.purpose == CP_MAX:
        return True
    return conn != 0 and (p.conn == conn or p.conn == 0)


def prevailing(profiles, purpose, conn, t, origin=None):
    # (profile, (limit, phases)) of the purpose that prevails at t for a connector: the highest
    # stackLevel among the profiles that say something then; at equal levels one set on the
    # connector itself beats one set on connector 0. None when no profile of the purpose applies.
    best = None
    rank = -1
    for p in profiles:
        if p.purpose != purpose or not _relevant(p, conn):
            continue
        v = at(p, t, origin)
        if v is None:
            continue
        r = p.level * 2 + (1 if p.conn == conn else 0)
        if r > rank:
            best = (p, v)
            rank = r
    return best


def to_amps(value, unit_w, phases, volts, conn_phases):
    # (A per phase, phases) for a period's limit: a W limit spreads over the phases the period
    # names (at most the connector's); an A limit keeps the phases it names (0 → None).
    if not unit_w:
        return float(value), phases or None
    n = min(phases or conn_phases, conn_phases)
    return value / (volts * n), n


def to_watts(amps, phases, volts, conn_phases):
    return amps * volts * (phases or conn_phases)


def limit(profiles, conn, t, origin, volts, phases, share=1, cap=None):
    # (limit A, phases or None) for a connector at t: its TX profile, else its TX_DEFAULT profile,
    # capped by the CP_MAX profile (split evenly over `share` connectors) and by cap.
    # (None, None) when nothing limits it. Connector 0 gets the charge point's total (CP_MAX only).
    lim = None
    ph = None
    if conn:
        b = prevailing(profiles, TX, conn, t, origin) or prevailing(profiles, TX_DEFAULT, conn, t, origin)
        if b is not None:
            lim, ph = to_amps(b[1][0], b[0].unit_w, b[1][1], volts, phases)
    b = prevailing(profiles, CP_MAX, conn, t, origin)
    if b is not None:
        a, n = to_amps(b[1][0], b[0].unit_w, b[1][1], volts, phases)
        if conn and share > 1:
            a = a / share
        if lim is None or a < lim:
            lim, ph = a, n
    if cap is not None and (lim is None or cap < lim):
        lim, ph = float(cap), None
    return lim, ph


def next_change(profiles, conn, t, origin=None):
    # First moment after t at which a connector's limit may change; None if never.
    best = None
    for p in profiles:
        if not _relevant(p, conn):
            continue
        x = edge(p, t, origin)
        if x is not None and (best is None or x < best):
            best = x
    return best


def schedule(profiles, conn, t0, duration, origin, volts, phases, share=1, cap=None, max_periods=48):
    # Composite schedule from t0 over duration s: ([(offset s, limit A or None, phases)], covered s),
    # equal neighbours merged. With more than max_periods changes it stops early: covered says
    # how far the list reaches.
    out = []
    t = t0
    end = t0 + duration
    while True:
        lim, ph = limit(profiles, conn, t, origin, volts, phases, share, cap)
        if not out or out[-1][1] != lim or out[-1][2] != ph:
            if len(out) >= max_periods:
                return out, t - t0
            out.append((t - t0, lim, ph))
        t = next_change(profiles, conn, t, origin)
        if t is None or t >= end:
            return out, duration
