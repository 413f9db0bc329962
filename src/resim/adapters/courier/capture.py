"""CaptureCourier: the demo's courier. Each shipment becomes one JSON file; nothing moves.

``<directory>/<safe id>.json`` is written under a hidden temporary name and
renamed into place, so a reader sees whole files or nothing. A second dispatch
of an id already on disk returns the same receipt and writes nothing, which is
the idempotency a carrier's booking key gives. The files hold a postal address
(personal data): they live in the demo's data directory only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from resim.adapters.courier.fake import tracking_ref
from resim.services.ports import Shipment, ShipmentReceipt

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


class CaptureCourier:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, shipment_id: str) -> Path:
        return self.directory / f"{_UNSAFE.sub('_', shipment_id)}.json"

    def dispatch(self, shipment: Shipment) -> ShipmentReceipt:
        receipt = ShipmentReceipt(tracking_ref(shipment.id))
        path = self._path(shipment.id)
        if path.exists():
            return receipt
        self.directory.mkdir(parents=True, exist_ok=True)
        body = {
            "id": shipment.id,
            "iccid": shipment.iccid,
            "recipient": shipment.recipient,
            "address": shipment.address,
            "brand_id": shipment.brand_id,
            "tracking_ref": receipt.tracking_ref,
        }
        tmp = self.directory / f".{path.name}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(body, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        return receipt

    def shipments(self) -> list[dict[str, str]]:
        """Every captured shipment (the demo and tests read these)."""
        if not self.directory.is_dir():
            return []
        return [
            json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.directory.glob("*.json"))
        ]
