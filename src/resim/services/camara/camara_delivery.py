"""Job ``camara.deliver``: POST one CloudEvent to its subscription's sink.

Guarantee: **at least once, with a stable CloudEvents id**. Before each POST
the event row is marked ``sending`` (attempts + 1) and an ``external_call``
attempt row is committed; after a 2xx the row is ``delivered`` and is never
sent again. A worker killed between the sink's receipt and that commit leaves
the job leased; the next worker sends the same event (same ``id``) again, so a
sink sees an event at most twice in that window and drops the repeat by id
(CloudEvents: ``source`` + ``id`` identify an event).

A sink that today's rules refuse (issue 13, SSRF: an address that is not
public, or a URL that is no longer acceptable) is never sent to: the event is
``failed`` at once with the reason in ``last_error`` (``sink_refusal`` for a
stored URL or IP address; the adapter, as it connects, for a host name).

Outcomes (classified by the EventSink adapter): 2xx delivered; transport
errors, timeouts, 408, 429, 5xx retried by the job runner with exponential
backoff and full jitter, up to ``job_max_attempts``, then ``failed``; any other
answer ``failed`` at once (dead job, recorded). A 410 Gone also ends the
subscription (NETWORK_TERMINATED, no ended event: the sink said it is gone).
``last_error`` holds the adapter's message (host and status, never the token).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog

from resim.domain.camara_events import SubscriptionStatus, TerminationReason, sink_problem
from resim.domain.sink_address import parse_address
from resim.errors import SinkError
from resim.services.camara import subscription_events
from resim.services.context import ServiceContext
from resim.services.outbox.external import JobRecord, call_peer
from resim.services.ports import OutgoingEvent

log = structlog.get_logger()


def deliver(ctx: ServiceContext, job: JobRecord) -> None:
    """Send the job's events in their order. A failure that will be retried stops
    the job there (the events after it wait, so none overtakes it); a run again
    skips the ones already delivered or failed for good. Jobs queued before
    events shared jobs carry ``event_id`` alone."""
    listed = job.payload.get("event_ids")
    ids = [str(i) for i in listed] if isinstance(listed, list) else [str(job.payload["event_id"])]
    failed: SinkError | None = None
    for event_id in ids:
        try:
            _deliver_one(ctx, job, event_id)
        except SinkError as exc:
            if exc.retryable and job.attempts < ctx.job_max_attempts:
                raise
            failed = failed or exc  # failed for good: the next one still goes
    if failed is not None:
        raise failed


def _deliver_one(ctx: ServiceContext, job: JobRecord, event_id: str) -> None:
    with ctx.uow() as uow:
        row = uow.camara.outgoing(event_id)
        if row is None or row.state in ("delivered", "failed"):
            return  # a completed delivery is never sent again
        refusal = sink_refusal(ctx, row.sink)
    if refusal is not None:
        # Stored before today's rules (issue 13, SSRF): never sent, failed for good.
        _record_failure(ctx, event_id, refusal, final=True)
        raise refusal
    with ctx.uow() as uow:
        event = OutgoingEvent(
            id=event_id,
            sink=row.sink,
            body=dict(row.payload),
            access_token=row.sink_access_token,
        )
        # The attempt is recorded before the call (STYLE: attempt rows first).
        uow.camara.mark_sending(event_id, ctx.now())
        uow.commit()
    try:
        status = call_peer(ctx, job, "camara.sink", lambda _cid: ctx.event_sink.deliver(event))
    except SinkError as exc:
        final = not exc.retryable or job.attempts >= ctx.job_max_attempts
        _record_failure(ctx, event_id, exc, final=final)
        raise
    with ctx.uow() as uow:
        uow.camara.event_done(
            event_id, state="delivered", delivered_at=ctx.now(), last_status=status
        )
        uow.commit()
    log.info("camara.event.delivered", event_id=event_id, status=status)


def sink_refusal(ctx: ServiceContext, sink: str) -> SinkError | None:
    """Why a stored sink may not be sent to under today's rules, or None.

    The URL's rules (https, or http to loopback in tests) and, for a sink
    written as an IP address, the address rules. A sink named by a host name is
    resolved and checked by the EventSink adapter as it connects
    (``adapters.events.http``): only there can the check and the connection
    use the same DNS answer.
    """
    problem = sink_problem(sink, allow_http_loopback=ctx.camara_sink_allow_http_loopback)
    if problem is not None:
        return SinkError(
            f"sink refused: {problem}", retryable=False, status=None, code="SINK_INVALID"
        )
    host = urlsplit(sink).hostname or ""
    address_problem = ctx.sink_rules.problem(host) if parse_address(host) is not None else None
    if address_problem is not None:
        return SinkError(
            f"sink {host} is not allowed: {address_problem}",
            retryable=False,
            status=None,
            code="SINK_ADDRESS_REFUSED",
        )
    return None


def _record_failure(ctx: ServiceContext, event_id: str, exc: SinkError, *, final: bool) -> None:
    with ctx.uow() as uow:
        uow.camara.event_done(
            event_id,
            state="failed" if final else "pending",
            last_status=exc.status,
            last_error=f"{exc.code}: {exc.message}",
        )
        if exc.code == "SINK_GONE":
            sub = uow.camara.get(uow.camara.subscription_of_event(event_id), lock=True)
            assert sub is not None  # foreign key
            if sub.status == SubscriptionStatus.ACTIVE.value:
                subscription_events.end(
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
