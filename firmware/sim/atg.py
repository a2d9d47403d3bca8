# Automatic transaction generator: an emulated driver per connector who plugs in, presents a card,
# charges for a while, presents it again, unplugs and comes back after a gap — a fleet's load with
# nobody driving the consoles (as in the peer simulators). It acts only through the emulated
# hardware (board.sim), like the console's plug/swipe, so the firmware cannot tell the difference.
import asyncio
from timedevent import TimedEvent
import random
import bus
import log

# Settings and their defaults; the standard workload's session and gap lengths, in seconds.
DEFAULTS = {"session_s": (60, 180), "gap_s": (15, 30), "first_s": 60, "tags": ("TAG1",), "wait_s": 60}


def settings(given):
    # The defaults overlaid with `given` (a dict), checked; ValueError names a bad one.
    out = dict(DEFAULTS)
    for k, v in given.items():
        if k not in DEFAULTS:
            raise ValueError("unknown ATG setting %r (known: %s)" % (k, ", ".join(sorted(DEFAULTS))))
        if k in ("session_s", "gap_s"):
            if isinstance(v, str):   # typed on the console: 60-180
                try:
                    v = tuple(float(x) for x in v.split("-"))
                except ValueError:
                    pass
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                v = (v, v)
            if (not isinstance(v, (list, tuple)) or len(v) != 2
                    or not all(isinstance(x, (int, float)) and x >= 0 for x in v) or v[0] > v[1]):
                raise ValueError("ATG %s must be [low, high] seconds, low <= high" % k)
            v = (v[0], v[1])
        elif k == "tags":
            if isinstance(v, str):
                v = v.split(",")
            if not v or not all(isinstance(t, str) and 0 < len(t) <= 20 for t in v):
                raise ValueError("ATG tags must be idTags of 1..20 characters")
            v = tuple(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError("ATG %s must be a number of seconds >= 0" % k)
        out[k] = v
    if out["wait_s"] <= 0:
        raise ValueError("ATG wait_s must be > 0")
    return out


_atg = None


def get(charger, sim):
    # The charger's one generator (the console and the boot configuration share it).
    global _atg
    if _atg is None:
        _atg = Atg(charger, sim)
    return _atg


class Atg:
    def __init__(self, charger, sim):
        self.charger = charger
        self.sim = sim
        self.conf = None       # the settings while running
        self.sessions = 0      # sessions completed (plugged, charged, stopped, unplugged)
        self.errors = 0
        self.last_error = None
        self._tasks = []
        self._want = {}        # connector -> [status awaited, Event]

    def start(self, given=None):
        conf = settings(given or {})
        self.stop()
        self.conf = conf
        bus.subscribe(self._on_status, ("status",))
        self._tasks = [asyncio.create_task(self._driver(c.id)) for c in self.charger.connectors[1:]]
        log.info("atg", "started: sessions %g-%g s, gaps %g-%g s" % (conf["session_s"] + conf["gap_s"]))

    def stop(self):
        if self.conf is None:
            return
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        self._want = {}
        self.conf = None
        bus.unsubscribe(self._on_status)
        log.info("atg", "stopped after %d sessions" % self.sessions)

    def info(self):
        c = self.conf
        return {"running": c is not None, "sessions": self.sessions, "errors": self.errors,
                "last_error": self.last_error,
                "settings": None if c is None else {k: list(v) if isinstance(v, tuple) else v for k, v in c.items()}}

    def _on_status(self, kind, d):
        w = self._want.get(d["conn"])
        if w is not None and d["status"] == w[0]:
            w[1].set()

    async def _until(self, conn, status):
        # Wait for the connector to reach `status` (it may be there already).
        if self.charger.connectors[conn].status == status:
            return
        ev = TimedEvent()
        self._want[conn] = [status, ev]
        try:
            if not await ev.wait(self.conf["wait_s"]):
                raise RuntimeError("connector %d not %s within %g s (it is %s)"
                                   % (conn, status, self.conf["wait_s"], self.charger.connectors[conn].status))
        finally:
            self._want.pop(conn, None)

    async def _driver(self, conn):
        c = self.conf
        u = random.uniform
        # Arrivals spread over first_s: drivers in lock-step would make every sampling timer fire
        # in the same seconds, which no real fleet does.
        await asyncio.sleep(u(0, max(c["first_s"], c["gap_s"][1])))
        while True:
            tag = random.choice(c["tags"])
            try:
                self.sim.plug(conn)
                self.sim.card(tag, conn)              # Authorize, then StartTransaction
                await self._until(conn, "Charging")
                await asyncio.sleep(u(*c["session_s"]))
                self.sim.card(tag, conn)              # the same card stops it
                await self._until(conn, "Finishing")
                self.sim.unplug(conn)
                self.sessions += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:   # counted; the driver goes on like a real one would
                self.errors += 1
                self.last_error = "connector %d: %s" % (conn, e)
                log.warn("atg", self.last_error)
                try:
                    self.sim.unplug(conn)
                except Exception:
                    pass
            await asyncio.sleep(u(*c["gap_s"]))
