"""FakeCourier: the Courier port in memory, recording every shipment.

Like a carrier's booking API with an idempotency key, a second dispatch of the
same shipment id returns the first receipt and books nothing new. It can be
told to fail the next dispatches. Thread-safe.
"""

from __future__ import annotations

import hashlib
import threading

from resim.errors import ExternalError
from resim.services.ports import Shipment, ShipmentReceipt


def tracking_ref(shipment_id: str) -> str:
    """A stable, carrier-looking reference for a shipment id."""
    return "RS" + hashlib.sha256(shipment_id.encode()).hexdigest()[:10].upper()


class FakeCourier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shipments: dict[str, Shipment] = {}
        self._failures: list[ExternalError] = []
        self.attempts = 0

    def dispatch(self, shipment: Shipment) -> ShipmentReceipt:
        with self._lock:
            self.attempts += 1
            if self._failures:
                raise self._failures.pop(0)
            self._shipments.setdefault(shipment.id, shipment)
            return ShipmentReceipt(tracking_ref(shipment.id))

    def fail_next(self, error: ExternalError, *, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([error] * times)

    @property
    def shipments(self) -> list[Shipment]:
        """A copy of the booked shipments, oldest first."""
        with self._lock:
            return list(self._shipments.values())
