# YKC transaction records on the unix port: kept on flash until a 0x40 with their trade number,
# one in flight, oldest first, resent per the retry rules, parked, and sent again after a login.
import os
import time
import asyncio
import mptest

mptest.flash()

from proto.ykc.records import Records

PATH = "/ykc/t.log"
T1 = "32010200000001012501011200000001"
T2 = "32010200000001012501011300000002"


class FakeStation:
    # What Records needs from the link: routes, login hooks, registered, send().
    def __init__(self):
        self.routes = {}
        self.on_login = []
        self.registered = True
        self.rt = None
        self.sent = []

    def send(self, typ, f, seq=None):
        if not self.registered:
            return False
        self.sent.append(f["trade"])
        return True


def fresh(cfg=None, keep=False):
    if not keep:
        try:
            os.remove(PATH)
        except OSError:
            pass
    st = FakeStation()
    c = {"ykc_record_retry_s": 0, "ykc_record_retries": 2}
    c.update(cfg or {})
    return st, Records(st, c, PATH)


def test_kept_on_flash_in_order_until_confirmed():
    st, r = fresh()
    r.push({"trade": T1, "energy": 1})
    r.push({"trade": T2, "energy": 2})
    st, r = fresh(keep=True)                       # a restart: both still there, oldest first
    assert [i[3] for i in r.q.items] == [T1, T2] and r.q.items[0][2] == {"trade": T1, "energy": 1}
    assert st.routes[0x40] == r.confirm and st.on_login == [r.reset]
    r.confirm(0, {"trade": T1, "result": 0})
    r.confirm(0, {"trade": "9" * 32, "result": 0})   # unknown: ignored
    st, r = fresh(keep=True)
    assert [i[3] for i in r.q.items] == [T2]
    r.confirm(0, {"trade": T2, "result": 1})         # "illegal bill" still means received
    st, r = fresh(keep=True)
    assert not r.q.items


def test_one_in_flight_retried_then_parked_until_the_next_login():
    st, r = fresh({"ykc_record_retry_s": 0.05})
    r.push({"trade": T1})
    r.push({"trade": T2})
    r.kick()
    r.kick()                                         # not due yet: nothing more
    assert st.sent == [T1]
    for _ in range(2):                               # two retries
        time.sleep_ms(60)
        r.kick()
    assert st.sent == [T1, T1, T1]
    time.sleep_ms(60)
    r.kick()                                         # T1 parked for this connection: T2's turn
    assert st.sent == [T1, T1, T1, T2]
    r.confirm(0, {"trade": T2, "result": 0})         # the next one goes at once (nothing left)
    assert st.sent == [T1, T1, T1, T2]
    r.reset()                                        # a new login: T1 again
    assert st.sent[-1] == T1 and r.inflight is not None
    r.confirm(0, {"trade": T1, "result": 0})
    assert not r.q.items and r.inflight is None


def test_confirm_sends_the_next_and_nothing_goes_offline():
    st, r = fresh({"ykc_record_retry_s": 30})
    st.registered = False
    r.push({"trade": T1})
    r.push({"trade": T2})
    r.kick()
    assert st.sent == []
    st.registered = True
    r.reset()
    assert st.sent == [T1]
    r.confirm(0, {"trade": T1, "result": 0})
    assert st.sent == [T1, T2]


async def test_task_resends_on_its_own():
    st, r = fresh({"ykc_record_retry_s": 0.05, "ykc_record_retries": 1})
    task = asyncio.create_task(r.run())
    r.push({"trade": T1})
    await asyncio.sleep_ms(200)
    assert st.sent == [T1, T1]                       # first send + 1 retry, then parked
    r.push({"trade": T2})
    await asyncio.sleep_ms(20)
    assert st.sent == [T1, T1, T2]
    task.cancel()


mptest.run(globals())
