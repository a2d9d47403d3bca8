"""Traffic counters and the round-trip times of the calls the CSMS initiates."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from .frames import EVENT


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


class CallStats:
    def __init__(self, window: int = 10_000) -> None:
        self.rtts: deque[float] = deque(maxlen=window)  # seconds, the newest `window` replies
        self.calls = 0
        self.errors = 0  # answered with CALLERROR
        self.timeouts = 0
        self.invalid_replies = 0

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.rtts)
        return {
            "count": self.calls,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "invalid_replies": self.invalid_replies,
            "rtt_ms": {
                "n": len(ordered),
                "p50": round(percentile(ordered, 50) * 1000, 3),
                "p99": round(percentile(ordered, 99) * 1000, 3),
                "max": round(ordered[-1] * 1000, 3) if ordered else 0.0,
            },
        }


def traffic(counts: Counter[tuple[str | None, str | None, str]]) -> dict[str, Any]:
    """RecordStore.counts ((topic, direction, type) -> n) as by_action / by_type / events."""
    by_action: dict[str, dict[str, int]] = {}
    by_type: dict[str, dict[str, int]] = {}
    events: dict[str, int] = {}
    for (topic, direction, kind), count in counts.items():
        if kind == EVENT:
            name = (topic or "@?")[1:]
            events[name] = events.get(name, 0) + count
            continue
        side = direction or "?"
        per_type = by_type.setdefault(kind, {})
        per_type[side] = per_type.get(side, 0) + count
        per_action = by_action.setdefault(topic or "?", {})
        per_action[side] = per_action.get(side, 0) + count
    return {"by_action": by_action, "by_type": by_type, "events": events}
