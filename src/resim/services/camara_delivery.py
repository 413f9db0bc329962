"""Job ``camara.deliver``: POST one CloudEvent to its subscription's sink.

Guarantee: **at least once, with a stable CloudEvents id**. Before each POST
the event row is marked ``sending`` (attempts + 1) and an ``external_call``
attempt row is committed; after a 2xx the row is ``delivered`` and is never
sent again. A worker killed between the sink's receipt and that commit leaves
the job leased; the next worker sends the same event (same ``id``) again, so a
sink sees an event at most twice in that window and drops the repeat by id
(CloudEvents: ``source`` + ``id`` identify an event).

Outcomes (classified by the EventSink adapter): 2xx delivered; transport
errors, timeouts, 408, 429, 5xx retried by the job runner with exponential
backoff and full jitter, up to ``job_max_attempts``, then ``failed``; any other
answer ``failed`` at once (dead job, recorded). A 410 Gone also ends the
subscription (NETWORK_TERMINATED, no ended event: the sink said it is gone).
``last_error`` holds the adapter's message (host and status, never the token).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog

from resim.adapters.db import orm
from resim.domain.camara_events import SubscriptionStatus, TerminationReason
from resim.errors import SinkError
from resim.services import camara_subscriptions
from resim.services.context import ServiceContext
from resim.services.external import JobRecord, call_peer
from resim.services.ports import OutgoingEvent

log = structlog.get_logger()
E = orm.camara_event
T = orm.camara_subscription


def deliver(ctx: ServiceContext, job: JobRecord) -> None:
    event_id = str(job.payload["event_id"])
    with ctx.uow() as uow:
        row = uow.session.execute(
            sa.select(E.c.state, E.c.payload, T.c.sink, T.c.sink_access_token)
            .join(T, T.c.id == E.c.subscription_id)
            .where(E.c.id == event_id)
        ).one_or_none()
        if row is None or row.state in ("delivered", "failed"):
            return  # a completed delivery is never sent again
        event = OutgoingEvent(
            id=event_id,
            sink=row.sink,
            body=dict(row.payload),
            access_token=row.sink_access_token,
        )
        # The attempt is recorded before the call (STYLE: attempt rows first).
        uow.session.execute(
            sa.update(E)
            .where(E.c.id == event_id)
            .values(state="sending", attempts=E.c.attempts + 1, last_attempt_at=ctx.now())
        )
        uow.commit()
    try:
        status = call_peer(ctx, job, "camara.sink", lambda _cid: ctx.event_sink.deliver(event))
    except SinkError as exc:
        final = not exc.retryable or job.attempts >= ctx.job_max_attempts
        _record_failure(ctx, event_id, exc, final=final)
        raise
    _update(ctx, event_id, state="delivered", delivered_at=ctx.now(), last_status=status)
    log.info("camara.event.delivered", event_id=event_id, status=status)


def _record_failure(ctx: ServiceContext, event_id: str, exc: SinkError, *, final: bool) -> None:
    values: dict[str, Any] = {
        "state": "failed" if final else "pending",
        "last_status": exc.status,
        "last_error": f"{exc.code}: {exc.message}",
    }
    with ctx.uow() as uow:
        uow.session.execute(sa.update(E).where(E.c.id == event_id).values(**values))
        if exc.code == "SINK_GONE":
            sub_id = uow.session.execute(
                sa.select(E.c.subscription_id).where(E.c.id == event_id)
            ).scalar_one()
            sub = uow.session.execute(sa.select(T).where(T.c.id == sub_id).with_for_update()).one()
            if sub.status == SubscriptionStatus.ACTIVE.value:
                camara_subscriptions.end(
                    ctx,
                    uow,
                    sub,
                    TerminationReason.NETWORK_TERMINATED,
                    at=ctx.now(),
                    notify=False,
                )
        uow.commit()
    log.warning(
        "camara.event.failed" if final else "camara.event.retry",
        event_id=event_id,
        code=exc.code,
        status=exc.status,
    )


def _update(ctx: ServiceContext, event_id: str, **values: Any) -> None:
    with ctx.uow() as uow:
        uow.session.execute(sa.update(E).where(E.c.id == event_id).values(**values))
        uow.commit()
