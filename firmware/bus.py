# Publish/subscribe of model events, so the model knows neither the protocol nor the console.
# Kinds and payloads are listed in docs/architecture.md ("Model events").
import log

_subs = []


def subscribe(fn):
    # fn(kind, data) is called synchronously for every event; it must not block.
    if fn not in _subs:
        _subs.append(fn)


def unsubscribe(fn):
    if fn in _subs:
        _subs.remove(fn)


def emit(kind, data=None):
    for fn in _subs:
        try:
            fn(kind, data)
        except Exception as e:  # one faulty subscriber must not stop the others
            log.exc("bus", e, kind)
