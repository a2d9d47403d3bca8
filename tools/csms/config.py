"""CSMS settings: run-time behaviour (`CsmsConfig`, changeable while serving), listener options."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any

from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import OCPPError

REGISTRATION_STATUSES = ("Accepted", "Pending", "Rejected")
AUTHORIZATION_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
DATA_TRANSFER_STATUSES = ("Accepted", "Rejected", "UnknownMessageId", "UnknownVendorId")
SIGN_CERTIFICATE_STATUSES = ("Accepted", "Rejected")


def _error_codes() -> set[str]:
    return {str(cls.code) for cls in OCPPError.__subclasses__()}


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


@dataclass
class BootAnswer:
    """How BootNotification is answered."""

    status: str = "Accepted"
    interval: int | None = None  # None: the heartbeat interval

    def __post_init__(self) -> None:
        _check(self.status, REGISTRATION_STATUSES, "boot status")


@dataclass
class IdTag:
    """One entry of the id tag table."""

    status: str = "Accepted"
    parent_id_tag: str | None = None
    expiry_date: str | None = None  # ISO 8601; an Accepted tag past this date answers Expired

    def __post_init__(self) -> None:
        _check(self.status, AUTHORIZATION_STATUSES, "id tag status")


@dataclass
class DataTransferAnswer:
    """How a charger's DataTransfer is answered."""

    status: str = "UnknownVendorId"
    data: str | None = None

    def __post_init__(self) -> None:
        _check(self.status, DATA_TRANSFER_STATUSES, "data transfer status")


def _past(iso: str) -> bool:
    try:
        when = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when < datetime.datetime.now(datetime.UTC)


def _tag(value: Any) -> IdTag:
    if isinstance(value, IdTag):
        return value
    if isinstance(value, str):
        return IdTag(status=value)
    if isinstance(value, dict):  # snake_case or the IdTagInfo camelCase keys
        return IdTag(**camel_to_snake_case(value))
    raise ValueError(f"an id tag entry is a status string or an object, not {value!r}")


def _boot(value: Any) -> BootAnswer:
    if isinstance(value, BootAnswer):
        return value
    if isinstance(value, str):
        return BootAnswer(status=value)
    if isinstance(value, dict):
        return BootAnswer(**value)
    raise ValueError(f"a boot answer is a status string or an object, not {value!r}")


def _data_transfer(value: Any) -> DataTransferAnswer:
    if isinstance(value, DataTransferAnswer):
        return value
    if isinstance(value, dict):
        return DataTransferAnswer(**value)
    raise ValueError(f"a data transfer answer is an object, not {value!r}")


def _str_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be an object keyed by strings")
    return dict(value)


@dataclass
class CsmsConfig:
    """Behaviour of the CSMS; any field may change while serving (handlers read it per message)."""

    heartbeat_interval: int = 300
    boot: BootAnswer = field(default_factory=BootAnswer)
    boot_overrides: dict[str, BootAnswer] = field(default_factory=dict)  # cp id -> answer
    tags: dict[str, IdTag] = field(default_factory=dict)  # id tag -> entry
    accept_all: bool = False  # unknown tags are Accepted instead of Invalid
    data_transfer: DataTransferAnswer = field(default_factory=DataTransferAnswer)
    sign_certificate_status: str = "Accepted"
    # Security profile 1/2: HTTP Basic auth is required when either is set (username = cp id).
    password: str | None = None
    passwords: dict[str, str] = field(default_factory=dict)  # cp id -> password
    require_client_cn: bool = False  # mutual TLS: the client certificate CN must be the cp id
    # Canned behaviour per charger-initiated action (for negative tests):
    reply_overrides: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # merged over the reply
    reply_errors: dict[str, str] = field(default_factory=dict)  # answer with this CALLERROR code
    reply_delays: dict[str, float] = field(default_factory=dict)  # seconds before answering
    call_timeout: float = 30.0  # default for CSMS-initiated calls

    # -- lookups used by the handlers ------------------------------------------------------------

    def boot_answer(self, cp_id: str) -> BootAnswer:
        return self.boot_overrides.get(cp_id, self.boot)

    def boot_interval(self, cp_id: str) -> int:
        answer = self.boot_answer(cp_id)
        return self.heartbeat_interval if answer.interval is None else answer.interval

    def find_tag(self, id_tag: str) -> IdTag | None:
        entry = self.tags.get(id_tag)
        if entry is None:  # IdToken is a CiString: compare case-insensitively
            folded = id_tag.casefold()
            entry = next((v for k, v in self.tags.items() if k.casefold() == folded), None)
        return entry

    def id_tag_info(self, id_tag: str) -> dict[str, Any]:
        """The IdTagInfo (camelCase) for a tag."""
        entry = self.find_tag(id_tag)
        if entry is None:
            return {"status": "Accepted" if self.accept_all else "Invalid"}
        status = entry.status
        if status == "Accepted" and entry.expiry_date and _past(entry.expiry_date):
            status = "Expired"
        info: dict[str, Any] = {"status": status}
        if entry.parent_id_tag:
            info["parentIdTag"] = entry.parent_id_tag
        if entry.expiry_date:
            info["expiryDate"] = entry.expiry_date
        return info

    def add_tag(
        self,
        id_tag: str,
        status: str = "Accepted",
        parent_id_tag: str | None = None,
        expiry_date: str | None = None,
    ) -> None:
        self.tags[id_tag] = IdTag(status, parent_id_tag, expiry_date)

    def auth_required(self) -> bool:
        return self.password is not None or bool(self.passwords)

    def password_for(self, cp_id: str) -> str | None:
        return self.passwords.get(cp_id, self.password)

    # -- JSON form (control API) -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Replace fields (JSON shapes of `to_dict`), all or nothing; ValueError if bad."""
        converted = {name: self._convert(name, value) for name, value in changes.items()}
        for name, value in converted.items():
            setattr(self, name, value)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CsmsConfig:
        config = cls()
        config.update(data)
        return config

    def _convert(self, name: str, value: Any) -> Any:
        try:
            return self._convert_field(name, value)
        except TypeError as exc:  # unexpected keys in a nested object
            raise ValueError(f"{name}: {exc}") from None

    def _convert_field(self, name: str, value: Any) -> Any:
        if name == "boot":
            return _boot(value)
        if name == "boot_overrides":
            return {k: _boot(v) for k, v in _str_dict(value, name).items()}
        if name == "tags":
            if isinstance(value, list):  # a plain list of accepted tags
                return {str(tag): IdTag() for tag in value}
            return {k: _tag(v) for k, v in _str_dict(value, name).items()}
        if name == "data_transfer":
            return _data_transfer(value)
        if name == "sign_certificate_status":
            return _check(value, SIGN_CERTIFICATE_STATUSES, name)
        if name in ("heartbeat_interval",):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            return value
        if name == "call_timeout":
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number")
            return float(value)
        if name in ("accept_all", "require_client_cn"):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a boolean")
            return value
        if name == "password":
            if value is not None and not isinstance(value, str):
                raise ValueError("password must be a string or null")
            return value
        if name == "passwords":
            return {k: str(v) for k, v in _str_dict(value, name).items()}
        if name == "reply_overrides":
            overrides = _str_dict(value, name)
            if not all(isinstance(v, dict) for v in overrides.values()):
                raise ValueError(
                    "reply_overrides values must be objects (camelCase payload fields)"
                )
            return overrides
        if name == "reply_errors":
            errors = _str_dict(value, name)
            unknown = set(errors.values()) - _error_codes()
            if unknown:
                raise ValueError(f"unknown CALLERROR codes: {sorted(unknown)}")
            return errors
        if name == "reply_delays":
            return {k: float(v) for k, v in _str_dict(value, name).items()}
        raise ValueError(f"unknown config field {name!r}")


@dataclass
class ServerOptions:
    """How the CSMS listens; fixed for the life of a `Csms` (a restart reuses the bound port)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port
    tls_cert: str | None = None  # PEM server certificate (chain); with tls_key enables wss://
    tls_key: str | None = None
    client_ca: str | None = None  # PEM CA bundle: require client certificates (security profile 3)
    signing_ca_cert: str | None = (
        None  # PEM CA used to answer SignCertificate with CertificateSigned
    )
    signing_ca_key: str | None = None
    records_cap: int = 100_000  # records kept in memory; the oldest are dropped
    records_file: str | None = None  # JSONL file the records are appended to
    ping_interval: float | None = 20.0  # websocket keepalive pings (None: off)
    compression: bool = False  # permessage-deflate costs memory per connection
    close_timeout: float = 5.0
    # Connections waiting to be accepted. asyncio's default of 100 overflows when a fleet boots at
    # once: the kernel drops the SYNs and each of those chargers waits for its 1 s retransmit
    # (212-522 of 1000 chargers at every boot, measured). The kernel caps it at somaxconn.
    backlog: int = 4096
