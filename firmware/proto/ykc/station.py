# YKC link: TCP connection with back-off, login 0x01/0x02 (retried, again after every reconnect),
# heartbeat 0x03 per gun (link dead after N unanswered), billing-model sync 0x05/0x06 + 0x09/0x0A,
# 0x58 pushes, and dispatch of the platform's frames to the handlers the other modules register.
import asyncio
from timedevent import TimedEvent
import time
from binascii import hexlify, crc32
from micropython import const
import bus
import log
from net import netctl
from net.backoff import Backoff
from charger import status as cst
from proto.ykc import codec, frames
from proto.ykc.billing import Billing

_LOGIN = const(0x01)
_DEFAULT_PORT = const(8767)
_PROTO_V16 = const(0x10)


def pile_code(cfg):
    # 14 digits from cfg["pile_code"], else a stable number derived from the charger id.
    p = str(cfg.get("pile_code") or "")
    if len(p) == 14 and p.isdigit():
        return p
    if p:
        log.warn("ykc", "pile_code %r is not 14 digits: deriving one from the id" % p)
    return "%014d" % (10 ** 13 + crc32(str(cfg.get("id", "CP")).encode()))


def address(cfg):
    # (host, port) from ykc_host/ykc_port, else csms_url "tcp://host:port".
    host = cfg.get("ykc_host")
    port = cfg.get("ykc_port")
    url = cfg.get("csms_url") or ""
    if host is None and url.startswith("tcp://"):
        h, _, p = url[6:].rstrip("/").partition(":")
        host = h
        if port is None and p.isdigit():
            port = int(p)
    return host or "127.0.0.1", int(port or _DEFAULT_PORT)


class _Wait:
    # A reply someone awaits: frame type, optional predicate on its fields, the fields once seen.
    def __init__(self, typ, pred):
        self.typ = typ
        self.pred = pred
        self.val = None
        self.ev = TimedEvent()


class Station:
    def __init__(self, charger, board, cfg):
        self.charger = charger
        self.board = board
        self.cfg = cfg
        self.pile = pile_code(cfg)
        self.host, self.port = address(cfg)
        self.tz = cfg.get("ykc_tz_min", 480)          # China time, UTC+8
        self.crc_hi = bool(cfg.get("crc_high_first", False))
        self.hb_s = cfg.get("ykc_heartbeat_s", 10)
        self.hb_misses = cfg.get("ykc_heartbeat_misses", 3)
        self.reply_s = cfg.get("ykc_reply_timeout_s", 10)
        self.login_retry_s = cfg.get("ykc_login_retry_s", 60)
        self.billing = Billing()
        self.routes = {0x04: self._hb_ack, 0x0A: self._model, 0x58: self._model_push}
        self.on_login = []       # fns run right after a successful 0x02 (offline records first)
        self.on_model = []       # fns run once the billing model is settled (then real-time data)
        self.waits = []
        self.online = False      # TCP link up
        self.registered = False  # logged in on this link
        self.boot_status = None
        self.sent = 0
        self.received = 0
        self.seq = 0
        self.gen = 0             # link generation: tasks of an old link stop themselves
        self.hb_unanswered = 0
        self._out = bytearray()  # frames waiting for the pump (one writer: stream drains are not reentrant)
        self._kick = asyncio.Event()
        self._dead = TimedEvent()
        self.writer = None
        self.dec = codec.Decoder(self._frame_error)
        self.records = self.trades = self.rt = None   # set by proto.ykc.start
        netctl.on_down(self._net_down)

    # -- sending ------------------------------------------------------------------------------

    def send(self, typ, fields, seq=None):
        # Queue one frame; a reply passes the request's seq. Only 0x01 goes before a login (§3).
        if self.writer is None or (typ != _LOGIN and not self.registered):
            return False
        if seq is None:
            seq = self.seq
            self.seq = (seq + 1) & 0xFFFF
        try:
            f = codec.encode(seq, typ, frames.encode(typ, fields), 0, self.crc_hi)
        except (ValueError, TypeError, KeyError) as e:
            log.error("ykc", "0x%02X not sent: %s" % (typ, e))
            return False
        self._out.extend(f)
        self._kick.set()
        self.sent += 1
        if bus.wants("proto"):
            bus.emit("proto", {"dir": "tx", "text": hexlify(f).decode()})
        return True

    async def _pump(self, w):
        try:
            while True:
                await self._kick.wait()
                self._kick.clear()
                if self._out:
                    data = bytes(self._out)
                    self._out = bytearray()
                    await netctl.before_send()   # injected latency, stall or one-way partition
                    w.write(data)
                    await w.drain()
        except OSError as e:
            log.warn("ykc", "write: %s" % e)
            self._dead.set()

    async def expect(self, typ, pred, timeout_s):
        # The fields of the next frame of typ (matching pred), or None on timeout or a lost link.
        w = _Wait(typ, pred)
        self.waits.append(w)
        try:
            await w.ev.wait(timeout_s)
        finally:
            self.waits.remove(w)
        return w.val

    # -- receiving ----------------------------------------------------------------------------

    def _frame_error(self, reason, detail):
        log.warn("ykc", "framing: %s (%s)" % (reason, detail))

    async def _read(self, r, gen):
        try:
            while True:
                await netctl.before_recv()   # an injected stall holds what the platform sends
                data = await r.read(256)
                if not data:
                    log.warn("ykc", "link closed by the platform")
                    break
                await netctl.after_recv()
                for fr in self.dec.feed(data):
                    self._dispatch(fr)
        except Exception as e:
            log.warn("ykc", "read: %s" % e)
        finally:
            if gen == self.gen:   # a reader cancelled late must not kill the next link
                self._dead.set()

    def _dispatch(self, fr):
        seq, enc, typ, body, order = fr
        self.received += 1
        if bus.wants("proto"):   # a capture: the frame as it came (re-encoded, its CRC order kept)
            raw = codec.encode(seq, typ, body, enc, order == codec.CRC_HI_FIRST)
            bus.emit("proto", {"dir": "rx", "text": hexlify(raw).decode()})
        if enc:
            log.warn("ykc", "0x%02X encrypted (ENC %d): ignored" % (typ, enc))
            return
        try:
            f = frames.decode(typ, body)
        except ValueError as e:
            log.warn("ykc", "0x%02X ignored: %s" % (typ, e))
            return
        if f.get("pile", self.pile) != self.pile and typ not in (0x34, 0x36, 0x42):
            log.warn("ykc", "0x%02X for pile %s ignored" % (typ, f["pile"]))
            return
        hit = False
        for w in self.waits:
            if w.val is None and w.typ == typ and (w.pred is None or w.pred(f)):
                w.val = f
                w.ev.set()
                hit = True
                break
        fn = self.routes.get(typ)
        if fn is None:
            if not hit:
                log.info("ykc", "0x%02X not supported: ignored" % typ)
            return
        try:
            r = fn(seq, f)
            if hasattr(r, "send"):   # a coroutine: the handler goes on after its reply
                asyncio.create_task(self._guard(r, typ))
        except Exception as e:
            log.exc("ykc", e, "0x%02X" % typ)

    async def _guard(self, coro, typ):
        try:
            await coro
        except Exception as e:
            log.exc("ykc", e, "0x%02X" % typ)

    # -- link ---------------------------------------------------------------------------------

    def _net_down(self):
        self._dead.set()

    async def link(self):
        cfg = self.cfg
        backoff = Backoff(cfg.get("reconnect_base_ms", 1000), cfg.get("reconnect_cap_ms", 60000))
        while True:
            await netctl.wait_up()
            try:
                r, w = await asyncio.wait_for_ms(asyncio.open_connection(self.host, self.port),
                                                 cfg.get("connect_timeout_ms", 10000))
            except Exception as e:
                delay = backoff.next_ms()
                log.warn("ykc", "connect %s:%d failed (%s); retry in %d ms" %
                         (self.host, self.port, e, delay))
                bus.emit("net", {"state": "down", "why": str(e)})
                await asyncio.sleep_ms(delay)
                continue
            if not netctl.is_up():   # the network went down while connecting
                await w.wait_closed()
                continue
            self.gen += 1
            self.seq = 0           # SEQ restarts at 0 on every connection (§1)
            self.dec.reset()
            self._out = bytearray()
            self._dead.clear()
            self.writer = w
            self.online = True
            log.info("ykc", "connected to %s:%d as pile %s" % (self.host, self.port, self.pile))
            bus.emit("net", {"state": "up"})
            tasks = [asyncio.create_task(self._read(r, self.gen)), asyncio.create_task(self._pump(w))]
            delay = None
            try:
                delay = await self._session(backoff)
            except Exception as e:
                log.exc("ykc", e, "session")
            self.online = False
            self.registered = False
            self.writer = None
            self.gen += 1
            for w8 in self.waits:      # nobody waits for a reply on a dead link
                w8.ev.set()
            for t in tasks:
                t.cancel()
            try:
                w.close()
                await w.wait_closed()
            except Exception:
                pass
            bus.emit("net", {"state": "down"})
            if delay is None:
                delay = backoff.next_ms()
            log.warn("ykc", "link down; reconnect in %d ms" % delay)
            await asyncio.sleep_ms(delay)

    def login_fields(self):
        cfg = self.cfg
        v = cfg.get("ykc_version", 16)
        return {"pile": self.pile, "pile_type": 0 if self.charger.dc else 1,
                "guns": len(self.charger.connectors) - 1, "proto": v if v in (15, 16) else _PROTO_V16,
                "fw": str(cfg.get("fw_version", "1.0.0"))[:8], "net": cfg.get("ykc_net", 1),
                "sim": None, "operator": cfg.get("ykc_operator", 4)}   # PDF operator codes: 4 = other

    async def _session(self, backoff):
        # Log in, run the post-login steps, then keep the link alive; returns the delay before the
        # next connection (None: back-off).
        while True:
            self.send(_LOGIN, self.login_fields())
            f = await self.expect(0x02, None, self.login_retry_s)
            if self._dead.is_set():
                return None
            if f is None:
                log.warn("ykc", "no login reply in %d s: retrying" % self.login_retry_s)
                continue
            if f["result"] == 0:
                break
            self.boot_status = "Rejected"
            bus.emit("boot", {"status": "Rejected"})
            log.warn("ykc", "login refused; again in %d s" % self.login_retry_s)
            return self.login_retry_s * 1000   # the platform closes the link (§4.2)
        self.registered = True
        self.boot_status = "Accepted"
        backoff.reset()
        log.info("ykc", "logged in (billing model %s)" % self.billing.model_id())
        bus.emit("boot", {"status": "Accepted"})
        first = self.cfg.get("ykc_order", "pdf") != "model_first"
        if first:   # PDF order: stored records first, then the model check
            self._logged_in()
        asyncio.create_task(self._billing_sync(self.gen, first))
        await self._keepalive()
        return None

    def _logged_in(self):
        self._run_hooks(self.on_login)

    def _run_hooks(self, fns):
        for fn in fns:
            try:
                fn()
            except Exception as e:
                log.exc("ykc", e, "login hook")

    async def _keepalive(self):
        # One 0x03 per gun every hb_s; any 0x04 answers the round. Returns when the link is dead.
        self.hb_unanswered = 0
        while True:
            if self.hb_unanswered >= self.hb_misses:
                log.warn("ykc", "%d heartbeats unanswered: link dead" % self.hb_unanswered)
                return
            for c in self.charger.connectors[1:]:
                state = 1 if c.status == cst.FAULTED else 0
                self.send(0x03, {"pile": self.pile, "gun": c.id, "state": state})
            self.hb_unanswered += 1
            if await self._dead.wait(self.hb_s):
                return

    def _hb_ack(self, seq, f):
        self.hb_unanswered = 0

    # -- billing model ------------------------------------------------------------------------

    async def _billing_sync(self, gen, first):
        # 0x05 until answered (0x06); on a mismatch or no model, 0x09 until a 0x0A arrives (§5).
        cfg = self.cfg
        need_model = not first or cfg.get("ykc_skip_check", False)
        while gen == self.gen:
            if not need_model:
                self.send(0x05, {"pile": self.pile, "model": self.billing.model_id()})
                f = await self.expect(0x06, None, cfg.get("ykc_check_retry_s", 15))
                if f is None:
                    continue
                if f["result"] == 0 and self.billing.ready():
                    log.info("ykc", "billing model %s confirmed" % self.billing.model_id())
                    break
                need_model = True
            self.send(0x09, {"pile": self.pile})
            f = await self.expect(0x0A, None, cfg.get("ykc_model_retry_s", 30))
            if f is not None and self.billing.ready():
                break
        if gen == self.gen:
            if not first:
                self._logged_in()
            self._run_hooks(self.on_model)

    def _model(self, seq, f):
        if self.billing.set(f):
            log.info("ykc", "billing model %s stored" % f["model"])
            return True
        log.warn("ykc", "billing model %s unusable: ignored" % f.get("model"))
        return False

    def _model_push(self, seq, f):
        # 0x58: a running session keeps the model it started with (trade.py snapshots it).
        self.send(0x57, {"pile": self.pile, "result": 1 if self._model(seq, f) else 0}, seq)

    async def close(self):
        # Drop the link (before a reboot) once the pump has written what is queued (≤ 1 s).
        for _ in range(10):
            await asyncio.sleep_ms(100)
            if not self._out:
                break
        self._dead.set()

    def counters(self):
        q = self.records.q.items if self.records else ()
        return {"online": self.online, "registered": self.registered, "boot": self.boot_status,
                "sent": self.sent, "received": self.received, "queued": len(q), "pile": self.pile,
                "model": self.billing.model_id(), "frame_errors": self.dec.errors}
