"""The store of CAMARA subscriptions and their notification outbox (``uow.camara``).

Behind :mod:`resim.services.camara.camara_subscriptions` and
:mod:`resim.services.camara.camara_delivery`. Subscriptions are handed out as read-only
rows (:class:`SubscriptionRow`); every change goes through a method, so a row
read before a change shows the old values. SQL only
(:mod:`resim.adapters.db.stores.camara`; tables ``camara_subscription`` and
``camara_event``). Contract: ``tests/contract/test_camara_store.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from resim.domain.model import LineStatus


class SubscriptionRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def phone_number(self) -> str: ...
    @property
    def three_legged(self) -> bool: ...
    @property
    def protocol(self) -> str: ...
    @property
    def sink(self) -> str: ...
    @property
    def sink_access_token(self) -> str | None: ...
    @property
    def sink_token_expires_at(self) -> dt.datetime | None: ...
    @property
    def types(self) -> list[str]: ...
    @property
    def expire_time(self) -> dt.datetime | None: ...
    @property
    def max_events(self) -> int | None: ...
    @property
    def status(self) -> str: ...
    @property
    def events_sent(self) -> int: ...
    @property
    def starts_at(self) -> dt.datetime: ...
    @property
    def expires_at(self) -> dt.datetime | None: ...
    @property
    def ended_at(self) -> dt.datetime | None: ...


class Outgoing(NamedTuple):
    """An event to deliver, with its subscription's sink and credential."""

    state: str
    payload: dict[str, Any]
    sink: str
    sink_access_token: str | None


class CamaraStore(Protocol):
    def line_status(self, msisdn: str) -> LineStatus | None:
        """The status of the line with this number (None: no such line)."""
        ...

    def active_types(self, *, client_id: str, phone_number: str, sink: str) -> list[list[str]]:
        """The ``types`` of the client's ACTIVE subscriptions on the number and sink."""
        ...

    def add(self, **values: Any) -> None:
        """Insert a subscription (``values``: its columns)."""
        ...

    def get(self, subscription_id: str, *, lock: bool = False) -> SubscriptionRow | None: ...

    def of_client(self, client_id: str, phone_number: str | None) -> Sequence[SubscriptionRow]:
        """The client's subscriptions that are not DELETED (only the number's when
        given), oldest first, then by id."""
        ...

    def active_on(self, msisdn: str) -> Sequence[SubscriptionRow]:
        """ACTIVE subscriptions on the number, by id, locked until the unit of work ends."""
        ...

    def set_status(
        self,
        subscription_id: str,
        status: str,
        *,
        ended_at: dt.datetime,
        termination_reason: str | None = None,
    ) -> None:
        """Set the status and ``ended_at`` (and the reason, when given)."""
        ...

    def set_events_sent(self, subscription_id: str, count: int) -> None: ...

    def next_event_seq(self, subscription_id: str) -> int:
        """Take the subscription's next event number (1, 2, ...)."""
        ...

    def add_event(
        self,
        *,
        id: str,
        subscription_id: str,
        seq: int,
        payload: dict[str, Any],
        job_id: str,
        created_at: dt.datetime,
    ) -> None:
        """Queue a CloudEvent (state pending, no attempt yet; ``type`` from the payload)."""
        ...

    def outgoing(self, event_id: str) -> Outgoing | None: ...

    def mark_sending(self, event_id: str, at: dt.datetime) -> None:
        """Record an attempt before the call: state sending, one more attempt."""
        ...

    def event_done(
        self,
        event_id: str,
        *,
        state: str,
        last_status: int | None,
        last_error: str | None = None,
        delivered_at: dt.datetime | None = None,
    ) -> None:
        """Record an attempt's outcome (``delivered_at`` only when delivered)."""
        ...

    def subscription_of_event(self, event_id: str) -> str: ...
