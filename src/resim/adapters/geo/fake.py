"""FakeGeolocator: addresses mapped to countries by a fixed table (tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resim.services.ports import Geolocator


class FakeGeolocator:
    def __init__(self, table: dict[str, str] | None = None) -> None:
        self.table = dict(table or {})
        self.asked: list[str] = []

    def country_of(self, address: str) -> str | None:
        self.asked.append(address)
        return self.table.get(address)


if TYPE_CHECKING:

    def _conforms(adapter: FakeGeolocator) -> Geolocator:
        return adapter
