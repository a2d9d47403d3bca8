# OCPP 1.6 Smart Charging profile: Set/ClearChargingProfile, GetCompositeSchedule, profiles kept on
# flash, TxProfiles bound to their transaction, and a task that moves each connector's current
# limit at every schedule boundary. The schedule maths is charger.limits, loaded only once a
# profile exists (most chargers never get one).
import asyncio
from timedevent import TimedEvent
from micropython import const
import bus
import log
import store.kv as kv
from hal.clock import iso, parse_iso
from proto.ocpp16.keys import RO

_PATH = "/smart.json"
_MAX_SLEEP_MS = const(900000)  # re-evaluate at least this often: the wall clock may be set meanwhile
_MAX_OUT = const(48)           # periods in a composite schedule
_PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")   # index = limits purpose
_CP_MAX = const(0)             # = charger.limits.CP_MAX, TX
_TX = const(2)

KEYS = {
    "ChargeProfileMaxStackLevel": ("i", 8, RO),
    "ChargingScheduleAllowedChargingRateUnit": ("l", "Current,Power", RO),
    "ChargingScheduleMaxPeriods": ("i", 24, RO),
    "ConnectorSwitch3to1PhaseSupported": ("b", False, RO),
    "MaxChargingProfilesInstalled": ("i", 16, RO),
}


def install(st):
    sm = Smart(st)
    st.smart = sm
    st.add_feature("SmartCharging", KEYS)
    r = st.routes
    r["SetChargingProfile"] = lambda st, p: {"status": st.smart.set(p["connectorId"], p["csChargingProfiles"])}
    r["ClearChargingProfile"] = lambda st, p: {"status": st.smart.clear(
        p.get("id"), p.get("connectorId"), p.get("chargingProfilePurpose"), p.get("stackLevel"))}
    r["GetCompositeSchedule"] = lambda st, p: st.smart.composite(
        p["connectorId"], p["duration"], p.get("chargingRateUnit"))
    return [sm.run()]


def _ts(text):
    return None if text is None else int(parse_iso(text))


def _lib():
    from charger import limits

    return limits


class Smart:
    def __init__(self, st):
        self.st = st
        ch = self.ch = st.charger
        # Nominal supply, the same board settings the meter uses: W limits become A with these.
        self.volts = st.cfg.get("voltage", 230)
        self.phases = 1 if ch.dc else st.cfg.get("phases", 3)
        self.profiles = []
        self.pending = {}          # conn -> (TxProfile from RemoteStartTransaction, when)
        self.wake = TimedEvent()
        for a in kv.load(_PATH, []) or []:
            try:
                self.profiles.append(_lib().Profile.from_list(a))
            except (TypeError, ValueError, IndexError):
                log.warn("smart", "stored profile %r dropped" % (a,))
        bus.subscribe(self._on_event, ("tx_start", "tx_stop", "boot"))
        self.apply(False)          # limits in place before charger.start() first drives the outputs

    # -- the limit in force -------------------------------------------------------------------

    def _share(self):
        # Connectors that split the ChargePointMaxProfile: those with a transaction.
        return max(1, sum(1 for c in self.ch.connectors[1:] if c.tx is not None))

    def apply(self, drive=True, skip=-1):
        # Give every connector its limit for now (drive: re-drive PWM/relay and status, except for
        # connector `skip`); returns the next time a limit may change, or None.
        ch = self.ch
        ps = self.profiles
        L = _lib() if ps else None
        now = int(ch.clock.now())
        share = self._share()
        nxt = None
        for c in ch.connectors[1:]:
            origin = None if c.tx is None else c.tx.start_time
            a = L.limit(ps, c.id, now, origin, self.volts, self.phases, share)[0] if ps else None
            if a != c.limit_a:
                log.info("smart", "connector %d limit %s" % (c.id, "off" if a is None else "%.1f A" % a))
                c.limit_a = a
                if drive and c.id != skip:
                    c.update_power()
                    c.refresh()
            e = L.next_change(ps, c.id, now, origin) if ps else None
            if e is not None and (nxt is None or e < nxt):
                nxt = e
        return nxt

    async def run(self):
        # Sleep until the next period boundary, or until profiles or transactions change.
        while True:
            self.wake.clear()
            nxt = self.apply()
            ms = _MAX_SLEEP_MS
            if nxt is not None:
                ms = min(ms, max(0, int((nxt - self.ch.clock.now()) * 1000)) + 20)
            await self.wake.wait_ms(ms)

    def _on_event(self, kind, data):
        if kind == "tx_start":
            cid = data["conn"]
            pend = self.pending.pop(cid, None)
            if pend is not None and self.ch.clock.now() - pend[1] <= self.ch.connection_timeout_s + 10:
                p = self._parse(cid, pend[0], data["tx"])
                if isinstance(p, str):
                    log.warn("smart", "RemoteStartTransaction profile ignored: " + p)
                else:
                    self._install(p)
            # Before begin() drives the connector, so the session never starts above its limit.
            self.apply(True, cid)
            self.wake.set()
        elif kind == "tx_stop":
            cid = data["conn"]
            self.profiles = [p for p in self.profiles if not (p.purpose == _TX and p.conn == cid)]
            self.wake.set()
        elif kind == "boot":
            self.wake.set()        # the back-end has just set the clock

    def remote_start_profile(self, cid, profile):
        # A TxProfile that came with RemoteStartTransaction: bound to the transaction it starts.
        self.pending[cid] = (profile, self.ch.clock.now())

    # -- profiles -----------------------------------------------------------------------------

    def _parse(self, cid, d, tx):
        # A limits.Profile from a csChargingProfiles object, or why it is refused.
        L = _lib()
        keys = self.st.keys
        level = d["stackLevel"]
        if not 0 <= level <= keys["ChargeProfileMaxStackLevel"]:
            return "stackLevel %d out of range" % level
        s = d["chargingSchedule"]
        raw = s["chargingSchedulePeriod"]
        if not raw or len(raw) > keys["ChargingScheduleMaxPeriods"]:
            return "%d periods" % len(raw)
        periods = []
        for x in sorted(raw, key=lambda x: x["startPeriod"]):
            sp = int(x["startPeriod"])
            ph = x.get("numberPhases") or 0
            if sp < 0 or x["limit"] < 0 or not 0 <= ph <= 3 or (periods and periods[-1][0] == sp):
                return "bad period %r" % (x,)
            periods.append((sp, x["limit"], ph))
        kind = d["chargingProfileKind"]
        start = None
        if kind == "Relative":
            kind = L.RELATIVE
        else:
            start = _ts(s.get("startSchedule"))
            if kind == "Recurring":
                rk = d.get("recurrencyKind")
                if rk is None or start is None:
                    return "Recurring needs recurrencyKind and startSchedule"
                kind = L.DAILY if rk == "Daily" else L.WEEKLY
            else:
                kind = L.ABSOLUTE
                if start is None:   # no start given: from now on
                    start = int(self.ch.clock.now())
        return L.Profile(d["chargingProfileId"], cid, _PURPOSES.index(d["chargingProfilePurpose"]), level,
                         kind, periods, s["chargingRateUnit"] == "W", start, s.get("duration"),
                         _ts(d.get("validFrom")), _ts(d.get("validTo")), None if tx is None else tx.ref)

    def _install(self, p):
        # A profile replaces one with its id, and one with its connector, purpose and stackLevel.
        keep = []
        stored = p.purpose != _TX
        for q in self.profiles:
            if q.id == p.id or (q.conn == p.conn and q.purpose == p.purpose and q.level == p.level):
                stored = stored or q.purpose != _TX
            else:
                keep.append(q)
        if len(keep) >= self.st.keys["MaxChargingProfilesInstalled"]:
            log.warn("smart", "profile %d refused: MaxChargingProfilesInstalled" % p.id)
            return "Rejected"
        keep.append(p)
        return self._changed(keep, stored)

    def _changed(self, profiles, save):
        # TxProfiles are not kept on flash: their transaction does not outlive a reboot.
        self.profiles = profiles
        if save:
            kv.save(_PATH, [p.to_list() for p in profiles if p.purpose != _TX])
        self.wake.set()
        return "Accepted"

    def set(self, cid, d):
        # SetChargingProfile: "Accepted" or "Rejected".
        ch = self.ch
        if not 0 <= cid < len(ch.connectors):
            return "Rejected"
        purpose = _PURPOSES.index(d["chargingProfilePurpose"])
        tx = None
        if purpose == _TX:
            tx = ch.connectors[cid].tx if cid else None
            if tx is None:
                log.warn("smart", "TxProfile refused: no transaction on connector %d" % cid)
                return "Rejected"
            want = d.get("transactionId")
            if want is not None and want != tx.id:
                log.warn("smart", "TxProfile refused: transaction %s is not %s" % (want, tx.id))
                return "Rejected"
        elif purpose == _CP_MAX and cid:
            return "Rejected"
        p = self._parse(cid, d, tx)
        if isinstance(p, str):
            log.warn("smart", "profile refused: " + p)
            return "Rejected"
        return self._install(p)

    def clear(self, pid, cid, purpose, level):
        # ClearChargingProfile: by id, else by every criterion given; "Accepted" or "Unknown".
        pu = None if purpose is None else _PURPOSES.index(purpose)
        keep = []
        save = None
        for q in self.profiles:
            if (q.id == pid if pid is not None else (cid is None or q.conn == cid)
                    and (pu is None or q.purpose == pu) and (level is None or q.level == level)):
                save = save or q.purpose != _TX
            else:
                keep.append(q)
        if save is None:
            return "Unknown"
        return self._changed(keep, save)

    def composite(self, cid, duration, unit):
        # GetCompositeSchedule: what the charger will allow from now on, every purpose merged and
        # capped by the hardware; connector 0: the charge point's total.
        ch = self.ch
        if not 0 <= cid < len(ch.connectors) or duration < 0:
            return {"status": "Rejected"}
        now = int(ch.clock.now())
        cap = ch.max_current_a
        origin = now
        if cid:
            tx = ch.connectors[cid].tx
            if tx is not None:
                origin = tx.start_time
        else:
            cap *= len(ch.connectors) - 1
        L = _lib()
        periods, covered = L.schedule(self.profiles, cid, now, duration, origin, self.volts, self.phases,
                                      self._share(), cap, _MAX_OUT)
        w = unit == "W"
        out = []
        for off, a, ph in periods:
            e = {"startPeriod": off,
                 "limit": round(L.to_watts(a, ph, self.volts, self.phases) if w else a, 1)}
            if ph:
                e["numberPhases"] = ph
            out.append(e)
        start = iso(now)
        return {"status": "Accepted", "connectorId": cid, "scheduleStart": start,
                "chargingSchedule": {"duration": covered, "startSchedule": start,
                                     "chargingRateUnit": "W" if w else "A", "chargingSchedulePeriod": out}}
