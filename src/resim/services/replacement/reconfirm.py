"""Confirming identity again, later: to activate a courier card, or to see a ready eSIM again.

The portal's customer session lives ``customer_session_minutes``; a card takes
days to arrive, and an eSIM's activation code is valid for days (72 hours by
default) while the customer who confirmed on a laptop may open the mail on the
new phone an hour later (issue 12, finding 3). A request that waits for the
customer (:func:`awaiting_activation`: a dispatched courier card not activated,
or a ready eSIM not installed whose activation code has not expired), and one
still under way after verification (to cancel it or answer a step-up after the
session ended, :func:`can_confirm_again`), therefore lets the customer prove
who they are again with the
same combinations the brand's policy asks for on the portal
(SEC-02: never an SMS to the number being replaced), after which the portal
issues a fresh session bound to the request. Nothing about the request changes
apart from a new e-mail code; failures count on the same counters as the first
verification (request, account, address) and back off the same way (SEC-03).
Codes are sent with the resend back-off, so the form cannot flood the mailbox.
"""

from __future__ import annotations

import datetime as dt

from resim.adapters.crypto import hash_otp
from resim.domain.model import Channel, DeliveryMode, ReplacementRequest
from resim.domain.workflow import State
from resim.errors import Conflict, TooManyAttempts, VerificationFailed
from resim.services import repo
from resim.services.context import ServiceContext
from resim.services.notifications.notify import enqueue_mail
from resim.services.replacement.requests import new_otp
from resim.services.verification import attempts
from resim.services.verification.verification import Evidence, channel_combos, check_evidence


def awaiting_activation(req: ReplacementRequest, now: dt.datetime) -> bool:
    """A dispatched courier card not activated yet, or a ready eSIM not installed
    whose activation code is still valid at ``now``."""
    if req.state != State.READY or req.installed_at is not None:
        return False
    if req.delivery == DeliveryMode.COURIER:
        return req.new_iccid is not None
    if req.delivery == DeliveryMode.ESIM:
        expires = req.activation_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return req.activation_code_enc is not None and (expires is None or now < expires)
    return False


# Verified but not yet delivered: the customer may still need their session (to
# cancel, or to answer a step-up) after it ended (issue 12: every state resumable).
UNDER_WAY = frozenset({State.VERIFIED, State.IN_REVIEW, State.APPROVED, State.PROVISIONING})


def can_confirm_again(req: ReplacementRequest, now: dt.datetime) -> bool:
    """Whether the customer may prove identity again for a fresh session: a request
    under way (:data:`UNDER_WAY`) or :func:`awaiting_activation`."""
    return State(req.state) in UNDER_WAY or awaiting_activation(req, now)


def _purpose(req: ReplacementRequest) -> str:
    if State(req.state) in UNDER_WAY:
        return "continue request"
    return "activate delivered card" if req.delivery == DeliveryMode.COURIER else "show eSIM again"


def _refuse() -> Conflict:
    return Conflict(
        "this request is closed, or not verified yet, or its eSIM or card is done",
        code="NOT_AWAITING_ACTIVATION",
    )


def send_code(ctx: ServiceContext, request_id: str) -> None:
    """E-mail a fresh one-time code for confirming again (replaces any earlier code).

    Refused unless :func:`can_confirm_again`; backs off like ``resend_code``.
    One transaction.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True)
        if not can_confirm_again(req, now):
            raise _refuse()
        brand = repo.get_brand(uow, req.brand_id)
        policy = brand.policy
        limits = attempts.Limits.from_policy(policy, ip_max_failures=ctx.ip_max_failures)
        key = [f"resend:{req.id}"]
        try:
            attempts.guard(uow, key, now, limits)
        except TooManyAttempts:
            uow.commit()
            raise
        attempts.record_failure(uow, key, now, limits)
        code = new_otp(ctx)
        req.issue_code(
            otp_hash=hash_otp(code, ctx.otp_pepper),
            expires_at=now + dt.timedelta(minutes=policy.otp_ttl_minutes),
            actor="customer",
            at=now,
            detail={"purpose": "reconfirm", "for": _purpose(req)},
        )
        enqueue_mail(
            ctx,
            uow,
            kind="one_time_code",
            request=req,
            brand=brand,
            context={"ttl_minutes": policy.otp_ttl_minutes},
            secret_context={"code": code},
        )
        uow.commit()


def reconfirm(
    ctx: ServiceContext, request_id: str, *, evidence: Evidence, source_ip: str | None = None
) -> list[str]:
    """Check ``evidence`` against the policy's combinations; return the methods proven.

    The caller issues the session afterwards (``sessions.issue_customer_session``).
    Refusals: NOT_AWAITING_ACTIVATION; VerificationFailed / TooManyAttempts from
    :func:`resim.services.verification.verification.check_evidence`, committed first so the
    failure counts. The e-mail code is single use: cleared on success.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True)
        if not can_confirm_again(req, now):
            raise _refuse()
        policy = repo.get_brand(uow, req.brand_id).policy
        try:
            proofs = check_evidence(
                ctx,
                uow,
                request_or_none=req,
                subscriber=repo.get_subscriber(uow, req.subscriber_id),
                line=repo.get_line(uow, req.line_id),
                evidence=evidence,
                # The customer confirms on the portal now, whoever opened the request
                # (an agent's eSIM sent by e-mail, issue 12 point 4): its combinations.
                combos=channel_combos(policy, Channel.PORTAL.value),
                now=now,
                source_ip=source_ip,
                actor="customer",
            )
        except (TooManyAttempts, VerificationFailed):
            uow.commit()
            raise
        methods = [p.method for p in proofs]
        req.reconfirm(methods=methods, purpose=_purpose(req), at=now, source=source_ip)
        uow.commit()
        return methods
