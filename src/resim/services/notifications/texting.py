"""Job ``sms.send``: render a customer text message and hand it to the SmsGateway.

The message id is the job id, so every retry of one job sends the same id and
the gateway drops the repeat. A text to the old SIM (``target`` ``old_sim``)
is checked again when it is sent: if that SIM was suspended or retired since
the notice was queued (lost/stolen suspension, cut-over), it is skipped, since
the number may now answer on a SIM the customer does not hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from resim.adapters.mail.templates import render_sms
from resim.domain.model import SimState
from resim.services.context import ServiceContext
from resim.services.notifications.notify import open_message
from resim.services.outbox.external import JobRecord, call_peer
from resim.services.ports import OutgoingSms
from resim.services.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from resim.services.outbox.batch_runner import JobRun

log = structlog.get_logger()


def send_sms(ctx: ServiceContext, job: JobRecord) -> None:
    if job.payload.get("target") == "old_sim":
        with ctx.uow(read_only=True) as uow:
            works = old_sim_still_works(uow, job)
        if not works:
            log.info("sms.skipped", job_id=job.id, reason="old SIM no longer works")
            return
    message = compose(ctx, job)
    call_peer(ctx, job, "sms.send", lambda _cid: ctx.sms.send(message))


async def send_sms_async(run: JobRun) -> None:
    """The same on the worker's loop: the old-SIM check and the attempt row in
    one shared transaction, the send on the async gateway, the outcome with the
    job's ``done`` (``batch_runner``)."""
    job = run.job
    message = compose(run.ctx, job)

    def check_and_start(uow: UnitOfWork) -> str | None:
        if job.payload.get("target") == "old_sim" and not old_sim_still_works(uow, job):
            run.mark_done(uow)
            return None
        return run.attempt(uow, "sms.send")

    call_id = await run.db(check_and_start)
    if call_id is None:
        log.info("sms.skipped", job_id=job.id, reason="old SIM no longer works")
        return
    gateway = run.peers.sms()
    await run.call(call_id, "sms.send", lambda: gateway.send(message))


def compose(ctx: ServiceContext, job: JobRecord) -> OutgoingSms:
    """The text of an ``sms.send`` job (its recipient told to ``redaction``)."""
    payload = job.payload
    opened = open_message(ctx, payload)  # recipient and names: sealed in the job
    rendered = render_sms(
        str(payload["kind"]), language=str(payload.get("language", "en")), context=opened.context
    )
    return OutgoingSms(id=job.id, to=opened.to, text=rendered.text)


def old_sim_still_works(uow: UnitOfWork, job: JobRecord) -> bool:
    """Whether a text to the old SIM still reaches the customer (a read)."""
    iccid = job.payload.get("old_iccid")
    if not isinstance(iccid, str):
        return False
    state, suspended = uow.sims.state_for_request(iccid, job.request_id)
    return not suspended and state == SimState.ACTIVE
