"""Checks a CSMS's records for what billing depends on: every session has exactly one start and
one stop, meter values never go backwards, the stop's energy matches the meter, nothing is lost.
Resent messages (an answer lost in a cut) are recognised by their content and counted, not failed."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENERGY = "Energy.Active.Import.Register"


@dataclass
class Session:
    cp: str
    connector: int
    id_tag: str
    meter_start: int
    timestamp: str
    seq: int
    tx_ids: list[int] = field(default_factory=list)
    stops: list[dict[str, Any]] = field(default_factory=list)
    values: list[tuple[int, int]] = field(default_factory=list)   # (seq, Wh)


@dataclass
class Report:
    sessions: int = 0
    chargers: int = 0
    resent_starts: int = 0
    resent_stops: int = 0
    meter_values: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "chargers": self.chargers, "resent_starts": self.resent_starts,
                "resent_stops": self.resent_stops, "meter_values": self.meter_values,
                "problems": len(self.problems), "first_problems": self.problems[:20]}


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue   # a line being written while we read
    return out


def _energy(payload: dict[str, Any]) -> list[int]:
    vals = []
    for mv in payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            if sv.get("measurand", ENERGY) == ENERGY:
                try:
                    vals.append(int(float(sv["value"])))
                except (KeyError, ValueError):
                    pass
    return vals


def check(records: list[dict[str, Any]], started_by_charger: dict[str, int] | None = None) -> Report:
    """started_by_charger: how many transactions each charger says it started (its flash counter)."""
    rep = Report()
    calls: dict[tuple[str, str], dict[str, Any]] = {}
    sessions: dict[tuple[Any, ...], Session] = {}
    by_tx: dict[tuple[str, int], Session] = {}
    stops_seen: set[tuple[Any, ...]] = set()
    pending_values: list[dict[str, Any]] = []
    for r in sorted(records, key=lambda r: r["seq"]):
        if r.get("type") == "CALL" and r.get("direction") == "in":
            calls[(r["cp_id"], r["message_id"])] = r
            p = r.get("payload") or {}
            if r.get("action") == "StartTransaction":
                key = (r["cp_id"], p.get("connectorId"), p.get("idTag"), p.get("meterStart"), p.get("timestamp"))
                if key in sessions:
                    rep.resent_starts += 1
                else:
                    sessions[key] = Session(r["cp_id"], p.get("connectorId"), p.get("idTag"), p.get("meterStart"),
                                            p.get("timestamp"), r["seq"])
            elif r.get("action") == "StopTransaction":
                key = (r["cp_id"], p.get("transactionId"), p.get("meterStop"), p.get("timestamp"))
                if key in stops_seen:
                    rep.resent_stops += 1
                    continue
                stops_seen.add(key)
                s = by_tx.get((r["cp_id"], p.get("transactionId")))
                if s is None:
                    rep.problems.append(f"{r['cp_id']}: StopTransaction for unknown transaction {p.get('transactionId')}")
                else:
                    s.stops.append(p)
            elif r.get("action") == "MeterValues" and p.get("transactionId") is not None:
                pending_values.append(r)
                s = by_tx.get((r["cp_id"], p["transactionId"]))
                if s is not None:
                    for v in _energy(p):
                        s.values.append((r["seq"], v))
                        rep.meter_values += 1
        elif r.get("type") == "CALLRESULT" and r.get("direction") == "out" and r.get("action") == "StartTransaction":
            call = calls.get((r["cp_id"], r["message_id"]))
            if call is None:
                continue
            p = call["payload"]
            key = (r["cp_id"], p.get("connectorId"), p.get("idTag"), p.get("meterStart"), p.get("timestamp"))
            s = sessions[key]
            tx = (r.get("payload") or {}).get("transactionId")
            s.tx_ids.append(tx)
            by_tx[(r["cp_id"], tx)] = s
    per_connector: dict[tuple[str, int], list[Session]] = defaultdict(list)
    for s in sessions.values():
        rep.sessions += 1
        per_connector[(s.cp, s.connector)].append(s)
        where = f"{s.cp}/{s.connector} session of {s.timestamp} (tx {s.tx_ids})"
        if not s.tx_ids:
            rep.problems.append(f"{where}: StartTransaction never answered")
        if len(s.stops) != 1:
            rep.problems.append(f"{where}: {len(s.stops)} StopTransaction(s), expected exactly one")
        vals = [v for _, v in sorted(s.values)]
        if any(b < a for a, b in zip(vals, vals[1:])):
            rep.problems.append(f"{where}: meter values go backwards: {vals}")
        if vals and vals[0] < s.meter_start:
            rep.problems.append(f"{where}: meter value {vals[0]} below meterStart {s.meter_start}")
        for stop in s.stops:
            if stop.get("meterStop", 0) < s.meter_start:
                rep.problems.append(f"{where}: meterStop {stop.get('meterStop')} below meterStart {s.meter_start}")
            if vals and stop.get("meterStop", 0) < vals[-1]:
                rep.problems.append(f"{where}: meterStop {stop.get('meterStop')} below the last meter value {vals[-1]}")
    for (cp, conn), ss in per_connector.items():
        ss.sort(key=lambda s: s.seq)
        for a, b in zip(ss, ss[1:]):
            if a.stops and b.meter_start < a.stops[0].get("meterStop", 0):
                rep.problems.append(f"{cp}/{conn}: register went backwards between sessions "
                                    f"({a.stops[0].get('meterStop')} then {b.meter_start})")
    chargers = {s.cp for s in sessions.values()}
    rep.chargers = len(chargers)
    for cp, started in (started_by_charger or {}).items():
        seen = sum(1 for s in sessions.values() if s.cp == cp)
        if seen != started:
            rep.problems.append(f"{cp}: started {started} transaction(s) but the CSMS saw {seen}: lost messages")
    return rep
