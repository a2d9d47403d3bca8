"""Central-system commands of the Core profile end to end (OCPP 1.6 TC_007, TC_013–TC_021,
TC_030–TC_034, TC_040, TC_061, TC_062, TC_071) and the answers to malformed calls."""

from __future__ import annotations

import asyncio
import json

import pytest

from tools.csms import Csms
from tools.csms.errors import CallErrorReply


async def charging(cp, csms: Csms, tag: str = "TAG1", conn: int = 1) -> int:
    mark = csms.last_seq
    await cp.request("plug", conn)
    await cp.request("swipe", conn, tag)
    await cp.wait_status(conn, "Charging", timeout=5)
    await csms.wait_for("StartTransaction", cp_id=cp.id, direction="out", since=mark)
    tx = csms.active_transaction(cp.id, conn)
    assert tx is not None
    return tx


@pytest.mark.parametrize("kind", ["Soft", "Hard"])
async def test_reset_during_transaction(start_charger, csms: Csms, kind: str) -> None:
    cp = await start_charger("CP1")
    tx = await charging(cp, csms)
    mark = csms.last_seq
    assert await csms.reset("CP1", kind) == "Accepted"
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark, timeout=15)
    assert stop.payload["transactionId"] == tx
    assert stop.payload["reason"] == f"{kind}Reset"
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=15)
    if kind == "Soft":   # a soft reset ends the transaction before going down (TC_016)
        assert stop.seq < boot.seq
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1}, since=boot.seq, timeout=10)
    assert cp.exits and cp.exits[-1].why == "reboot"


async def test_power_cut_during_transaction_closes_it_after_boot(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"MeterValueSampleInterval": 1})
    tx = await charging(cp, csms)
    await csms.wait_for("MeterValues", cp_id="CP1", match={"transactionId": tx}, timeout=5)
    mark = csms.last_seq
    cp.power_cut()   # SIGKILL: no chance to say goodbye (TC_032_2)
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=15)
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=boot.seq, timeout=10)
    assert stop.payload["transactionId"] == tx and stop.payload["reason"] == "PowerLoss"
    values = [int(sv["value"]) for r in csms.records("CP1", "MeterValues", direction="in")
              for mv in r.payload["meterValue"] for sv in mv["sampledValue"]
              if sv.get("measurand") == "Energy.Active.Import.Register"]
    assert stop.payload["meterStop"] >= max(values)   # the last persisted value, never backwards
    assert cp.exits[-1].why == "killed by SIGKILL"


async def test_get_and_change_configuration(start_charger, csms: Csms) -> None:
    await start_charger("CP1")
    reply = await csms.call("CP1", "GetConfiguration", {})
    keys = {k["key"]: k for k in reply["configurationKey"]}
    for required in ("HeartbeatInterval", "MeterValueSampleInterval", "NumberOfConnectors",
                     "SupportedFeatureProfiles", "ConnectionTimeOut", "LocalPreAuthorize"):
        assert required in keys
    assert keys["NumberOfConnectors"]["readonly"] is True and keys["NumberOfConnectors"]["value"] == "1"
    assert "AuthorizationKey" not in keys   # write-only
    reply = await csms.call("CP1", "GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]})
    assert [k["key"] for k in reply["configurationKey"]] == ["HeartbeatInterval"]
    assert reply["unknownKey"] == ["NoSuchKey"]
    change = lambda k, v: csms.call("CP1", "ChangeConfiguration", {"key": k, "value": v})  # noqa: E731
    assert (await change("MeterValueSampleInterval", "17"))["status"] == "Accepted"
    assert (await change("NoSuchKey", "1"))["status"] == "NotSupported"          # TC_040_1
    assert (await change("MeterValueSampleInterval", "-5"))["status"] == "Rejected"  # TC_040_2
    assert (await change("NumberOfConnectors", "3"))["status"] == "Rejected"      # read-only
    assert (await change("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus"))["status"] == "Rejected"
    reply = await csms.call("CP1", "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
    assert reply["configurationKey"][0]["value"] == "17"


async def test_configuration_survives_reboot(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    await csms.call("CP1", "ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "45"})
    mark = csms.last_seq
    await csms.reset("CP1", "Hard")
    await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=15)
    reply = await csms.call("CP1", "GetConfiguration", {"key": ["ConnectionTimeOut"]})
    assert reply["configurationKey"][0]["value"] == "45"
    assert cp.restarts == 1


async def test_heartbeat_interval_change_takes_effect(start_charger, csms: Csms) -> None:
    await start_charger("CP1")
    await csms.call("CP1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "1"})
    first = await csms.wait_for("Heartbeat", cp_id="CP1", since=csms.last_seq, timeout=5)
    second = await csms.wait_for("Heartbeat", cp_id="CP1", since=first.seq, timeout=5)
    assert 0.5 < second.mono - first.mono < 2


async def test_clock_aligned_meter_values(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"ClockAlignedDataInterval": 2, "MeterValueSampleInterval": 0})
    await charging(cp, csms)
    a = await csms.wait_for("MeterValues", cp_id="CP1", since=csms.last_seq, timeout=5)
    b = await csms.wait_for("MeterValues", cp_id="CP1", since=a.seq, timeout=5)
    for rec in (a, b):
        mv = rec.payload["meterValue"][0]
        assert mv["sampledValue"][0]["context"] == "Sample.Clock"
        assert int(mv["timestamp"][17:19]) % 2 == 0   # on wall-clock multiples of the interval


async def test_unlock_connector(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    assert (await csms.call("CP1", "UnlockConnector", {"connectorId": 1}))["status"] == "Unlocked"  # TC_017_1
    assert (await csms.call("CP1", "UnlockConnector", {"connectorId": 7}))["status"] == "NotSupported"  # TC_031
    tx = await charging(cp, csms)
    mark = csms.last_seq
    assert (await csms.call("CP1", "UnlockConnector", {"connectorId": 1}))["status"] == "Unlocked"  # TC_018_1
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark)
    assert stop.payload["transactionId"] == tx and stop.payload["reason"] == "UnlockCommand"
    await cp.request("unplug", 1)
    await charging(cp, csms)
    await cp.request("lock", 1, "jam")   # the lock sticks engaged (TC_030)
    mark = csms.last_seq
    assert (await csms.call("CP1", "UnlockConnector", {"connectorId": 1}))["status"] == "UnlockFailed"
    await csms.wait_for("StatusNotification", cp_id="CP1",
                        match={"connectorId": 1, "status": "Faulted", "errorCode": "ConnectorLockFailure"}, since=mark)


async def test_unlock_fixed_cable_not_supported(start_charger, csms: Csms) -> None:
    await start_charger("CP1", fixed_cable=True)
    assert (await csms.call("CP1", "UnlockConnector", {"connectorId": 1}))["status"] == "NotSupported"


async def test_change_availability(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", connectors=2)
    await charging(cp, csms, conn=1)
    mark = csms.last_seq
    reply = await csms.call("CP1", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    assert reply["status"] == "Scheduled"   # connector 1 is charging
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 2, "status": "Unavailable"}, since=mark)
    await csms.remote_stop("CP1")
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Unavailable"}, since=mark)
    # Inoperative survives a power cycle (TC_034).
    mark = csms.last_seq
    cp.power_cut()
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=15)
    for conn in (0, 1, 2):
        rec = await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": conn}, since=boot.seq)
        assert rec.payload["status"] == "Unavailable"
    assert await csms.remote_start("CP1", "TAG1", 2) == "Rejected"
    reply = await csms.call("CP1", "ChangeAvailability", {"connectorId": 0, "type": "Operative"})
    assert reply["status"] == "Accepted"
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 2, "status": "Available"},
                        since=boot.seq)
    bad = await csms.call("CP1", "ChangeAvailability", {"connectorId": 9, "type": "Operative"})
    assert bad["status"] == "Rejected"


async def test_authorization_cache_and_clear_cache(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"LocalPreAuthorize": True})
    await charging(cp, csms, "TAG1")
    await csms.remote_stop("CP1")
    await csms.wait_for("StopTransaction", cp_id="CP1")
    await cp.request("unplug", 1)
    mark = csms.last_seq
    await charging(cp, csms, "TAG1")   # cached and LocalPreAuthorize: no Authorize (TC_007_1)
    assert not csms.records("CP1", "Authorize", direction="in", since=mark)
    await csms.remote_stop("CP1")
    await cp.request("unplug", 1)
    assert (await csms.call("CP1", "ClearCache", {}))["status"] == "Accepted"
    mark = csms.last_seq
    await charging(cp, csms, "TAG1")   # asks the CSMS again (TC_061_1)
    assert csms.records("CP1", "Authorize", direction="in", since=mark)


async def test_data_transfer_both_ways(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    reply = await csms.call("CP1", "DataTransfer", {"vendorId": "Nobody"})
    assert reply["status"] == "UnknownVendorId"   # TC_062
    reply = await csms.call("CP1", "DataTransfer", {"vendorId": "EVFleet", "messageId": "Nope"})
    assert reply["status"] == "UnknownMessageId"
    reply = await csms.call("CP1", "DataTransfer", {"vendorId": "EVFleet", "messageId": "Echo", "data": "hi"})
    assert reply == {"status": "Accepted", "data": "hi"}
    answer = await cp.request("datatransfer", "com.example", "ping", "x")
    assert answer["status"] == "UnknownVendorId"
    await csms.wait_for("DataTransfer", cp_id="CP1", match={"vendorId": "com.example", "messageId": "ping"})


@pytest.mark.parametrize("frame, code", [
    ('[2, "m1", "Reset", {"type": "Sideways"}]', "PropertyConstraintViolation"),
    ('[2, "m2", "Reset", {"type": 5}]', "TypeConstraintViolation"),
    ('[2, "m3", "Reset", {}]', "OccurenceConstraintViolation"),
    ('[2, "m4", "Reset", {"type": "Soft", "extra": 1}]', "FormationViolation"),
    ('[2, "m5", "Reset", "Soft"]', "FormationViolation"),
    ('[2, "m6", "BakeCake", {}]', "NotImplemented"),
    ('[2, "m7", "UnlockConnector", {"connectorId": "one"}]', "TypeConstraintViolation"),
    ('[2, "m8", "GetConfiguration", {"key": "HeartbeatInterval"}]', "TypeConstraintViolation"),
    ('[2, "m9", "ChangeConfiguration", {"key": "k", "value": "' + "x" * 501 + '"}]', "PropertyConstraintViolation"),
])
async def test_bad_calls_get_the_right_callerror(start_charger, csms: Csms, frame: str, code: str) -> None:
    cp = await start_charger("CP1")
    raw = await csms.send_raw("CP1", frame)
    assert raw is not None, "no answer"
    reply = json.loads(raw)
    assert reply[0] == 4 and reply[1] == json.loads(frame)[1] and reply[2] == code, reply
    status = await cp.request("status")   # and the charger lives on
    assert status["link"]["online"]


async def test_garbage_frames_are_dropped_and_charger_survives(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    for junk in ("not json", "{}", "[]", "[9, \"x\"]", "[2]", "\"str\"", "[3, \"zz\", {}]"):
        await csms.send_raw("CP1", junk, timeout=0.3)
    reply = await csms.call("CP1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert reply["configurationKey"]
    assert (await cp.request("status"))["link"]["online"]
    with pytest.raises(CallErrorReply):
        await csms.call("CP1", "Reset", {"type": "Sideways"}, validate=False)
