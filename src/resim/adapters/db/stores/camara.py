"""SQL store of CAMARA subscriptions and events (``camara_subscription``, ``camara_event``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.stores import SessionHolder
from resim.domain.camara_events import SubscriptionStatus
from resim.domain.model import LineStatus
from resim.services.stores.camara import Outgoing, SubscriptionRow

T, E = orm.camara_subscription, orm.camara_event
_ACTIVE = SubscriptionStatus.ACTIVE.value
_SUB_ID: sa.BindParameter[str] = sa.bindparam("sub_id")
_EV_ID: sa.BindParameter[str] = sa.bindparam("ev_id")
_LINE_STATUS = sa.select(orm.line.c.status).where(orm.line.c.msisdn == sa.bindparam("msisdn"))
_ACTIVE_TYPES = sa.select(T.c.types).where(
    T.c.client_id == sa.bindparam("client"),
    T.c.phone_number == sa.bindparam("phone"),
    T.c.sink == sa.bindparam("to_sink"),
    T.c.status == _ACTIVE,
)
_INSERT = sa.insert(T)
_GET = sa.select(T).where(T.c.id == _SUB_ID)
_GET_LOCKED = _GET.with_for_update()
_OF_CLIENT = (
    sa.select(T)
    .where(
        T.c.client_id == sa.bindparam("client"),
        T.c.status != SubscriptionStatus.DELETED.value,
    )
    .order_by(T.c.created_at, T.c.id)
)
_OF_CLIENT_NUMBER = _OF_CLIENT.where(T.c.phone_number == sa.bindparam("phone"))
_ACTIVE_ON = (
    sa.select(T)
    .where(T.c.phone_number == sa.bindparam("phone"), T.c.status == _ACTIVE)
    .order_by(T.c.id)
    .with_for_update()
)
_EVENT_SEQ = sa.select(T.c.event_seq).where(T.c.id == _SUB_ID)
_INSERT_EVENT = sa.insert(E)
_OUTGOING = (
    sa.select(E.c.state, E.c.payload, T.c.sink, T.c.sink_access_token)
    .join(T, T.c.id == E.c.subscription_id)
    .where(E.c.id == _EV_ID)
)
_SENDING = (
    sa.update(E)
    .where(E.c.id == _EV_ID)
    .values(state="sending", attempts=E.c.attempts + 1, last_attempt_at=sa.bindparam("at_now"))
)
_SUB_OF_EVENT = sa.select(E.c.subscription_id).where(E.c.id == _EV_ID)


class SqlCamaraStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def _update(self, subscription_id: str, **values: Any) -> None:
        self._uow.session.execute(sa.update(T).where(T.c.id == subscription_id).values(**values))

    def line_status(self, msisdn: str) -> LineStatus | None:
        found = self._uow.session.execute(_LINE_STATUS, {"msisdn": msisdn}).scalar_one_or_none()
        return LineStatus(found) if found is not None else None

    def active_types(self, *, client_id: str, phone_number: str, sink: str) -> list[list[str]]:
        params = {"client": client_id, "phone": phone_number, "to_sink": sink}
        return [list(types) for types in self._uow.session.scalars(_ACTIVE_TYPES, params)]

    def add(self, **values: Any) -> None:
        self._uow.session.execute(_INSERT.values(**values))

    def get(self, subscription_id: str, *, lock: bool = False) -> SubscriptionRow | None:
        query = _GET_LOCKED if lock else _GET
        row: SubscriptionRow | None = self._uow.session.execute(
            query, {"sub_id": subscription_id}
        ).one_or_none()
        return row

    def of_client(self, client_id: str, phone_number: str | None) -> Sequence[SubscriptionRow]:
        if phone_number is None:
            rows = self._uow.session.execute(_OF_CLIENT, {"client": client_id})
        else:
            params = {"client": client_id, "phone": phone_number}
            rows = self._uow.session.execute(_OF_CLIENT_NUMBER, params)
        found: list[SubscriptionRow] = list(rows.all())
        return found

    def active_on(self, msisdn: str) -> Sequence[SubscriptionRow]:
        found: list[SubscriptionRow] = list(
            self._uow.session.execute(_ACTIVE_ON, {"phone": msisdn}).all()
        )
        return found

    def set_status(
        self,
        subscription_id: str,
        status: str,
        *,
        ended_at: dt.datetime,
        termination_reason: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "ended_at": ended_at}
        if termination_reason is not None:
            values["termination_reason"] = termination_reason
        self._update(subscription_id, **values)

    def set_events_sent(self, subscription_id: str, count: int) -> None:
        self._update(subscription_id, events_sent=count)

    def next_event_seq(self, subscription_id: str) -> int:
        session = self._uow.session
        seq = int(session.execute(_EVENT_SEQ, {"sub_id": subscription_id}).scalar_one()) + 1
        self._update(subscription_id, event_seq=seq)
        return seq

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
        self._uow.session.execute(
            _INSERT_EVENT.values(
                id=id,
                subscription_id=subscription_id,
                seq=seq,
                type=payload["type"],
                payload=payload,
                state="pending",
                attempts=0,
                job_id=job_id,
                created_at=created_at,
            )
        )

    def outgoing(self, event_id: str) -> Outgoing | None:
        row = self._uow.session.execute(_OUTGOING, {"ev_id": event_id}).one_or_none()
        if row is None:
            return None
        return Outgoing(row.state, dict(row.payload), row.sink, row.sink_access_token)

    def mark_sending(self, event_id: str, at: dt.datetime) -> None:
        self._uow.session.execute(_SENDING, {"ev_id": event_id, "at_now": at})

    def event_done(
        self,
        event_id: str,
        *,
        state: str,
        last_status: int | None,
        last_error: str | None = None,
        delivered_at: dt.datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state, "last_status": last_status}
        if delivered_at is not None:
            values["delivered_at"] = delivered_at
        if last_error is not None:
            values["last_error"] = last_error
        self._uow.session.execute(sa.update(E).where(E.c.id == event_id).values(**values))

    def subscription_of_event(self, event_id: str) -> str:
        return str(self._uow.session.execute(_SUB_OF_EVENT, {"ev_id": event_id}).scalar_one())
