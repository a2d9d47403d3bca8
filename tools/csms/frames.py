"""OCPP-J frame structure: classify a text message as CALL, CALLRESULT, CALLERROR or INVALID."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CALL = "CALL"
CALLRESULT = "CALLRESULT"
CALLERROR = "CALLERROR"
INVALID = "INVALID"  # not an OCPP-J frame (bad JSON, wrong arity, wrong element types)
EVENT = "EVENT"  # not a frame: a connection event in the records

# OCPP 1.6 spells it this way (errata 5.2 keeps the typo); used when a malformed CALL is answered.
MALFORMED_CODE = "FormationViolation"


@dataclass(slots=True)
class Frame:
    type: str
    message_id: str | None = None
    action: str | None = None
    payload: Any = (
        None  # CALL/CALLRESULT payload, CALLERROR details, INVALID: the parsed JSON if any
    )
    error_code: str | None = None
    error: str | None = None  # CALLERROR description, or why the frame is INVALID
    answerable: bool = False  # INVALID but carries a message id of something that is not a reply


def _invalid(msg: Any, why: str) -> Frame:
    message_id = (
        msg[1] if isinstance(msg, list) and len(msg) > 1 and isinstance(msg[1], str) else None
    )
    kind = msg[0] if isinstance(msg, list) and msg else None
    action = msg[2] if kind == 2 and len(msg) > 2 and isinstance(msg[2], str) else None
    answerable = message_id is not None and kind not in (3, 4)
    return Frame(INVALID, message_id, action, msg, error=why, answerable=answerable)


def parse(text: str) -> Frame:
    """Classify a frame strictly by OCPP-J 1.6 section 4 (it never raises)."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):
        return Frame(INVALID, error="not JSON")
    if not isinstance(msg, list) or not msg:
        return Frame(INVALID, payload=msg, error="not a non-empty JSON array")
    kind = msg[0]
    if type(kind) is not int:
        return _invalid(msg, "MessageTypeId is not an integer")
    if kind == 2:
        if len(msg) != 4:
            return _invalid(msg, f"CALL has {len(msg)} elements, not 4")
        if (
            not isinstance(msg[1], str)
            or not isinstance(msg[2], str)
            or not isinstance(msg[3], dict)
        ):
            return _invalid(msg, "CALL needs a string id, a string action and an object payload")
        return Frame(CALL, msg[1], msg[2], msg[3])
    if kind == 3:
        if len(msg) != 3 or not isinstance(msg[1], str) or not isinstance(msg[2], dict):
            return _invalid(msg, "CALLRESULT needs exactly a string id and an object payload")
        return Frame(CALLRESULT, msg[1], payload=msg[2])
    if kind == 4:
        if (
            len(msg) != 5
            or not isinstance(msg[1], str)
            or not isinstance(msg[2], str)
            or not isinstance(msg[3], str)
            or not isinstance(msg[4], dict)
        ):
            return _invalid(msg, "CALLERROR needs a string id, code, description and an object")
        return Frame(CALLERROR, msg[1], payload=msg[4], error_code=msg[2], error=msg[3])
    return _invalid(msg, f"unknown MessageTypeId {kind}")
