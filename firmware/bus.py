# Publish/subscribe of model events, so the model knows neither the protocol nor the console.
# Kinds and payloads are listed in docs/architecture.md ("Model events").
import log

_subs = []      # (fn, kinds): kinds None = every kind but the "proto" firehose
_named = set()  # kinds some subscriber asked for by name


def subscribe(fn, kinds=None):
    # fn(kind, data) is called synchronously for each event of `kinds` (a tuple; None: every kind
    # except "proto", one per protocol frame, which only subscribers naming it get). It must not
    # block. Naming the kinds keeps a charger from calling every subscriber for every event.
    for f, _ in _subs:
        if f == fn:
            return
    _subs.append((fn, kinds))
    _collect_named()


def unsubscribe(fn):
    _subs[:] = [s for s in _subs if s[0] != fn]
    _collect_named()


def _collect_named():
    _named.clear()
    for _, kinds in _subs:
        if kinds:
            _named.update(kinds)


def wants(kind):
    # Whether an event of this kind would reach anyone: lets a hot path skip building its data.
    if kind in _named:
        return True
    if kind == "proto":
        return False
    for _, kinds in _subs:
        if kinds is None:
            return True
    return False


def emit(kind, data=None):
    for fn, kinds in _subs:
        if kinds is None:
            if kind == "proto":
                continue
        elif kind not in kinds:
            continue
        try:
            fn(kind, data)
        except Exception as e:  # one faulty subscriber must not stop the others
            log.exc("bus", e, kind)


def clear():
    # Nobody subscribed (tests that build a model of their own).
    _subs[:] = []
    _named.clear()
