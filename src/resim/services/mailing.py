"""Job ``mail.send``: render a customer message and hand it to the Mailer.

The Message-ID is derived from the job id, so every retry of one job sends the
same message id; a receiver (and the demo's capture) sees a resend after a crash
as the same message, not a new one.
"""

from __future__ import annotations

import json
from typing import Any

from resim.adapters.mail.templates import render_mail
from resim.services.context import ServiceContext
from resim.services.external import JobRecord, call_peer
from resim.services.notify import decode_context
from resim.services.ports import OutgoingMail


def send_mail(ctx: ServiceContext, job: JobRecord) -> None:
    payload = job.payload
    context: dict[str, Any] = decode_context(dict(payload.get("context", {})))  # type: ignore[call-overload]
    secret = payload.get("secret_context")
    if isinstance(secret, str):
        context.update(json.loads(ctx.secrets.decrypt(secret)))
    language = str(payload.get("language", "en"))
    kind = str(payload["kind"])
    rendered = render_mail(kind, language=language, context=context)
    mail = OutgoingMail(
        to=str(payload["to"]),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"{job.id}@resim",
        language=rendered.language,
        headers={"X-Resim-Kind": kind, "X-Resim-Request": job.request_id or ""},
    )
    call_peer(ctx, job, "mail.send", lambda _cid: ctx.mailer.send(mail))
