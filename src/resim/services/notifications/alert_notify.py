"""Job ``alert.notify``: tell every active reviewer about a new alert by e-mail.

:func:`resim.services.console.alerts.raise_alert` enqueues this job with the alert's
id. The handler fans out, in one transaction, one ``mail.send`` job per
active reviewer with an e-mail address (each mail then has its own attempt
row and retries). An ``alert.notified`` audit event is written in the same
transaction, so a re-run of this job (a worker died after committing) finds it
and does not mail the reviewers twice. A reviewer limited to one brand is told
about an alert only if it concerns that brand or no brand is known.

The mail names the alert's kind and subject and links to the console page
``/console/alerts/<id>``. It never holds a secret: alert details never do.
"""

from __future__ import annotations

from typing import Any

from resim.errors import NotFound
from resim.services.console.alerts import ALERT_KINDS
from resim.services.context import ServiceContext
from resim.services.notifications.notify import message_payload
from resim.services.outbox.external import JobRecord


def notify_reviewers(ctx: ServiceContext, job: JobRecord) -> None:
    alert_id = str(job.payload.get("alert_id", ""))
    now = ctx.now()
    with ctx.uow() as uow:
        alert = uow.alerts.get(alert_id)
        if alert is None:
            raise NotFound("the alert does not exist", code="ALERT_NOT_FOUND")
        if uow.audit_log.has_event(action="alert.notified", object_id=alert.id):
            return
        # The brand the alert's subject belongs to, when the subject is one we know.
        brand_id = uow.alerts.brand_of_subject(alert.subject_type, alert.subject_id)
        told = []
        for reviewer in uow.staff.active_reviewers():  # by username
            if not reviewer.email or (reviewer.brand_id not in (None, brand_id)):
                continue
            context: dict[str, Any] = {
                "staff_name": reviewer.display_name,
                "alert_kind": alert.kind,
                "alert_summary": ALERT_KINDS.get(alert.kind, alert.kind),
                "subject_type": alert.subject_type,
                "subject_id": alert.subject_id,
                "raised_at": alert.at,
                "console_url": f"{ctx.public_base_url}/console/alerts/{alert.id}",
            }
            payload = message_payload(
                ctx, kind="reviewer_alert", to=reviewer.email, language="en", context=context
            )
            uow.enqueue("mail.send", at=now, payload=payload)
            told.append(reviewer.id)
        uow.audit(
            at=now,
            actor="worker",
            action="alert.notified",
            object_type="alert",
            object_id=alert.id,
            detail={"reviewers": told},
        )
        uow.commit()
