"""Cold boot and registration (OCPP 1.6 TC_001, TC_002): BootNotification, statuses, heartbeat."""

from __future__ import annotations

import asyncio

from tools.csms import Csms


async def test_cold_boot_reports_every_connector_and_heartbeats(start_charger, csms: Csms) -> None:
    csms.config.heartbeat_interval = 2
    cp = await start_charger("CP1", connectors=2, vendor="ACME", model="Wallbox22", serial="SN-1")
    boot = await csms.wait_for("BootNotification", cp_id="CP1", direction="in")
    assert boot.payload["chargePointVendor"] == "ACME"
    assert boot.payload["chargePointModel"] == "Wallbox22"
    assert boot.payload["chargePointSerialNumber"] == "SN-1"
    for conn in (0, 1, 2):
        rec = await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": conn})
        assert rec.payload["status"] == "Available" and rec.payload["errorCode"] == "NoError"
    first = await csms.wait_for("Heartbeat", cp_id="CP1", timeout=5)
    second = await csms.wait_for("Heartbeat", cp_id="CP1", since=first.seq, timeout=5)
    gap = second.mono - first.mono
    assert 1.5 < gap < 3.0, gap
    assert cp.state.registered


async def test_boot_rejected_then_retried_after_interval(start_charger, csms: Csms) -> None:
    csms.config.update({"boot_overrides": {"CP2": {"status": "Rejected", "interval": 2}}})
    await start_charger("CP2", wait=False)
    first = await csms.wait_for("BootNotification", cp_id="CP2", direction="in", timeout=15)
    await asyncio.sleep(0.5)
    assert not csms.records("CP2", "StatusNotification"), "a rejected charger must stay silent"
    csms.config.update({"boot_overrides": {}})
    second = await csms.wait_for("BootNotification", cp_id="CP2", direction="in", since=first.seq, timeout=6)
    assert 1.5 < second.mono - first.mono < 4
    await csms.wait_for("StatusNotification", cp_id="CP2", since=second.seq, timeout=5)


async def test_pending_charger_answers_configuration_calls(start_charger, csms: Csms) -> None:
    csms.config.update({"boot_overrides": {"CP3": {"status": "Pending", "interval": 3}}})
    await start_charger("CP3", wait=False)
    await csms.wait_for("BootNotification", cp_id="CP3", direction="out", timeout=15)
    reply = await csms.call("CP3", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert reply["configurationKey"][0]["key"] == "HeartbeatInterval"
    reply = await csms.call("CP3", "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "15"})
    assert reply["status"] == "Accepted"
    csms.config.update({"boot_overrides": {}})
    boot2 = await csms.wait_for("BootNotification", cp_id="CP3", direction="in", since=0, timeout=10,
                                where=lambda r: r.seq > 0)
    await csms.wait_for("StatusNotification", cp_id="CP3", timeout=10)
