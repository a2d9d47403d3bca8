"""Remote Trigger end to end (OCPP 1.6 TC_054, TC_055): every triggerable message really reaches the
CSMS after the TriggerMessage answer, for the requested connector; bad connectors are Rejected."""

from __future__ import annotations

import asyncio

import pytest

from tools.csms import Csms

# Only the profiles under test: all profiles together do not fit the instance heap (256k) yet.
MINE = ["reservation", "locallist", "trigger"]


@pytest.fixture
def start(start_charger):
    return lambda cid="CP1", **cfg: start_charger(cid, **{"ocpp_features": MINE, **cfg})


async def trigger(csms: Csms, message: str, conn: int | None = None, **match) -> list:
    """Trigger a message; the records of what arrived for it (after the Accepted answer)."""
    mark = csms.last_seq
    assert await csms.trigger_message("CP1", message, conn) == "Accepted"
    answer = await csms.wait_for("TriggerMessage", cp_id="CP1", type="CALLRESULT", since=mark)
    first = await csms.wait_for(message, cp_id="CP1", match=match or None, since=mark)
    assert first.seq > answer.seq, "the message came before the answer"
    await asyncio.sleep(0.3)
    return csms.records("CP1", message, direction="in", since=mark)


async def test_every_triggerable_message_is_sent(start, csms: Csms) -> None:
    cp = await start("CP1", connectors=2, ocpp={"MeterValueSampleInterval": 0})
    assert "RemoteTrigger" in (await csms.get_configuration_values("CP1", ["SupportedFeatureProfiles"]))[
        "SupportedFeatureProfiles"].split(",")
    boot = await trigger(csms, "BootNotification")
    assert boot[0].payload["chargePointModel"]
    assert len(await trigger(csms, "Heartbeat")) == 1
    for what in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        sent = await trigger(csms, what)
        assert [r.payload for r in sent] == [{"status": "Idle"}]
    # StatusNotification: one connector, or all of them (connector 0 included) without one.
    await cp.request("plug", 2)
    await cp.wait_status(2, "Preparing", timeout=5)
    await asyncio.sleep(0.3)
    sent = await trigger(csms, "StatusNotification", 2)
    assert [(r.payload["connectorId"], r.payload["status"]) for r in sent] == [(2, "Preparing")]
    sent = await trigger(csms, "StatusNotification")
    assert sorted((r.payload["connectorId"], r.payload["status"]) for r in sent) == [
        (0, "Available"), (1, "Available"), (2, "Preparing")]
    # MeterValues: no transaction, then during one (with its transactionId), context Trigger.
    sent = await trigger(csms, "MeterValues", 1)
    assert [r.payload["connectorId"] for r in sent] == [1]
    assert "transactionId" not in sent[0].payload
    sv = sent[0].payload["meterValue"][0]["sampledValue"]
    assert sv and all(v["context"] == "Trigger" for v in sv)
    mark = csms.last_seq
    await cp.request("swipe", 2, "TAG1")
    await csms.wait_for("StartTransaction", cp_id="CP1", direction="out", since=mark)
    tx = csms.active_transaction("CP1", 2)
    sent = await trigger(csms, "MeterValues", 2, connectorId=2)
    assert [r.payload.get("transactionId") for r in sent] == [tx]
    sent = await trigger(csms, "MeterValues", 0)          # the charge point: every connector
    assert sorted(r.payload["connectorId"] for r in sent) == [1, 2]


async def test_invalid_connector_is_rejected(start, csms: Csms) -> None:
    await start("CP1")
    mark = csms.last_seq
    for message in ("StatusNotification", "MeterValues", "Heartbeat"):
        assert await csms.trigger_message("CP1", message, 2) == "Rejected"           # TC_055
    await asyncio.sleep(0.5)
    sent = [r.action for r in csms.records("CP1", direction="in", since=mark) if r.type == "CALL"]
    assert not [a for a in sent if a in ("StatusNotification", "MeterValues", "Heartbeat")]
    assert await csms.trigger_message("CP1", "StatusNotification", 1) == "Accepted"
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1}, since=mark)
