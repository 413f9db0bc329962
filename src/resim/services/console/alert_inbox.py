"""The reviewers' alert inbox (issue 12, point 4): open alerts, and acknowledging one.

Alerts are raised by :func:`resim.services.console.alerts.raise_alert` (a frozen
account, a "not me" report, an agent over the hourly limit, a brute-force
source, a peer that keeps failing). They name their subject, not a brand:
a subscriber's, a request's and a staff member's alerts belong to that
object's brand; alerts about a source address or a peer concern the whole
installation and are shown to operator-wide staff only (``AlertStore.open_alerts``).
Unfreezing an account acknowledges its alerts itself
(:mod:`resim.services.locks.unfreeze`); anything else a reviewer acknowledges here.
"""

from __future__ import annotations

from typing import Any

from resim.errors import NotFound
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext

ALERT_LIMIT = 200


def open_alerts(
    ctx: ServiceContext, *, scope: Scope = UNRESTRICTED, limit: int = ALERT_LIMIT
) -> list[dict[str, Any]]:
    """Unacknowledged alerts ``scope`` may see, newest first. For a subscriber's or a
    request's alert, ``msisdn`` names the line to open (never a secret in ``detail``)."""
    with ctx.uow() as uow:
        found = uow.alerts.open_alerts(scope, limit=max(1, min(limit, ALERT_LIMIT)))
        return [
            {
                "id": alert.id,
                "at": alert.at,
                "kind": alert.kind,
                "subject_type": alert.subject_type,
                "subject_id": alert.subject_id,
                "msisdn": alert.msisdn,
                "detail": {str(k): str(v)[:120] for k, v in sorted(alert.detail.items())},
            }
            for alert in found
        ]


def acknowledge(
    ctx: ServiceContext, *, alert_id: str, by: str, scope: Scope = UNRESTRICTED
) -> None:
    """Mark an open alert as dealt with by ``by`` (audited ``alert.acknowledged``).

    NotFound (ALERT_NOT_FOUND) for an unknown alert, one out of ``scope``, or
    one already acknowledged (nothing changes; the first acknowledgement stands).
    """
    now = ctx.now()
    with ctx.uow() as uow:
        row = uow.alerts.lock_open(alert_id, scope)
        if row is None:
            raise NotFound("no open alert with that id", code="ALERT_NOT_FOUND")
        row.acknowledged_by = by
        row.acknowledged_at = now
        uow.audit(
            at=now,
            actor=by,
            action="alert.acknowledged",
            object_type=row.subject_type,
            object_id=row.subject_id,
            detail={"alert_id": alert_id, "kind": row.kind},
        )
        uow.commit()
