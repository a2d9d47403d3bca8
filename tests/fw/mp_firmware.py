# Tests for the firmware feature's self-contained parts: the log ring (proto.ocpp16.firmware), the
# http URL parser (net.http.parse), and store.bundle on archives built here by hand (a tar writer
# small enough for a test; harness/fwbundle.py builds the real ones, see test_fw_bundle.py).
import mptest
import asyncio
import os
from binascii import hexlify
from hashlib import sha256

mptest.flash()

import log  # noqa: E402
from net import http  # noqa: E402
from proto.ocpp16 import firmware as fw  # noqa: E402
from store import bundle  # noqa: E402


class _Clock:
    t = 1767225600

    def now(self):
        return self.t


class _Charger:
    clock = _Clock()


class _St:
    cfg = {"log_ring": 300}
    charger = _Charger()

    def __init__(self):
        self.routes = {}
        self.features = []

    def add_feature(self, name, keys=None):
        self.features.append(name)


def test_log_ring_keeps_the_latest_whole_lines():
    st = _St()
    assert fw.install(st) == []
    assert st.firmware_status == st.diagnostics_status == st.log_status == "Idle"
    assert set(st.routes) == {"UpdateFirmware", "GetDiagnostics", "GetLog"}
    assert st.features == ["FirmwareManagement"]
    log.set_sink(lambda lvl, tag, msg: None)
    try:
        for i in range(40):
            _Clock.t += 1
            log.info("t%d" % (i % 3), "line %d é" % i)
        log.debug("t0", "below the level: not kept")
        log.error("security", "last one")
    finally:
        log.set_sink(None)
    from proto.ocpp16 import fwdiag

    got = fwdiag.lines()
    assert got[-1] == (_Clock.t, "E", "security", "last one")
    assert got[-2] == (_Clock.t, "I", "t0", "line 39 é")
    nums = [int(m.split()[1]) for ts, lvl, t, m in got[:-1]]
    assert nums == list(range(nums[0], 40)) and nums[0] > 0   # oldest dropped, order kept
    assert sum(len(("%d %s %s: %s\n" % g).encode()) for g in got) <= 300
    assert not [g for g in got if "below" in g[3]]


def test_http_parse():
    assert http.parse("http://10.0.0.1/fw/a.tar") == (False, "10.0.0.1", 80, "/fw/a.tar", None)
    assert http.parse("HTTPS://h:8443/x?y=1#frag") == (True, "h", 8443, "/x?y=1", None)
    assert http.parse("http://us%40r:p%3Aw@127.0.0.1:81") == (False, "127.0.0.1", 81, "/", ("us@r", "p:w"))
    for bad in ("ftp://h/x", "h/x", "http://", "http://h:99999/", 5):
        try:
            http.parse(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))


async def test_http_errors_without_a_server():
    try:
        await http.fetch("ftp://h/x", "x.bin")
    except http.HttpError as e:
        assert e.kind == "url"
    try:
        await http.fetch("https://127.0.0.1/x", "x.bin")
    except http.HttpError as e:
        assert e.kind == "url" and "ssl" in str(e)
    try:
        await http.fetch("http://127.0.0.1:9/x", "x.bin", timeout_ms=2000)
    except http.HttpError as e:
        assert e.kind == "connect", e
    try:
        os.stat("x.bin")
        raise AssertionError("a failed download left its file")
    except OSError:
        pass


# -- bundles -------------------------------------------------------------------------------------

def _tar_member(name, data):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000644\0"
    h[124:136] = ("%011o\0" % len(data)).encode()
    h[136:148] = b"00000000000\0"
    h[156] = 0x30
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b" " * 8
    h[148:156] = ("%06o\0 " % sum(h)).encode()
    return bytes(h) + data + b"\0" * (-len(data) % 512)


def _bundle(files, board="unix", version="9.1", tamper=None):
    names = sorted(files)
    text = "evfw-bundle 1\nversion %s\nboard %s\nfiles %d\n" % (version, board, len(names))
    for n in names:
        text += "%s %d %s\n" % (hexlify(sha256(files[n]).digest()).decode(), len(files[n]), n)
    text += "manifest %s\n" % hexlify(sha256(text.encode()).digest()).decode()
    if tamper:
        text = tamper(text)
    out = _tar_member("MANIFEST", text.encode())
    for n in names:
        out += _tar_member(n, files[n])
    return out + b"\0" * 1024


_FILES = {"app.mpy": b"M\x06main", "proto/x.mpy": b"M\x06x" * 300, "version.mpy": b"M\x06v"}


def _write(data):
    with open("/b.tar", "wb") as f:
        f.write(data)
    return "/b.tar"


async def test_bundle_unpacks_and_activates():
    info = await bundle.unpack(_write(_bundle(_FILES)), "unix")
    assert info == {"evfw-bundle": "1", "version": "9.1", "board": "unix", "files": 3}
    bundle.activate()
    with open("/app/proto/x.mpy", "rb") as f:
        assert f.read() == _FILES["proto/x.mpy"]
    info = await bundle.unpack(_write(_bundle(_FILES, version="9.2")), "unix")
    bundle.activate()   # replaces an installed /app
    assert sorted(os.listdir("/app")) == ["app.mpy", "proto", "version.mpy"]
    assert "app.new" not in os.listdir("/") and "app.old" not in os.listdir("/")


async def _refused(data, why, board="unix"):
    try:
        await bundle.unpack(_write(data), board)
    except bundle.BundleError as e:
        assert why in str(e), str(e)
        assert "app.new" not in os.listdir("/")
        return
    raise AssertionError("accepted a bad bundle (%s)" % why)


async def test_bad_bundles_are_refused():
    good = _bundle(_FILES)
    flipped = bytearray(good)
    flipped[512 * 5 + 100] ^= 1                        # inside proto/x.mpy's data
    await _refused(bytes(flipped), "sha256 mismatch")
    await _refused(good[:3000], "truncated")
    await _refused(good, "is for board unix", board="esp32")
    await _refused(_bundle(_FILES, tamper=lambda t: t.replace("version 9.1", "version 9.9")),
                   "manifest checksum")
    await _refused(_bundle({"app.mpy": b"print(1)"}), "not bytecode")
    await _refused(_bundle({"other.mpy": b"M\x06"}), "no app module")
    await _refused(_bundle({"../evil.mpy": b"M\x06", "app.mpy": b"M\x06"}), "unsafe path")
    await _refused(b"not a tar at all" * 64, "bad tar number")
    extra = good[:-1024] + _tar_member("extra.mpy", b"M\x06") + b"\0" * 1024
    await _refused(extra, "does not list")


mptest.run(globals())
