# YKC transaction records (0x3B) on flash until a 0x40 with their trade number arrives: one record in
# flight at a time, oldest first, resent every retry_s up to `retries` times per connection, then
# parked until the next login; after a reconnect, restart or power cut they all go again (§5).
import asyncio
from timedevent import TimedEvent
import time
import log
import store.kv as kv
from store.txqueue import TxQueue

_ACTION = "3B"


class Records:
    def __init__(self, st, cfg, path="/ykc/rec.log"):
        self.st = st
        kv.ensure_dir("/ykc")
        # Records are never dropped when full: TxQueue only gives way for MeterValues.
        self.q = TxQueue(path=path, limit=cfg.get("ykc_record_limit", 200))
        # Reference Decisions: 30 s x 3 retries by default, persisted across reconnects.
        self.retry_ms = int(cfg.get("ykc_record_retry_s", 30) * 1000)
        self.retries = cfg.get("ykc_record_retries", 3)
        self.tries = {}        # queue seq -> sends on this connection
        self.inflight = None   # queue seq of the record waiting for its 0x40
        self.due = 0
        self.wake = TimedEvent()
        st.routes[0x40] = self.confirm
        st.on_login.append(self.reset)

    def push(self, fields):
        self.q.push(_ACTION, fields, fields["trade"])
        self.wake.set()

    def reset(self):
        # A new connection: every stored record gets its full set of attempts again.
        self.tries = {}
        self.inflight = None
        self.kick()

    def kick(self):
        # Send the oldest record that still has attempts, unless one is in flight and not yet due.
        st = self.st
        if not st.registered:
            return
        now = time.ticks_ms()
        if self.inflight is not None and time.ticks_diff(self.due, now) > 0:
            return
        for seq, _, fields, trade in self.q.items:
            n = self.tries.get(seq, 0)
            if n > self.retries:
                continue
            if st.rt is not None:
                st.rt.flush()      # the idle 0x13 goes before the record (§5)
            if not st.send(0x3B, fields):
                return
            if n:
                log.warn("ykc", "record %s resent (%d of %d)" % (trade, n, self.retries))
            self.tries[seq] = n + 1
            self.inflight = seq
            self.due = time.ticks_add(now, self.retry_ms)
            return
        if self.inflight is not None:
            log.warn("ykc", "records unconfirmed: kept for the next connection")
        self.inflight = None

    def confirm(self, seq, f):
        # 0x40 means "received" (not "settled"): any result deletes the record (§4.14).
        trade = f["trade"]
        for item in self.q.items:
            if item[3] == trade:
                self.q.done(item[0])
                self.tries.pop(item[0], None)
                if self.inflight == item[0]:
                    self.inflight = None
                if f["result"]:
                    log.warn("ykc", "record %s confirmed as an illegal bill" % trade)
                else:
                    log.info("ykc", "record %s confirmed" % trade)
                break
        else:
            log.warn("ykc", "0x40 for unknown trade %s" % trade)
        self.kick()

    async def run(self):
        while True:
            self.kick()
            wait = 3600000
            if self.inflight is not None:
                wait = max(1, time.ticks_diff(self.due, time.ticks_ms()))
            self.wake.clear()
            await self.wake.wait_ms(wait)
