"""``esim.provision`` on the worker's event loop (see :mod:`resim.services.outbox.batch_runner`).

The same steps and rules as :func:`resim.services.provisioning.provisioning.provision`,
in three units of work shared with the other jobs of the batch:

1. cooling-off check, approved -> provisioning, a profile reserved, and the
   attempt row of the next ES2+ call (downloadOrder, or confirmOrder when an
   earlier run got as far as ``smdp_step='ordered'``) -> commit;
   downloadOrder;
2. its outcome, ``smdp_step='ordered'`` and the confirmOrder attempt row ->
   commit; confirmOrder;
3. its outcome, ready (activation code, the "ready" mail, the expiry and
   reconcile jobs) and the job done -> commit.

A run killed between two commits resumes from the step the request records;
an ES2+ call repeated after it took effect is recognised as in the sync
handler (SGP.22 8.2.1/3.3, 3.5 and 8.2.6/3.3 with an attempt row that may have
taken effect).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from resim.errors import ExternalError
from resim.services import repo
from resim.services.audit import redaction
from resim.services.outbox.batch_runner import JobRun
from resim.services.provisioning import provisioning
from resim.services.unit_of_work import UnitOfWork

T = TypeVar("T")


@dataclass(frozen=True)
class _Order:
    iccid: str
    matching_id: str
    eid: str | None
    step: str | None
    call_id: str


async def provision(run: JobRun) -> None:
    ctx, job = run.ctx, run.job
    assert job.request_id is not None
    rid = job.request_id

    def start(uow: UnitOfWork) -> _Order | None:
        # Locked once (PostgreSQL: one SELECT ... FOR UPDATE for both checks).
        req = repo.get_request(uow, rid, lock=True)
        if provisioning.cooling_off_in(ctx, uow, job, req=req) or not provisioning.reserve_in(
            ctx, uow, rid, req=req
        ):
            run.mark_done(uow)
            return None
        assert req.new_iccid is not None and req.matching_id is not None
        target = "es2.downloadOrder" if req.smdp_step is None else "es2.confirmOrder"
        return _Order(
            iccid=req.new_iccid,
            matching_id=req.matching_id,
            eid=req.eid,
            step=req.smdp_step,
            call_id=run.attempt(uow, target),
        )

    order = await run.db(start)
    if order is None:
        return
    redaction.tell(order.matching_id)
    smdp = run.peers.smdp()
    call_id = order.call_id
    if order.step is None:
        await _tolerant(
            run,
            call_id,
            "es2.downloadOrder",
            lambda: smdp.download_order(call_id=call_id, iccid=order.iccid, eid=order.eid),
        )

        def ordered(uow: UnitOfWork) -> str | None:
            if not provisioning.advance_in(ctx, uow, rid, "ordered"):
                run.mark_done(uow)
                return None
            return run.attempt(uow, "es2.confirmOrder")

        next_id = await run.db(ordered)
        if next_id is None:
            return
        call_id = next_id
    confirm_id = call_id
    confirmed = await _tolerant(
        run,
        confirm_id,
        "es2.confirmOrder",
        lambda: smdp.confirm_order(
            call_id=confirm_id,
            iccid=order.iccid,
            release_flag=True,
            matching_id=order.matching_id or None,
            eid=order.eid,
        ),
    )
    smdp_address = ctx.smdp_address
    answered: str | None = None
    if confirmed is not None:
        smdp_address = confirmed.smdp_address or smdp_address
        # The SM-DP+'s answer is the MatchingID it will match (SGP.22 5.3.2); it
        # may be empty (SGP.22 4.1: an EID-bound order), and that is valid.
        answered = confirmed.matching_id
        redaction.tell(answered)

    def ready(uow: UnitOfWork) -> None:
        provisioning.mark_ready_in(ctx, uow, rid, smdp_address, answered)
        run.mark_done(uow)

    await run.db(ready)


async def _tolerant(
    run: JobRun, call_id: str, target: str, make: Callable[[], Awaitable[T]]
) -> T | None:
    """The call, or None when the SM-DP+ says an earlier attempt already did it."""
    try:
        return await run.call(call_id, target, make)
    except ExternalError as exc:
        if (
            not exc.retryable
            and provisioning._already_done(exc)
            and await run.may_have_taken_effect(target)
        ):
            return None
        raise
