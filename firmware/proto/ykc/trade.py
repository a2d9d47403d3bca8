# YKC charging sessions: remote start 0x34->0x33 and stop 0x36->0x35, the trade number bound to the
# model's transaction, the session's energy per price period (on flash, so a power cut loses nothing
# but the last seconds) and the 0x3B record built when the transaction ends.
import bus
import log
import store.kv as kv
from store import slot
from proto.ykc import billing as B

_ZERO = {"p": [0] * 8, "loss": 0, "slots": "0" * 48}   # a session started with no model costs 0

# Model stop reason -> 0x3B stop reason (Appendix 13.1). "Other" comes from a fault: see _FAULT_STOP.
_REASON = {"Remote": 0x40, "Local": 0x45, "UnlockCommand": 0x45, "EVDisconnected": 0x6B,
           "PowerLoss": 0x83, "EmergencyStop": 0x72, "DeAuthorized": 0x6E}
_FAULT_STOP = {"GroundFailure": 0x6F, "HighTemperature": 0x74, "OverCurrentFailure": 0x75,
               "OverVoltage": 0x6F, "UnderVoltage": 0x6F, "PowerMeterFailure": 0x6D,
               "PowerSwitchFailure": 0x6C, "ConnectorLockFailure": 0x77, "EVCommunicationError": 0x6B}
UNKNOWN = 0x90   # reboots and anything without a better code


def stop_code(reason, error, dc):
    c = _REASON.get(reason)
    if c is not None:
        return c
    if reason == "Other" and error:
        c = _FAULT_STOP.get(error, UNKNOWN)
        if dc and c == 0x6F:
            return 0x70      # DC protection instead of AC protection
        if dc and error == "EVCommunicationError":
            return 0x84      # BMS message timeout
        return c
    return UNKNOWN


def make_trade(pile, gun, epoch, tz, n):
    # A pile-made trade number (offline starts, §2): pile + gun + yyMMddHHmmss + 4-digit counter.
    t = B.cp56(epoch, tz)
    return "%s%02d%02d%02d%02d%02d%02d%02d%04d" % (pile, gun, t[0] % 100, t[1], t[2], t[3], t[4], t[5],
                                                  n % 10000)


class Trades:
    def __init__(self, st, cfg):
        self.st = st
        self.ch = st.charger
        self.pending = {}    # gun -> start info from 0x34/0x32/local list, until the model starts
        self.sess = {}       # gun -> running session: /ykc/s<gun>.json, its samples in s<gun>.slot
        self.slots = {}      # gun -> store.slot.Slot of the session's samples (m, ts, e)
        self.codes = {}      # gun -> stop reason the stack decided (remote stop, balance, BMS)
        self.balance_stop = cfg.get("ykc_balance_stop", True)
        self.ch.connection_timeout_s = cfg.get("ykc_plug_timeout_s", 60)   # 0x34 "plug within 60 s"
        kv.ensure_dir("/ykc")
        st.routes[0x34] = self.remote_start
        st.routes[0x36] = self.remote_stop
        bus.subscribe(self._on_event, ("tx_start", "tx_stop", "status"))

    @staticmethod
    def _path(gun, ext="json"):
        return "/ykc/s%d.%s" % (gun, ext)

    def _checkpoint(self, s):
        # The part that changes at every sample is rewritten in place (store.slot): no rename per
        # meter reading; the rest was saved once when the session began.
        g = s["g"]
        sl = self.slots.get(g)
        if sl is None:
            sl = self.slots[g] = slot.Slot(self._path(g, "slot"))
        sl.save({"m": s["m"], "ts": s["ts"], "e": s["e"]})

    def _load(self, gun):
        # A session left on flash by a power cut: its start plus its last checkpointed sample.
        s = kv.load(self._path(gun))
        if isinstance(s, dict):
            hot = slot.load(self._path(gun, "slot"))
            if isinstance(hot, dict):
                s.update(hot)
        return s

    def _forget(self, gun):
        kv.remove(self._path(gun))
        sl = self.slots.pop(gun, None) or slot.Slot(self._path(gun, "slot"))
        sl.remove()

    def _gun(self, gun):
        ch = self.ch
        return ch.connectors[gun] if isinstance(gun, int) and 1 <= gun < len(ch.connectors) else None

    # -- platform commands --------------------------------------------------------------------

    def remote_start(self, seq, f):
        st = self.st
        ch = self.ch
        gun = f["gun"]
        trade = f["trade"]
        tag = f["logical"]
        c = self._gun(gun)
        why = 0
        if f["pile"] != st.pile or c is None:
            why = 1
        elif c.tx is not None:
            why = 2
        elif not st.billing.ready() or not ch.can_start(c, tag):
            why = 3
        elif not c.plugged():
            why = 5
        reply = {"trade": trade, "pile": st.pile, "gun": gun, "result": 0, "reason": why}
        if why and why != 5:
            log.info("ykc", "remote start %s refused (reason %d)" % (trade, why))
            st.send(0x33, reply, seq)
            return
        # Not plugged: fail/5 now; a plug within the timeout still starts it, with a second 0x33 (§4.10).
        self.pending[gun] = {"t": trade, "k": 1, "card": f["card"], "lc": tag, "bal": f["balance"],
                             "tag": tag, "seq": seq, "late": why == 5}
        if why == 5:
            st.send(0x33, reply, seq)
            ch.start_authorized(c, tag, None)
            return
        ch.start_authorized(c, tag, None)
        if c.tx is not None and c.tx.id == trade:
            reply["result"] = 1
        else:
            reply["reason"] = 3
            self.pending.pop(gun, None)
        st.send(0x33, reply, seq)
        st.rt.flush()

    def remote_stop(self, seq, f):
        st = self.st
        gun = f["gun"]
        c = self._gun(gun)
        r = {"pile": st.pile, "gun": gun, "result": 0, "reason": 0}
        if f["pile"] != st.pile or c is None:
            r["reason"] = 1
        elif c.tx is not None:
            self.codes[gun] = 0x40
            self.ch.stop(c, "Remote")
            r["result"] = 1
        elif self.pending.pop(gun, None) is not None:   # still waiting for the cable: cancel it
            c.clear_pending()
            c.refresh()
            r["result"] = 1
        else:
            r["reason"] = 2
        st.send(0x35, r, seq)
        st.rt.flush()

    # -- the model's transactions -------------------------------------------------------------

    def _on_event(self, kind, d):
        if kind == "tx_start":
            self._bind(d["conn"], d["tx"])
        elif kind == "tx_stop":
            self._close(d["conn"], d["tx"])
        elif kind == "status":
            g = d["conn"]
            c = self._gun(g)
            if c is not None and c.tx is None and c.pending is None:
                self.pending.pop(g, None)   # a start that never happened (no cable in time...)
            if self.st.rt is not None:
                self.st.rt.mark(g)          # 0x13 on every status change (0: the whole pile)

    def _take_pending(self, gun, tag):
        p = self.pending.get(gun)
        if p is not None and p["tag"] == tag:
            return self.pending.pop(gun)
        for g in self.pending:          # the model may have picked another free gun
            if self.pending[g]["tag"] == tag:
                return self.pending.pop(g)
        return None

    def _new(self, gun, trade, p, tx):
        # Session state: g gun, t trade, k trade type, card/lc physical/logical card, bal balance,
        # ref model transaction, t0/m0 start, m/ts last sample, e energy per period, bm billing model.
        return {"g": gun, "t": trade, "k": p["k"], "card": p["card"], "lc": p["lc"], "bal": p["bal"],
                "ref": tx.ref, "t0": tx.start_time, "m0": tx.meter_start, "m": tx.meter_start,
                "ts": tx.start_time, "e": [0, 0, 0, 0], "bm": self.st.billing.m or _ZERO}

    def _bind(self, gun, tx):
        st = self.st
        p = self._take_pending(gun, tx.id_tag)
        if p is None:
            p = {"t": None, "k": 4, "card": None, "lc": tx.id_tag, "bal": 0}
        trade = p["t"] or make_trade(st.pile, gun, tx.start_time, st.tz, tx.ref)
        s = self._new(gun, trade, p, tx)
        self.sess[gun] = s
        self._forget(gun)          # leftovers of an older session on this gun
        kv.save(self._path(gun), s)
        self.ch.tx_confirmed(tx.ref, trade)
        bus.emit("tx_id", {"ref": tx.ref, "id": trade})
        log.info("ykc", "gun %d trade %s started" % (gun, trade))
        if p.get("late"):
            st.send(0x33, {"trade": trade, "pile": st.pile, "gun": gun, "result": 1, "reason": 0}, p["seq"])
        if self.ch.dc and st.rt is not None:
            st.rt.dc_start(gun)

    def sample(self, gun, r=None):
        # Bring a running session's per-period energy up to the meter; returns the session or None.
        s = self.sess.get(gun)
        c = self.ch.connectors[gun]
        if s is None or c.tx is None:
            return None
        if r is None:
            r = self.ch.meter(gun)
        self._attribute(s, r.energy_wh, int(self.ch.clock.now()))
        if self.balance_stop and s["bal"] > 0 and B.totals(s["bm"], s["e"])[2] >= s["bal"] * 100:
            log.info("ykc", "gun %d: balance used up" % gun)
            self.codes[gun] = 0x6E
            self.ch.stop(c, "DeAuthorized")
        return s

    def _attribute(self, s, meter, now):
        # Energy since the last sample goes to the price period in force at that sample; the
        # realtime task samples on every half-hour boundary, so a delta never spans two periods.
        d = meter - s["m"]
        if d > 0:
            k = B.code_at(s["bm"], s["ts"], self.st.tz)
            s["e"][k] += d * 10      # Wh -> 0.0001 kWh
            s["m"] = meter
            s["ts"] = now
            self._checkpoint(s)
        else:
            s["ts"] = now

    def _close(self, gun, tx):
        st = self.st
        s = self.sess.pop(gun, None) or self._load(gun)
        if not isinstance(s, dict) or s.get("ref") != tx.ref:
            log.warn("ykc", "gun %d: no session state for transaction %s" % (gun, tx.ref))
            trade = tx.id or make_trade(st.pile, gun, tx.start_time, st.tz, tx.ref)
            s = self._new(gun, trade, {"k": 4, "card": None, "lc": tx.id_tag, "bal": 0}, tx)
        end = tx.meter_stop if tx.meter_stop is not None else tx.last_meter
        d = end - s["m"]
        if d > 0:
            s["e"][B.code_at(s["bm"], s["ts"], st.tz)] += d * 10
        c = self.ch.connectors[gun]
        code = self.codes.pop(gun, None) or stop_code(tx.reason, c.fatal_error() or c.error, self.ch.dc)
        rec = record(st, gun, s, tx, end, code)
        self._forget(gun)
        log.info("ykc", "gun %d trade %s ended (0x%02X): %d.%04d kWh, %d.%04d yuan" %
                 (gun, s["t"], code, rec["energy"] // 10000, rec["energy"] % 10000,
                  rec["amount"] // 10000, rec["amount"] % 10000))
        if self.ch.dc and st.rt is not None:
            st.rt.dc_stop(gun, s, tx, code)
        st.records.push(rec)


def record(st, gun, s, tx, end, code):
    # The 0x3B fields (§4.13) of a finished session.
    m = s["bm"]
    stop = tx.stop_time if tx.stop_time is not None else tx.last_time
    f = {"trade": s["t"], "pile": st.pile, "gun": gun, "start": B.cp56(s["t0"], st.tz),
         "end": B.cp56(stop, st.tz), "meter_start": s["m0"] * 10, "meter_end": end * 10,
         "vin": None, "trade_type": s["k"], "trade_time": B.cp56(stop, st.tz), "reason": code,
         "card": s["card"]}
    e = s["e"]
    for k in range(4):
        f["price%d" % k] = B.unit_price(m, k)
        f["energy%d" % k] = e[k]
        f["loss%d" % k] = B.loss(m, e[k])
        f["amount%d" % k] = B.amount(m, k, e[k])
    f["energy"], f["loss_energy"], f["amount"] = B.totals(m, e)
    return f
