"""Convenience wrappers for common CSMS-initiated OCPP 1.6 calls (mixed into `Csms`)."""

from __future__ import annotations

from typing import Any


def _drop_none(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None}


class CsmsActions:
    """Each wrapper returns the reply's `status` (or the whole reply payload where noted)."""

    async def call(
        self,
        cp_id: str,
        action: str,
        payload: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        validate: bool = True,
    ) -> dict[str, Any]:
        raise NotImplementedError

    def active_transaction(self, cp_id: str, connector_id: int | None = None) -> int | None:
        raise NotImplementedError

    async def _status(
        self, cp_id: str, action: str, payload: dict[str, Any], timeout: float | None
    ) -> str:
        reply = await self.call(cp_id, action, _drop_none(payload), timeout=timeout)
        return str(reply.get("status"))

    async def remote_start(
        self,
        cp_id: str,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> str:
        payload = {
            "idTag": id_tag,
            "connectorId": connector_id,
            "chargingProfile": charging_profile,
        }
        return await self._status(cp_id, "RemoteStartTransaction", payload, timeout)

    async def remote_stop(
        self, cp_id: str, transaction_id: int | None = None, *, timeout: float | None = None
    ) -> str:
        """transaction_id None: the charger's newest open transaction."""
        if transaction_id is None:
            transaction_id = self.active_transaction(cp_id)
            if transaction_id is None:
                raise LookupError(f"{cp_id} has no open transaction")
        payload = {"transactionId": transaction_id}
        return await self._status(cp_id, "RemoteStopTransaction", payload, timeout)

    async def reset(self, cp_id: str, type: str = "Soft", *, timeout: float | None = None) -> str:
        return await self._status(cp_id, "Reset", {"type": type}, timeout)

    async def change_configuration(
        self, cp_id: str, key: str, value: str, *, timeout: float | None = None
    ) -> str:
        return await self._status(
            cp_id, "ChangeConfiguration", {"key": key, "value": value}, timeout
        )

    async def get_configuration(
        self, cp_id: str, keys: list[str] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """The whole reply: {"configurationKey": [...], "unknownKey": [...]}."""
        return await self.call(
            cp_id, "GetConfiguration", _drop_none({"key": keys}), timeout=timeout
        )

    async def get_configuration_values(
        self, cp_id: str, keys: list[str] | None = None, *, timeout: float | None = None
    ) -> dict[str, str | None]:
        """key -> value for the known keys."""
        reply = await self.get_configuration(cp_id, keys, timeout=timeout)
        return {entry["key"]: entry.get("value") for entry in reply.get("configurationKey", [])}

    async def trigger_message(
        self,
        cp_id: str,
        requested_message: str,
        connector_id: int | None = None,
        *,
        timeout: float | None = None,
    ) -> str:
        payload = {"requestedMessage": requested_message, "connectorId": connector_id}
        return await self._status(cp_id, "TriggerMessage", payload, timeout)

    async def unlock_connector(
        self, cp_id: str, connector_id: int = 1, *, timeout: float | None = None
    ) -> str:
        return await self._status(cp_id, "UnlockConnector", {"connectorId": connector_id}, timeout)

    async def change_availability(
        self, cp_id: str, connector_id: int, type: str, *, timeout: float | None = None
    ) -> str:
        payload = {"connectorId": connector_id, "type": type}
        return await self._status(cp_id, "ChangeAvailability", payload, timeout)

    async def clear_cache(self, cp_id: str, *, timeout: float | None = None) -> str:
        return await self._status(cp_id, "ClearCache", {}, timeout)

    async def data_transfer(
        self,
        cp_id: str,
        vendor_id: str,
        message_id: str | None = None,
        data: str | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The whole reply: {"status": ..., "data": ...}."""
        payload = _drop_none({"vendorId": vendor_id, "messageId": message_id, "data": data})
        return await self.call(cp_id, "DataTransfer", payload, timeout=timeout)

    async def get_local_list_version(self, cp_id: str, *, timeout: float | None = None) -> int:
        reply = await self.call(cp_id, "GetLocalListVersion", {}, timeout=timeout)
        return int(reply["listVersion"])

    async def send_local_list(
        self,
        cp_id: str,
        list_version: int,
        entries: list[dict[str, Any]] | None = None,
        update_type: str = "Full",
        *,
        timeout: float | None = None,
    ) -> str:
        """entries: [{"idTag": ..., "idTagInfo": {"status": ...}}, ...]."""
        payload = {
            "listVersion": list_version,
            "updateType": update_type,
            "localAuthorizationList": entries,
        }
        return await self._status(cp_id, "SendLocalList", payload, timeout)
