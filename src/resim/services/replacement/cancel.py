"""Ending a request early: cancel (customer, agent, "this was not me") and expiry
(unverified, waiting for a step-up, or an unused activation code)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resim.domain.model import ReplacementRequest
from resim.domain.workflow import State
from resim.errors import NotFound
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.console.alerts import raise_alert
from resim.services.context import ServiceContext
from resim.services.locks.loss_hooks import holds
from resim.services.notifications.notify import notify_customer
from resim.services.replacement.requests import token_hash
from resim.services.risk.review import step_up_deadline
from resim.services.unit_of_work import UnitOfWork


def cancel(
    ctx: ServiceContext,
    request_id: str,
    *,
    actor: str,
    note: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> State:
    """Cancel an open request. Refused once the new eSIM reported installed.
    A request out of the caller's ``scope`` is NotFound."""
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True, scope=scope)
        _cancel_locked(ctx, uow, request, actor=actor, note=note, at=now)
        uow.commit()
        return request.state


@dataclass(frozen=True)
class NotMeOutcome:
    request_id: str
    cancelled: bool  # False: it had already ended (completed: a reversal candidate)


def cancel_by_token(ctx: ServiceContext, token: str) -> str:
    """The "this was not me" link; see :func:`report_not_me`. Returns the request id."""
    return report_not_me(ctx, token).request_id


def report_not_me(ctx: ServiceContext, token: str) -> NotMeOutcome:
    """The account holder says a request was not theirs (SEC-04), in one transaction.

    The token (see ``notify.not_me_token``) is found by its stored hash, so it
    acts on its own request only, and once: its hash is cleared and
    ``fraud_reported_at`` set, which also stops later notices re-arming it.
    An unknown or used token raises NotFound and changes nothing.

    Effects: an open request is cancelled (unless the new eSIM is already
    installed); replacements on the account are frozen (``frozen_reason``
    ``not_me``) and ``fraud_flags`` counts up; reviewers get a ``not_me``
    alert. A request that already completed keeps its SIMs as they are: the
    flag and the alert make it a reversal candidate for a person to handle.
    """
    now = ctx.now()
    invalid = NotFound("this link is not valid or was already used", code="LINK_INVALID")
    if not token or len(token) > 200:
        raise invalid
    with ctx.uow() as uow:
        request_id = uow.requests.id_by_not_me_token(token_hash(token))
        if request_id is None:
            raise invalid
        request = repo.get_request(uow, request_id, lock=True)
        if request.not_me_token_hash != token_hash(token):
            raise invalid  # used by a concurrent click that committed first
        was = request.state
        cancelled = request.is_open and request.installed_at is None
        if cancelled:
            _cancel_locked(
                ctx,
                uow,
                request,
                actor="customer:not-me",
                note="the account holder said the request was not theirs",
                at=now,
            )
        request.report_not_me(was=was, cancelled=cancelled, at=now)  # the link is single use
        subscriber = repo.get_subscriber(uow, request.subscriber_id)
        subscriber.fraud_flags = (subscriber.fraud_flags or 0) + 1
        if subscriber.replacements_frozen_at is None:
            subscriber.replacements_frozen_at = now
            subscriber.frozen_reason = "not_me"
        detail = {
            "state": was.value,
            "cancelled": cancelled,
            "reversal_candidate": was == State.COMPLETED,
        }
        uow.audit(
            at=now,
            actor="customer:not-me",
            action="account.frozen",
            object_type="subscriber",
            object_id=subscriber.id,
            detail={"reason": "not_me", "request_id": request.id},
        )
        raise_alert(
            uow,
            at=now,
            kind="not_me",
            subject_type="request",
            subject_id=request.id,
            detail={"subscriber_id": subscriber.id, **detail},
            actor="customer:not-me",
        )
        uow.commit()
        return NotMeOutcome(request.id, cancelled)


def _cancel_locked(
    ctx: ServiceContext,
    uow: UnitOfWork,
    request: ReplacementRequest,
    *,
    actor: str,
    note: str | None,
    at: dt.datetime,
) -> None:
    # The request withdraws a ready eSIM's order (its Cancelled event). A
    # dispatched card stays reserved (it is in the post) and can never be
    # activated: activation needs an open request.
    request.cancel(by=actor, note=note, at=at)
    # A loss report keeps a lost or stolen SIM barred after the cancel: a cancel is
    # no proof the phone is back (domain.loss). Only a suspension the request held
    # on its own (a line separation) is given back.
    if request.old_sim_suspended and not holds(uow, request.old_iccid):
        uow.enqueue("core.resume_old", at=at, request_id=request.id)
    notify_customer(ctx, uow, kind="replacement_cancelled", request=request)


def expire_unverified(ctx: ServiceContext, request_id: str) -> None:
    """Job ``request.expire_unverified``: still unverified at the deadline -> expired."""
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True)
        if request.state != State.REQUESTED:
            return
        request.expire(what="not verified in time", at=now)
        notify_customer(ctx, uow, kind="replacement_expired", request=request)
        uow.commit()


def expire_step_up(ctx: ServiceContext, request_id: str) -> None:
    """Job ``request.expire_step_up``: a verified request still waiting for the stronger
    method the risk check asked for (``step_up_methods``) expires at its deadline
    (``review.step_up_deadline``: ``step_up_window_hours`` after verification).

    Run early (a job due sooner, or the one-off job that the migration
    ``*_sec_flow_step_up_expiry`` wrote for requests stuck before this existed),
    it re-enqueues itself for the deadline.
    The request ends EXPIRED (``STEP_UP_EXPIRED``), which frees the line for a
    new request. A lost or stolen SIM barred at verification stays barred, as
    after an expired activation code: expiry is no proof the phone is back (the
    loss outlives the request; a later request or the customer's "found it" ends it).
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True)
        if request.state != State.VERIFIED or not request.step_up_methods:
            return  # stepped up, decided, cancelled or already ended
        deadline = step_up_deadline(request, repo.get_brand(uow, request.brand_id).policy, now)
        if deadline > now:
            uow.enqueue("request.expire_step_up", at=now, request_id=request.id, run_after=deadline)
            uow.commit()
            return
        request.expire(
            what="step-up not proven in time",
            code="STEP_UP_EXPIRED",
            reason="the stronger verification asked for was not given in time",
            at=now,
        )
        notify_customer(ctx, uow, kind="replacement_expired", request=request)
        uow.commit()


def expire_activation(ctx: ServiceContext, request_id: str) -> None:
    """Job ``request.expire_activation``: an unused activation code expires.

    The request ends expired and the order is withdrawn at the SM-DP+ by an
    ``esim.cancel_order`` job in the same transaction. A code that was used in
    the meantime (installed) is left alone.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True)
        if request.state != State.READY or request.installed_at is not None:
            return
        if request.activation_expires_at is not None and request.activation_expires_at > now:
            uow.enqueue(
                "request.expire_activation",
                at=now,
                request_id=request.id,
                run_after=request.activation_expires_at,
            )
            uow.commit()
            return
        request.expire(what="activation code unused", at=now)  # withdraws the order
        # A lost or stolen SIM stays suspended: expiry is no proof the phone is back.
        notify_customer(ctx, uow, kind="replacement_expired", request=request)
        uow.commit()
