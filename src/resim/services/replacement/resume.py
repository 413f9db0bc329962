"""Picking a request up again from the portal's start page (issue 12, finding 1).

A customer who pressed Back, closed the tab or double-clicked "Send me a code"
types the number again. Before, the second open was refused quietly (the line
already has a request) and no mail went out, so the customer was stuck until
the request expired. Now :func:`open_or_continue` opens a request, or, when the
line already has one open, *continues* it:

* an unverified portal request gets a fresh one-time code (it replaces the
  earlier one) in the usual code mail, whose signed link leads to the page
  where the code is entered;
* a request further on (verified, in review, approved, ready...) gets a
  ``continue_request`` mail with the signed "continue your request" link
  (:mod:`resim.services.replacement.continue_link`): the page it opens asks for a fresh
  verification before it shows anything that needs one.

Either way the visitor, who has proved nothing, is told nothing: the portal
answers every number alike ("check your e-mail", issue 13 finding 15), and
the mail goes only to the address on file.

Repeats are idempotent and bounded: within :data:`REPEAT_WINDOW` of the last
code or link nothing new is sent (a double-click gives one code); beyond it,
each continuation counts on the request's resend counter (``resend:<id>``)
and backs off like "Send a new code" (SEC-03), so typing someone's number again
and again cannot flood their mailbox. Every code or link sent is audited.
"""

from __future__ import annotations

import datetime as dt

import structlog

from resim.adapters.crypto import hash_otp
from resim.domain.model import Channel, ReplacementRequest
from resim.domain.workflow import State
from resim.errors import Conflict, DomainError, NotFound
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.notifications.notify import enqueue_mail, not_me_token, not_me_token_hash
from resim.services.replacement.open_spec import OpenSpec
from resim.services.replacement.requests import new_otp, open_parsed
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification import attempts

log = structlog.get_logger()

REPEAT_WINDOW = dt.timedelta(seconds=60)


def open_or_continue(
    ctx: ServiceContext,
    spec: OpenSpec,
    *,
    actor: str,
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> None:
    """Open a request for a caller who has proved nothing, or continue the open one.

    Refusals are swallowed and logged by code only, as ``requests.open_quietly``
    does: the outcome is not the caller's to know. An outage still raises.
    """
    try:
        open_parsed(ctx, spec, actor=actor, source_ip=source_ip, scope=scope)
        return
    except Conflict as exc:
        if exc.code != "REQUEST_ALREADY_OPEN":
            log.info("request.open_refused_quietly", code=exc.code, channel=spec.channel.value)
            return
    except DomainError as exc:
        log.info("request.open_refused_quietly", code=exc.code, channel=spec.channel.value)
        return
    try:
        outcome = continue_open(ctx, msisdn=spec.msisdn, source_ip=source_ip, scope=scope)
    except DomainError as exc:
        log.info("request.continue_refused_quietly", code=exc.code)
        return
    log.info("request.continued_from_start", outcome=outcome)


def continue_open(
    ctx: ServiceContext,
    *,
    msisdn: str,
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> str:
    """Send the customer of ``msisdn``'s open request a way back to it; one transaction.

    Returns what happened: ``"code_sent"`` (a fresh code for an unverified
    portal request), ``"link_sent"`` (a ``continue_request`` mail) or
    ``"recent"`` (something was sent within :data:`REPEAT_WINDOW`: nothing
    new). NotFound without an open request; Conflict (NOT_SELF_SERVICE) for an
    unverified request opened in a store or by the BSS, whose code is the
    agent's business; TooManyAttempts while the resend counter backs off.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, msisdn, scope=scope)
        found = repo.open_request_for_line(uow, line.id)
        if found is None:
            raise NotFound("no open request on this line", code="REQUEST_NOT_FOUND")
        req = repo.get_request(uow, found.id, lock=True)
        if req.state == State.REQUESTED and req.channel != Channel.PORTAL:
            raise Conflict("the open request was not started online", code="NOT_SELF_SERVICE")
        brand = repo.get_brand(uow, req.brand_id)
        policy = brand.policy
        if _sent_recently(uow, req, now, ttl=dt.timedelta(minutes=policy.otp_ttl_minutes)):
            return "recent"
        limits = attempts.Limits.from_policy(policy, ip_max_failures=ctx.ip_max_failures)
        key = [f"resend:{req.id}"]
        attempts.guard(uow, key, now, limits)
        attempts.record_failure(uow, key, now, limits)
        detail = {"purpose": "continue", "via": "portal start"}
        if req.state == State.REQUESTED:
            code = new_otp(ctx)
            req.issue_code(
                otp_hash=hash_otp(code, ctx.otp_pepper),
                expires_at=now + dt.timedelta(minutes=policy.otp_ttl_minutes),
                actor="customer",
                at=now,
                detail=detail,
                source=source_ip,
            )
            outcome, kind = "code_sent", "one_time_code"
            context = {"ttl_minutes": policy.otp_ttl_minutes}
            secret: dict[str, str] = {"code": code}
        else:
            # A notice about the request like any other: it carries "this was not me".
            not_me = not_me_token(ctx, req.id)
            req.note_link_sent(
                not_me_token_hash=not_me_token_hash(not_me),
                actor="customer",
                at=now,
                detail=detail,
                source=source_ip,
            )
            outcome, kind, context = "link_sent", "continue_request", {}
            secret = {"not_me_url": f"{ctx.public_base_url}/not-me/{not_me}"}
        enqueue_mail(
            ctx, uow, kind=kind, request=req, brand=brand, context=context, secret_context=secret
        )
        uow.commit()
        return outcome


def _sent_recently(
    uow: UnitOfWork, req: ReplacementRequest, now: dt.datetime, *, ttl: dt.timedelta
) -> bool:
    """Whether a code (opening, resend) or a link went out within REPEAT_WINDOW."""
    times: list[dt.datetime] = []
    if req.state == State.REQUESTED and req.otp_expires_at is not None:
        times.append(_aware(req.otp_expires_at) - ttl)  # when the current code was sent
    counter = uow.attempts.read([f"resend:{req.id}"]).get(f"resend:{req.id}")
    if counter is not None and counter.last_failure_at is not None:
        times.append(_aware(counter.last_failure_at))
    return any(now - at < REPEAT_WINDOW for at in times)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
