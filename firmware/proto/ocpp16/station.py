# The OCPP 1.6J charge point: keeps the WebSocket up (back-off, ping), registers with
# BootNotification, heartbeats, reports statuses, and wires the model to the back-end.
import asyncio
from timedevent import TimedEvent
import time
import bus
import log
from hal.clock import iso, parse_iso
from net import ws as wsock
from net import netctl
from net.backoff import Backoff
from proto.rpc import Rpc, CallError, CallTimeout, NotConnected
from proto.validate import Specs
from proto.ocpp16 import keys as K
from proto.ocpp16 import schema
from store.txqueue import TxQueue

_BOOT_RETRY_S = 30   # when a refusal carries no interval


class Station:
    def __init__(self, charger, board, cfg, routes):
        self.charger = charger
        self.board = board
        self.cfg = cfg
        self.keys = K.Keys(dict(K.CORE), cfg.get("ocpp"))
        self.keys.force("NumberOfConnectors", len(charger.connectors) - 1)
        if cfg.get("password") and not self.keys["AuthorizationKey"]:
            self.keys.values["AuthorizationKey"] = cfg["password"]
        self.keys.on_change = self._key_changed
        self.queue = TxQueue(limit=cfg.get("queue_limit", 500))
        self.rpc = Rpc(routes, Specs(schema.ACTIONS, schema.TYPES), self, cfg.get("call_timeout_ms", 30000))
        self.registered = False    # BootNotification accepted during this power cycle
        self.boot_status = None
        self.online = False
        self.ws = None
        self.reported = {}         # conn -> (status, error) last delivered
        self.status_q = []
        self.wake_status = asyncio.Event()
        self.wake_tx = asyncio.Event()
        self.wake_hb = TimedEvent()
        self.wake_meter = TimedEvent()
        self.wake_link = asyncio.Event()
        self._dead = TimedEvent()
        self.features = ["Core"]
        self.smart = None          # the SmartCharging feature, when installed
        self.connector = None      # owns URL, TLS and credentials when set: url(), async connect()
        self.routes = routes
        self._apply_keys()
        bus.subscribe(self._on_event, ("status",))
        netctl.on_down(lambda: asyncio.create_task(self.reconnect("network down", abort=True)))

    # -- configuration ----------------------------------------------------------------------

    def _apply_keys(self):
        k = self.keys
        ch = self.charger
        ch.connection_timeout_s = k["ConnectionTimeOut"]
        ch.stop_on_ev_disconnect = k["StopTransactionOnEVSideDisconnect"]
        ch.unlock_on_ev_disconnect = k["UnlockConnectorOnEVSideDisconnect"]
        ch.stop_on_invalid_id = k["StopTransactionOnInvalidId"]

    def _key_changed(self, name, value):
        self._apply_keys()
        if name == "HeartbeatInterval":
            self.wake_hb.set()
        elif name in ("MeterValueSampleInterval", "ClockAlignedDataInterval"):
            self.wake_meter.set()
        elif name == "WebSocketPingInterval":
            self.wake_link.set()
        elif name == "AuthorizationKey":
            # New credentials take effect on a new connection (security whitepaper, TC_073).
            asyncio.create_task(self.reconnect("credentials changed"))

    def add_feature(self, name, keys=None):
        self.features.append(name)
        if keys:
            self.keys.add(keys)
        self.keys.values["SupportedFeatureProfiles"] = ",".join(self.features)

    # -- events from the model --------------------------------------------------------------

    def _on_event(self, kind, data):
        if kind == "status":
            if self.registered and self.online:
                self._queue_status(data["conn"], data["status"], data["error"], data.get("info"))

    def _queue_status(self, conn, status, error, info):
        q = self.status_q
        if len(q) >= 16:   # a flapping input must not grow the queue: keep the latest per connector
            self.status_q = q = [s for s in q if s[0] != conn]
        q.append((conn, status, error, info, int(self.charger.clock.now())))
        self.wake_status.set()

    def _queue_current_statuses(self, changed_only):
        for c in self.charger.connectors:
            if c.status is None:
                continue
            if changed_only and self.reported.get(c.id) == (c.status, c.error):
                continue
            self._queue_status(c.id, c.status, c.error, c.info)

    # -- link -------------------------------------------------------------------------------

    def url(self):
        if self.connector is not None:
            return self.connector.url()
        base = self.cfg.get("csms_url") or "ws://127.0.0.1:9000/ocpp"
        return base.rstrip("/") + "/" + self.charger.id

    async def _connect(self):
        if self.connector is not None:   # the security feature: profiles 0-3
            return await self.connector.connect()
        cfg = self.cfg
        key = self.keys["AuthorizationKey"]
        auth = (self.charger.id, key) if key else None
        url = self.url()
        ctx = None
        if url.startswith("wss"):
            from net import tls

            ctx = tls.context(ca=cfg.get("ca", "/certs/ca.der"), cert=cfg.get("client_cert"),
                              key=cfg.get("client_key"))
        return await wsock.connect(url, "ocpp1.6", auth=auth, ssl=ctx,
                                   server_hostname=cfg.get("server_hostname"),
                                   timeout_ms=cfg.get("connect_timeout_ms", 10000))

    async def link(self):
        backoff = Backoff(self.cfg.get("reconnect_base_ms", 1000), self.cfg.get("reconnect_cap_ms", 60000))
        while True:
            await netctl.wait_up()
            try:
                ws = await self._connect()
            except Exception as e:
                delay = backoff.next_ms()
                log.warn("ocpp", "connect %s failed (%s); retry in %d ms" % (self.url(), e, delay))
                bus.emit("net", {"state": "down", "why": str(e)})
                await asyncio.sleep_ms(delay)
                continue
            self.ws = ws
            self.rpc.ws = ws
            self.online = True
            self._dead.clear()
            log.info("ocpp", "connected to %s" % self.url())
            bus.emit("net", {"state": "up"})
            reader = asyncio.create_task(self._read(ws))
            try:
                await self._session(backoff)
            except (NotConnected, wsock.WsError):
                pass
            except Exception as e:
                log.exc("ocpp", e, "session")
            self.online = False
            self.rpc.drop()
            self.ws = None
            reader.cancel()
            # The link is over (closed, silent, or dropped on purpose): no closing handshake over
            # a link that may not carry it, just let go of the socket.
            ws.abort("link down")
            bus.emit("net", {"state": "down"})
            delay = backoff.next_ms()
            log.warn("ocpp", "connection lost; reconnect in %d ms" % delay)
            await asyncio.sleep_ms(delay)

    async def _read(self, ws):
        try:
            await self.rpc.serve(ws)
        except wsock.WsClosed as e:
            log.warn("ocpp", "websocket closed (%d %s)" % (e.code, e.reason))
        except Exception as e:
            log.exc("ocpp", e, "read")
        finally:
            self.rpc.drop()
            self._dead.set()

    async def reconnect(self, why, abort=False):
        # Drop the link (with a closing handshake unless the network itself is gone); link() redials.
        log.info("ocpp", "reconnecting: " + why)
        ws = self.ws
        if ws is not None:
            try:
                if abort:
                    ws.abort(why)
                else:
                    await ws.close()
            except Exception:
                pass
        self._dead.set()

    async def _session(self, backoff):
        if not self.registered:
            await self._boot()
        else:
            self._queue_current_statuses(True)
        backoff.reset()
        self.wake_tx.set()
        self.wake_status.set()
        await self._keepalive()

    async def _keepalive(self):
        # Returns when the link is dead: closed by the peer, or silent for two ping intervals. Pings
        # only a link silent for a whole interval: traffic (or the back-end's own pings) already
        # shows it alive, and a ping a minute is a wake-up and two frames in every charger.
        while True:
            interval = self.keys["WebSocketPingInterval"]
            self.wake_link.clear()
            if await self._dead.wait(interval if interval > 0 else 3600):
                return
            if interval <= 0 or self.ws is None:
                continue
            silent = time.ticks_diff(time.ticks_ms(), self.ws.last_rx_ms)
            if silent > 2 * interval * 1000:
                log.warn("ocpp", "no answer to pings for %d s: link dead" % (silent // 1000))
                return
            if silent < interval * 1000:
                continue   # the peer was heard within the interval (a frame, its own ping): alive
            try:
                await self.ws.ping(b"")
            except Exception:
                return

    # -- registration -----------------------------------------------------------------------

    def boot_payload(self):
        cfg = self.cfg
        p = {"chargePointVendor": cfg.get("vendor", "EVFleet")[:20],
             "chargePointModel": cfg.get("model", "Emu-AC22")[:20],
             "chargePointSerialNumber": cfg.get("serial", self.charger.id)[:25],
             "firmwareVersion": cfg.get("fw_version", "1.0.0")[:50],
             "meterType": "EmuMeter", "meterSerialNumber": ("M-" + self.charger.id)[:25]}
        return p

    async def _boot(self):
        while True:
            try:
                res = await self.rpc.call("BootNotification", self.boot_payload())
            except (CallError, CallTimeout) as e:
                log.warn("ocpp", "BootNotification failed: %s" % e)
                await asyncio.sleep(_BOOT_RETRY_S)
                continue
            self._set_time(res.get("currentTime"))
            status = res.get("status")
            interval = res.get("interval", 0)
            self.boot_status = status
            bus.emit("boot", {"status": status, "interval": interval})
            if status == "Accepted":
                self.registered = True
                if interval and interval > 0:
                    self.keys.force("HeartbeatInterval", interval)
                    self.wake_hb.set()
                log.info("ocpp", "registered (heartbeat %d s)" % self.keys["HeartbeatInterval"])
                self.reported = {}
                self.status_q = []
                self._queue_current_statuses(False)
                return
            wait = interval if interval and interval > 0 else _BOOT_RETRY_S
            log.warn("ocpp", "BootNotification %s; retry in %d s" % (status, wait))
            if await self._dead.wait(wait):
                raise NotConnected("link lost while not registered")

    def _set_time(self, text):
        if text:
            try:
                self.charger.clock.set(parse_iso(text))
            except ValueError:
                log.warn("ocpp", "bad currentTime %r" % text)

    # -- periodic senders -------------------------------------------------------------------

    async def heartbeat(self):
        while True:
            interval = self.keys["HeartbeatInterval"]
            self.wake_hb.clear()
            if await self.wake_hb.wait(interval if interval > 0 else 3600):
                continue   # interval changed: start timing again
            if interval > 0 and self.registered and self.online:
                try:
                    res = await self.rpc.call("Heartbeat", {})
                    self._set_time(res.get("currentTime"))
                except (CallError, CallTimeout, NotConnected) as e:
                    log.warn("ocpp", "Heartbeat failed: %s" % e)

    async def statuses(self):
        while True:
            await self.wake_status.wait()
            self.wake_status.clear()
            while self.registered and self.online and self.status_q:
                conn, status, error, info, ts = self.status_q[0]
                p = {"connectorId": conn, "status": status, "errorCode": error, "timestamp": iso(ts)}
                if info:
                    p["info"] = str(info)[:50]
                try:
                    await self.rpc.call("StatusNotification", p)
                except NotConnected:
                    break
                except (CallError, CallTimeout) as e:
                    log.warn("ocpp", "StatusNotification failed: %s" % e)
                if self.status_q and self.status_q[0][4] == ts and self.status_q[0][0] == conn:
                    self.status_q.pop(0)
                self.reported[conn] = (status, error)

    async def call(self, action, payload):
        # A CALL from firmware features (DataTransfer from the console, notifications...).
        return await self.rpc.call(action, payload)

    def counters(self):
        return {"online": self.online, "registered": self.registered, "boot": self.boot_status,
                "sent": self.rpc.sent, "received": self.rpc.received, "queued": len(self.queue.items),
                "rtt_ms": self.rpc.last_rtt_ms}
