# Transaction messages kept on flash until the back-end confirmed them: an append-only journal
# (one JSON line per message, one per confirmation) so a power cut mid-write loses at most the
# line being written, which the loader skips. Compacted when it empties or grows. The journal stays
# open between appends: opening and closing it cost more than the write (two per message).
import json
import os
from micropython import const
import log
import store.kv as kv

_COMPACT_LINES = const(400)


def _ref(ref):
    # A message's reference as JSON: an int (OCPP transaction ref), a string (a YKC trade number).
    return str(ref) if isinstance(ref, int) else json.dumps(ref)


class TxQueue:
    def __init__(self, path="/txq.log", limit=500):
        self.path = path
        self.limit = limit
        self.items = []       # [seq, action, payload, ref] in send order
        self.ids = {}         # transaction ref -> id given by the back-end
        self.seq = 0
        self.dropped = 0
        self._lines = 0
        self._f = None        # the journal, open for appending
        self._load()

    def _load(self):
        try:
            f = open(self.path)
        except OSError:
            return
        pending = {}
        bad = 0
        with f:
            for line in f:
                self._lines += 1
                try:
                    r = json.loads(line)
                    if "d" in r:
                        pending.pop(r["d"], None)
                    elif "m" in r:
                        self.ids[r["m"]] = r["id"]
                    elif "u" in r:
                        self.ids.pop(r["u"], None)
                    else:
                        pending[r["n"]] = [r["n"], r["a"], r["p"], r.get("r")]
                        self.seq = max(self.seq, r["n"])
                except (ValueError, KeyError, TypeError):
                    bad += 1   # the torn last line of a power cut, or damage: skip it
        if bad:
            log.warn("txq", "%d unreadable journal line(s) skipped" % bad)
        self.items = sorted(pending.values(), key=lambda i: i[0])
        if self.items:
            log.info("txq", "%d transaction message(s) waiting from before the reboot" % len(self.items))
        self._compact()

    def _write(self, line):
        f = self._f
        if f is None:
            f = self._f = open(self.path, "a")
        try:
            f.write(line)
            kv.settle(f)
        except OSError:
            self._close()   # opened again by the next write
            raise
        self._lines += 1

    def _close(self):
        kv.close(self._f)
        self._f = None

    def _append(self, rec):
        self._write(json.dumps(rec) + "\n")

    def push(self, action, payload, ref=None):
        # Persist a message before anyone tries to send it; returns False when refused (full).
        if len(self.items) >= self.limit and not self._make_room(action):
            self.dropped += 1
            log.error("txq", "queue full (%d): %s dropped" % (self.limit, action))
            return False
        self.seq += 1
        # payload may be JSON text already (built by template): the line embeds it as is.
        text = payload if isinstance(payload, str) else json.dumps(payload)
        # Joined, not formatted: made at its final size (measured: a ~700-byte format makes 9
        # allocations of twice its size, a join 3).
        self._write("".join(('{"n":', str(self.seq), ',"a":"', action, '","r":', _ref(ref), ',"p":', text, "}\n")))
        self.items.append([self.seq, action, payload, ref])
        return True

    def _make_room(self, action):
        # Full: periodic meter values give way (oldest first); starts and stops are never dropped.
        for i, item in enumerate(self.items):
            if item[1] == "MeterValues":
                self.done(item[0])
                self.dropped += 1
                log.warn("txq", "queue full: oldest MeterValues dropped")
                return True
        return action != "MeterValues"

    def head(self):
        return self.items[0] if self.items else None

    def done(self, seq):
        # The back-end confirmed (or we gave up on) a message: journal it, then forget it.
        for i, item in enumerate(self.items):
            if item[0] == seq:
                self._write('{"d":%d}\n' % seq)
                self.items.pop(i)
                break
        # Rewriting the journal costs a file rewrite: only when nothing is left at all (the file
        # just goes) or when it has grown long; an emptied queue with a live id mapping waits.
        if (not self.items and not self.ids) or self._lines > _COMPACT_LINES:
            self._compact()

    def map_id(self, ref, tx_id):
        self.ids[ref] = tx_id
        self._append({"m": ref, "id": tx_id})

    def unmap(self, ref):
        if self.ids.pop(ref, None) is not None:
            self._append({"u": ref})
            if not self.items and not self.ids:
                self._compact()

    def has_ref(self, ref):
        for item in self.items:
            if item[3] == ref:
                return True
        return False

    def _compact(self):
        # Rewrite the journal with only what is still pending (write-then-rename: atomic).
        self._close()
        if not self.items and not self.ids:
            try:
                os.remove(self.path)
            except OSError:
                pass
            self._lines = 0
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            for ref, tx_id in self.ids.items():
                f.write(json.dumps({"m": ref, "id": tx_id}) + "\n")
            for seq, action, payload, ref in self.items:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                f.write('{"n":%d,"a":"%s","r":%s,"p":%s}\n' % (seq, action, _ref(ref), text))
        kv.rename(tmp, self.path)
        self._lines = len(self.items) + len(self.ids)
