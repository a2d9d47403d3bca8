# Locally known id tags: the authorization cache (what the back-end last answered) and the local
# authorization list the back-end manages; both persisted on flash.
from micropython import const
import store.kv as kv

_CACHE = "/state/authcache.json"
_LIST = "/state/locallist.json"
_CACHE_MAX = const(64)
LIST_MAX = const(500)


class AuthStore:
    def __init__(self):
        self._cache = None   # loaded on first use: tag -> [status, expiry epoch or None, parent]
        self._list = None    # {"v": version, "tags": {tag: [status, expiry, parent]}}

    def _c(self):
        if self._cache is None:
            self._cache = kv.load(_CACHE, {}) or {}
        return self._cache

    def _l(self):
        if self._list is None:
            self._list = kv.load(_LIST, None) or {"v": 0, "tags": {}}
        return self._list

    @staticmethod
    def _valid(entry, now):
        status, expiry, parent = entry
        if status == "Accepted" and expiry is not None and expiry < now:
            return "Expired", parent
        return status, parent

    def cached(self, tag, now):
        # (status, parent) from the cache, or None when the tag is not cached.
        e = self._c().get(tag)
        return None if e is None else self._valid(e, now)

    def remember(self, tag, status, expiry=None, parent=None):
        c = self._c()
        if c.get(tag) == [status, expiry, parent]:
            return
        if tag not in c and len(c) >= _CACHE_MAX:
            c.pop(next(iter(c)))  # dicts are unordered here: evict an arbitrary entry
        c[tag] = [status, expiry, parent]
        kv.save(_CACHE, c)

    def clear_cache(self):
        self._cache = {}
        kv.remove(_CACHE)

    def listed(self, tag, now):
        e = self._l()["tags"].get(tag)
        return None if e is None else self._valid(e, now)

    def list_version(self):
        return self._l()["v"]

    def list_size(self):
        return len(self._l()["tags"])

    def update_list(self, version, entries, full):
        # Apply a full or differential update: entries is [(tag, [status, expiry, parent] or None)].
        tags = {} if full else dict(self._l()["tags"])
        for tag, e in entries:
            if e is None:
                tags.pop(tag, None)
            else:
                tags[tag] = e
        if len(tags) > LIST_MAX:
            return False
        self._list = {"v": version, "tags": tags}
        kv.save(_LIST, self._list)
        return True
