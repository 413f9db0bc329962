"""Job ``esim.cancel_order``: withdraw an order at the SM-DP+ (ES2+ CancelOrder).

The profile goes back to stock when the SM-DP+ withdrew it (or never had it),
and is burned (retired) when it was downloaded or is otherwise unusable. A
retried call whose earlier attempt may have taken effect is recognised by the
SM-DP+'s "wrong state" answer (SGP.22 8.2.1/3.5), as in ``provisioning``.
"""

from __future__ import annotations

import json

from resim.domain.model import SimState
from resim.errors import ExternalError
from resim.services import repo
from resim.services.audit import redaction
from resim.services.context import ServiceContext
from resim.services.outbox.external import JobRecord, call_peer, may_have_taken_effect
from resim.services.ports import FinalProfileStatus


def _withdrawn_matching_id(ctx: ServiceContext, job: JobRecord) -> str | None:
    """The MatchingID a reissue asked to withdraw, if the job names one."""
    sealed = job.payload.get("secret_context")
    if isinstance(sealed, str):
        opened = json.loads(ctx.secrets.decrypt(sealed))
        if isinstance(opened, dict) and opened.get("matching_id"):
            return str(opened["matching_id"])
    legacy = job.payload.get("matching_id")  # queued by resim before migration 0009
    return str(legacy) if legacy else None


def cancel_order(ctx: ServiceContext, job: JobRecord) -> None:
    """Withdraw an order at the SM-DP+; the profile returns to stock or is burned.

    Payload: ``iccid``; a reissue also sends the old ``matching_id`` (the
    request has a new one by then), encrypted in ``secret_context``, and
    ``final: "Unavailable"`` (the profile is burned). Jobs queued before the
    MatchingID was sealed carry it in clear as ``matching_id``.
    """
    iccid = str(job.payload["iccid"])
    final: FinalProfileStatus = (
        "Unavailable" if job.payload.get("final") == "Unavailable" else "Available"
    )
    with ctx.uow() as uow:
        req = repo.get_request(uow, job.request_id) if job.request_id else None
        confirmed = req is None or req.smdp_step == "confirmed"
        # Our MatchingID exists at the SM-DP+ only once confirmOrder took effect;
        # naming it for an order never confirmed is refused (8.2.6/3.8).
        # An empty MatchingID (the SM-DP+'s own, SGP.22 4.1) is named by not naming one.
        matching_id = (req.matching_id or None) if req and confirmed else None
    given = _withdrawn_matching_id(ctx, job)
    if given is not None:
        confirmed, matching_id = True, given
    if matching_id is not None:
        redaction.tell(matching_id)
    back_to_stock = final == "Available"
    try:
        call_peer(
            ctx,
            job,
            "es2.cancelOrder",
            lambda cid: ctx.smdp.cancel_order(
                call_id=cid, iccid=iccid, final_profile_status=final, matching_id=matching_id
            ),
        )
    except ExternalError as exc:
        pair = (getattr(exc, "subject_code", None), getattr(exc, "reason_code", None))
        if exc.retryable:
            raise
        if pair == ("8.2.1", "3.9"):
            pass  # never ordered at the SM-DP+: the profile is simply still ours
        elif pair == ("8.2.1", "3.5") and may_have_taken_effect(ctx, job, "es2.cancelOrder"):
            pass  # an earlier attempt already withdrew it
        elif pair == ("8.2.1", "3.5") and not confirmed:
            # Never confirmed, so never released to a device: the profile is not
            # in an ordered state because our downloadOrder never took effect.
            pass
        else:
            back_to_stock = False  # downloaded or otherwise unusable: burn it
    now = ctx.now()
    with ctx.uow() as uow:
        sim = repo.get_sim(uow, iccid, lock=True)
        if sim.state == SimState.RESERVED:
            sim.set_state(SimState.IN_STOCK if back_to_stock else SimState.RETIRED)
            if back_to_stock:
                sim.line_id = None
        uow.audit(
            at=now,
            actor="worker",
            action="esim.order_cancelled",
            object_type="sim",
            object_id=iccid,
            detail={"back_to_stock": back_to_stock},
        )
        uow.commit()
