"""Local Auth List Management end to end (OCPP 1.6 TC_008, TC_042, TC_043): the list the CSMS sends
is what the charger authorizes with — online without Authorize.req (LocalPreAuthorize), offline
(LocalAuthorizeOffline) — with the version rules and size limits, and it survives a reboot."""

from __future__ import annotations

import asyncio

import pytest

from tools.csms import Csms

# Only the profiles under test: all profiles together do not fit the instance heap (256k) yet.
MINE = ["reservation", "locallist", "trigger"]


@pytest.fixture
def start(start_charger):
    return lambda cid="CP1", **cfg: start_charger(cid, **{"ocpp_features": MINE, **cfg})


def entry(tag: str, status: str = "Accepted", **info: str) -> dict:
    return {"idTag": tag, "idTagInfo": {"status": status, **info}}


async def session(cp, csms: Csms, tag: str, conn: int = 1) -> dict:
    """Plug in, present the tag; the StartTransaction the CSMS got."""
    mark = csms.last_seq
    await cp.request("plug", conn)
    await cp.request("swipe", conn, tag)
    start = await csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    await csms.wait_for("StartTransaction", cp_id=cp.id, direction="out", since=start.seq)   # answered
    await cp.wait_status(conn, "Charging", timeout=5)
    return start.payload


async def end(cp, csms: Csms, conn: int = 1) -> None:
    mark = csms.last_seq
    await csms.remote_stop(cp.id)
    await csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    await cp.request("unplug", conn)
    await cp.wait_status(conn, "Available", timeout=5)


async def test_listed_tag_starts_without_authorize(start, csms: Csms) -> None:
    cp = await start("CP1", ocpp={"LocalPreAuthorize": True, "AuthorizationCacheEnabled": False})
    assert await csms.get_local_list_version("CP1") == 0                              # TC_042_2
    values = await csms.get_configuration_values("CP1", ["LocalAuthListEnabled", "LocalAuthListMaxLength",
                                                         "SendLocalListMaxLength", "SupportedFeatureProfiles"])
    assert values["LocalAuthListEnabled"] == "true"
    assert int(values["SendLocalListMaxLength"]) >= 1 and int(values["LocalAuthListMaxLength"]) >= 1
    assert "LocalAuthListManagement" in values["SupportedFeatureProfiles"].split(",")
    assert await csms.send_local_list("CP1", 3, [entry("TAG2"), entry("GROUPA")]) == "Accepted"   # TC_043
    assert await csms.get_local_list_version("CP1") == 3
    mark = csms.last_seq
    start = await session(cp, csms, "TAG2")                                            # TC_008_1
    assert start["idTag"] == "TAG2"
    assert not csms.records("CP1", "Authorize", direction="in", since=mark)
    await end(cp, csms)
    mark = csms.last_seq
    await cp.request("plug", 1)
    assert await csms.remote_start("CP1", "TAG2", 1) == "Accepted"                     # TC_008_2
    await csms.wait_for("StartTransaction", cp_id="CP1", match={"idTag": "TAG2"}, since=mark)
    await csms.wait_for("StartTransaction", cp_id="CP1", direction="out", since=mark)
    assert not csms.records("CP1", "Authorize", direction="in", since=mark)
    await end(cp, csms)
    # A tag that is not listed still asks the CSMS; with the list disabled, so does a listed one.
    mark = csms.last_seq
    await session(cp, csms, "TAG1")
    assert [r.payload["idTag"] for r in csms.records("CP1", "Authorize", direction="in", since=mark)] == ["TAG1"]
    await end(cp, csms)
    assert await csms.change_configuration("CP1", "LocalAuthListEnabled", "false") == "Accepted"
    mark = csms.last_seq
    await session(cp, csms, "TAG2")
    assert [r.payload["idTag"] for r in csms.records("CP1", "Authorize", direction="in", since=mark)] == ["TAG2"]


async def test_blocked_in_list_is_refused_offline_and_listed_tag_charges_offline(start, csms: Csms) -> None:
    cp = await start("CP1", ocpp={"LocalAuthorizeOffline": True, "AuthorizationCacheEnabled": False})
    assert await csms.send_local_list("CP1", 1, [entry("TAG2"), entry("TAG1", "Blocked"),
                                                 entry("OLD", "Accepted", expiryDate="2020-01-01T00:00:00Z")]) == "Accepted"
    await cp.request("net", "down")
    await asyncio.sleep(0.3)
    for tag in ("TAG1", "OLD", "STRANGER"):    # blocked, expired, unknown (AllowOfflineTxForUnknownId false)
        await cp.request("plug", 1)
        await cp.request("swipe", 1, tag)
        await asyncio.sleep(0.4)
        status = await cp.request("status")
        assert "tx" not in status["connectors"][1], tag
        await cp.request("unplug", 1)
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG2")
    await cp.wait_status(1, "Charging", timeout=5)       # offline, on the local list's word
    mark = csms.last_seq
    await cp.request("net", "up")
    start = await csms.wait_for("StartTransaction", cp_id="CP1", since=mark, timeout=15)
    assert start.payload["idTag"] == "TAG2"


async def test_version_rules_and_differential_updates(start, csms: Csms) -> None:
    cp = await start("CP1", ocpp={"LocalPreAuthorize": True, "AuthorizationCacheEnabled": False})
    send = lambda v, entries, kind="Differential": csms.send_local_list("CP1", v, entries, kind)  # noqa: E731
    assert await send(5, [entry("TAG1"), entry("TAG2")], "Full") == "Accepted"
    # A differential update must be newer than the list it applies to (TC_043_2).
    assert await send(5, [entry("CHILD1")]) == "VersionMismatch"
    assert await send(4, [entry("CHILD1")]) == "VersionMismatch"
    assert await csms.get_local_list_version("CP1") == 5
    # Add one, remove one (an entry without idTagInfo), in one differential update.
    assert await send(6, [entry("CHILD1"), {"idTag": "TAG1"}]) == "Accepted"
    assert await csms.get_local_list_version("CP1") == 6
    # A full update may set any version, even an older one, and replaces the whole list.
    assert await send(2, [entry("CHILD2")], "Full") == "Accepted"
    assert await csms.get_local_list_version("CP1") == 2
    assert await send(3, [entry("CHILD1")]) == "Accepted"
    # The list survives a reboot (flash).
    mark = csms.last_seq
    assert await csms.reset("CP1", "Hard") == "Accepted"
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=15)
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1}, since=boot.seq)
    assert await csms.get_local_list_version("CP1") == 3
    mark = csms.last_seq
    for tag in ("CHILD2", "CHILD1"):
        await session(cp, csms, tag)
        await end(cp, csms)
    assert not csms.records("CP1", "Authorize", direction="in", since=mark)
    await session(cp, csms, "TAG2")      # dropped by the full update: asks the CSMS
    assert [r.payload["idTag"] for r in csms.records("CP1", "Authorize", direction="in", since=mark)] == ["TAG2"]
    # An empty full update clears the list.
    assert await send(0, [], "Full") == "Accepted"
    assert await csms.get_local_list_version("CP1") == 0


async def test_too_large_updates_fail(start, csms: Csms) -> None:
    await start("CP1", ocpp={"LocalAuthListMaxLength": 3, "SendLocalListMaxLength": 4})
    values = await csms.get_configuration_values("CP1", ["LocalAuthListMaxLength", "SendLocalListMaxLength"])
    assert values == {"LocalAuthListMaxLength": "3", "SendLocalListMaxLength": "4"}
    tags = [entry(f"T{i}") for i in range(5)]
    assert await csms.send_local_list("CP1", 1, tags) == "Failed"                      # TC_043_3
    assert await csms.send_local_list("CP1", 1, tags[:4]) == "Failed"                  # more than the list holds
    assert await csms.get_local_list_version("CP1") == 0
    assert await csms.send_local_list("CP1", 1, tags[:3]) == "Accepted"
    assert await csms.send_local_list("CP1", 2, [tags[3]], "Differential") == "Failed"
    # Replacing and removing entries keeps the size: allowed.
    assert await csms.send_local_list("CP1", 2, [entry("T0", "Blocked"), {"idTag": "T1"}, tags[3]],
                                      "Differential") == "Accepted"
    assert await csms.get_local_list_version("CP1") == 2
