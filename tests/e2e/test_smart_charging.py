"""Smart Charging end to end (OCPP 1.6 TC_056–TC_060, TC_066, TC_067, TC_072, TC_082): charging
profiles the CSMS sets really cap the emulated meter, visibly in the MeterValues it receives."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from tools.csms import Csms

VOLTS, PHASES = 230, 3                        # the unix board's defaults
EV = {"max_power_w": 22000}                   # draws whatever the charger offers (32 A × 690 V)
MEASURANDS = "Power.Active.Import,Current.Import,Current.Offered"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": MEASURANDS}
CFG = {"ev": EV, "ocpp": OCPP, "ocpp_features": ["smart"]}   # the feature under test, alone


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def profile(pid: int, limit: float, purpose: str = "TxProfile", level: int = 0, unit: str = "A",
            periods: list[tuple[int, float]] | None = None, start: datetime | None = None,
            **extra: Any) -> dict[str, Any]:
    sched: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in (periods or [(0, limit)])],
    }
    if start is not None:
        sched["startSchedule"] = iso(start)
    p = {"chargingProfileId": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
         "chargingProfileKind": "Absolute", "chargingSchedule": sched}
    p.update(extra)
    return p


async def set_profile(csms: Csms, conn: int, prof: dict[str, Any], cp: str = "CP1") -> str:
    reply = await csms.call(cp, "SetChargingProfile", {"connectorId": conn, "csChargingProfiles": prof})
    return reply["status"]


async def clear(csms: Csms, cp: str = "CP1", **criteria: Any) -> str:
    return (await csms.call(cp, "ClearChargingProfile", criteria))["status"]


async def composite(csms: Csms, conn: int, duration: int = 300, unit: str | None = "A",
                    cp: str = "CP1") -> dict[str, Any]:
    p: dict[str, Any] = {"connectorId": conn, "duration": duration}
    if unit:
        p["chargingRateUnit"] = unit
    return await csms.call(cp, "GetCompositeSchedule", p)


def values(rec: Any) -> dict[str, float]:
    return {sv["measurand"]: float(sv["value"]) for mv in rec.payload["meterValue"] for sv in mv["sampledValue"]}


async def sample(csms: Csms, pred: Any = lambda v: True, since: int | None = None, timeout: float = 8.0,
                 cp: str = "CP1") -> dict[str, float]:
    """The first periodic sample after `since` (default: from now on) that satisfies pred."""
    mark = csms.last_seq if since is None else since
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no MeterValues matched within {timeout} s; got {seen}")
        rec = await csms.wait_for("MeterValues", cp_id=cp, since=mark, timeout=left)
        mark = rec.seq
        v = values(rec)
        v["wall"] = rec.wall
        seen.append(v)
        if pred(v):
            return v


def offered(amps: float) -> Any:
    return lambda v: abs(v["Current.Offered"] - amps) < 0.05


def assert_draws(v: dict[str, float], amps: float) -> None:
    # The PWM duty steps are 0.6 A: the EV reads the offer within that.
    assert abs(v["Current.Import"] - amps) <= 0.6, v
    assert abs(v["Power.Active.Import"] - amps * VOLTS * PHASES) <= 0.6 * VOLTS * PHASES, v


async def charging(cp: Any, csms: Csms, tag: str = "TAG1", conn: int = 1) -> int:
    mark = csms.last_seq
    await cp.request("plug", conn)
    await cp.request("swipe", conn, tag)
    await cp.wait_status(conn, "Charging", timeout=5)
    await csms.wait_for("StartTransaction", cp_id=cp.id, direction="out", since=mark)
    tx = csms.active_transaction(cp.id, conn)
    assert tx is not None
    return tx


async def test_tx_profile_caps_the_meter_and_clear_restores(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    assert await set_profile(csms, 1, profile(1, 10)) == "Rejected"                  # TC_058_1
    tx = await charging(cp, csms)
    before = await sample(csms)
    assert before["Power.Active.Import"] > 20000 and before["Current.Offered"] == 32, before
    assert await set_profile(csms, 1, profile(1, 10, transactionId=tx + 100)) == "Rejected"  # TC_058_2
    assert await set_profile(csms, 1, profile(1, 10, transactionId=tx)) == "Accepted"  # TC_057
    after = await sample(csms, offered(10))
    assert_draws(after, 10)
    assert after["Power.Active.Import"] < before["Power.Active.Import"] / 2
    assert (await cp.request("status", 1))["offered_a"] == 10
    sched = await composite(csms, 1)                                                  # TC_066
    assert sched["status"] == "Accepted" and sched["connectorId"] == 1
    assert sched["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]
    assert sched["chargingSchedule"]["duration"] == 300
    watts = await composite(csms, 1, unit="W")
    assert watts["chargingSchedule"]["chargingRateUnit"] == "W"
    assert watts["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10 * VOLTS * PHASES
    assert await clear(csms, id=1) == "Accepted"                                      # TC_067
    restored = await sample(csms, offered(32))
    assert restored["Power.Active.Import"] > 20000
    assert await clear(csms, id=1) == "Unknown"
    # A TxProfile lives as long as its transaction.
    assert await set_profile(csms, 1, profile(2, 12)) == "Accepted"
    await sample(csms, offered(12))
    assert await csms.remote_stop("CP1") == "Accepted"
    await cp.wait_status(1, "Finishing", timeout=5)
    assert await clear(csms, chargingProfilePurpose="TxProfile") == "Unknown"


async def test_zero_limit_suspends_the_evse(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    await charging(cp, csms)
    mark = csms.last_seq
    assert await set_profile(csms, 1, profile(1, 0)) == "Accepted"
    await csms.wait_for("StatusNotification", cp_id="CP1", since=mark,
                        match={"connectorId": 1, "status": "SuspendedEVSE"}, timeout=5)
    v = await sample(csms, offered(0))
    assert v["Power.Active.Import"] == 0 and v["Current.Import"] == 0
    assert (await cp.request("status", 1))["relay"] is False
    mark = csms.last_seq
    assert await clear(csms, connectorId=1) == "Accepted"
    await csms.wait_for("StatusNotification", cp_id="CP1", since=mark,
                        match={"connectorId": 1, "status": "Charging"}, timeout=5)
    assert (await sample(csms, offered(32)))["Power.Active.Import"] > 20000


async def test_period_boundary_changes_the_power(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    tx = await charging(cp, csms)
    t0 = now()
    prof = profile(1, 0, periods=[(0, 13), (5, 7)], start=t0, transactionId=tx)
    assert await set_profile(csms, 1, prof) == "Accepted"
    first = await sample(csms, offered(13))
    assert_draws(first, 13)
    second = await sample(csms, offered(7), timeout=10)
    assert_draws(second, 7)
    boundary = (t0 + timedelta(seconds=5)).timestamp()
    assert boundary - 0.5 <= second["wall"] <= boundary + 2.5, (second["wall"] - boundary)
    sched = (await composite(csms, 1, 60))["chargingSchedule"]
    assert sched["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 7.0}]


async def test_stacking_and_charge_point_max(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    await charging(cp, csms)
    t0 = now()
    base = profile(1, 16, purpose="TxDefaultProfile", level=0, start=t0 - timedelta(minutes=1))
    top = profile(2, 8, purpose="TxDefaultProfile", level=1, start=t0 - timedelta(minutes=1),
                  validTo=iso(t0 + timedelta(seconds=8)))
    assert await set_profile(csms, 1, base) == "Accepted"
    assert await set_profile(csms, 1, top) == "Accepted"                             # TC_072
    sched = (await composite(csms, 1, 60))["chargingSchedule"]["chargingSchedulePeriod"]
    assert [p["limit"] for p in sched] == [8.0, 16.0], sched
    assert 2 <= sched[1]["startPeriod"] <= 8, sched
    low = await sample(csms, offered(8))
    assert_draws(low, 8)
    high = await sample(csms, offered(16), timeout=12)                               # top expired
    assert_draws(high, 16)
    # ChargePointMaxProfile caps everything; only on connector 0.
    cpmax = profile(3, 10, purpose="ChargePointMaxProfile", start=t0 - timedelta(minutes=1))
    assert await set_profile(csms, 1, cpmax) == "Rejected"
    assert await set_profile(csms, 0, profile(4, 10)) == "Rejected"                   # TxProfile on 0
    assert await set_profile(csms, 0, cpmax) == "Accepted"
    assert_draws(await sample(csms, offered(10)), 10)
    for conn in (0, 1):
        periods = (await composite(csms, conn, 60))["chargingSchedule"]["chargingSchedulePeriod"]
        assert periods == [{"startPeriod": 0, "limit": 10.0}], (conn, periods)
    # Clearing by criteria: purpose + stack level.
    assert await clear(csms, chargingProfilePurpose="TxDefaultProfile", stackLevel=5) == "Unknown"
    assert await clear(csms, connectorId=0, chargingProfilePurpose="ChargePointMaxProfile") == "Accepted"
    assert_draws(await sample(csms, offered(16)), 16)
    assert await clear(csms) == "Accepted"
    assert await clear(csms) == "Unknown"
    assert_draws(await sample(csms, offered(32)), 32)


async def test_default_profile_applies_to_ongoing_and_next_transaction(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    await charging(cp, csms)
    assert (await sample(csms))["Current.Offered"] == 32
    default = profile(1, 0, purpose="TxDefaultProfile", periods=[(0, 11)],
                      chargingProfileKind="Relative")
    assert await set_profile(csms, 0, default) == "Accepted"                         # TC_082
    assert_draws(await sample(csms, offered(11)), 11)
    assert await csms.remote_stop("CP1") == "Accepted"
    await cp.wait_status(1, "Finishing", timeout=5)
    await cp.request("unplug", 1)
    await cp.wait_status(1, "Available", timeout=5)
    mark = csms.last_seq
    await charging(cp, csms, "TAG2")                                                  # TC_056
    first = await sample(csms, since=mark)
    assert first["Current.Offered"] == 11, first
    assert_draws(first, 11)


async def test_remote_start_with_a_tx_profile(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    await cp.request("plug", 1)
    await cp.wait_status(1, "Preparing")
    wrong = profile(1, 8, purpose="TxDefaultProfile", chargingProfileKind="Relative")
    assert await csms.remote_start("CP1", "TAG1", 1, charging_profile=wrong) == "Rejected"   # TC_060
    mark = csms.last_seq
    prof = profile(1, 8, chargingProfileKind="Relative")
    assert await csms.remote_start("CP1", "TAG1", 1, charging_profile=prof) == "Accepted"    # TC_059
    await csms.wait_for("StartTransaction", cp_id="CP1", since=mark)
    first = await sample(csms, since=mark)
    assert first["Current.Offered"] == 8, first
    assert_draws(first, 8)
    periods = (await composite(csms, 1))["chargingSchedule"]["chargingSchedulePeriod"]
    assert periods == [{"startPeriod": 0, "limit": 8.0}]
    assert await csms.remote_stop("CP1") == "Accepted"
    await cp.wait_status(1, "Finishing", timeout=5)
    assert await clear(csms, id=1) == "Unknown"                # gone with its transaction


async def test_watt_profile_and_composite_units(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    await charging(cp, csms)
    assert await set_profile(csms, 1, profile(1, 4140, unit="W")) == "Accepted"      # 6 A × 690 V
    assert_draws(await sample(csms, offered(6)), 6)
    amps = await composite(csms, 1, unit="A")
    # A W limit is spread over the phases it assumes, which the schedule names.
    assert amps["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 6.0, "numberPhases": 3}]
    watts = await composite(csms, 1, unit=None)     # no unit asked: amperes
    assert watts["chargingSchedule"]["chargingRateUnit"] == "A"
    assert (await composite(csms, 2))["status"] == "Rejected"          # no such connector
    bad = profile(2, 10, level=99)
    assert await set_profile(csms, 1, bad) == "Rejected"               # above ChargeProfileMaxStackLevel
    reply = await csms.get_configuration_values("CP1")
    assert "SmartCharging" in reply["SupportedFeatureProfiles"].split(",")
    for key in ("ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
                "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled"):
        assert key in reply
    assert reply["ConnectorSwitch3to1PhaseSupported"] == "false"


async def test_recurring_profile_validated(start_charger, csms: Csms) -> None:
    await start_charger("CP1", **CFG)
    daily = profile(1, 10, purpose="TxDefaultProfile", chargingProfileKind="Recurring")
    assert await set_profile(csms, 0, daily) == "Rejected"             # no recurrencyKind / start
    start = now() - timedelta(hours=1)     # every day: 10 A for 23 h, then 12 A for an hour
    daily = profile(1, 0, purpose="TxDefaultProfile", periods=[(0, 10), (23 * 3600, 12)], start=start,
                    chargingProfileKind="Recurring", recurrencyKind="Daily")
    assert await set_profile(csms, 0, daily) == "Accepted"
    sched = (await composite(csms, 1, 2 * 86400))["chargingSchedule"]["chargingSchedulePeriod"]
    assert [p["limit"] for p in sched] == [10.0, 12.0, 10.0, 12.0, 10.0], sched
    for got, want in zip([p["startPeriod"] for p in sched][1:], (22, 23, 46, 47)):
        assert abs(got - want * 3600) <= 2, sched          # the charger's "now" may be a second on


async def test_profiles_survive_a_reboot(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", **CFG)
    t0 = now() - timedelta(minutes=1)
    assert await set_profile(csms, 0, profile(1, 14, purpose="TxDefaultProfile", start=t0)) == "Accepted"
    assert await set_profile(csms, 0, profile(2, 12, purpose="ChargePointMaxProfile", start=t0)) == "Accepted"
    mark = csms.last_seq
    assert await csms.reset("CP1", "Hard") == "Accepted"
    await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=15)
    await csms.wait_for("StatusNotification", cp_id="CP1", match={"connectorId": 1}, since=mark, timeout=10)
    periods = (await composite(csms, 1))["chargingSchedule"]["chargingSchedulePeriod"]
    assert periods == [{"startPeriod": 0, "limit": 12.0}]
    mark = csms.last_seq
    await charging(cp, csms)
    first = await sample(csms, since=mark)
    assert first["Current.Offered"] == 12, first
    assert cp.restarts == 1
    assert await clear(csms, id=2) == "Accepted"
    assert_draws(await sample(csms, offered(14)), 14)
