# Tests for net.url: ws/wss URL parsing and the ValueErrors a bad charger config must produce.
import mptest
from net.url import parse


def test_plain_with_path():
    assert parse("ws://csms.example/ocpp/CP00001") == (False, "csms.example", 80, "/ocpp/CP00001")


def test_secure_defaults():
    assert parse("wss://csms.example") == (True, "csms.example", 443, "/")


def test_port_and_query():
    assert parse("ws://10.0.0.5:9000/ocpp/CP1?token=a") == (
        False,
        "10.0.0.5",
        9000,
        "/ocpp/CP1?token=a",
    )
    assert parse("ws://h?x=1") == (False, "h", 80, "/?x=1")


def test_scheme_case_insensitive_host_kept():
    assert parse("WSS://Csms:8443/") == (True, "Csms", 8443, "/")


def test_ipv6_literal():
    assert parse("ws://[::1]:8080/p") == (False, "::1", 8080, "/p")
    assert parse("wss://[fe80::1]/") == (True, "fe80::1", 443, "/")


def test_bad_urls_raise_value_error():
    bad = (
        "http://h/",
        "h/path",
        "ws:/h",
        "ws://",
        "ws:///p",
        "ws://:80/",
        "ws://h:0/",
        "ws://h:65536/",
        "ws://h:abc/",
        "ws://h:/",
        "ws://u:p@h/",
        "ws://h/p#frag",
        "ws://[::1/",
        "ws://[::1]x/",
        "ws://h/a b",
        "ws://h/a\r\nX: y",
        None,
        b"ws://h/",
    )
    for url in bad:
        try:
            parse(url)
        except ValueError as e:
            assert str(e), url  # the message says what is wrong
            continue
        raise AssertionError("accepted %r" % (url,))


mptest.run(globals())
