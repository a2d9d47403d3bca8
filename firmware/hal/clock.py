# Wall clock with an adjustable offset: the CSMS or platform sets the time, uptime stays monotonic.
import time


class Clock:
    def __init__(self, source=time.time):
        self._source = source
        self._offset = 0.0
        self._boot = time.ticks_ms()

    def now(self):
        # Seconds since 1970-01-01 UTC (float).
        return self._source() + self._offset

    def set(self, epoch):
        # Adopt the given UTC time (seconds since 1970) as now.
        self._offset = epoch - self._source()

    def uptime_ms(self):
        return time.ticks_diff(time.ticks_ms(), self._boot)


def civil(epoch):
    # (year, month, day, hour, minute, second) UTC for seconds since 1970, whatever the port's epoch.
    days, s = divmod(int(epoch), 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (yoe + era * 400 + (m <= 2), m, d, s // 3600, s % 3600 // 60, s % 60)


def iso(epoch):
    # RFC 3339 UTC timestamp with a Z suffix, as OCPP-J uses.
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % civil(epoch)


def _days_from_civil(y, m, d):
    # Days since 1970-01-01 for a proleptic Gregorian date; independent of the port's epoch.
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_iso(s):
    # Seconds since 1970 for an RFC 3339 timestamp ("2026-11-27T10:00:00.123+01:00"); ValueError if bad.
    try:
        y, mo, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
        if s[4] != "-" or s[7] != "-" or s[10] not in "Tt ":
            raise ValueError
        h, mi, sec = int(s[11:13]), int(s[14:16]), int(s[17:19])
        rest = s[19:]
        frac = 0.0
        if rest[:1] == ".":
            i = 1
            while i < len(rest) and rest[i].isdigit():
                i += 1
            frac = float("0" + rest[:i])
            rest = rest[i:]
        if rest in ("Z", "z", ""):
            off = 0
        elif rest[0] in "+-" and len(rest) == 6 and rest[3] == ":":
            off = (int(rest[1:3]) * 60 + int(rest[4:6])) * 60
            if rest[0] == "-":
                off = -off
        else:
            raise ValueError
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 61):
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError("bad timestamp %r" % (s,))
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec + frac - off
