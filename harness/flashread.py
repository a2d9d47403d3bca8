"""Reads the firmware's own records from an instance's flash directory (CPython side), for checks
that compare what a charger believes with what its back-end received."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SLOT = 384   # firmware/store/slot.py: bytes per slot


def slot_value(path: Path, default: Any = None) -> Any:
    """The newest valid value of a store.slot A/B record file."""
    try:
        data = path.read_bytes()
    except OSError:
        return default
    best: tuple[int, Any] | None = None
    for off in range(0, len(data), SLOT):
        try:
            seq, obj = json.loads(data[off:off + SLOT].rstrip(b" \x00"))
        except (ValueError, TypeError):
            continue
        if best is None or seq > best[0]:
            best = (seq, obj)
    return default if best is None else best[1]
