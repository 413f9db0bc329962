"""The store of reviewers' alerts (``uow.alerts``), behind :mod:`resim.services.console.alerts`,
:mod:`~resim.services.console.alert_inbox`, :mod:`~resim.services.notifications.alert_notify` and
:mod:`~resim.services.locks.unfreeze`.

SQL only (:mod:`resim.adapters.db.stores.alerts`): which alerts a scope sees
depends on the brands of subscribers, requests and staff, i.e. on joins a
memory store would have to copy. Contract: ``tests/contract/test_alert_store.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from resim.domain.security import Alert
from resim.services.access.tenancy import Scope


@dataclass(frozen=True)
class InboxAlert:
    """An open alert as the inbox lists it; ``msisdn``: the line to open (a
    request's number, or a subscriber's first line), None for other subjects."""

    id: str
    at: dt.datetime
    kind: str
    subject_type: str
    subject_id: str
    msisdn: str | None
    detail: dict[str, Any]


class AlertStore(Protocol):
    def add(self, alert: Alert) -> None: ...

    def get(self, alert_id: str) -> Alert | None: ...

    def raised_since(
        self, *, kind: str, subject_type: str, subject_id: str, since: dt.datetime
    ) -> int:
        """How many alerts of ``kind`` about the subject were raised after ``since``."""
        ...

    def open_count(self, *, kind: str, subject_id: str) -> int:
        """How many alerts of ``kind`` about ``subject_id`` are not acknowledged yet."""
        ...

    def open_alerts(self, scope: Scope, *, limit: int) -> Sequence[InboxAlert]:
        """Unacknowledged alerts ``scope`` may see, newest first (then by id).

        Alerts name their subject, not a brand: a subscriber's, a request's and a
        staff member's alerts belong to that object's brand; alerts about a source
        address or a peer are for operator-wide staff only. A customer sees none."""
        ...

    def lock_open(self, alert_id: str, scope: Scope) -> Alert | None:
        """The alert if it is open and ``scope`` may see it, locked until the unit
        of work ends; None otherwise."""
        ...

    def acknowledge_about_subscriber(self, subscriber_id: str, *, by: str, at: dt.datetime) -> int:
        """Acknowledge every open alert about the subscriber or one of its
        requests; how many."""
        ...

    def brand_of_subject(self, subject_type: str, subject_id: str) -> str | None:
        """The brand of a request's, subscriber's or line's alert subject (None for
        other subjects or an unknown one)."""
        ...
