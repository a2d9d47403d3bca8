"""Exceptions raised by the CSMS driving API."""

from __future__ import annotations

from typing import Any


class CsmsError(Exception):
    """Base class of the CSMS driving API errors."""


class NotConnected(CsmsError):
    """The charge point is not connected (or went away while a call was outstanding)."""

    def __init__(self, cp_id: str) -> None:
        super().__init__(f"charge point {cp_id!r} is not connected")
        self.cp_id = cp_id


class CallErrorReply(CsmsError):
    """The charge point answered a CSMS-initiated CALL with a CALLERROR."""

    def __init__(self, code: str, description: str = "", details: Any = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details = details if details is not None else {}


class InvalidReply(CsmsError):
    """The charge point's CALLRESULT does not satisfy the action's response schema."""

    def __init__(self, action: str, reason: str, payload: Any) -> None:
        super().__init__(f"invalid {action} reply: {reason}")
        self.action = action
        self.reason = reason
        self.payload = payload
