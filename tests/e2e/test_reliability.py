"""Nothing lost: offline queue on flash, transaction message retries, a bounded queue, injected
latency and one-way partitions, CSMS restarts (OCPP 1.6 TC_036–TC_039 and the whitepaper's spirit)."""

from __future__ import annotations

import asyncio

from tools.csms import Csms

MV = "Energy.Active.Import.Register"


async def drained(cp) -> None:
    """Until every queued transaction message is confirmed (so a cut cannot cause a resend)."""
    for _ in range(100):
        if (await cp.request("status"))["link"]["queued"] == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("queue did not drain")


def energy_values(csms: Csms, cp: str, since: int = 0) -> list[tuple[int, int]]:
    """(transactionId, Wh) of every Energy.Active.Import.Register the CSMS received, in order."""
    out = []
    for r in csms.records(cp, "MeterValues", direction="in", since=since):
        for mv in r.payload["meterValue"]:
            for sv in mv["sampledValue"]:
                if sv.get("measurand", MV) == MV:
                    out.append((r.payload.get("transactionId"), int(sv["value"])))
    return out


async def test_offline_transaction_is_delivered_in_order(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"MeterValueSampleInterval": 1, "LocalAuthorizeOffline": True})
    # Put TAG1 in the authorization cache with one online session first.
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")
    await cp.wait_status(1, "Charging", timeout=5)
    await cp.request("swipe", 1, "TAG1")
    await cp.request("unplug", 1)
    await csms.wait_for("StopTransaction", cp_id="CP1")
    await drained(cp)
    mark = csms.last_seq
    await cp.request("net", "down")
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")          # authorized from the cache, offline (TC_037_1)
    await cp.wait_status(1, "Charging", timeout=5)
    await asyncio.sleep(3)
    await cp.request("swipe", 1, "TAG1")          # stopped offline too (TC_039)
    await cp.wait_status(1, "Finishing", timeout=5)
    assert not csms.records("CP1", "StartTransaction", since=mark)
    await cp.request("net", "up")
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark, timeout=20)
    start = csms.records("CP1", "StartTransaction", direction="in", since=mark)[0]
    reply = csms.records("CP1", "StartTransaction", direction="out", since=mark)[0]
    tx_id = reply.payload["transactionId"]
    assert stop.payload["transactionId"] == tx_id
    values = [(t, v) for t, v in energy_values(csms, "CP1", mark)]
    assert len(values) >= 2, values
    assert all(t == tx_id for t, _ in values)             # the id given after reconnect, mapped
    wh = [v for _, v in values]
    assert wh == sorted(wh) and start.payload["meterStart"] <= wh[0] and wh[-1] <= stop.payload["meterStop"]
    order = [r.action for r in csms.records("CP1", direction="in", since=mark)
             if r.action in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert order[0] == "StartTransaction" and order[-1] == "StopTransaction"


async def test_unknown_tag_offline_only_when_allowed(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"AllowOfflineTxForUnknownId": False})
    await cp.request("net", "down")
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "STRANGER")
    await asyncio.sleep(0.5)
    assert cp.state.status(1) == "Preparing"
    await cp.request("config", "set", "AllowOfflineTxForUnknownId", "true")
    await cp.request("swipe", 1, "STRANGER")
    await cp.wait_status(1, "Charging", timeout=5)
    mark = csms.last_seq
    await cp.request("net", "up")
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark, timeout=20)
    assert start.payload["idTag"] == "STRANGER"
    # The CSMS does not know it: with StopTransactionOnInvalidId the charger ends it (TC_037_3).
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark, timeout=10)
    assert stop.payload["reason"] == "DeAuthorized"


async def test_transaction_message_attempts_are_respected(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"TransactionMessageAttempts": 3, "TransactionMessageRetryInterval": 1})
    csms.config.update({"reply_errors": {"StartTransaction": "InternalError"}})
    mark = csms.last_seq
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")
    await asyncio.sleep(5)
    attempts = csms.records("CP1", "StartTransaction", direction="in", since=mark)
    assert len(attempts) == 3, len(attempts)
    gaps = [round(b.mono - a.mono) for a, b in zip(attempts, attempts[1:])]
    assert gaps == [1, 2], gaps     # RetryInterval × attempt number
    csms.config.update({"reply_errors": {}})


async def test_full_queue_drops_oldest_meter_values_never_start_or_stop(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", queue_limit=6, ocpp={"MeterValueSampleInterval": 1})
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")
    await cp.wait_status(1, "Charging", timeout=5)
    await csms.wait_for("StartTransaction", cp_id="CP1", direction="out")
    await drained(cp)
    await cp.request("net", "down")
    await asyncio.sleep(10)                       # ~10 meter values for a queue of 6
    await cp.request("swipe", 1, "TAG1")
    await cp.wait_status(1, "Finishing", timeout=5)
    mark = csms.last_seq
    await cp.request("net", "up")
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark, timeout=20)
    delivered = energy_values(csms, "CP1", mark)
    assert 3 <= len(delivered) <= 6, delivered
    wh = [v for _, v in delivered]
    assert wh == sorted(wh) and wh[-1] <= stop.payload["meterStop"]


async def test_injected_latency_shows_in_round_trips(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await csms.call("CP1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    fast = loop.time() - t0
    await cp.request("net", "delay", 300)
    t0 = loop.time()
    await csms.call("CP1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    slow = loop.time() - t0
    assert slow >= 0.55 and fast < 0.3, (fast, slow)
    await cp.request("net", "heal")


async def test_one_way_partition_is_detected_by_ping(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"WebSocketPingInterval": 1})
    mark = csms.last_seq
    t0 = asyncio.get_running_loop().time()
    await cp.request("net", "partition", "rx", 4)   # the charger hears nothing any more
    dropped = await csms.wait_for(cp_id="CP1", event="disconnect", since=mark, timeout=10)
    assert asyncio.get_running_loop().time() - t0 < 4.5    # two silent ping intervals, then let go
    await asyncio.sleep(4)                                  # the partition heals
    await csms.wait_for(cp_id="CP1", event="connect", since=dropped.seq, timeout=15)
    await csms.wait_connected("CP1", timeout=15)
    reply = await csms.call("CP1", "GetConfiguration", {"key": ["WebSocketPingInterval"]})
    assert reply["configurationKey"][0]["value"] == "1"
    assert not cp.exits


async def test_csms_restart_keeps_the_session(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"MeterValueSampleInterval": 1})
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")
    await cp.wait_status(1, "Charging", timeout=5)
    start = await csms.wait_for("StartTransaction", cp_id="CP1", direction="out")
    await csms.stop(abort=True)          # the CSMS crashes...
    await asyncio.sleep(3)
    mark = csms.last_seq
    await csms.start()                   # ...and comes back on the same port
    await csms.wait_for(cp_id="CP1", event="connect", since=mark, timeout=20)
    assert not csms.records("CP1", "BootNotification", direction="in", since=mark)   # no reboot
    await cp.request("swipe", 1, "TAG1")
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark, timeout=15)
    assert stop.payload["transactionId"] == start.payload["transactionId"]
    values = [v for t, v in energy_values(csms, "CP1") if t == start.payload["transactionId"]]
    assert values == sorted(values) and values[-1] <= stop.payload["meterStop"]
