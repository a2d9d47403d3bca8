"""What the CSMS knows about each charger and the transactions it has numbered."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Transaction:
    transaction_id: int
    cp_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    start_time: str
    id_tag_status: str
    reservation_id: int | None = None
    meter_stop: int | None = None
    stop_time: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """Transaction ids increase from 1 across the server (and across stop/start of the listener)."""

    def __init__(self, finished_cap: int = 10_000) -> None:
        self.next_id = 1
        self.open: dict[int, Transaction] = {}
        self.finished: deque[Transaction] = deque(maxlen=finished_cap)
        self._by_cp: dict[str, dict[int, Transaction]] = {}

    def start(
        self,
        cp_id: str,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        start_time: str,
        id_tag_status: str,
        reservation_id: int | None = None,
    ) -> Transaction:
        tx = Transaction(
            self.next_id, cp_id, connector_id, id_tag, meter_start, start_time, id_tag_status,
            reservation_id,
        )  # fmt: skip
        self.next_id += 1
        self.open[tx.transaction_id] = tx
        self._by_cp.setdefault(cp_id, {})[tx.transaction_id] = tx
        return tx

    def stop(
        self, transaction_id: int, meter_stop: int, stop_time: str, reason: str | None
    ) -> None:
        tx = self.open.pop(transaction_id, None)
        if tx is None:  # e.g. started before a CSMS restart: nothing to close here
            return
        per_cp = self._by_cp.get(tx.cp_id)
        if per_cp is not None:
            per_cp.pop(transaction_id, None)
            if not per_cp:
                del self._by_cp[tx.cp_id]
        tx.meter_stop, tx.stop_time, tx.reason = meter_stop, stop_time, reason or "Local"
        self.finished.append(tx)

    def open_for(self, cp_id: str) -> list[Transaction]:
        return list(self._by_cp.get(cp_id, {}).values())


@dataclass
class ChargerState:
    cp_id: str
    connected: bool = False
    connected_at: float | None = None  # wall clock
    disconnected_at: float | None = None
    connections: int = 0
    remote: str | None = None
    boot: dict[str, Any] | None = None  # the last BootNotification payload
    registration: str | None = None  # the status the CSMS answered it with
    connectors: dict[int, dict[str, Any]] = field(default_factory=dict)  # last StatusNotification
    last_heartbeat: float | None = None
    firmware_status: str | None = None
    diagnostics_status: str | None = None

    def to_dict(self, ledger: Ledger) -> dict[str, Any]:
        data = asdict(self)
        data["connectors"] = {str(k): v for k, v in self.connectors.items()}
        data["transactions"] = [tx.to_dict() for tx in ledger.open_for(self.cp_id)]
        return data
