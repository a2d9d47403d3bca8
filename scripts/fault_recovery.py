"""Fault and recovery: a hardware fault during charging (ground fault, over-current, over-
temperature in turn) stops the session and shows Faulted; clearing it brings the connector back."""

from __future__ import annotations

from typing import Any

COUNT = 3
FAULTS = ("GroundFailure", "OverCurrentFailure", "HighTemperature")


async def cycle(cp: Any, code: str) -> None:
    await cp.plug(1)
    await cp.swipe(1, "TAG1")
    await cp.wait_for(connector=1, status="Charging", timeout=30)
    await cp.fault(1, code)
    await cp.wait_for(connector=1, status="Faulted", timeout=15)
    await cp.clear_fault(1, code)
    await cp.wait_for(connector=1, status="Finishing", timeout=15)
    await cp.unplug(1)
    await cp.wait_for(connector=1, status="Available", timeout=15)


async def main(fleet: Any) -> dict[str, Any]:
    chargers = fleet.all()
    results = await fleet.each(lambda cp: cycle(cp, FAULTS[chargers.index(cp) % len(FAULTS)]), chargers)
    failed = [f"{cp.id}: {r}" for cp, r in zip(chargers, results) if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError("; ".join(failed))
    summary: dict[str, Any] = {"faults_survived": len(chargers)}
    if fleet.csms is not None:
        faulted = await fleet.csms.records(action="StatusNotification", direction="in", match={"status": "Faulted"})
        stops = await fleet.csms.records(action="StopTransaction", direction="in")
        summary.update({"faulted_reports": len(faulted), "stops": len(stops)})
    return summary
