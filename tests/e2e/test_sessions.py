"""Charging sessions end to end (OCPP 1.6 TC_003, TC_004, TC_005, TC_010–TC_012, TC_023, TC_041,
TC_068–TC_070): what the CSMS receives while the emulated EV and driver act on the console."""

from __future__ import annotations

import asyncio

from tools.csms import Csms


def statuses(csms: Csms, cp: str, conn: int, since: int = 0) -> list[str]:
    return [r.payload["status"] for r in csms.records(cp, "StatusNotification", direction="in", since=since)
            if r.payload["connectorId"] == conn]


async def test_plug_in_first_session(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"MeterValueSampleInterval": 1})
    await cp.wait_status(1, "Available")
    mark = csms.last_seq
    await cp.request("plug", 1)
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Preparing"}, since=mark)
    await cp.request("swipe", 1, "TAG1")
    auth = await csms.wait_for("Authorize", cp_id="CP1", since=mark)
    assert auth.payload == {"idTag": "TAG1"}
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["connectorId"] == 1 and start.payload["idTag"] == "TAG1"
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Charging"}, since=mark)
    tx_id = csms.active_transaction("CP1")
    mv = await csms.wait_for("MeterValues", cp_id="CP1", since=mark, timeout=5)
    assert mv.payload["transactionId"] == tx_id
    sampled = {sv["measurand"]: sv for sv in mv.payload["meterValue"][0]["sampledValue"]}
    assert sampled["Energy.Active.Import.Register"]["context"] == "Sample.Periodic"
    assert float(sampled["Power.Active.Import"]["value"]) > 5000
    assert 0 < float(sampled["SoC"]["value"]) <= 100
    await asyncio.sleep(1.5)
    await cp.request("swipe", 1, "TAG1")   # the same card ends it (TC_068), no Authorize
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark)
    assert stop.payload["transactionId"] == tx_id and stop.payload["reason"] == "Local"
    assert stop.payload["meterStop"] > start.payload["meterStart"]
    assert len(csms.records("CP1", "Authorize", direction="in", since=mark)) == 1
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Finishing"}, since=mark)
    await cp.request("unplug", 1)
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Available"},
                        since=stop.seq)
    assert statuses(csms, "CP1", 1, mark) == ["Preparing", "Charging", "Finishing", "Available"]
    # Energy in StopTransaction matches the meter the charger reports on its console.
    meter = (await cp.request("status", 1))["energy_wh"]
    assert stop.payload["meterStop"] == meter


async def test_identification_first_session(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    mark = csms.last_seq
    await cp.request("swipe", 0, "TAG2")
    await csms.wait_for("Authorize", cp_id="CP1", since=mark)
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Preparing"}, since=mark)
    await cp.request("plug", 1)
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["idTag"] == "TAG2"
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Charging"}, since=mark)


async def test_connection_timeout_returns_to_available(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ocpp={"ConnectionTimeOut": 2})
    mark = csms.last_seq
    await cp.request("swipe", 0, "TAG1")
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Preparing"}, since=mark)
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Available"},
                        since=mark, timeout=5)
    assert not csms.records("CP1", "StartTransaction", since=mark)


async def test_invalid_tag_starts_nothing(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    mark = csms.last_seq
    await cp.request("plug", 1)
    for tag in ("BLOCKED", "UNKNOWN"):
        await cp.request("swipe", 1, tag)
        rec = await csms.wait_for("Authorize", cp_id="CP1", direction="out", match={}, since=mark)
        mark = rec.seq
    await asyncio.sleep(0.5)
    assert not csms.records("CP1", "StartTransaction")
    assert cp.state.status(1) == "Preparing"


async def test_remote_start_and_stop(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    await cp.request("plug", 1)
    await cp.wait_status(1, "Preparing")
    mark = csms.last_seq
    assert await csms.remote_start("CP1", "TAG1", 1) == "Accepted"
    await csms.wait_for("Authorize", cp_id="CP1", since=mark)   # AuthorizeRemoteTxRequests=true
    await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    await cp.wait_status(1, "Charging", timeout=5)
    assert await csms.remote_stop("CP1", 999999) == "Rejected"   # TC_028
    assert await csms.remote_stop("CP1") == "Accepted"
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark)
    assert stop.payload["reason"] == "Remote"
    await cp.wait_status(1, "Finishing", timeout=5)


async def test_remote_start_first_then_plug_and_rules(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", connectors=2)
    assert await csms.remote_start("CP1", "TAG1", 0) == "Rejected"   # TC_027
    mark = csms.last_seq
    assert await csms.remote_start("CP1", "TAG1", 2) == "Accepted"
    await cp.wait_status(2, "Preparing", timeout=5)
    await cp.request("plug", 2)
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["connectorId"] == 2
    assert await csms.remote_start("CP1", "TAG2", 2) == "Rejected"   # occupied (TC_026)


async def test_ev_full_suspends_then_ev_unplug_stops(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", ev={"capacity_wh": 20, "soc": 99.0, "taper_soc": 100, "max_power_w": 7000})
    mark = csms.last_seq
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Charging"}, since=mark)
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "SuspendedEV"},
                        since=mark, timeout=10)
    ev = await cp.request("ev", 1)
    assert ev["ev"]["soc"] >= 99.99
    await cp.request("unplug", 1)   # StopTransactionOnEVSideDisconnect=true (TC_005_1)
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark)
    assert stop.payload["reason"] == "EVDisconnected"


async def test_parent_id_tag_stops_the_session(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    mark = csms.last_seq
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "CHILD1")
    await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    await cp.wait_status(1, "Charging", timeout=5)
    await cp.request("swipe", 1, "CHILD2")   # same group (TC_069): authorized, then stops it
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark)
    assert stop.payload["idTag"] == "CHILD2" and stop.payload["reason"] == "Local"


async def test_fault_during_charging_and_recovery(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    mark = csms.last_seq
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")
    await cp.wait_status(1, "Charging", timeout=5)
    await cp.request("fault", 1, "GroundFailure")
    faulted = await csms.wait_for("StatusNotification", cp_id="CP1",
                                  match={"connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure"}, since=mark)
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=mark)
    assert stop.payload["reason"] == "Other"
    await cp.request("fault", 1, "GroundFailure", "off")
    await csms.wait_for("StatusNotification", cp_id="CP1",
                        match={"connectorId": 1, "status": "Finishing", "errorCode": "NoError"}, since=faulted.seq)


async def test_every_error_code_faults_or_warns(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    codes = await cp.request("faults")
    assert len(codes) == 15
    for code in codes:
        mark = csms.last_seq
        await cp.request("fault", 1, code)
        rec = await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "errorCode": code},
                                  since=mark)
        warning = code in ("LocalListConflict", "ReaderFailure", "ResetFailure", "WeakSignal")
        assert rec.payload["status"] == ("Available" if warning else "Faulted"), (code, rec.payload)
        await cp.request("fault", 1, "clear")
        await csms.wait_for("StatusNotification", cp_id="CP1",
                            match={"connectorId": 1, "status": "Available", "errorCode": "NoError"}, since=rec.seq)


async def test_periodic_samples_count_from_each_transactions_start(start_charger, csms: Csms) -> None:
    # MeterValueSampleInterval runs from each transaction's start, not from the charger's boot:
    # two sessions started 2 s apart sample 2 s apart (and a fleet booted at once does not send
    # all its MeterValues in the same seconds).
    from datetime import datetime

    def epoch(ts: str) -> float:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()

    cp = await start_charger("CP1", connectors=2, ocpp={"MeterValueSampleInterval": 4})
    mark = csms.last_seq
    starts = {}
    for conn in (1, 2):
        await cp.request("plug", conn)
        await cp.request("swipe", conn, "TAG1")
        st = await csms.wait_for("StartTransaction", cp_id="CP1", match={"connectorId": conn}, since=mark)
        starts[conn] = epoch(st.payload["timestamp"])
        if conn == 1:
            await asyncio.sleep(2)
    for conn in (1, 2):
        mv = await csms.wait_for("MeterValues", cp_id="CP1", match={"connectorId": conn}, since=mark, timeout=8)
        first = epoch(mv.payload["meterValue"][0]["timestamp"])
        assert 3 <= first - starts[conn] <= 6, (conn, first - starts[conn])   # 4 s, whole seconds, a busy CI
    assert 1 <= starts[2] - starts[1] <= 4
