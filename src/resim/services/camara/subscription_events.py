"""CAMARA SIM Swap subscriptions: their events and their ends.

A cut-over queues one ``swapped`` event per ACTIVE subscription on the number
(:func:`enqueue_swap_events`); a subscription ends (:func:`end`) when its owner
deletes it, when ``subscriptionMaxEvents`` events were generated, or by its
``camara.subscription_end`` job (:func:`end_when_due`) at its expire time
(SUBSCRIPTION_EXPIRED) or ``ctx.camara_token_notice`` before its sink's access
token expires (ACCESS_TOKEN_EXPIRED, while the token still works). Each end
queues a ``subscription-ended`` event (status per ``domain.camara_events``).
Events are outbox rows (``camara_event``) that ``services.camara.camara_delivery``
sends; the create/list/read/delete side is ``services.camara.camara_subscriptions``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from resim.domain.camara_events import (
    SubscriptionStatus,
    TerminationReason,
    ended_event,
    status_after,
    swapped_event,
)
from resim.services.context import ServiceContext
from resim.services.outbox.external import JobRecord
from resim.services.unit_of_work import UnitOfWork, new_id


def enqueue_swap_events(
    ctx: ServiceContext, uow: UnitOfWork, *, msisdn: str, swapped_at: dt.datetime
) -> int:
    """In the caller's transaction (the cut-over's): one ``swapped`` event per
    ACTIVE subscription on ``msisdn``; return how many.

    A subscription past its expire time (its end job not run yet) ends instead
    of notifying; one that reaches ``subscriptionMaxEvents`` ends right after
    its event. Imported history never comes here: only live cut-overs do.
    """
    rows = uow.camara.active_on(msisdn)
    sent = 0
    for row in rows:
        due = end_due(ctx, row.expire_time, row.sink_token_expires_at)
        if due is not None and due[0] <= swapped_at:
            end(ctx, uow, row, due[1], at=swapped_at)
            continue
        phone = None if row.three_legged else row.phone_number
        count = row.events_sent + 1
        last = row.max_events is not None and count >= row.max_events
        # The last event and the subscription-ended one after it ride in ONE
        # delivery job, which sends them in that order (two jobs could run
        # side by side, and the end would overtake the event).
        ids = [new_id(), new_id()] if last else [new_id()]
        job_id = uow.enqueue("camara.deliver", at=ctx.now(), payload={"event_ids": ids})
        _add_event(
            ctx, uow, row, _swapped_builder(ctx, phone, swapped_at), event_id=ids[0], job_id=job_id
        )
        uow.camara.set_events_sent(row.id, count)
        sent += 1
        if last:
            reason = TerminationReason.MAX_EVENTS_REACHED
            end(ctx, uow, uow.camara.get(row.id), reason, at=swapped_at, event=(ids[1], job_id))
    return sent


def end(
    ctx: ServiceContext,
    uow: UnitOfWork,
    row: Any,
    reason: TerminationReason,
    *,
    at: dt.datetime,
    notify: bool = True,
    event: tuple[str, str] | None = None,
) -> None:
    """End an ACTIVE subscription (row locked by the caller) and, with ``notify``,
    queue its ``subscription-ended`` event (``event``: its id and the delivery
    job it rides in, already queued; default: a new id and a job of its own)."""
    uow.camara.set_status(
        row.id, status_after(reason).value, ended_at=at, termination_reason=reason.value
    )
    if notify:
        phone = None if row.three_legged else row.phone_number
        _add_event(
            ctx,
            uow,
            row,
            lambda event_id, sub_id: ended_event(
                event_id=event_id,
                source=ctx.camara_event_source,
                subscription_id=sub_id,
                phone_number=phone,
                reason=reason,
                at=at,
            ),
            event_id=event[0] if event else None,
            job_id=event[1] if event else None,
        )
    uow.audit(
        at=at,
        actor="system",
        action="camara.subscription.ended",
        object_type="camara_subscription",
        object_id=row.id,
        detail={"reason": reason.value},
    )


def end_when_due(ctx: ServiceContext, job: JobRecord) -> None:
    """Job ``camara.subscription_end``: expire time or token notice reached.

    Idempotent: a subscription no longer ACTIVE (deleted, max events) is left alone.
    """
    sub_id = str(job.payload["subscription_id"])
    now = ctx.now()
    with ctx.uow() as uow:
        row = uow.camara.get(sub_id, lock=True)
        if row is None or row.status != SubscriptionStatus.ACTIVE.value:
            return
        due = end_due(ctx, row.expire_time, row.sink_token_expires_at)
        if due is None or due[0] > now:
            return
        end(ctx, uow, row, due[1], at=now)
        uow.commit()


def end_due(
    ctx: ServiceContext, expire_time: dt.datetime | None, token_expires: dt.datetime | None
) -> tuple[dt.datetime, TerminationReason] | None:
    """When the subscription must end on its own, and why (the earlier of the two)."""
    candidates = []
    if expire_time is not None:
        candidates.append((expire_time, TerminationReason.SUBSCRIPTION_EXPIRED))
    if token_expires is not None:
        candidates.append(
            (token_expires - ctx.camara_token_notice, TerminationReason.ACCESS_TOKEN_EXPIRED)
        )
    return min(candidates, key=lambda c: c[0]) if candidates else None


def _swapped_builder(
    ctx: ServiceContext, phone: str | None, swapped_at: dt.datetime
) -> Callable[[str, str], dict[str, Any]]:
    def build(event_id: str, sub_id: str) -> dict[str, Any]:
        return swapped_event(
            event_id=event_id,
            source=ctx.camara_event_source,
            subscription_id=sub_id,
            phone_number=phone,
            swapped_at=swapped_at,
        )

    return build


def _add_event(
    ctx: ServiceContext,
    uow: UnitOfWork,
    row: Any,
    build: Callable[[str, str], dict[str, Any]],
    *,
    event_id: str | None = None,
    job_id: str | None = None,
) -> str:
    """Add an event; ``job_id``: the delivery job it rides in (default: its own)."""
    event_id = event_id or new_id()
    seq = uow.camara.next_event_seq(row.id)
    body = build(event_id, row.id)
    now = ctx.now()
    if job_id is None:
        job_id = uow.enqueue("camara.deliver", at=now, payload={"event_ids": [event_id]})
    uow.camara.add_event(
        id=event_id, subscription_id=row.id, seq=seq, payload=body, job_id=job_id, created_at=now
    )
    return event_id
