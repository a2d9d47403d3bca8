"""OCPP 1.6J central system (CSMS) on the `ocpp` package: embedded default CSMS and test peer."""

from .config import BootAnswer, CsmsConfig, DataTransferAnswer, IdTag, ServerOptions
from .errors import CallErrorReply, CsmsError, InvalidReply, NotConnected
from .records import Record
from .server import Csms

__all__ = [
    "BootAnswer",
    "CallErrorReply",
    "Csms",
    "CsmsConfig",
    "CsmsError",
    "DataTransferAnswer",
    "IdTag",
    "InvalidReply",
    "NotConnected",
    "Record",
    "ServerOptions",
]
