"""Reservation profile end to end (OCPP 1.6 TC_046–TC_053): what a reservation really does to the
charger — who may start, what the CSMS sees, and how it ends."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from tools.csms import Csms

# Only the profiles under test: all profiles together do not fit the instance heap (256k) yet.
MINE = ["reservation", "locallist", "trigger"]


@pytest.fixture
def start(start_charger):
    return lambda cid="CP1", **cfg: start_charger(cid, **{"ocpp_features": MINE, **cfg})


def expiry(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reserve(csms: Csms, cp: str, conn: int, tag: str, rid: int, seconds: float = 120,
                  parent: str | None = None) -> str:
    p = {"connectorId": conn, "expiryDate": expiry(seconds), "idTag": tag, "reservationId": rid}
    if parent:
        p["parentIdTag"] = parent
    return (await csms.call(cp, "ReserveNow", p))["status"]


def starts(csms: Csms, cp: str, since: int) -> list[dict]:
    return [r.payload for r in csms.records(cp, "StartTransaction", direction="in", since=since)]


async def refused(cp, csms: Csms, tag: str, conn: int) -> None:
    """The tag is authorized by the CSMS, yet no transaction starts for it."""
    mark = csms.last_seq
    await cp.request("swipe", conn, tag)
    await csms.wait_for("Authorize", cp_id=cp.id, match={"idTag": tag}, since=mark)
    await asyncio.sleep(0.7)
    assert starts(csms, cp.id, mark) == []


async def test_reserved_connector_refuses_others_and_is_used_by_its_tag(start, csms: Csms) -> None:
    cp = await start("CP1")
    mark = csms.last_seq
    assert await reserve(csms, "CP1", 1, "TAG1", 11) == "Accepted"                      # TC_046_1
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Reserved"},
                        since=mark)
    await cp.request("plug", 1)
    await refused(cp, csms, "TAG2", 1)
    assert (await cp.request("status"))["connectors"][1]["status"] == "Reserved"
    assert await csms.remote_start("CP1", "TAG2", 1) == "Rejected"
    mark = csms.last_seq
    await cp.request("swipe", 1, "TAG1")
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["idTag"] == "TAG1" and start.payload["reservationId"] == 11
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Charging"}, since=mark)
    # Used up: it cannot be cancelled any more, and the next session carries no reservation.
    assert (await csms.call("CP1", "CancelReservation", {"reservationId": 11}))["status"] == "Rejected"
    await csms.remote_stop("CP1")
    await csms.wait_for("StopTransaction", cp_id="CP1", since=mark)
    await cp.request("unplug", 1)
    await cp.wait_status(1, "Available", timeout=5)
    mark = csms.last_seq
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG2")
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["idTag"] == "TAG2" and "reservationId" not in start.payload


async def test_remote_start_and_group_tags(start, csms: Csms) -> None:
    cp = await start("CP1", connectors=2)
    assert await reserve(csms, "CP1", 1, "TAG1", 21) == "Accepted"
    assert await reserve(csms, "CP1", 2, "TAG2", 22, parent="GROUPA") == "Accepted"
    await cp.wait_status(2, "Reserved", timeout=5)
    # TC_046_2: the reserved tag by remote start.
    mark = csms.last_seq
    await cp.request("plug", 1)
    assert await csms.remote_start("CP1", "TAG1", 1) == "Accepted"
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["connectorId"] == 1 and start.payload["reservationId"] == 21
    # TC_053_2: another tag of the reservation's group; its group is learnt by Authorize.
    mark = csms.last_seq
    await cp.request("plug", 2)
    assert await csms.remote_start("CP1", "CHILD1", 2) == "Accepted"
    auth = await csms.wait_for("Authorize", cp_id="CP1", since=mark)
    assert auth.payload["idTag"] == "CHILD1"
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload == {**start.payload, "connectorId": 2, "idTag": "CHILD1", "reservationId": 22}


async def test_group_tag_local_start_and_outsider_refused(start, csms: Csms) -> None:
    cp = await start("CP1")
    assert await reserve(csms, "CP1", 1, "TAG1", 31, parent="GROUPA") == "Accepted"
    await cp.request("plug", 1)
    await refused(cp, csms, "TAG2", 1)                                  # accepted tag, wrong group
    mark = csms.last_seq
    assert await csms.remote_start("CP1", "TAG2", 1) == "Accepted"      # group unknown: asks first...
    await csms.wait_for("Authorize", cp_id="CP1", match={"idTag": "TAG2"}, since=mark)
    await asyncio.sleep(0.7)
    assert starts(csms, "CP1", mark) == []                              # ...and does not start
    mark = csms.last_seq
    await cp.request("swipe", 1, "CHILD2")                              # TC_053_1
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["idTag"] == "CHILD2" and start.payload["reservationId"] == 31


async def test_reservation_expires(start, csms: Csms) -> None:
    cp = await start("CP1")
    mark = csms.last_seq
    assert await reserve(csms, "CP1", 1, "TAG1", 41, seconds=2.5) == "Accepted"         # TC_047
    reserved = await csms.wait_for("StatusNotification", cp_id="CP1",
                                   match={"connectorId": 1, "status": "Reserved"}, since=mark)
    available = await csms.wait_for("StatusNotification", cp_id="CP1",
                                    match={"connectorId": 1, "status": "Available"}, since=reserved.seq, timeout=6)
    assert 1.0 < available.mono - reserved.mono < 4.5
    assert (await csms.call("CP1", "CancelReservation", {"reservationId": 41}))["status"] == "Rejected"
    mark = csms.last_seq
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG2")           # anyone may charge again
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["idTag"] == "TAG2" and "reservationId" not in start.payload


async def test_reserve_now_answers_and_cancel(start, csms: Csms) -> None:
    cp = await start("CP1", connectors=2)
    # Cancel (TC_051, TC_052).
    assert await reserve(csms, "CP1", 1, "TAG1", 51) == "Accepted"
    await cp.wait_status(1, "Reserved", timeout=5)
    mark = csms.last_seq
    assert (await csms.call("CP1", "CancelReservation", {"reservationId": 51}))["status"] == "Accepted"
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1, "status": "Available"}, since=mark)
    assert (await csms.call("CP1", "CancelReservation", {"reservationId": 51}))["status"] == "Rejected"
    # The same id again replaces the reservation, even on another connector.
    assert await reserve(csms, "CP1", 1, "TAG1", 52) == "Accepted"
    assert await reserve(csms, "CP1", 2, "TAG1", 52) == "Accepted"
    await cp.wait_status(2, "Reserved", timeout=5)
    await cp.wait_status(1, "Available", timeout=5)
    assert await reserve(csms, "CP1", 2, "TAG2", 53) == "Occupied"     # reserved by someone else
    mark = csms.last_seq
    assert (await csms.call("CP1", "CancelReservation", {"reservationId": 52}))["status"] == "Accepted"
    mark = (await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 2, "status": "Available"},
                                since=mark)).seq
    # Faulted, Occupied, Unavailable (TC_048_1..3) and a connector that does not exist.
    await cp.request("fault", 1, "GroundFailure")
    await cp.wait_status(1, "Faulted", timeout=5)
    assert await reserve(csms, "CP1", 1, "TAG1", 54) == "Faulted"
    await cp.request("fault", 1, "clear")
    await cp.request("plug", 1)
    await cp.wait_status(1, "Preparing", timeout=5)
    assert await reserve(csms, "CP1", 1, "TAG1", 55) == "Occupied"
    assert await csms.change_availability("CP1", 2, "Inoperative") == "Accepted"
    await cp.wait_status(2, "Unavailable", timeout=5)
    assert await reserve(csms, "CP1", 2, "TAG1", 56) == "Unavailable"
    assert await reserve(csms, "CP1", 3, "TAG1", 57) == "Rejected"
    # Connector 0 (TC_050_2, TC_050_3, TC_050_1): nothing free is Occupied / Unavailable / Faulted.
    assert await reserve(csms, "CP1", 0, "TAG1", 58) == "Occupied"
    await cp.request("unplug", 1)
    assert await csms.change_availability("CP1", 0, "Inoperative") == "Accepted"
    await cp.wait_status(1, "Unavailable", timeout=5)
    assert await reserve(csms, "CP1", 0, "TAG1", 59) == "Unavailable"
    assert await csms.change_availability("CP1", 0, "Operative") == "Accepted"
    await cp.request("fault", 0, "InternalError")
    await cp.wait_status(1, "Faulted", timeout=5)
    assert await reserve(csms, "CP1", 0, "TAG1", 60) == "Faulted"
    assert await reserve(csms, "CP1", 1, "TAG1", 61) == "Faulted"
    assert not [r for r in csms.records("CP1", "StatusNotification", direction="in", since=mark)
                if r.payload["status"] == "Reserved"]   # nothing refused was reserved after all


async def test_reservations_refused_when_not_configured(start, csms: Csms) -> None:
    await start("CP1", ocpp={"ReserveConnectorZeroSupported": False})
    assert await reserve(csms, "CP1", 0, "TAG1", 1) == "Rejected"                     # TC_050_4
    assert await reserve(csms, "CP1", 1, "TAG1", 2) == "Accepted"
    values = await csms.get_configuration_values("CP1", ["ReserveConnectorZeroSupported", "SupportedFeatureProfiles"])
    assert values["ReserveConnectorZeroSupported"] == "false"
    assert "Reservation" in values["SupportedFeatureProfiles"].split(",")
    await start("CP2", reservations=False)
    assert await reserve(csms, "CP2", 1, "TAG1", 3) == "Rejected"                     # TC_048_4


async def test_charge_point_reservation(start, csms: Csms) -> None:
    cp = await start("CP1", connectors=2)
    assert await reserve(csms, "CP1", 0, "TAG1", 71) == "Accepted"                    # TC_049
    mark = csms.last_seq
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG2")           # two connectors free: another tag may use one
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["idTag"] == "TAG2" and "reservationId" not in start.payload
    await cp.request("plug", 2)
    await refused(cp, csms, "CHILD1", 2)           # the last free connector is kept for TAG1
    assert await reserve(csms, "CP1", 0, "TAG2", 72) == "Occupied"
    mark = csms.last_seq
    await cp.request("swipe", 2, "TAG1")
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    assert start.payload["connectorId"] == 2 and start.payload["reservationId"] == 71
    assert (await csms.call("CP1", "CancelReservation", {"reservationId": 71}))["status"] == "Rejected"
