"""CAMARA subscriptions and their events on the in-memory unit of work.

The twin of :class:`resim.adapters.db.stores.camara.SqlCamaraStore`
(``services.stores.camara.CamaraStore``), with the same contract tests
(tests/contract/test_readmodel_stores.py, ``TestCamaraStore``). Rows live in the
:class:`~resim.adapters.memory.store.MemoryStore` beside the domain objects and
change through the unit's transaction, so a unit that does not commit leaves
them as they were. Nothing is encrypted here: the sink's token is kept as
given (the SQL store encrypts it at rest).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resim.domain.camara_events import SubscriptionStatus
from resim.domain.model import Line, LineStatus
from resim.services.stores.camara import Outgoing, SubscriptionRow
from resim.services.unit_of_work import Duplicate

if TYPE_CHECKING:
    from resim.adapters.memory.store import MemoryStore, Transaction

_ACTIVE = SubscriptionStatus.ACTIVE.value


@dataclass
class MemorySubscription:
    """A ``camara_subscription`` row."""

    id: str
    client_id: str
    phone_number: str
    three_legged: bool
    protocol: str
    sink: str
    types: list[str]
    status: str
    created_at: dt.datetime
    starts_at: dt.datetime
    sink_credential_type: str | None = None
    sink_access_token: str | None = None
    sink_token_expires_at: dt.datetime | None = None
    expire_time: dt.datetime | None = None
    max_events: int | None = None
    events_sent: int = 0
    event_seq: int = 0
    expires_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    termination_reason: str | None = None


@dataclass
class MemoryCamaraEvent:
    """A ``camara_event`` row (a CloudEvent to deliver)."""

    id: str
    subscription_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    state: str
    job_id: str | None
    created_at: dt.datetime
    attempts: int = 0
    last_attempt_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    last_status: int | None = None
    last_error: str | None = None


class InMemoryCamaraStore:
    """``uow.camara`` of a :class:`~resim.adapters.memory.MemoryUnitOfWork`."""

    def __init__(self, store: MemoryStore, tx: Transaction) -> None:
        self._store = store
        self._tx = tx

    @property
    def _subscriptions(self) -> dict[Any, MemorySubscription]:
        return self._store.of(MemorySubscription)

    @property
    def _events(self) -> dict[Any, MemoryCamaraEvent]:
        return self._store.of(MemoryCamaraEvent)

    def _sub(self, subscription_id: str) -> MemorySubscription:
        found = self._subscriptions.get(subscription_id)
        if found is None:
            raise LookupError(f"no CAMARA subscription {subscription_id!r}")
        return self._tx.seen(found)  # type: ignore[no-any-return]

    def _event(self, event_id: str) -> MemoryCamaraEvent | None:
        return self._tx.seen(self._events.get(event_id))  # type: ignore[no-any-return]

    def line_status(self, msisdn: str) -> LineStatus | None:
        for line in self._store.of(Line).values():
            if line.msisdn == msisdn:
                return LineStatus(line.status)
        return None

    def active_types(self, *, client_id: str, phone_number: str, sink: str) -> list[list[str]]:
        return [
            list(s.types)
            for s in self._subscriptions.values()
            if (s.client_id, s.phone_number, s.sink, s.status)
            == (client_id, phone_number, sink, _ACTIVE)
        ]

    def add(self, **values: Any) -> None:
        self._tx.add(MemorySubscription(**values))

    def get(self, subscription_id: str, *, lock: bool = False) -> SubscriptionRow | None:
        return self._tx.seen(self._subscriptions.get(subscription_id))  # type: ignore[no-any-return]

    def of_client(self, client_id: str, phone_number: str | None) -> Sequence[SubscriptionRow]:
        found = [
            s
            for s in self._subscriptions.values()
            if s.client_id == client_id
            and s.status != SubscriptionStatus.DELETED.value
            and (phone_number is None or s.phone_number == phone_number)
        ]
        return [self._tx.seen(s) for s in sorted(found, key=lambda s: (s.created_at, s.id))]

    def active_on(self, msisdn: str) -> Sequence[SubscriptionRow]:
        found = [
            s
            for s in self._subscriptions.values()
            if s.phone_number == msisdn and s.status == _ACTIVE
        ]
        return [self._tx.seen(s) for s in sorted(found, key=lambda s: s.id)]

    def set_status(
        self,
        subscription_id: str,
        status: str,
        *,
        ended_at: dt.datetime,
        termination_reason: str | None = None,
    ) -> None:
        sub = self._sub(subscription_id)
        sub.status, sub.ended_at = status, ended_at
        if termination_reason is not None:
            sub.termination_reason = termination_reason

    def set_events_sent(self, subscription_id: str, count: int) -> None:
        self._sub(subscription_id).events_sent = count

    def next_event_seq(self, subscription_id: str) -> int:
        sub = self._sub(subscription_id)
        sub.event_seq += 1
        return sub.event_seq

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
        if subscription_id not in self._subscriptions:
            raise Duplicate(f"no CAMARA subscription {subscription_id!r} for the event")
        if any(
            e.subscription_id == subscription_id and e.seq == seq for e in self._events.values()
        ):
            raise Duplicate(f"event {seq} of subscription {subscription_id!r} exists already")
        self._tx.add(
            MemoryCamaraEvent(
                id=id,
                subscription_id=subscription_id,
                seq=seq,
                type=str(payload["type"]),
                payload=dict(payload),
                state="pending",
                job_id=job_id,
                created_at=created_at,
            )
        )

    def outgoing(self, event_id: str) -> Outgoing | None:
        event = self._event(event_id)
        if event is None:
            return None
        sub = self._subscriptions[event.subscription_id]
        return Outgoing(event.state, dict(event.payload), sub.sink, sub.sink_access_token)

    def mark_sending(self, event_id: str, at: dt.datetime) -> None:
        event = self._event(event_id)
        if event is not None:
            event.state, event.last_attempt_at = "sending", at
            event.attempts += 1

    def event_done(
        self,
        event_id: str,
        *,
        state: str,
        last_status: int | None,
        last_error: str | None = None,
        delivered_at: dt.datetime | None = None,
    ) -> None:
        event = self._event(event_id)
        if event is None:
            return
        event.state, event.last_status = state, last_status
        if delivered_at is not None:
            event.delivered_at = delivered_at
        if last_error is not None:
            event.last_error = last_error

    def subscription_of_event(self, event_id: str) -> str:
        event = self._events.get(event_id)
        if event is None:
            raise LookupError(f"no CAMARA event {event_id!r}")
        return event.subscription_id
