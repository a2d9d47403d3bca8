# Tests for console/repl.py: the raw REPL / raw-paste byte protocol as mpremote speaks it.
import mptest
from console.repl import RawRepl, BANNER, WINDOW


def repl():
    out = bytearray()
    ns = {"__name__": "__main__"}

    def w(b):
        out.extend(b)

    r = RawRepl(w, ns)
    r.enter()
    return r, out, ns


def test_banner_and_soft_reboot_exact_bytes():
    r, out, _ = repl()
    assert bytes(out) == b"raw REPL; CTRL-B to exit\r\n>"
    out[:] = b""
    r.feed(b"\x04")  # empty buffer: soft reset, faked
    assert bytes(out) == b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>"


def test_raw_exec_shared_globals_and_framing():
    r, out, ns = repl()
    out[:] = b""
    r.feed(b"x = 6 * 7\x04")
    assert bytes(out) == b"OK\x04\x04>"
    assert ns["x"] == 42
    out[:] = b""
    r.feed(b"1/0\x04")
    o = bytes(out)
    assert o.startswith(b"OK\x04Traceback")
    assert o.endswith(b"ZeroDivisionError: divide by zero\n\x04>")
    assert b"_run" not in o


def test_ctrl_c_clears_and_ctrl_a_rebanners_and_ctrl_b_leaves():
    r, out, _ = repl()
    out[:] = b""
    r.feed(b"junk\x03\r\x01")
    assert bytes(out) == BANNER
    out[:] = b""
    data = b"\r\x02plug 1\r"
    i = r.feed(data)
    assert r.done and bytes(out) == b"\r\n" and data[i:] == b"plug 1\r"


def test_raw_paste_flow_control():
    r, out, ns = repl()
    out[:] = b""
    r.feed(b"\x05A\x01")
    assert bytes(out) == b"R\x01" + bytes((WINDOW & 0xFF, WINDOW >> 8)) + b"\x01"
    out[:] = b""
    src = b"y = " + b"1+" * WINDOW + b"0\n"  # a bit more than two windows
    r.feed(src[:100])
    r.feed(src[100:])
    assert bytes(out) == b"\x01" * (len(src) // WINDOW)  # one credit per window consumed
    out[:] = b""
    r.feed(b"\x04")
    assert bytes(out) == b"\x04\x04\x04>"  # ack, no "OK", empty output, empty error, prompt
    assert ns["y"] == WINDOW


def test_raw_paste_ctrl_c_and_unknown_variant():
    r, out, _ = repl()
    r.feed(b"\x05A\x01")
    out[:] = b""
    r.feed(b"print(1)\x03")
    assert bytes(out) == b"\x04\x04KeyboardInterrupt\r\n\x04>"
    out[:] = b""
    r.feed(b"\x05B\x01")
    assert bytes(out) == b"R\x00"


def test_base_exception_is_caught():
    r, out, _ = repl()
    out[:] = b""
    r.feed(b"raise KeyboardInterrupt\x04")
    assert bytes(out).startswith(b"OK\x04") and b"KeyboardInterrupt" in out


def test_system_exit_reraised_after_frame():
    r, out, _ = repl()
    out[:] = b""
    try:
        r.feed(b"import sys\nsys.exit(99)\x04")
    except SystemExit as e:
        assert e.value == 99 if hasattr(e, "value") else True
    else:
        raise AssertionError("SystemExit swallowed")
    assert bytes(out).endswith(b"\x04>")


mptest.run(globals())
