"""``core.cutover`` and ``core.suspend_old`` on the worker's event loop.

The same rules as :func:`resim.services.cutover.cutover.cutover` and
:func:`~resim.services.cutover.cutover.suspend_old`, in two units of work shared with
the other jobs of the batch (:mod:`resim.services.outbox.batch_runner`):

1. read the request and write the attempt rows of every core-network call
   the step will make (cut-over: provision, post-swap holds, move the
   number, retire the old IMSI) -> commit; then the calls, in order (the
   core-network adapters are synchronous: each runs in a thread), all in
   one core-network transaction when the core network offers
   ``atomically`` (the built-in one: see :func:`_as_one`);
2. the outcomes, the state change (SIM change record, request completed,
   "completed" mail; or the old SIM recorded barred) and the job done -> commit.

Core-network operations are idempotent (``ports.CoreNetwork``), so a run
killed anywhere simply makes them again. A call that fails ends the run: the
calls after it were never made and their attempt rows say so (``failed``,
``NOT_CALLED``, not retryable), so nothing reads them as possibly made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from resim.services.cutover.cutover import (
    CutoverPlan,
    complete_in,
    cutover_plan,
    record_suspended_in,
    suspend_plan,
)
from resim.services.outbox.batch_runner import JobRun
from resim.services.unit_of_work import UnitOfWork


async def cutover(run: JobRun) -> None:
    ctx, job = run.ctx, run.job
    assert job.request_id is not None
    rid = job.request_id
    operations: list[tuple[str, Callable[[], None]]] = []

    def start(uow: UnitOfWork) -> tuple[CutoverPlan, list[str]] | None:
        plan = cutover_plan(ctx, uow, rid)
        if plan is None:
            run.mark_done(uow)
            return None
        operations[:] = plan.operations(ctx.core)
        return plan, run.attempts(uow, [target for target, _op in operations])

    started = await run.db(start)
    if started is None:
        return
    plan, call_ids = started
    calls = list(zip(call_ids, operations, strict=True))
    atomically = getattr(ctx.core, "atomically", None)
    if atomically is not None and len(calls) > 1:
        await _as_one(run, calls, atomically)
    else:
        await _in_order(run, calls)

    def complete(uow: UnitOfWork) -> None:
        complete_in(ctx, uow, rid, plan)
        run.mark_done(uow)

    await run.db(complete)


async def suspend_old(run: JobRun) -> None:
    ctx, job = run.ctx, run.job

    def start(uow: UnitOfWork) -> tuple[str, str] | None:
        plan = suspend_plan(uow, job)
        if plan is not None:
            imsi, cancelled = plan
            # Cancelled before the old SIM was barred: it simply stays in service.
            if not cancelled or uow.outbox.may_have_taken_effect(
                job_id=job.id, target="core.suspend"
            ):
                return imsi, run.attempt(uow, "core.suspend")
        run.mark_done(uow)
        return None

    started = await run.db(start)
    if started is None:
        return
    imsi, call_id = started
    await _in_order(run, [(call_id, ("core.suspend", lambda: ctx.core.suspend_imsi(imsi=imsi)))])

    def suspended(uow: UnitOfWork) -> None:
        record_suspended_in(ctx, uow, job)
        run.mark_done(uow)

    await run.db(suspended)


async def _in_order(run: JobRun, calls: list[tuple[str, tuple[str, Callable[[], None]]]]) -> None:
    """Make the calls one after another; a failure marks the rest never made."""
    for index, (call_id, (target, operation)) in enumerate(calls):
        try:
            await run.call(call_id, target, lambda op=operation: run.runner.core_call(op))  # type: ignore[misc]
        except BaseException:
            for later_id, (_later_target, _op) in calls[index + 1 :]:
                run.not_called(later_id)
            raise


async def _as_one(
    run: JobRun,
    calls: list[tuple[str, tuple[str, Callable[[], None]]]],
    atomically: Callable[[Sequence[Callable[[], None]]], None],
) -> None:
    """Make the calls in order in ONE core-network transaction (a core network
    with ``atomically``, the built-in one): one commit instead of one per call.

    All take effect or none does, so every call up to the one that failed
    gets the failure's outcome (rolled back; a retryable failure may still
    have committed, and reads as possibly made), the calls after it
    ``NOT_CALLED``; on success every call succeeded. The peer's circuit hears
    of one call.
    """
    reached = 0

    def step(index: int, operation: Callable[[], None]) -> Callable[[], None]:
        def made() -> None:
            nonlocal reached
            reached = index  # a retried group starts again from the first
            operation()

        return made

    steps = [step(i, operation) for i, (_cid, (_target, operation)) in enumerate(calls)]
    first_id, (first_target, _op) = calls[0]
    try:
        await run.call(
            first_id, first_target, lambda: run.runner.core_call(lambda: atomically(steps))
        )
    except BaseException:
        for index, (call_id, _call) in enumerate(calls[1:], start=1):
            if index <= reached:
                run.same_outcome(call_id, first_id)
            else:
                run.not_called(call_id)
        raise
    for call_id, _call in calls[1:]:
        run.same_outcome(call_id, first_id)
