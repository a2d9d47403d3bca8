# OCPP 1.6 security extension (whitepaper edition 2): security profiles 0-3 for the link, security
# events (a log on flash + SecurityEventNotification), root certificates, a CSR made and signed on
# the device, the charge point certificate, ExtendedTriggerMessage and SignedUpdateFirmware.
# Only thin hooks and one task stay in RAM. The work is in proto.ocpp16.seclink (setup, events,
# connecting), seccerts, secsign, secfw and the crypto package: imported when needed and dropped from
# sys.modules again (release()), so their RAM returns to the heap.
#
# Instance config (/config.json): "ocpp": {"SecurityProfile": n, "CpoName": ...} or
# "security_profile": n (factory values); "csms_url_sp<n>": the endpoint for profile n (default:
# csms_url with ws:// for 1, wss:// for 2 and 3); "ca": factory CentralSystemRootCertificate file
# (DER or PEM, default /certs/ca.der), "mfr_ca": factory ManufacturerRootCertificate; "client_cert",
# "client_key": factory charge point certificate (until CertificateSigned installs one);
# "server_hostname": the name the server certificate must carry (default: the URL's host).
import asyncio
from timedevent import TimedEvent
from micropython import const

_HEAP_CHECK_S = const(120)

LOG_PATH = "/security.log"     # the security log (= firmware.SECURITY_LOG, sent by GetLog)
LOG_OLD = "/security.log.1"    # the previous one after a rotation
STATE = "/state/security.json"
CERT = "/certs/cp.der"         # the charge point certificate (CertificateSigned) and its key
KEY = "/certs/cp.key"
NEWKEY = "/certs/cp.new.key"   # key of the CSR waiting for CertificateSigned
CHAIN = "/certs/cp.chain.pem"
CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
_LAZY = ("proto.ocpp16.seclink", "proto.ocpp16.seccerts", "proto.ocpp16.secsign",
         "proto.ocpp16.secfw", "crypto.certstore", "crypto.x509", "crypto.csr", "crypto.rsa",
         "crypto.p256", "crypto.pem", "crypto.asn1")
# request -> module.handler(sec, payload)
_ROUTES = {"InstallCertificate": "seccerts.install_certificate",
           "GetInstalledCertificateIds": "seccerts.installed_ids",
           "DeleteCertificate": "seccerts.delete_certificate",
           "CertificateSigned": "secsign.certificate_signed",
           "ExtendedTriggerMessage": "secsign.extended_trigger",
           "SignedUpdateFirmware": "secfw.signed_update_firmware"}


def install(st):
    sec = Security(st)
    for action, where in _ROUTES.items():
        st.routes[action] = _route(where)
    return [sec.run()]


def _route(where):
    mod, _, fn = where.partition(".")

    def handle(st, p):
        sec = st.security
        try:
            return getattr(sec.jobs(mod), fn)(sec, p)
        finally:
            sec.release()

    return handle


def log_files():
    # The security log files that exist, oldest first.
    out = []
    for p in (LOG_OLD, LOG_PATH):
        try:
            open(p).close()
            out.append(p)
        except OSError:
            pass
    return out


class Security:
    def __init__(self, st):
        self.st = st
        st.security = self
        st.connector = self        # the station dials through url() / connect()
        self.wake = TimedEvent()
        self.store = None          # crypto.certstore.Store while seccerts is loaded
        self.busy = 0              # jobs running on the on-demand modules
        self.noted = []            # connection-failure events already raised during this outage
        self.fails = 0
        self.csr_busy = False
        self.fw_request = None     # requestId of the SignedUpdateFirmware in progress
        self.invalid_ms = None
        self.mem_low = False
        # On-demand modules that were there before this charger started (a launcher's preloaded
        # image, shared by many chargers): dropping them would free no RAM, only cost a reload.
        import sys

        self.resident = tuple(n for n in _LAZY if n in sys.modules)
        self.call("setup")         # keys, state, event queue, bus subscription
        # hooks around the station's callables, made here so that no on-demand module stays loaded
        keys, clock, rpc = st.keys, st.charger.clock, st.rpc
        change, changed, set_, send = keys.change, keys.on_change, clock.set, rpc._send_error
        keys.change = lambda name, text: (self.call("checked_change", change, name, text)
                                          if name in ("SecurityProfile", "AuthorizationKey")
                                          else change(name, text))
        keys.on_change = lambda name, value: self.changed(changed, name, value)
        clock.set = lambda epoch: self.clock_set(set_, epoch)
        rpc._send_error = lambda mid, code, description="", details=None: self.send_error(
            send, mid, code, description, details)

    def profile(self):
        return self.st.keys["SecurityProfile"]

    def jobs(self, name):
        return __import__("proto.ocpp16." + name, None, None, ("S",))

    def call(self, fn, *args):
        # seclink.fn(self, *args), then the on-demand modules go again.
        try:
            return getattr(self.jobs("seclink"), fn)(self, *args)
        finally:
            self.release()

    def release(self):
        # Forget the on-demand modules unless a job still runs on them.
        if self.busy:
            return
        import sys

        self.store = None
        for name in _LAZY:
            if name not in self.resident and sys.modules.pop(name, None) is not None:
                pkg, _, attr = name.rpartition(".")
                try:
                    delattr(sys.modules[pkg], attr)
                except (KeyError, AttributeError):
                    pass

    def later(self, coro_fn):
        # An `after` for work that needs the on-demand modules beyond its request (held busy).
        self.busy += 1
        return lambda: self.job(coro_fn())

    async def job(self, coro, hold=False):
        # Await work running on the on-demand modules; they stay loaded until it ends.
        if hold:
            self.busy += 1
        try:
            return await coro
        finally:
            self.busy -= 1
            self.release()

    def save_state(self):
        import store.kv as kv

        kv.save(STATE, self.state)

    async def reconnect_soon(self, why):
        await asyncio.sleep_ms(300)    # let the answer that caused it leave first
        await self.st.reconnect(why)

    def event(self, kind, info=None, send=True):
        # A security event: into the log on flash and, if send, to the central system.
        self.call("event", kind, info, send)

    # -- the link (station.connector) ---------------------------------------------------------

    def url(self):
        return self.call("url")

    async def connect(self):
        return await self.job(self.jobs("seclink").connect(self), True)

    # -- hooks --------------------------------------------------------------------------------

    def changed(self, changed, name, value):
        if changed is not None:
            changed(name, value)   # the station reconnects with a new AuthorizationKey
        if name == "AuthorizationKey":
            self.event("ReconfigurationOfSecurityParameters", "AuthorizationKey changed")

    def clock_set(self, set_, epoch):
        before = self.st.charger.clock.now()
        set_(epoch)
        if abs(epoch - before) > 120:
            self.call("time_set", before, epoch)

    async def send_error(self, send, mid, code, description, details):
        if code.endswith("Violation") or code == "ProtocolError":
            self.call("invalid_message", code, description)
        await send(mid, code, description, details)

    def on_bus(self, kind, data):
        if (kind == "boot" and data.get("status") == "Accepted"
                or kind == "net" and data.get("state") == "up"):
            self.wake.set()

    # -- the task -----------------------------------------------------------------------------

    async def run(self):
        # Delivers queued events once registered (a lost link keeps them for the next one) and
        # watches the heap every 2 minutes (MemoryExhaustion): each look walks the heap's allocation
        # table and, when it is nearly full, collects it (at every 30 s that was ~3 % of a charger's
        # CPU in a fleet, measured with perf).
        import gc

        self.call("boot_events")
        st = self.st
        # Each of mem_free/mem_alloc walks the heap's whole allocation table; the heap's size
        # never changes, so the check costs one walk.
        low = max(4096, (gc.mem_free() + gc.mem_alloc()) >> 5)
        while True:
            if not await self.wake.wait(_HEAP_CHECK_S):
                if gc.mem_free() < low or self.mem_low:
                    self.call("memory_check")
                continue
            self.wake.clear()
            if self.queue and st.registered and st.online:
                await self.job(self.jobs("seclink").deliver(self), True)
