"""tools.csms driven by the `ocpp` library's own ChargePoint as a CPython charger (websockets)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ocpp.exceptions import OCPPError
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from tools.csms import CallErrorReply, Csms, CsmsConfig, IdTag, NotConnected
from tools.csms.certs import make_ca, make_cert, make_csr, new_key, write_pem
from tools.csms.chargepoint import on  # ocpp.routing.on, typed
from tools.csms.control import ControlApi
from tools.csms.records import Filter, RecordStore

ROOT = Path(__file__).resolve().parents[2]
OCPP16 = [Subprotocol("ocpp1.6")]


class Charger(ChargePoint):  # type: ignore[misc]
    """A charge point made of the library's ChargePoint, answering what the tests send."""

    def __init__(self, cp_id: str, ws: ClientConnection) -> None:
        super().__init__(cp_id, ws, response_timeout=5)
        self.ws = ws
        self.certificate_chain: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(charge_point_model="M1", charge_point_vendor="V")
        )

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, **kwargs: Any) -> Any:
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **kwargs: Any) -> Any:
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.reset)
    def on_reset(self, type: str, **kwargs: Any) -> Any:
        return call_result.Reset(status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, **kwargs: Any) -> Any:
        key = {"key": "HeartbeatInterval", "readonly": False, "value": "60"}
        return call_result.GetConfiguration(configuration_key=[key])

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **kwargs: Any) -> Any:
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **kwargs: Any) -> Any:
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> Any:
        if not self.certificate_chain.done():
            self.certificate_chain.set_result(certificate_chain)
        return call_result.CertificateSigned(status="Accepted")


@asynccontextmanager
async def charger(url: str, cp_id: str = "CP1", **kwargs: Any) -> AsyncIterator[Charger]:
    kwargs.setdefault("subprotocols", OCPP16)
    async with connect(f"{url}/ocpp/{cp_id}", open_timeout=5, close_timeout=1, **kwargs) as ws:
        cp = Charger(cp_id, ws)
        task = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def raw_socket(url: str, cp_id: str = "RAW") -> AsyncIterator[ClientConnection]:
    async with connect(f"{url}/ocpp/{cp_id}", subprotocols=OCPP16, close_timeout=1) as ws:
        yield ws


@pytest.fixture
async def csms() -> AsyncIterator[Csms]:
    config = CsmsConfig(heartbeat_interval=60)
    config.tags = {"GOOD": IdTag(), "BAD": IdTag("Blocked"), "CHILD": IdTag(parent_id_tag="PARENT")}
    async with Csms(config, port=0, close_timeout=1) as server:
        yield server


# -- boot, authorize, transactions ---------------------------------------------------------------


async def test_boot_accepted_and_recorded(csms: Csms) -> None:
    async with charger(csms.url) as cp:
        reply = await cp.boot()
        assert (reply.status, reply.interval) == ("Accepted", 60)
        assert reply.current_time.endswith("Z")
    await csms.wait_for(event="disconnect", cp_id="CP1")
    request, answer = csms.records("CP1", "BootNotification")
    assert (request.direction, request.type, request.payload["chargePointModel"]) == (
        "in",
        "CALL",
        "M1",
    )
    assert (answer.direction, answer.type, answer.message_id) == (
        "out",
        "CALLRESULT",
        request.message_id,
    )
    assert json.loads(answer.raw or "")[2] == answer.payload
    assert answer.seq > request.seq and answer.mono >= request.mono and request.wall > 0
    events = [r.event for r in csms.records("CP1", type="EVENT")]
    assert events == ["connect", "disconnect"]
    state = csms.charger("CP1")
    assert state is not None and state.registration == "Accepted" and not state.connected
    assert csms.violations() == []


async def test_boot_pending_rejected_and_per_charger_override(csms: Csms) -> None:
    csms.config.update({"boot": {"status": "Pending", "interval": 7}})
    csms.config.update({"boot_overrides": {"CP2": "Rejected"}})
    async with charger(csms.url, "CP1") as cp1, charger(csms.url, "CP2") as cp2:
        pending, rejected = await cp1.boot(), await cp2.boot()
    assert (pending.status, pending.interval) == ("Pending", 7)
    assert (rejected.status, rejected.interval) == ("Rejected", 60)


async def test_authorize_known_unknown_blocked_and_accept_all(csms: Csms) -> None:
    async with charger(csms.url) as cp:
        good = await cp.call(call.Authorize(id_tag="good"))  # IdToken is case-insensitive
        bad = await cp.call(call.Authorize(id_tag="BAD"))
        child = await cp.call(call.Authorize(id_tag="CHILD"))
        unknown = await cp.call(call.Authorize(id_tag="NOPE"))
        csms.config.accept_all = True
        now_known = await cp.call(call.Authorize(id_tag="NOPE"))
        csms.config.add_tag("OLD", expiry_date="2000-01-01T00:00:00Z")
        expired = await cp.call(call.Authorize(id_tag="OLD"))
    assert good.id_tag_info["status"] == "Accepted"
    assert bad.id_tag_info["status"] == "Blocked"
    assert child.id_tag_info == {"status": "Accepted", "parent_id_tag": "PARENT"}
    assert unknown.id_tag_info["status"] == "Invalid"
    assert now_known.id_tag_info["status"] == "Accepted"
    assert expired.id_tag_info["status"] == "Expired"


async def test_transaction_ids_increase_across_chargers(csms: Csms) -> None:
    def start(tag: str) -> Any:
        return call.StartTransaction(
            connector_id=1, id_tag=tag, meter_start=0, timestamp="2025-01-01T00:00:00Z"
        )

    async with charger(csms.url, "A") as a, charger(csms.url, "B") as b:
        first, second = await a.call(start("GOOD")), await b.call(start("NOPE"))
        assert (first.transaction_id, second.transaction_id) == (1, 2)
        assert second.id_tag_info["status"] == "Invalid"
        assert csms.active_transaction("A") == 1 and csms.active_transaction("B", 1) == 2
        stop = call.StopTransaction(
            meter_stop=1200, timestamp="2025-01-01T01:00:00Z", transaction_id=1, id_tag="GOOD"
        )
        stopped = await a.call(stop)
        assert stopped.id_tag_info["status"] == "Accepted"
        assert csms.active_transaction("A") is None
        assert (await a.call(start("GOOD"))).transaction_id == 3


async def test_every_charge_point_action_is_answered(csms: Csms) -> None:
    now = "2025-01-01T00:00:00Z"
    sample = {
        "timestamp": now,
        "sampledValue": [{"value": "12", "measurand": "Power.Active.Import"}],
    }
    requests = [
        call.Heartbeat(),
        call.StatusNotification(connector_id=0, error_code="NoError", status="Available"),
        call.MeterValues(connector_id=1, meter_value=[sample]),
        call.DataTransfer(vendor_id="com.example"),
        call.DiagnosticsStatusNotification(status="Uploaded"),
        call.FirmwareStatusNotification(status="Installed"),
        call.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now, tech_info=None),
        call.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----"),
        call.LogStatusNotification(status="Uploaded", request_id=1),
        call.SignedFirmwareStatusNotification(status="Installed", request_id=2),
    ]
    async with charger(csms.url) as cp:
        for request in requests:
            await cp.call(request, suppress=False)
        assert (await cp.call(call.DataTransfer(vendor_id="x"))).status == "UnknownVendorId"
        csms.config.update({"data_transfer": {"status": "Accepted", "data": "ok"}})
        assert (await cp.call(call.DataTransfer(vendor_id="x"))).data == "ok"
    answered = {r.action for r in csms.records("CP1", direction="out", type="CALLRESULT")}
    assert answered == {type(r).__name__ for r in requests}
    state = csms.charger("CP1")
    assert state is not None and state.connectors[0]["status"] == "Available"
    assert state.firmware_status == "Installed" and state.diagnostics_status == "Uploaded"
    assert csms.violations() == []


# -- CSMS-initiated calls --------------------------------------------------------------------------


async def test_csms_call_returns_reply_and_records_it(csms: Csms) -> None:
    async with charger(csms.url) as cp:
        await csms.wait_connected("CP1")
        mark = csms.last_seq
        assert await csms.remote_start("CP1", "GOOD", connector_id=1) == "Accepted"
        assert await csms.reset("CP1", "Hard") == "Accepted"
        assert await csms.get_configuration_values("CP1") == {"HeartbeatInterval": "60"}
        assert await csms.trigger_message("CP1", "Heartbeat") == "Accepted"
        with pytest.raises(CallErrorReply) as info:  # the client has no handler for it
            await csms.unlock_connector("CP1", 1)
        assert info.value.code == "NotImplemented"
        with pytest.raises(ValueError):  # refused by the request schema before sending
            await csms.call("CP1", "Reset", {"type": "Sideways"})
        del cp
    out_call, in_result = csms.records("CP1", "RemoteStartTransaction", since=mark)
    assert (out_call.direction, out_call.type, out_call.payload) == (
        "out",
        "CALL",
        {"idTag": "GOOD", "connectorId": 1},
    )
    assert (in_result.direction, in_result.type, in_result.payload) == (
        "in",
        "CALLRESULT",
        {"status": "Accepted"},
    )
    assert in_result.message_id == out_call.message_id
    error = csms.records("CP1", "UnlockConnector", type="CALLERROR")[0]
    assert error.error_code == "NotImplemented" and error.direction == "in"
    stats = csms.stats()
    assert stats["calls"]["count"] == 5 and stats["calls"]["errors"] == 1
    assert stats["calls"]["rtt_ms"]["n"] == 5 and stats["calls"]["rtt_ms"]["p99"] > 0
    assert stats["by_action"]["RemoteStartTransaction"] == {"out": 1, "in": 1}


async def test_call_to_absent_charger_and_timeout(csms: Csms) -> None:
    with pytest.raises(NotConnected):
        await csms.reset("GHOST")
    async with raw_socket(csms.url, "MUTE") as ws:
        await csms.wait_connected("MUTE")
        with pytest.raises(TimeoutError):
            await csms.call("MUTE", "ClearCache", {}, timeout=0.2)
        text = await ws.recv()
        message_id = json.loads(text)[1]
        await ws.send(json.dumps([3, message_id, {"status": "Accepted"}]))  # too late
        late = await csms.wait_for("ClearCache", cp_id="MUTE", type="CALLRESULT")
    assert late.error is not None and "late" in late.error and not late.violation
    assert csms.stats()["calls"]["timeouts"] == 1


# -- bad input from a charger ----------------------------------------------------------------------


async def test_invalid_payload_answered_with_callerror_and_recorded(csms: Csms) -> None:
    async with charger(csms.url) as cp:
        bogus = call.StatusNotification(connector_id=1, error_code="NoError", status="Bogus")
        with pytest.raises(OCPPError):
            await cp.call(bogus, suppress=False, skip_schema_validation=True)
    request = csms.records("CP1", "StatusNotification", direction="in")[0]
    answer = csms.records("CP1", "StatusNotification", direction="out")[0]
    assert answer.type == "CALLERROR" and answer.message_id == request.message_id
    assert answer.error_code == "FormatViolation" and answer.violation
    assert request.error is not None and request.error.startswith("answered FormatViolation")
    assert csms.violations("CP1") == [answer]


async def test_garbage_frames_never_crash_the_csms(csms: Csms) -> None:
    async with raw_socket(csms.url) as ws:
        await ws.send("this is not json")
        await ws.send(json.dumps([2, "m1", "Heartbeat"]))  # a CALL without payload
        assert json.loads(await ws.recv())[:3] == [4, "m1", "FormationViolation"]
        await ws.send(json.dumps([2, "m2", "FlyToTheMoon", {}]))
        assert json.loads(await ws.recv())[:3] == [4, "m2", "NotSupported"]
        await ws.send(json.dumps([2, "m3", "Reset", {"type": "Hard"}]))  # a CSMS-to-CP action
        assert json.loads(await ws.recv())[:3] == [4, "m3", "NotImplemented"]
        await ws.send(json.dumps([3, "nobody-asked", {}]))
        await ws.send(b"\x00binary")
        await ws.send(json.dumps([2, "m4", "Heartbeat", {}]))  # still serving
        assert json.loads(await ws.recv())[:2] == [3, "m4"]
    kinds = [(r.type, r.error) for r in csms.violations("RAW") if r.direction == "in"]
    assert ("INVALID", "not JSON") in kinds
    assert ("CALLRESULT", "reply to an unknown message id") in kinds
    assert any(t == "INVALID" and e and "binary" in e for t, e in kinds)
    assert csms.records("RAW", "FlyToTheMoon", direction="out")[0].error_code == "NotSupported"


async def test_send_raw_returns_the_charger_reply(csms: Csms) -> None:
    async with charger(csms.url) as cp:
        await csms.wait_connected("CP1")
        reply = await csms.send_raw("CP1", json.dumps([2, "raw-1", "Reset", {"type": "Soft"}]))
        assert reply is not None and json.loads(reply) == [3, "raw-1", {"status": "Accepted"}]
        bad = await csms.send_raw("CP1", json.dumps([2, "raw-2", "Reset", {"type": "Sideways"}]))
        assert bad is not None and json.loads(bad)[:2] == [4, "raw-2"]
        assert await csms.send_raw("CP1", "garbage", timeout=0.2) is None
        del cp
    assert csms.records("CP1", "Reset", direction="in")[0].payload == {"status": "Accepted"}


async def test_canned_reply_errors_and_overrides(csms: Csms) -> None:
    csms.config.update(
        {
            "reply_errors": {"Heartbeat": "InternalError"},
            "reply_overrides": {"Authorize": {"idTagInfo": {"status": "ConcurrentTx"}}},
        }
    )
    async with charger(csms.url) as cp:
        with pytest.raises(OCPPError):
            await cp.call(call.Heartbeat(), suppress=False)
        authorized = await cp.call(call.Authorize(id_tag="GOOD"))
    assert authorized.id_tag_info["status"] == "ConcurrentTx"
    assert csms.records("CP1", "Heartbeat", direction="out")[0].error_code == "InternalError"
    assert csms.violations() == []  # deliberate errors are not the charger's fault


# -- connections -----------------------------------------------------------------------------------


async def test_reconnect_replaces_the_old_connection(csms: Csms) -> None:
    async with charger(csms.url) as old:
        await csms.wait_connected("CP1")
        async with charger(csms.url) as new:
            await csms.wait_for(event="connect", cp_id="CP1", match={"replaced": True})
            closed = await csms.wait_for(event="disconnect", cp_id="CP1")
            assert closed.payload["replaced"] is True
            with pytest.raises(ConnectionClosed):
                await old.ws.recv()
            assert csms.connected() == ["CP1"]
            assert await csms.reset("CP1") == "Accepted"
            assert csms.records("CP1", "Reset", direction="in")[-1].seq > closed.seq
            del new
    await csms.wait_for(event="disconnect", cp_id="CP1", match={"replaced": False})
    assert csms.connected() == []


async def test_server_side_disconnect(csms: Csms) -> None:
    async with charger(csms.url) as cp:
        await csms.wait_connected("CP1")
        assert await csms.disconnect("CP1", 4001, "bye")
        with pytest.raises(ConnectionClosed):
            await cp.ws.recv()
    event = csms.records("CP1", event="disconnect")[0]
    assert event.payload["sent_code"] == 4001 and not await csms.disconnect("CP1")


async def test_subprotocol_required(csms: Csms) -> None:
    for offered in ([Subprotocol("ocpp2.0.1")], None):
        with pytest.raises(InvalidStatus) as info:
            async with charger(csms.url, "OLD", subprotocols=offered):
                pass
        assert info.value.response.status_code == 400
    refused = csms.records("OLD", event="refused")
    assert len(refused) == 2 and refused[0].payload["status"] == 400


async def test_basic_auth(csms: Csms) -> None:
    csms.config.update({"password": "global-secret", "passwords": {"CP9": "own-secret"}})

    def basic(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async with charger(csms.url, "CP1", additional_headers=basic("CP1", "global-secret")) as cp:
        assert (await cp.boot()).status == "Accepted"
    async with charger(csms.url, "CP9", additional_headers=basic("CP9", "own-secret")) as cp:
        assert (await cp.boot()).status == "Accepted"
    refusals = [
        ("CP9", basic("CP9", "global-secret")),
        ("CP1", basic("CP2", "global-secret")),
        ("CP1", {}),
    ]
    for cp_id, headers in refusals:
        with pytest.raises(InvalidStatus) as info:
            async with charger(csms.url, cp_id, additional_headers=headers):
                pass
        assert info.value.response.status_code == 401
    reasons = [r.payload["reason"] for r in csms.records(event="auth_failed")]
    assert reasons == [
        "wrong password",
        "username 'CP2' is not the charge point id",
        "missing credentials",
    ]


async def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca()
    server_cert, server_key = write_pem(
        tmp_path, "server", *make_cert(ca_cert, ca_key, "localhost")
    )
    (tmp_path / "ca.crt").write_bytes(ca_cert)
    client_cert, client_key = write_pem(
        tmp_path, "cp", *make_cert(ca_cert, ca_key, "TLS1", client=True)
    )
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    options: dict[str, Any] = {
        "tls_cert": server_cert,
        "tls_key": server_key,
        "port": 0,
        "close_timeout": 1,
    }

    async with Csms(CsmsConfig(), **options) as csms:
        assert csms.url.startswith("wss://")
        async with charger(csms.url, "TLS0", ssl=trust) as cp:
            assert (await cp.boot()).status == "Accepted"

    async with Csms(
        CsmsConfig(require_client_cn=True), client_ca=str(tmp_path / "ca.crt"), **options
    ) as csms:
        with pytest.raises((ssl.SSLError, OSError, ConnectionClosed, InvalidHandshake)):
            async with charger(csms.url, "TLS1", ssl=trust) as cp:  # no client certificate
                await cp.boot()
        mutual = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        mutual.load_cert_chain(client_cert, client_key)
        async with charger(csms.url, "TLS1", ssl=mutual) as cp:
            assert (await cp.boot()).status == "Accepted"
        connect_event = csms.records("TLS1", event="connect")[0]
        assert connect_event.payload["client_cn"] == "TLS1"
        with pytest.raises(InvalidStatus) as info:  # the certificate is TLS1's, not TLS2's
            async with charger(csms.url, "TLS2", ssl=mutual):
                pass
        assert info.value.response.status_code == 403


async def test_sign_certificate_answered_with_certificate_signed(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca("signing CA")
    cert_path, key_path = write_pem(tmp_path, "signing", ca_cert, ca_key)
    async with Csms(port=0, signing_ca_cert=cert_path, signing_ca_key=key_path) as csms:
        async with charger(csms.url, "SP3") as cp:
            csr = make_csr("SP3", new_key(), org="evfleet").decode()
            assert (await cp.call(call.SignCertificate(csr=csr))).status == "Accepted"
            chain = await asyncio.wait_for(cp.certificate_chain, 5)
            assert chain.count("BEGIN CERTIFICATE") == 2
            rejected = await cp.call(call.SignCertificate(csr="not a CSR"))
            assert rejected.status == "Rejected"


# -- restart, records, control API, CLI ------------------------------------------------------------


async def test_stop_and_start_on_the_same_port(csms: Csms) -> None:
    port = csms.port
    start = call.StartTransaction(
        connector_id=1, id_tag="GOOD", meter_start=0, timestamp="2025-01-01T00:00:00Z"
    )
    async with charger(csms.url) as cp:
        assert (await cp.call(start)).transaction_id == 1
        await csms.stop()
        with pytest.raises(ConnectionClosed) as info:
            await cp.ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert not csms.serving and csms.connected() == []
    with pytest.raises(OSError):
        async with charger(csms.url):
            pass
    await csms.start()
    assert csms.port == port
    async with charger(csms.url) as cp:
        assert (await cp.call(start)).transaction_id == 2
        await csms.stop(abort=True)  # a crash: no close frame
        with pytest.raises(ConnectionClosed):
            await cp.ws.recv()
    await csms.start()
    assert csms.records("CP1", event="disconnect")[-1].payload["code"] == 1006


async def test_record_store_cap_index_and_waiters() -> None:
    store = RecordStore(cap=5)
    for i in range(8):
        store.add("A" if i % 2 else "B", "in", "CALL", action="Heartbeat", payload={"i": i})
    assert len(store) == 5 and store.dropped == 3 and store.first_seq == 4
    assert [r.payload["i"] for r in store.query(Filter(cp_id="A"))] == [3, 5, 7]
    assert [r.seq for r in store.query(Filter(), since=6)] == [7, 8]
    assert [r.seq for r in store.tail(Filter(cp_id="B"), 1)] == [7]
    waiter = asyncio.ensure_future(
        store.wait_for(
            Filter(cp_id="A", action="StatusNotification", match={"status": "Charging"}), None, 1
        )
    )
    await asyncio.sleep(0)
    store.add(
        "A", "in", "CALL", action="StatusNotification", payload={"status": "Available", "x": 1}
    )
    assert not waiter.done()
    store.add(
        "A", "in", "CALL", action="StatusNotification", payload={"status": "Charging", "x": 2}
    )
    assert (await waiter).payload["x"] == 2 and store.waiter_count() == 0
    with pytest.raises(TimeoutError):
        await store.wait_for(Filter(action="Never"), 0, 0.01)
    assert store.waiter_count() == 0


async def test_records_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    async with Csms(port=0, records_file=str(path)) as csms:
        async with charger(csms.url) as cp:
            await cp.boot()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["type"], r.get("action") or r["event"]) for r in lines] == [
        ("EVENT", "connect"),
        ("CALL", "BootNotification"),
        ("CALLRESULT", "BootNotification"),
        ("EVENT", "disconnect"),
    ]


async def test_control_api(csms: Csms) -> None:
    control = ControlApi(csms)
    await control.start()
    try:
        async with aiohttp.ClientSession(control.url) as http, charger(csms.url) as cp:
            await csms.wait_connected("CP1")
            health = await (await http.get("/api/health")).json()
            assert health["ok"] and health["ocpp_url"] == csms.url and health["connected"] == 1

            body = {"action": "RemoteStartTransaction", "payload": {"idTag": "GOOD"}, "timeout": 5}
            reply = await (await http.post("/api/chargers/CP1/call", json=body)).json()
            assert reply == {"ok": True, "payload": {"status": "Accepted"}}
            body = {"action": "UnlockConnector", "payload": {"connectorId": 1}}
            error = await (await http.post("/api/chargers/CP1/call", json=body)).json()
            assert error["ok"] is False and error["error_code"] == "NotImplemented"
            missing = await http.post("/api/chargers/NOPE/call", json=body)
            assert missing.status == 404

            query = {"cp": "CP1", "action": "RemoteStartTransaction"}
            found = await (await http.get("/api/records", params=query)).json()
            assert [(r["direction"], r["type"]) for r in found["records"]] == [
                ("out", "CALL"),
                ("in", "CALLRESULT"),
            ]

            since = found["last_seq"]
            params = {"cp": "CP1", "action": "Heartbeat", "since": str(since), "timeout": "5"}
            waiting = asyncio.ensure_future(http.get("/api/wait", params=params))
            await asyncio.sleep(0.05)
            await cp.call(call.Heartbeat())
            record = (await (await waiting).json())["record"]
            assert record["action"] == "Heartbeat" and record["seq"] > since
            timeout = await http.get("/api/wait", params={"action": "Never", "timeout": "0.05"})
            assert timeout.status == 408

            put = await http.put(
                "/api/config", json={"tags": {"NEW": "Blocked"}, "heartbeat_interval": 5}
            )
            assert (await put.json())["tags"]["NEW"]["status"] == "Blocked"
            assert (await cp.call(call.Authorize(id_tag="NEW"))).id_tag_info["status"] == "Blocked"
            assert (await http.put("/api/config", json={"boot": "Maybe"})).status == 400

            chargers = (await (await http.get("/api/chargers")).json())["chargers"]
            assert chargers[0]["cp_id"] == "CP1" and chargers[0]["connected"] is True
            stats = await (await http.get("/api/stats")).json()
            assert stats["connected"] == 1 and stats["calls"]["count"] == 2
            raw = {"text": json.dumps([2, "r1", "Reset", {"type": "Soft"}])}
            assert (await (await http.post("/api/chargers/CP1/raw", json=raw)).json())["reply"]
            assert (await http.post("/api/chargers/CP1/disconnect")).status == 200
    finally:
        await control.close()


async def test_cli_prints_addresses_and_exits_cleanly() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "dev", "-m", "tools.csms", "--port", "0", "--control-port", "0",
        "--tag", "T1", "--tag", "T2=Blocked", "--accept-all",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        ocpp_line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().split()
        control_line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().split()
        assert ocpp_line[0] == "ocpp" and ocpp_line[1].startswith("ws://127.0.0.1:")
        assert control_line[0] == "control" and control_line[1].startswith("http://127.0.0.1:")
        async with charger(ocpp_line[1]) as cp:
            assert (await cp.call(call.Authorize(id_tag="T2"))).id_tag_info["status"] == "Blocked"
            assert (await cp.call(call.Authorize(id_tag="ANY"))).id_tag_info["status"] == "Accepted"
            async with aiohttp.ClientSession(control_line[1]) as http:
                config = await (await http.get("/api/config")).json()
                assert config["accept_all"] is True and set(config["tags"]) == {"T1", "T2"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode()
    assert b"Task was destroyed" not in err and b"Traceback" not in err and b"Warning" not in err
