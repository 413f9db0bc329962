"""Verifying a replacement request, and the step-up a risk finding may ask for (SEC-02/03/07).

Each function is one transaction. The request row is locked first, then the
attempt counters (see :mod:`resim.services.verification.attempts`), so concurrent guesses
on one request or one account are checked one at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from resim.domain.model import Line, ReplacementRequest
from resim.domain.workflow import State
from resim.errors import Conflict, TooManyAttempts, VerificationFailed
from resim.services import repo
from resim.services.access.sessions import IssuedSession, add_customer_session
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.locks.loss_hooks import open_for_request
from resim.services.notifications.notify import notify_customer
from resim.services.risk.review import assess_and_decide
from resim.services.transient import retry_transient
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification.attempts_left import request_standing
from resim.services.verification.verification import Evidence, Proof, channel_combos, check_evidence


def submit_verification(
    ctx: ServiceContext,
    request_id: str,
    *,
    evidence: Evidence,
    actor: str = "customer",
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
    then: Callable[[UnitOfWork, ReplacementRequest, dt.datetime], None] | None = None,
) -> State:
    """Check the evidence against the policy's combinations for the request's channel.

    On success: records the proven methods and evidence (never a secret),
    moves the request to VERIFIED, blocks the old SIM at once for lost or
    stolen (a loss report: ``loss_hooks.open_for_request``), and assesses
    risk. A wrong answer is counted on the request, account, source address
    and agent and committed before the error is raised; reaching
    ``otp_max_attempts`` rejects the request. The error's message gives the
    honest count left (services.attempts_left). A caller that is backing off
    or capped gets TooManyAttempts without anything checked.
    A request out of the caller's ``scope`` is NotFound, and nothing is counted.
    ``then`` runs on success, after the risk decision and in the same transaction
    (the API issues the customer's session there: one commit, not two).
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True, scope=scope)
        if request.state != State.REQUESTED:
            raise Conflict(
                "the request is not waiting for verification", code="NOT_AWAITING_VERIFICATION"
            )
        brand = repo.get_brand(uow, request.brand_id)
        subscriber = repo.get_subscriber(uow, request.subscriber_id)
        line = repo.get_line(uow, request.line_id)
        policy = brand.policy
        try:
            proofs = check_evidence(
                ctx,
                uow,
                request_or_none=request,
                subscriber=subscriber,
                line=line,
                evidence=evidence,
                combos=channel_combos(policy, request.channel.value),
                now=now,
                source_ip=source_ip,
                actor=actor,
            )
        except TooManyAttempts:
            uow.commit()  # the counter rows guard created
            raise
        except VerificationFailed as exc:
            if policy.otp_max_attempts - request.count_failed_attempt() <= 0:
                _reject(ctx, uow, request, now)
            uow.flush()
            # honest: the account's cap counts too (services.attempts_left)
            left = request_standing(ctx, uow, request, policy, now).left
            uow.commit()
            if exc.code == "OTP_EXPIRED":
                raise
            raise VerificationFailed(
                f"verification failed; {max(left, 0)} attempts left", code="VERIFICATION_FAILED"
            ) from None
        request.verify(
            methods=[p.method for p in proofs],
            evidence=[p.record() for p in proofs],
            actor=actor,
            at=now,
        )
        # Lost or stolen: the old SIM is blocked through a loss report, which outlives
        # the request (only a cut-over or a strongly verified "I found it" ends it).
        open_for_request(uow, request, actor=actor, at=now)
        assess_and_decide(ctx, uow, request, now)
        if then is not None:
            then(uow, request, now)
        uow.commit()
        return request.state


@retry_transient
def verify_and_issue_session(
    ctx: ServiceContext,
    request_id: str,
    *,
    otp: str | None = None,
    pin: str | None = None,
    password: str | None = None,
    totp: str | None = None,
    actor: str = "customer",
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> tuple[State, IssuedSession]:
    """:func:`submit_verification` for a customer, and on success their session
    (``sessions.add_customer_session``) in the same transaction: the request is
    verified and the session exists together, or neither. Failures as
    :func:`submit_verification` (no session).
    Transient database errors: tried again as a whole (``retry_transient``).
    """
    evidence = Evidence(otp=otp, pin=pin, password=password, totp=totp)
    issued: list[IssuedSession] = []

    def session(uow: UnitOfWork, request: ReplacementRequest, now: dt.datetime) -> None:
        issued.append(add_customer_session(ctx, uow, request, now=now, source_ip=source_ip))

    state = submit_verification(
        ctx,
        request_id,
        evidence=evidence,
        actor=actor,
        source_ip=source_ip,
        scope=scope,
        then=session,
    )
    return state, issued[-1]


def _reject(
    ctx: ServiceContext, uow: UnitOfWork, request: ReplacementRequest, now: dt.datetime
) -> None:
    request.reject(
        code="TOO_MANY_ATTEMPTS",
        reason="too many failed verification attempts",
        actor="system",
        at=now,
    )
    notify_customer(ctx, uow, kind="replacement_rejected", request=request)


def submit_step_up(
    ctx: ServiceContext,
    request_id: str,
    *,
    evidence: Evidence,
    actor: str = "customer",
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> State:
    """Prove one of ``request.step_up_methods`` (set by the risk check), then decide again.

    Only for a VERIFIED request that the risk check held for a stronger
    method. The proven method is appended to ``verification_methods`` (and its
    evidence recorded) and ``assess_and_decide`` runs again; STEP_UP findings
    no longer hold the request then. Failures are counted like verification.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True, scope=scope)
        if request.state != State.VERIFIED or not request.step_up_methods:
            raise Conflict(
                "the request is not waiting for a stronger verification",
                code="NOT_AWAITING_STEP_UP",
            )
        subscriber = repo.get_subscriber(uow, request.subscriber_id)
        line: Line = repo.get_line(uow, request.line_id)
        combos = [[m] for m in request.step_up_methods]
        try:
            proofs: list[Proof] = check_evidence(
                ctx,
                uow,
                request_or_none=request,
                subscriber=subscriber,
                line=line,
                evidence=evidence,
                combos=combos,
                now=now,
                source_ip=source_ip,
                actor=actor,
            )
        except (TooManyAttempts, VerificationFailed):
            uow.commit()
            raise
        request.step_up(
            methods=[p.method for p in proofs],
            evidence=[p.record() for p in proofs],
            actor=actor,
            at=now,
        )
        assess_and_decide(ctx, uow, request, now)
        uow.commit()
        return request.state
