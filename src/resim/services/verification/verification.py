"""Checking a caller's evidence against the combinations a policy accepts (SEC-02, SEC-03).

:func:`verify_evidence` is the one place resim checks an e-mail code, a PIN,
a password, a TOTP code or an agent's document check. Every check is guarded
and counted by :mod:`resim.services.verification.attempts` on the request, the account,
the agent and the source address (the address only as a ceiling that alerts
reviewers: it never blocks the others behind it, issue 12).

Error contract (inside the caller's unit of work):

* ``Refused(ACCOUNT_FROZEN)``: replacements on the account are frozen; nothing
  was checked.
* ``InvalidInput(VERIFICATION_INCOMPLETE)``: the evidence does not complete a
  combination the policy offers this subscriber; nothing was checked or counted.
* ``TooManyAttempts``: a counter is backing off or capped; nothing was checked.
* ``VerificationFailed``: something was wrong; the failure is counted (and an
  audit event written) in ``uow``: the caller MUST commit before re-raising.

On success the e-mail code is consumed (single use), a TOTP step is
remembered (no replay), and the request's (or unlock's) counter is cleared.
Nothing here logs, audits or returns a secret.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyotp

from resim.adapters.crypto import verify_otp, verify_secret
from resim.domain.agent_channel import agent_channel_combos
from resim.domain.model import Channel, Line, ReplacementRequest, Subscriber
from resim.domain.policy import BrandPolicy
from resim.domain.security import IdentityCheck
from resim.domain.verification import (
    METHODS,
    SubscriberFacts,
    offered,
    satisfied,
    with_legacy_pin,
)
from resim.errors import InvalidInput, Refused, VerificationFailed
from resim.services import repo
from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification import attempts


@dataclass(frozen=True)
class Evidence:
    """What a caller presents. ``staff_id`` comes from a staff session, never from a body."""

    otp: str | None = None
    pin: str | None = None
    password: str | None = None
    totp: str | None = None
    staff_id: str | None = None  # the agent whose live IdentityCheck counts as id_document

    def presented(self) -> set[str]:
        given = {
            "email_otp": self.otp,
            "pin": self.pin,
            "password": self.password,
            "totp": self.totp,
            "id_document": self.staff_id,
        }
        return {method for method, value in given.items() if value}

    def __repr__(self) -> str:  # never show the secrets, even in a traceback
        return f"Evidence(methods={sorted(self.presented())})"


@dataclass(frozen=True)
class Proof:
    """One proven method, as recorded on the request (never the secret)."""

    method: str
    at: dt.datetime
    by: str
    document_type: str | None = None
    document_last_digits: str | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "strength": METHODS[self.method].strength,
            "at": self.at.isoformat(),
            "by": self.by,
        }
        if self.document_type:
            out["document_type"] = self.document_type
            out["document_last_digits"] = self.document_last_digits
        return out


def facts_of(subscriber: Subscriber) -> SubscriberFacts:
    return SubscriberFacts(
        has_pin=bool(subscriber.pin_hash),
        has_password=bool(subscriber.password_hash),
        has_totp=bool(subscriber.totp_secret),
        has_email=bool(subscriber.email),
    )


def channel_combos(policy: BrandPolicy, channel: str) -> list[list[str]]:
    """The combinations the policy accepts on ``channel`` (legacy ``require_pin`` applied;
    on the agent channel, a customer factor added when no second staff member may
    confirm instead: ``domain.agent_channel``)."""
    combos = with_legacy_pin(policy.verification.get(channel, []), policy.require_pin)
    if channel == Channel.AGENT.value:
        return agent_channel_combos(combos, policy)
    return combos


def attempt_keys(
    *,
    subscriber_id: str,
    source_ip: str | None,
    staff_id: str | None,
    scope_key: str | None,
) -> list[str]:
    keys = [f"account:{subscriber_id}"]
    if scope_key:
        keys.append(scope_key)
    if source_ip:
        keys.append(f"ip:{source_ip}")
    if staff_id:
        keys.append(f"agent:{staff_id}")
    return keys


def verify_evidence(
    ctx: ServiceContext,
    uow: UnitOfWork,
    *,
    request_or_none: ReplacementRequest | None,
    subscriber: Subscriber,
    line: Line,
    evidence: Evidence,
    combos: Sequence[Sequence[str]],
    now: dt.datetime,
    source_ip: str | None,
    actor: str = "customer",
) -> list[str]:
    """Prove one of ``combos`` with ``evidence``; return the proven method names (see module)."""
    proofs = check_evidence(
        ctx,
        uow,
        request_or_none=request_or_none,
        subscriber=subscriber,
        line=line,
        evidence=evidence,
        combos=combos,
        now=now,
        source_ip=source_ip,
        actor=actor,
    )
    return [p.method for p in proofs]


def check_evidence(
    ctx: ServiceContext,
    uow: UnitOfWork,
    *,
    request_or_none: ReplacementRequest | None,
    subscriber: Subscriber,
    line: Line,
    evidence: Evidence,
    combos: Sequence[Sequence[str]],
    now: dt.datetime,
    source_ip: str | None,
    actor: str = "customer",
    loss: bool = False,
) -> list[Proof]:
    """Like :func:`verify_evidence`, returning what to record on the request.

    The e-mail code is the request's (``request_or_none``) or, without a
    request, the line's pending unlock code; with ``loss`` the line's loss
    report code (blocking the SIM, or lifting the block). A frozen account
    may still block its SIM and lift the block: that moves no number.
    """
    request = request_or_none
    if subscriber.replacements_frozen_at is not None and not loss:
        raise Refused(
            "replacements on this account are frozen; the operator's fraud team must review it",
            code="ACCOUNT_FROZEN",
        )
    can = offered(combos, facts_of(subscriber))
    presented = evidence.presented()
    complete = [c for c in can if set(c) <= presented]
    if not complete:
        choices = "; ".join(" + ".join(c) for c in can) or "none (visit a store)"
        raise InvalidInput(
            f"this needs one of these combinations: {choices}", code="VERIFICATION_INCOMPLETE"
        )
    relevant = sorted({m for c in complete for m in c})
    scope_key = (
        f"request:{request.id}"
        if request is not None
        else f"{'loss' if loss else 'unlock'}:{line.id}"
    )
    keys = attempt_keys(
        subscriber_id=subscriber.id,
        source_ip=source_ip,
        staff_id=evidence.staff_id,
        scope_key=scope_key,
    )
    brand_policy = _policy(uow, line)
    limits = attempts.Limits.from_policy(brand_policy, ip_max_failures=ctx.ip_max_failures)
    attempts.guard(uow, keys, now, limits)

    failures: list[str] = []
    proofs: list[Proof] = []
    totp_step: int | None = None
    for method in relevant:
        failure: str | None = None
        proof = Proof(method, now, actor)
        if method == "email_otp":
            failure = _check_email_otp(ctx, request, line, evidence.otp or "", now, loss=loss)
        elif method == "pin":
            if not subscriber.pin_hash or not verify_secret(
                evidence.pin or "", subscriber.pin_hash
            ):
                failure = "PIN_WRONG"
        elif method == "password":
            if not subscriber.password_hash or not verify_secret(
                evidence.password or "", subscriber.password_hash
            ):
                failure = "PASSWORD_WRONG"
        elif method == "totp":
            totp_step = _check_totp(subscriber, evidence.totp or "", now)
            if totp_step is None:
                failure = "TOTP_WRONG"
        elif method == "id_document":
            check = live_identity_check(uow, staff_id=evidence.staff_id, line_id=line.id, now=now)
            if check is None:
                failure = "NO_LIVE_ID_CHECK"
            else:
                proof = Proof(
                    method, now, actor, check.document_type, (check.document_last_digits or "")[-4:]
                )
        if failure is None:
            proofs.append(proof)
        else:
            failures.append(failure)

    if failures or not satisfied(combos, [p.method for p in proofs]):
        attempts.record_failure(uow, keys, now, limits, actor=actor)
        uow.audit(
            at=now,
            actor=actor,
            action="verification.failed",
            object_type="request" if request is not None else "line",
            object_id=request.id if request is not None else line.id,
            detail={"failures": failures, "methods": relevant, "source_ip": source_ip},
        )
        if failures == ["OTP_EXPIRED"]:
            raise VerificationFailed(
                "the one-time code has expired; ask for a new one", code="OTP_EXPIRED"
            )
        raise VerificationFailed("verification failed", code="VERIFICATION_FAILED")

    if "email_otp" in relevant:  # single use
        if request is not None:
            request.consume_code()
        elif loss:
            line.loss_otp_hash = None
            line.loss_otp_expires_at = None
        else:
            line.unlock_otp_hash = None
            line.unlock_otp_expires_at = None
    if totp_step is not None:
        subscriber.totp_last_step = totp_step
    attempts.clear(uow, [scope_key])
    return proofs


def _policy(uow: UnitOfWork, line: Line) -> BrandPolicy:
    return repo.get_brand(uow, line.brand_id).policy


def _check_email_otp(
    ctx: ServiceContext,
    request: ReplacementRequest | None,
    line: Line,
    code: str,
    now: dt.datetime,
    *,
    loss: bool = False,
) -> str | None:
    if request is not None:
        digest, expires = request.otp_hash, request.otp_expires_at
    elif loss:
        digest, expires = line.loss_otp_hash, line.loss_otp_expires_at
    else:
        digest, expires = line.unlock_otp_hash, line.unlock_otp_expires_at
    if digest is None or expires is None or now >= expires:
        return "OTP_EXPIRED"
    if not verify_otp(code.strip(), digest, ctx.otp_pepper):
        return "OTP_WRONG"
    return None


def _check_totp(subscriber: Subscriber, code: str, now: dt.datetime) -> int | None:
    """The time step ``code`` belongs to (one step either side), unless already used."""
    if not subscriber.totp_secret or not code.strip().isdigit():
        return None
    totp = pyotp.TOTP(subscriber.totp_secret)
    current = int(now.timestamp()) // totp.interval
    last = subscriber.totp_last_step
    for step in (current - 1, current, current + 1):
        if last is not None and step <= last:
            continue  # a code of an already used (or older) step is a replay
        if hmac.compare_digest(totp.generate_otp(step), code.strip()):
            return step
    return None


def live_identity_check(
    uow: UnitOfWork, *, staff_id: str | None, line_id: str, now: dt.datetime
) -> IdentityCheck | None:
    """This agent's newest unexpired document check on this line, if any."""
    if not staff_id:
        return None
    return uow.identity_checks.newest_valid(
        staff_id=staff_id, line_id=line_id, at=now, method="id_document"
    )
