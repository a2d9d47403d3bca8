# Tests for console/records.py: request parsing, reply/event framing, JSON-safe values.
import json
import mptest
from console import records
from console.records import HARNESS, PLAIN


def test_parse_request():
    assert records.parse_request(b'{"id":7,"cmd":"plug","args":[1]}') == (7, "plug", [1], None)
    assert records.parse_request('{"cmd":"help"}') == (None, "help", [], None)
    assert records.parse_request(b'{"id":"a","cmd":"x","args":null}') == ("a", "x", [], None)


def test_parse_request_errors_keep_id():
    assert records.parse_request(b"{nope")[3] == "bad JSON"
    assert records.parse_request(b"\xff\xfe")[3] == "bad JSON"
    assert records.parse_request(b"[1,2]")[3] == "a request is a JSON object"
    r = records.parse_request(b'{"id":3}')
    assert r[0] == 3 and r[3] == 'missing "cmd"'
    r = records.parse_request(b'{"id":4,"cmd":"x","args":5}')
    assert r[0] == 4 and r[3] == '"args" must be a list'


def test_frames():
    b = records.frame(HARNESS, records.reply(7, True, {"conn": 1}))
    assert b[:1] == b"\x1e" and b[-2:] == b"\r\n"
    assert json.loads(b[1:-2]) == {"id": 7, "ok": True, "data": {"conn": 1}}
    b = records.frame(PLAIN, records.reply(None, False, "bad"))
    assert b[-2:] == b"\r\n" and b[0] == ord("{")
    assert json.loads(b) == {"id": None, "ok": False, "error": "bad"}


def test_event_and_log_records():
    assert records.event("status", {"conn": 1, "status": "Charging"}) == {
        "ev": "status",
        "conn": 1,
        "status": "Charging",
    }
    assert records.event("x", 5) == {"ev": "x", "data": 5}
    rec = records.log_record("info", "ocpp", "hi")
    assert rec == {"ev": "log", "lvl": "info", "tag": "ocpp", "msg": "hi"}


class _Tx:
    def __str__(self):
        return "tx#1"


def test_values_made_json_safe():
    v = json.loads(records.dumps({"tx": _Tx(), "t": (1, 2), "b": b"ab", "x": b"\xff", 3: None}))
    assert v == {"tx": "tx#1", "t": [1, 2], "b": "ab", "x": "ff", "3": None}
    deep = [[[[[[[[1]]]]]]]]
    assert isinstance(json.loads(records.dumps(deep)), list)


mptest.run(globals())
