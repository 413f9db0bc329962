"""SQL store of reviewers' alerts (table ``alert``)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.scoping import alerts_where
from resim.adapters.db.stores import SessionHolder
from resim.domain.security import Alert
from resim.services.access.tenancy import Scope
from resim.services.stores.alerts import InboxAlert

a, r, ln = orm.alert, orm.replacement_request, orm.line
ALERT_LIMIT = 200
_RAISED_SINCE = (
    sa.select(sa.func.count())
    .select_from(a)
    .where(
        a.c.kind == sa.bindparam("kind"),
        a.c.subject_type == sa.bindparam("s_type"),
        a.c.subject_id == sa.bindparam("s_id"),
        a.c.at > sa.bindparam("since"),
    )
)
_REQUEST_MSISDN = sa.select(r.c.msisdn).where(r.c.id == sa.bindparam("s_id"))
_SUBSCRIBER_MSISDN = (
    sa.select(ln.c.msisdn)
    .where(ln.c.subscriber_id == sa.bindparam("s_id"))
    .order_by(ln.c.created_at)
    .limit(1)
)
_ABOUT_SUBSCRIBER = sa.or_(
    sa.and_(a.c.subject_type == "subscriber", a.c.subject_id == sa.bindparam("sub_id")),
    sa.and_(
        a.c.subject_type == "request",
        a.c.subject_id.in_(sa.select(r.c.id).where(r.c.subscriber_id == sa.bindparam("sub_id"))),
    ),
)
_ACK_ABOUT_SUBSCRIBER = (
    sa.update(a)
    .where(a.c.acknowledged_at.is_(None), _ABOUT_SUBSCRIBER)
    .values(acknowledged_by=sa.bindparam("by"), acknowledged_at=sa.bindparam("at_now"))
)
_BRAND_OF = {
    name: sa.select(t.c.brand_id).where(t.c.id == sa.bindparam("s_id"))
    for name, t in (
        ("request", orm.replacement_request),
        ("subscriber", orm.subscriber),
        ("line", orm.line),
    )
}


_OPEN_COUNT = (
    sa.select(sa.func.count())
    .select_from(orm.alert)
    .where(
        orm.alert.c.kind == sa.bindparam("kind"),
        orm.alert.c.subject_id == sa.bindparam("subject_id"),
        orm.alert.c.acknowledged_at.is_(None),
    )
)


@functools.cache
def _open_query(limit: int) -> sa.Select[Any]:
    return (
        sa.select(a.c.id, a.c.at, a.c.kind, a.c.subject_type, a.c.subject_id, a.c.detail)
        .where(a.c.acknowledged_at.is_(None))
        .order_by(a.c.at.desc(), a.c.id)
        .limit(limit)
    )


class SqlAlertStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def add(self, alert: Alert) -> None:
        self._uow.session.add(alert)

    def get(self, alert_id: str) -> Alert | None:
        return self._uow.session.get(Alert, alert_id)

    def raised_since(
        self, *, kind: str, subject_type: str, subject_id: str, since: dt.datetime
    ) -> int:
        params = {"kind": kind, "s_type": subject_type, "s_id": subject_id, "since": since}
        return int(self._uow.session.scalar(_RAISED_SINCE, params) or 0)

    def open_count(self, *, kind: str, subject_id: str) -> int:
        return int(
            self._uow.session.scalar(_OPEN_COUNT, {"kind": kind, "subject_id": subject_id}) or 0
        )

    def open_alerts(self, scope: Scope, *, limit: int) -> Sequence[InboxAlert]:
        session = self._uow.session
        query = _open_query(max(1, min(limit, ALERT_LIMIT))).where(alerts_where(scope))
        out = []
        for alert_id, at, kind, subject_type, subject_id, detail in session.execute(query):
            msisdn = None
            if subject_type == "request":
                msisdn = session.scalar(_REQUEST_MSISDN, {"s_id": subject_id})
            elif subject_type == "subscriber":
                msisdn = session.scalar(_SUBSCRIBER_MSISDN, {"s_id": subject_id})
            out.append(
                InboxAlert(alert_id, at, kind, subject_type, subject_id, msisdn, detail or {})
            )
        return out

    def lock_open(self, alert_id: str, scope: Scope) -> Alert | None:
        return self._uow.session.scalars(
            sa.select(Alert)
            .where(a.c.id == alert_id, a.c.acknowledged_at.is_(None), alerts_where(scope))
            .with_for_update()
        ).one_or_none()

    def acknowledge_about_subscriber(self, subscriber_id: str, *, by: str, at: dt.datetime) -> int:
        result = self._uow.session.execute(
            _ACK_ABOUT_SUBSCRIBER, {"sub_id": subscriber_id, "by": by, "at_now": at}
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def brand_of_subject(self, subject_type: str, subject_id: str) -> str | None:
        query = _BRAND_OF.get(subject_type)
        if query is None:
            return None
        found = self._uow.session.scalar(query, {"s_id": subject_id})
        return str(found) if found is not None else None
