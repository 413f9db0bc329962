"""The dashboard's read model (``uow.dashboard``): the rows its figures are counted from.

SQL only (:mod:`resim.adapters.db.stores.dashboard`): each method is one
query over a time window, filtered by the caller's scope in the query. Times
come back as stored (SQLite may hand back naive UTC); the service makes them
aware. Contract: ``tests/contract/test_dashboard_store.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from resim.services.access.tenancy import Scope


class RequestAt(NamedTuple):
    """A request and the time of one thing that happened to it."""

    id: str
    brand_id: str
    channel: str
    actor: str | None
    msisdn: str
    at: dt.datetime
    created_at: dt.datetime


class ChangeAt(NamedTuple):
    """A SIM change; ``channel``: its request's, None when no resim request made it."""

    id: str
    at: dt.datetime
    request_id: str | None
    msisdn: str
    brand_id: str
    channel: str | None


class DashboardQueries(Protocol):
    def completed(self, start: dt.datetime, end: dt.datetime, scope: Scope) -> Sequence[RequestAt]:
        """Requests completed in ``[start, end)`` (``at``: ``completed_at``)."""
        ...

    def fraud_reported(
        self, start: dt.datetime, end: dt.datetime, scope: Scope
    ) -> Sequence[RequestAt]:
        """Requests reported "not me" in the window (``at``: ``fraud_reported_at``)."""
        ...

    def request_events(
        self, action: str, start: dt.datetime, end: dt.datetime, scope: Scope
    ) -> Sequence[RequestAt]:
        """One row per audit event ``action`` on a request in the window, in chain
        order (a request may appear more than once)."""
        ...

    def sim_changes(self, start: dt.datetime, end: dt.datetime, scope: Scope) -> Sequence[ChangeAt]:
        """SIM changes in the window on lines ``scope`` may see."""
        ...

    def queue(self, scope: Scope) -> tuple[int, dt.datetime | None]:
        """Requests in review now, and the oldest one's ``updated_at``."""
        ...

    def brand_names(self, scope: Scope) -> dict[str, tuple[str, str]]:
        """Brand id -> (name, time zone) of the brands ``scope`` may see."""
        ...

    def staff_names(self, scope: Scope) -> dict[str, str]:
        """Staff id -> display name of ``scope``'s brand's staff and operator-wide staff."""
        ...
