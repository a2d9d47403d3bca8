# Machine records on the console (docs/architecture.md, "Console (serial) protocol"): requests,
# replies and events as JSON, framed "\x1e"+JSON+"\r\n" for the harness or as plain JSON lines.
import json
from micropython import const

# Channels on one console stream; each has its own events subscription.
HUMAN = const(0)  # typed text, answered with text
HARNESS = const(1)  # "\x1e" records
PLAIN = const(2)  # plain JSON lines (user programs)
NAMES = ("human", "harness", "json")

_DEPTH = const(6)  # nesting kept when making values JSON-safe


def parse_request(text):
    # (id, cmd, args, error) from a request's JSON text (bytes or str). error is None or a message;
    # id is whatever the request carried (None if absent or unreadable) so the reply can echo it.
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeError):
        return None, None, None, "bad JSON"
    if not isinstance(obj, dict):
        return None, None, None, "a request is a JSON object"
    rid = safe(obj.get("id"))
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        return rid, None, None, 'missing "cmd"'
    args = obj.get("args")
    if args is None:
        args = []
    elif not isinstance(args, list):
        return rid, cmd, None, '"args" must be a list'
    return rid, cmd, args, None


def reply(rid, ok, value):
    # A reply object: value is the data (ok) or the error message (not ok).
    if ok:
        return {"id": rid, "ok": True, "data": value}
    return {"id": rid, "ok": False, "error": value}


def event(kind, data):
    # An event record: {"ev": kind, ...data}; data that is not a dict goes under "data".
    rec = {"ev": kind}
    if isinstance(data, dict):
        for k in data:
            rec[k] = data[k]
    elif data is not None:
        rec["data"] = data
    return rec


def log_record(lvl_name, tag, msg):
    return {"ev": "log", "lvl": lvl_name, "tag": tag, "msg": msg}


def log_text(lvl_name, tag, msg):
    # The JSON text of a log record, built directly (no dict, no deep copy).
    return ('{"ev":"log","lvl":"%s","tag":"%s","msg":%s}' % (lvl_name, tag, json.dumps(str(msg)))).encode()


def event_text(kind, data):
    # The JSON text of an event record. Model events carry plain JSON data; anything else is
    # made JSON-safe first.
    if data is None:
        return ('{"ev":"%s"}' % kind).encode()
    if not isinstance(data, dict):
        return dumps(event(kind, data)).encode()
    try:
        body = json.dumps(data)
    except (TypeError, ValueError):
        body = dumps(data)
    if body == "{}":
        return ('{"ev":"%s"}' % kind).encode()
    return ('{"ev":"%s",%s' % (kind, body[1:])).encode()


def frame(channel, obj):
    # The bytes of one record for a machine channel (HARNESS or PLAIN).
    js = dumps(obj).encode()
    if channel == HARNESS:
        return b"\x1e" + js + b"\r\n"
    return js + b"\r\n"


def dumps(obj):
    # Compact JSON of any value (MicroPython's json writes repr() of unknown objects: not JSON).
    return json.dumps(safe(obj), separators=(",", ":"))


def safe(v, depth=0):
    # v with everything JSON cannot hold turned into str (objects) or lists (tuples); bytes as text.
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if depth >= _DEPTH:
        return str(v)
    if isinstance(v, dict):
        return {str(k): safe(v[k], depth + 1) for k in v}
    if isinstance(v, (list, tuple)):
        return [safe(x, depth + 1) for x in v]
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode()
        except UnicodeError:
            return bytes(v).hex()
    return str(v)
