"""Job ``mail.send``: render a customer message and hand it to the Mailer.

The Message-ID is derived from the job id, so every retry of one job sends the
same message id; a receiver (and the demo's capture) sees a resend after a crash
as the same message, not a new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resim.adapters.mail.templates import render_mail
from resim.services.context import ServiceContext
from resim.services.notifications.notify import open_message
from resim.services.outbox.external import JobRecord, call_peer
from resim.services.ports import OutgoingMail

if TYPE_CHECKING:
    from resim.services.outbox.batch_runner import JobRun


def send_mail(ctx: ServiceContext, job: JobRecord) -> None:
    mail = compose(ctx, job)
    call_peer(ctx, job, "mail.send", lambda _cid: ctx.mailer.send(mail))


async def send_mail_async(run: JobRun) -> None:
    """The same on the worker's loop: the attempt row commits in one shared
    transaction, the send runs on the async mailer (reused SMTP connections),
    and its outcome commits with the job's ``done`` (``batch_runner``)."""
    mail = compose(run.ctx, run.job)
    call_id = await run.db(lambda uow: run.attempt(uow, "mail.send"))
    mailer = run.peers.mailer()
    await run.call(call_id, "mail.send", lambda: mailer.send(mail))


def compose(ctx: ServiceContext, job: JobRecord) -> OutgoingMail:
    """The message of a ``mail.send`` job (its recipient told to ``redaction``)."""
    payload = job.payload
    message = open_message(ctx, payload)  # recipient and names: sealed in the job
    language = str(payload.get("language", "en"))
    kind = str(payload["kind"])
    rendered = render_mail(kind, language=language, context=message.context)
    mail = OutgoingMail(
        to=message.to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"{job.id}@resim",
        language=rendered.language,
        headers={"X-Resim-Kind": kind, "X-Resim-Request": job.request_id or ""},
        sender_name=_brand_name(message.context),
    )
    return mail


def _brand_name(context: dict[str, object]) -> str | None:
    """The brand's display name for the From header (customer mail only; one line)."""
    name = context.get("brand_name")
    if not isinstance(name, str) or not name.strip() or any(ord(c) < 32 for c in name):
        return None
    return name.strip()[:80]
