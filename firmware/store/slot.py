# A small record rewritten often (a transaction checkpoint, the meter register) without the cost
# and wear of write-then-rename: two fixed-size slots written in place in turn, each a single
# write carrying a sequence number; loading takes the newest slot that parses. A power cut during
# one write can only spoil the slot being written, and the other one still holds the last value.
import json
import os
from micropython import const
import store.kv as kv

_SIZE = const(384)   # bytes per slot: room for a transaction checkpoint


def load(path, default=None):
    data = kv.read_bytes(path)
    if not data:
        return default
    best = None
    for off in range(0, len(data), _SIZE):
        try:
            seq, obj = json.loads(data[off:off + _SIZE].rstrip(b" \x00"))
        except (ValueError, TypeError):
            continue  # a torn or empty slot
        if best is None or seq > best[0]:
            best = (seq, obj)
    return default if best is None else best[1]


class Slot:
    # The file stays open between saves: an open and a close per save cost more than the write
    # (a checkpoint and a meter register at every meter reading, measured on the unix port).
    def __init__(self, path):
        self.path = path
        self.seq = 0
        self._f = None
        data = kv.read_bytes(path)
        if data:
            for off in range(0, len(data), _SIZE):
                try:
                    seq = json.loads(data[off:off + _SIZE].rstrip(b" \x00"))[0]
                    self.seq = max(self.seq, seq)
                except (ValueError, TypeError, IndexError):
                    pass

    def save(self, obj):
        rec = json.dumps([self.seq + 1, obj]).encode()
        if len(rec) > _SIZE:
            raise ValueError("record of %d bytes does not fit a %d-byte slot" % (len(rec), _SIZE))
        self.seq += 1
        f = self._f
        if f is None:
            try:
                f = open(self.path, "r+b")
            except OSError:
                f = open(self.path, "wb")   # first save: a new file, nothing to overwrite yet
                f.write(b" " * (2 * _SIZE))
            self._f = f
        try:
            f.seek((self.seq & 1) * _SIZE)
            f.write(rec + b" " * (_SIZE - len(rec)))
            kv.settle(f)
        except OSError:
            self.close()   # opened again by the next save
            raise

    def close(self):
        kv.close(self._f)
        self._f = None

    def remove(self):
        self.close()
        self.seq = 0
        try:
            os.remove(self.path)
        except OSError:
            pass
