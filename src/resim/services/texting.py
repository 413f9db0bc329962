"""Job ``sms.send``: render a customer text message and hand it to the SmsGateway.

The message id is the job id, so every retry of one job sends the same id and
the gateway drops the repeat. A text to the old SIM (``target`` ``old_sim``)
is checked again when it is sent: if that SIM was suspended or retired since
the notice was queued (lost/stolen suspension, cut-over), it is skipped, since
the number may now answer on a SIM the customer does not hold.
"""

from __future__ import annotations

import structlog

from resim.adapters.mail.templates import render_sms
from resim.domain.model import SimState
from resim.services.context import ServiceContext
from resim.services.external import JobRecord, call_peer
from resim.services.notify import open_message
from resim.services.ports import OutgoingSms

log = structlog.get_logger()


def send_sms(ctx: ServiceContext, job: JobRecord) -> None:
    payload = job.payload
    if payload.get("target") == "old_sim" and not _old_sim_still_works(ctx, job):
        log.info("sms.skipped", job_id=job.id, reason="old SIM no longer works")
        return
    opened = open_message(ctx, payload)  # recipient and names: sealed in the job
    rendered = render_sms(
        str(payload["kind"]), language=str(payload.get("language", "en")), context=opened.context
    )
    message = OutgoingSms(id=job.id, to=opened.to, text=rendered.text)
    call_peer(ctx, job, "sms.send", lambda _cid: ctx.sms.send(message))


def _old_sim_still_works(ctx: ServiceContext, job: JobRecord) -> bool:
    iccid = job.payload.get("old_iccid")
    if not isinstance(iccid, str):
        return False
    with ctx.uow() as uow:
        sim = uow.sims.get(iccid)
        request = uow.requests.get(job.request_id) if job.request_id else None
        if request is not None and request.old_sim_suspended:
            return False
        return sim is not None and sim.state == SimState.ACTIVE
