"""Alerts for reviewers (SEC-03, SEC-04, SEC-08) and operators: something a person must
look at now (a peer that keeps failing means customers are not being notified).

:func:`raise_alert` is called inside the caller's unit of work: the alert row,
its audit event and the ``alert.notify`` job (which tells the reviewers on file)
commit together with whatever caused the alert, or not at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from resim.domain.security import Alert
from resim.services.unit_of_work import UnitOfWork, new_id

# The kinds of alert resim raises; the console and the notices name them.
ALERT_KINDS = {
    "account_frozen": "replacements on an account were frozen after too many failed attempts",
    "not_me": "a customer said a replacement request was not theirs",
    "agent_rate_limit": "an agent opened more requests than the policy allows",
    "brute_force": "many failed attempts from one source address",
    "peer_unavailable": "a peer (SMS gateway, mail server, SM-DP+, core network) keeps "
    "failing or refuses resim's credentials: its jobs are paused and retried, then dead; "
    "check its address and credentials in the settings",
}


def raise_alert(
    uow: UnitOfWork,
    *,
    at: dt.datetime,
    kind: str,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any] | None = None,
    actor: str = "system",
) -> str:
    """Record an alert (never a secret in ``detail``) and enqueue the reviewers' notice."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    alert = Alert(
        id=new_id(),
        at=at,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail,
    )
    uow.alerts.add(alert)
    uow.audit(
        at=at,
        actor=actor,
        action=f"alert.{kind}",
        object_type=subject_type,
        object_id=subject_id,
        detail={"alert_id": alert.id, **(detail or {})},
    )
    uow.enqueue("alert.notify", at=at, payload={"alert_id": alert.id})
    return alert.id
