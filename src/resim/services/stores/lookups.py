"""Small read-only look-ups of the console, the portal and the demo (``uow.lookups``).

Each answers one question a page asks (the review queue, the store's stock of
cards, a line's last SIM changes, which brand has a number) with one query.
SQL only (:mod:`resim.adapters.db.stores.lookups`): they are projections of
several tables, tested through the pages and ``tests/contract/test_lookups.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import NamedTuple, Protocol

from resim.domain.model import Channel, Reason, ReplacementRequest
from resim.services.access.tenancy import Scope


class ChangeSeen(NamedTuple):
    at: dt.datetime
    old_iccid: str | None
    new_iccid: str


class NumberSeen(NamedTuple):
    msisdn: str
    brand_id: str
    country: str


class LookupQueries(Protocol):
    def review_queue(
        self,
        scope: Scope,
        *,
        channel: Channel | None = None,
        reason: Reason | None = None,
        limit: int,
    ) -> Sequence[ReplacementRequest]:
        """Requests in review that ``scope`` may see, oldest first (then by id)."""
        ...

    def cards_in_stock(
        self, brand_id: str | None = None, *, limit: int | None = None
    ) -> Sequence[tuple[str, str]]:
        """(brand id, ICCID) of physical cards in stock, by brand then ICCID;
        only ``brand_id``'s when given; at most ``limit``."""
        ...

    def recent_sim_changes(self, line_id: str, *, limit: int) -> Sequence[ChangeSeen]:
        """The line's SIM changes, newest first."""
        ...

    def job_pending_for_line(self, kind: str, line_id: str) -> bool:
        """A pending or running job of ``kind`` has ``line_id`` in its payload."""
        ...

    def requests_opened(self, actor: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
        """How many requests ``actor`` opened after ``since``, and the oldest's time."""
        ...

    def brand_countries(self) -> list[str]:
        """The countries of the brands here, sorted, without blanks."""
        ...

    def numbers(self, msisdns: Collection[str]) -> Sequence[NumberSeen]:
        """The lines with one of these numbers, with their brand and its country."""
        ...
