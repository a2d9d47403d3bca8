"""Central-system side of one connection: an `ocpp.v16.ChargePoint` with a handler per action."""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ocpp import routing
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import OCPPError
from ocpp.messages import CallError
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action
from websockets.exceptions import ConnectionClosed

from .certs import CsrSigner
from .config import CsmsConfig
from .errors import CallErrorReply, InvalidReply, NotConnected
from .frames import CALL, CALLERROR
from .records import RecordStore
from .state import ChargerState, Ledger
from .stats import CallStats
from .transport import RecordingConnection

LOG = logging.getLogger("tools.csms.ocpp")
_NO_LIBRARY_TIMEOUT = 10.0**9  # the CSMS applies its own timeout around ChargePoint.call()
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def on(action: str) -> Callable[[F], F]:
    """`ocpp.routing.on` with a type (the library is untyped)."""
    return cast(Callable[[F], F], routing.on(action))


def after(action: str) -> Callable[[F], F]:
    """`ocpp.routing.after` with a type."""
    return cast(Callable[[F], F], routing.after(action))


class LibraryLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The library logs each rejected frame with a traceback; the records already show those, so
    they go to DEBUG. An error with a non-OCPP exception in flight is a CSMS bug and stays loud."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR and kwargs.get("exc_info"):
            current = sys.exc_info()[1]
            if current is not None and not isinstance(current, OCPPError):
                super().log(level, msg, *args, **kwargs)
                return
        super().log(logging.DEBUG, msg, *args, **kwargs)


LIBRARY_LOG = LibraryLog(LOG, {})


def utc_now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_for_code(code: str, description: str) -> OCPPError:
    for cls in OCPPError.__subclasses__():
        if cls.code == code:
            return cls(description=description)
    raise ValueError(f"unknown CALLERROR code {code!r}")


def build_request(action: str, payload: dict[str, Any]) -> Any:
    """The library's request dataclass for a camelCase payload (ValueError if it does not fit)."""
    try:
        Action(action)
    except ValueError:
        raise ValueError(f"unknown OCPP 1.6 action {action!r}") from None
    cls = getattr(call, action, None)
    if cls is None:
        raise ValueError(f"{action} is not initiated by the central system")
    try:
        return cls(**camel_to_snake_case(payload))
    except TypeError as exc:
        raise ValueError(f"{action} payload does not fit: {exc}") from None


@dataclass
class Services:
    """What the handlers of every connection share."""

    config: CsmsConfig
    ledger: Ledger
    store: RecordStore
    stats: CallStats
    spawn: Callable[[Coroutine[Any, Any, Any]], None]
    signer: CsrSigner | None = None


class CentralChargePoint(ChargePoint):  # type: ignore[misc]  # the library is untyped
    def __init__(
        self, cp_id: str, conn: RecordingConnection, services: Services, state: ChargerState
    ) -> None:
        super().__init__(cp_id, conn, response_timeout=_NO_LIBRARY_TIMEOUT, logger=LIBRARY_LOG)
        self.conn = conn
        self._svc = services
        self._state = state
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- connection loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the websocket closes; never raises for anything the charger sends."""
        try:
            while True:
                incoming = await self.conn.receive()
                if incoming.answer is not None:
                    await self.conn.send(incoming.answer)
                elif incoming.route:
                    try:
                        await self.route_message(incoming.text)
                    except ConnectionClosed:
                        raise
                    except Exception as exc:  # a CSMS bug: still answer the charger
                        LOG.exception("%s: handling %s failed", self.id, incoming.record.raw)
                        rec = incoming.record
                        if rec.type == CALL and rec.message_id is not None:
                            error = CallError(rec.message_id, "InternalError", str(exc), {})
                            await self.conn.send(error.to_json())
        except ConnectionClosed:
            pass
        finally:
            self.conn.closed()
            if not self.closed.done():
                self.closed.set_result(None)

    # -- CSMS-initiated calls --------------------------------------------------------------------

    async def call_action(
        self, action: str, payload: dict[str, Any], timeout: float, validate: bool = True
    ) -> dict[str, Any]:
        """Send a CALL through the library and return the reply payload exactly as received."""
        request = build_request(action, payload)
        if self.closed.done():
            raise NotConnected(self.id)
        message_id = str(uuid.uuid4())
        reply = self.conn.expect(message_id, route=True)
        task = asyncio.ensure_future(
            self.call(
                request, suppress=False, unique_id=message_id, skip_schema_validation=not validate
            )
        )
        try:
            done, _ = await asyncio.wait(
                (task, self.closed), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if task not in done and reply.done():
                # The answer arrived just before the link closed (a charger that accepts a Reset
                # and goes): let the library finish routing it instead of reporting a lost link.
                done, _ = await asyncio.wait((task,), timeout=1.0)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task not in done:
            self.conn.forget(message_id)
            if self.closed.done():
                raise NotConnected(self.id)
            self._svc.stats.timeouts += 1
            raise TimeoutError(f"{self.id}: no reply to {action} within {timeout}s")
        exc = task.exception()
        if exc is None:
            return dict(reply.result().payload)
        self.conn.forget(message_id)
        if reply.done() and not reply.cancelled() and reply.exception() is None:
            rec = reply.result()
            if rec.type == CALLERROR:
                self._svc.stats.errors += 1
                raise CallErrorReply(rec.error_code or "", rec.error or "", rec.payload)
            if isinstance(exc, OCPPError):
                self._svc.stats.invalid_replies += 1
                reason = f"{exc.code}: {exc.details.get('cause', exc.description)}"
                self._svc.store.flag(rec, f"invalid {action} reply: {reason}")
                raise InvalidReply(action, reason, rec.payload)
        if isinstance(exc, ConnectionClosed):
            raise NotConnected(self.id) from exc
        if isinstance(exc, OCPPError):
            raise ValueError(f"invalid {action} request: {exc.details.get('cause', exc)}") from exc
        raise exc

    # -- reply shaping (negative tests) ----------------------------------------------------------

    async def _before(self, action: str) -> None:
        config = self._svc.config
        delay = config.reply_delays.get(action)
        if delay:
            await asyncio.sleep(delay)
        code = config.reply_errors.get(action)
        if code:
            raise error_for_code(code, f"configured reply to {action}")

    def _reply(self, action: str, result: T) -> T:
        override = self._svc.config.reply_overrides.get(action)
        if not override:
            return result
        payload = snake_to_camel_case(remove_nones(serialize_as_dict(result)))
        payload.update(override)
        return type(result)(**camel_to_snake_case(payload))

    def _payload(self) -> dict[str, Any]:
        rec = self.conn.last_in
        return dict(rec.payload) if rec is not None and isinstance(rec.payload, dict) else {}

    def _id_tag_info(self, id_tag: str) -> IdTagInfo:
        info = self._svc.config.id_tag_info(id_tag)
        return IdTagInfo(
            status=info["status"],
            parent_id_tag=info.get("parentIdTag"),
            expiry_date=info.get("expiryDate"),
        )

    # -- handlers: every charge-point-initiated OCPP 1.6 action (core + security extension) -------

    @on(Action.boot_notification)
    async def on_boot_notification(self, **kwargs: Any) -> call_result.BootNotification:
        await self._before(Action.boot_notification)
        config = self._svc.config
        status = config.boot_answer(self.id).status
        self._state.boot = self._payload()
        self._state.registration = status
        result = call_result.BootNotification(
            current_time=utc_now(), interval=config.boot_interval(self.id), status=status
        )
        return self._reply(Action.boot_notification, result)

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        await self._before(Action.heartbeat)
        self._state.last_heartbeat = time.time()
        return self._reply(Action.heartbeat, call_result.Heartbeat(current_time=utc_now()))

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, **kwargs: Any
    ) -> call_result.StatusNotification:
        await self._before(Action.status_notification)
        self._state.connectors[connector_id] = self._payload()
        return self._reply(Action.status_notification, call_result.StatusNotification())

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **kwargs: Any) -> call_result.Authorize:
        await self._before(Action.authorize)
        result = call_result.Authorize(id_tag_info=self._id_tag_info(id_tag))
        return self._reply(Action.authorize, result)

    @on(Action.start_transaction)
    async def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
        **kwargs: Any,
    ) -> call_result.StartTransaction:
        await self._before(Action.start_transaction)
        info = self._id_tag_info(id_tag)
        tx = self._svc.ledger.start(
            self.id, connector_id, id_tag, meter_start, timestamp, str(info.status), reservation_id
        )
        result = call_result.StartTransaction(transaction_id=tx.transaction_id, id_tag_info=info)
        return self._reply(Action.start_transaction, result)

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        id_tag: str | None = None,
        reason: str | None = None,
        **kwargs: Any,
    ) -> call_result.StopTransaction:
        await self._before(Action.stop_transaction)
        self._svc.ledger.stop(transaction_id, meter_stop, timestamp, reason)
        info = self._id_tag_info(id_tag) if id_tag is not None else None
        return self._reply(Action.stop_transaction, call_result.StopTransaction(id_tag_info=info))

    @on(Action.meter_values)
    async def on_meter_values(self, **kwargs: Any) -> call_result.MeterValues:
        await self._before(Action.meter_values)
        return self._reply(Action.meter_values, call_result.MeterValues())

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        await self._before(Action.data_transfer)
        answer = self._svc.config.data_transfer
        result = call_result.DataTransfer(status=answer.status, data=answer.data)
        return self._reply(Action.data_transfer, result)

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(
        self, status: str, **kwargs: Any
    ) -> call_result.DiagnosticsStatusNotification:
        await self._before(Action.diagnostics_status_notification)
        self._state.diagnostics_status = status
        result = call_result.DiagnosticsStatusNotification()
        return self._reply(Action.diagnostics_status_notification, result)

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(
        self, status: str, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        await self._before(Action.firmware_status_notification)
        self._state.firmware_status = status
        result = call_result.FirmwareStatusNotification()
        return self._reply(Action.firmware_status_notification, result)

    @on(Action.security_event_notification)
    async def on_security_event_notification(
        self, **kwargs: Any
    ) -> call_result.SecurityEventNotification:
        await self._before(Action.security_event_notification)
        result = call_result.SecurityEventNotification()
        return self._reply(Action.security_event_notification, result)

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **kwargs: Any) -> call_result.SignCertificate:
        await self._before(Action.sign_certificate)
        status = self._svc.config.sign_certificate_status
        if (
            status == "Accepted"
            and self._svc.signer is not None
            and not self._svc.signer.can_sign(csr)
        ):
            status = "Rejected"
        return self._reply(Action.sign_certificate, call_result.SignCertificate(status=status))

    @after(Action.sign_certificate)
    def after_sign_certificate(self, csr: str, **kwargs: Any) -> None:
        signer = self._svc.signer
        accepted = self._svc.config.sign_certificate_status == "Accepted"
        if signer is not None and accepted and signer.can_sign(csr):
            self._svc.spawn(self._send_signed_certificate(signer, csr))

    async def _send_signed_certificate(self, signer: CsrSigner, csr: str) -> None:
        try:
            chain = signer.sign(csr)
        except ValueError as exc:
            LOG.warning("%s: cannot sign the CSR: %s", self.id, exc)
            return
        try:
            await self.call_action(
                "CertificateSigned", {"certificateChain": chain}, self._svc.config.call_timeout
            )
        except (TimeoutError, NotConnected, CallErrorReply, InvalidReply) as exc:
            LOG.warning("%s: CertificateSigned failed: %s", self.id, exc)

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, **kwargs: Any) -> call_result.LogStatusNotification:
        await self._before(Action.log_status_notification)
        return self._reply(Action.log_status_notification, call_result.LogStatusNotification())

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status_notification(
        self, status: str, **kwargs: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        await self._before(Action.signed_firmware_status_notification)
        self._state.firmware_status = status
        result = call_result.SignedFirmwareStatusNotification()
        return self._reply(Action.signed_firmware_status_notification, result)
