"""The reviewers' alert inbox (issue 12, point 4): open alerts, and acknowledging one.

Alerts are raised by :func:`resim.services.alerts.raise_alert` (a frozen
account, a "not me" report, an agent over the hourly limit, a brute-force
source, a peer that keeps failing). They name their subject, not a brand:
a subscriber's, a request's and a staff member's alerts belong to that
object's brand; alerts about a source address or a peer concern the whole
installation and are shown to operator-wide staff only (:func:`alerts_where`).
Unfreezing an account acknowledges its alerts itself
(:mod:`resim.services.unfreeze`); anything else a reviewer acknowledges here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.errors import NotFound
from resim.services.context import ServiceContext
from resim.services.tenancy import UNRESTRICTED, Scope

ALERT_LIMIT = 200


def alerts_where(scope: Scope) -> sa.ColumnElement[bool]:
    """The SQL condition on ``alert`` rows ``scope`` may see.

    Alerts name their subject, not a brand: a subscriber's, a request's and a
    staff member's alerts belong to that object's brand; alerts about a source
    address or a peer concern the whole installation and are for operator-wide
    staff only. A customer sees none.
    """
    a = orm.alert
    if scope.customer:
        return sa.false()
    if scope.brand_id is None:
        return sa.true()
    brand = scope.brand_id
    subscribers = sa.select(orm.subscriber.c.id).where(orm.subscriber.c.brand_id == brand)
    staff = sa.select(orm.staff_user.c.id).where(orm.staff_user.c.brand_id == brand)
    return sa.or_(
        sa.and_(
            a.c.subject_type == "subscriber",
            a.c.subject_id.in_(subscribers),
        ),
        sa.and_(
            a.c.subject_type == "request",
            a.c.subject_id.in_(
                sa.select(orm.replacement_request.c.id).where(
                    orm.replacement_request.c.brand_id == brand
                )
            ),
        ),
        sa.and_(
            a.c.subject_type == "staff",
            a.c.subject_id.in_(staff),
        ),
    )


def open_alerts(
    ctx: ServiceContext, *, scope: Scope = UNRESTRICTED, limit: int = ALERT_LIMIT
) -> list[dict[str, Any]]:
    """Unacknowledged alerts ``scope`` may see, newest first. For a subscriber's or a
    request's alert, ``msisdn`` names the line to open (never a secret in ``detail``)."""
    a, r, ln = orm.alert, orm.replacement_request, orm.line
    with ctx.uow() as uow:
        rows = uow.session.execute(
            sa.select(a.c.id, a.c.at, a.c.kind, a.c.subject_type, a.c.subject_id, a.c.detail)
            .where(a.c.acknowledged_at.is_(None), alerts_where(scope))
            .order_by(a.c.at.desc(), a.c.id)
            .limit(max(1, min(limit, ALERT_LIMIT)))
        ).all()
        out: list[dict[str, Any]] = []
        for alert_id, at, kind, subject_type, subject_id, detail in rows:
            msisdn = None
            if subject_type == "request":
                msisdn = uow.session.scalar(sa.select(r.c.msisdn).where(r.c.id == subject_id))
            elif subject_type == "subscriber":
                msisdn = uow.session.scalar(
                    sa.select(ln.c.msisdn)
                    .where(ln.c.subscriber_id == subject_id)
                    .order_by(ln.c.created_at)
                    .limit(1)
                )
            out.append(
                {
                    "id": alert_id,
                    "at": at,
                    "kind": kind,
                    "subject_type": subject_type,
                    "subject_id": subject_id,
                    "msisdn": msisdn,
                    "detail": {str(k): str(v)[:120] for k, v in sorted((detail or {}).items())},
                }
            )
        return out


def acknowledge(
    ctx: ServiceContext, *, alert_id: str, by: str, scope: Scope = UNRESTRICTED
) -> None:
    """Mark an open alert as dealt with by ``by`` (audited ``alert.acknowledged``).

    NotFound (ALERT_NOT_FOUND) for an unknown alert, one out of ``scope``, or
    one already acknowledged (nothing changes; the first acknowledgement stands).
    """
    a = orm.alert
    now = ctx.now()
    with ctx.uow() as uow:
        row = uow.session.execute(
            sa.select(a.c.kind, a.c.subject_type, a.c.subject_id)
            .where(a.c.id == alert_id, a.c.acknowledged_at.is_(None), alerts_where(scope))
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound("no open alert with that id", code="ALERT_NOT_FOUND")
        uow.session.execute(
            sa.update(a)
            .where(a.c.id == alert_id, a.c.acknowledged_at.is_(None))
            .values(acknowledged_by=by, acknowledged_at=now)
        )
        uow.audit(
            at=now,
            actor=by,
            action="alert.acknowledged",
            object_type=row.subject_type,
            object_id=row.subject_id,
            detail={"alert_id": alert_id, "kind": row.kind},
        )
        uow.commit()
