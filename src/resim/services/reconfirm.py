"""Confirming identity again, days later, to activate a card that came by courier.

The portal's customer session lives ``customer_session_minutes``; a card takes
days to arrive. A courier request that waits for activation (ready, dispatched,
not activated) therefore lets the customer prove who they are again with the
same combinations the brand's policy asks for on the request's channel
(SEC-02: never an SMS to the number being replaced), after which the portal
issues a fresh session bound to the request. Nothing about the request changes
apart from a new e-mail code; failures count on the same counters as the first
verification (request, account, address) and back off the same way (SEC-03).
Codes are sent with the resend back-off, so the form cannot flood the mailbox.
"""

from __future__ import annotations

import datetime as dt

from resim.adapters.crypto import hash_otp
from resim.domain.model import DeliveryMode, ReplacementRequest
from resim.domain.workflow import State
from resim.errors import Conflict, TooManyAttempts, VerificationFailed
from resim.services import attempts, repo
from resim.services.context import ServiceContext
from resim.services.notify import enqueue_mail
from resim.services.requests import new_otp
from resim.services.verification import Evidence, channel_combos, check_evidence


def awaiting_activation(req: ReplacementRequest) -> bool:
    """A dispatched courier card the customer has not activated yet."""
    return (
        req.delivery == DeliveryMode.COURIER
        and req.state == State.READY
        and req.installed_at is None
        and req.new_iccid is not None
    )


def _refuse() -> Conflict:
    return Conflict(
        "this request is not waiting for a card to be activated", code="NOT_AWAITING_ACTIVATION"
    )


def send_code(ctx: ServiceContext, request_id: str) -> None:
    """E-mail a fresh one-time code for confirming again (replaces any earlier code).

    Refused unless :func:`awaiting_activation`; backs off like ``resend_code``.
    One transaction.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True)
        if not awaiting_activation(req):
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
        req.otp_hash = hash_otp(code, ctx.otp_pepper)
        req.otp_expires_at = now + dt.timedelta(minutes=policy.otp_ttl_minutes)
        uow.audit(
            at=now,
            actor="customer",
            action="request.code_resent",
            object_type="request",
            object_id=req.id,
            detail={"purpose": "reconfirm"},
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
    :func:`resim.services.verification.check_evidence`, committed first so the
    failure counts. The e-mail code is single use: cleared on success.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True)
        if not awaiting_activation(req):
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
                combos=channel_combos(policy, req.channel.value),
                now=now,
                source_ip=source_ip,
                actor="customer",
            )
        except (TooManyAttempts, VerificationFailed):
            uow.commit()
            raise
        req.otp_hash = None
        methods = [p.method for p in proofs]
        uow.audit(
            at=now,
            actor="customer",
            action="request.reconfirmed",
            object_type="request",
            object_id=req.id,
            detail={"methods": methods, "purpose": "activate delivered card"},
            source=source_ip,
        )
        uow.commit()
        return methods
