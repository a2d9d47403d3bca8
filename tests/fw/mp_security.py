# Tests for the security feature's on-demand logic (proto.ocpp16.seclink) on the unix port with a
# stand-in station: the security log and its rotation, the event queue, InvalidMessages throttling,
# MemoryExhaustion, the URL per security profile, the AuthorizationKey rule.
import mptest

mptest.flash()

import os
import asyncio
import store.kv as kv
from proto.ocpp16 import seclink
from proto.ocpp16 import security as S


class Clock:
    def __init__(self):
        self.t = 1767225600   # 2026-01-01T00:00:00Z

    def now(self):
        return self.t


class Charger:
    def __init__(self):
        self.id = "CP-T"
        self.clock = Clock()


class Station:
    def __init__(self, cfg, profile=0, key=""):
        self.cfg = cfg
        self.charger = Charger()
        self.keys = {"SecurityProfile": profile, "AuthorizationKey": key}


class Sec:
    # The attributes of security.Security that seclink uses.
    def __init__(self, st):
        self.st = st
        self.queue = []
        self.state = {}
        self.wake = asyncio.Event()
        self.invalid_ms = None
        self.mem_low = False

    def profile(self):
        return self.st.keys["SecurityProfile"]

    def save_state(self):
        pass


def _fresh():
    for p in (S.LOG_PATH, S.LOG_OLD, "/state/secq.json"):
        kv.remove(p)
    kv.ensure_dir("/state")


def test_event_is_logged_and_queued():
    _fresh()
    sec = Sec(Station({}))
    seclink.event(sec, "StartupOfTheDevice")
    seclink.event(sec, "SettingSystemTime", "a -> b")
    seclink.event(sec, "InvalidMessages", "x", False)
    with open(S.LOG_PATH) as f:
        lines = f.read().splitlines()
    assert lines == ["2026-01-01T00:00:00Z StartupOfTheDevice",
                     "2026-01-01T00:00:00Z SettingSystemTime a -> b",
                     "2026-01-01T00:00:00Z InvalidMessages x"]
    assert sec.queue == [["StartupOfTheDevice", 1767225600, None],
                         ["SettingSystemTime", 1767225600, "a -> b"]]
    assert kv.load("/state/secq.json") == sec.queue   # survives a reboot
    assert sec.wake.is_set()


def test_queue_is_bounded_and_log_rotates():
    _fresh()
    sec = Sec(Station({}))
    for i in range(300):
        seclink.event(sec, "InvalidChargePointCertificate", "certificate %03d " % i + "x" * 60)
    assert len(sec.queue) == 40 and sec.queue[-1][2].startswith("certificate 299")
    assert os.stat(S.LOG_PATH)[6] <= 16384 + 200
    assert os.stat(S.LOG_OLD)[6] > 16384
    assert [p for p in S.log_files()] == [S.LOG_OLD, S.LOG_PATH]


def test_invalid_messages_at_most_once_a_minute():
    _fresh()
    sec = Sec(Station({}))
    for _ in range(5):
        seclink.invalid_message(sec, "FormationViolation", "bad")
    with open(S.LOG_PATH) as f:
        assert f.read().count("InvalidMessages") == 1
    assert sec.queue == []


def test_memory_exhaustion_once_until_it_recovers():
    import gc

    _fresh()
    sec = Sec(Station({}))
    seclink.memory_check(sec)
    assert not sec.mem_low and sec.queue == []
    hog = [None] * 2000   # filled until even a collection finds no room, big pieces first
    i = 0
    for size in (1024, 128, 16):
        try:
            while i < len(hog):
                hog[i] = bytearray(size)
                i += 1
        except MemoryError:
            pass
    for j in range(4):    # 4 KB back: room to write the event, below the 8 KB mark
        hog[j] = None
    seclink.memory_check(sec)
    seclink.memory_check(sec)
    hog = None
    assert sec.mem_low
    assert [e[0] for e in sec.queue] == ["MemoryExhaustion"]
    seclink.memory_check(sec)
    assert not sec.mem_low


def test_url_per_profile():
    st = Station({"csms_url": "ws://csms:9000/ocpp/", "csms_url_sp3": "wss://mtls:8443/ocpp"})
    sec = Sec(st)
    assert seclink.url(sec) == "ws://csms:9000/ocpp/CP-T"
    st.keys["SecurityProfile"] = 1
    assert seclink.url(sec) == "ws://csms:9000/ocpp/CP-T"
    st.keys["SecurityProfile"] = 2
    assert seclink.url(sec) == "wss://csms:9000/ocpp/CP-T"
    st.keys["SecurityProfile"] = 3
    assert seclink.url(sec) == "wss://mtls:8443/ocpp/CP-T"
    st.cfg["csms_url"] = "wss://tls-only:443/x"
    st.keys["SecurityProfile"] = 1
    assert seclink.url(sec) == "ws://tls-only:443/x/CP-T"


def test_authorization_key_length_rule_in_profiles_1_and_2():
    done = []
    change = lambda name, text: done.append((name, text)) or "Accepted"  # noqa: E731
    for prof, text, want in ((0, "short", "Accepted"), (1, "short", "Rejected"),
                             (2, "x" * 41, "Rejected"), (2, "x" * 16, "Accepted"),
                             (3, "short", "Accepted")):
        sec = Sec(Station({}, prof))
        assert seclink.checked_change(sec, change, "AuthorizationKey", text) == want, (prof, text)
    assert len(done) == 3


def test_time_set_event():
    _fresh()
    sec = Sec(Station({}))
    seclink.time_set(sec, 0, 1767225600)
    assert sec.queue[0][:1] == ["SettingSystemTime"]
    assert sec.queue[0][2] == "1970-01-01T00:00:00Z -> 2026-01-01T00:00:00Z"


mptest.run(globals())
