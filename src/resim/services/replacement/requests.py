"""Use cases of a replacement request before provisioning: open, verify, review.

Each function is one transaction (one unit of work). Jobs for external
effects (mail, core network, SM-DP+) are enqueued in that transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, replace

import structlog

from resim.adapters.crypto import hash_otp
from resim.domain.model import (
    Channel,
    DeliveryMode,
    ReplacementRequest,
)
from resim.domain.verification import offered
from resim.domain.workflow import State
from resim.errors import Conflict, DomainError, Refused
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.locks import locks
from resim.services.notifications.notify import (
    enqueue_mail,
    not_me_token,
    not_me_token_hash,
    notify_customer,
)
from resim.services.replacement.open_spec import OpenSpec, check_delivery, parse_open
from resim.services.risk.agent_limits import check_agent_rate
from resim.services.risk.risk_facts import is_self_service
from resim.services.transient import retry_transient
from resim.services.unit_of_work import Duplicate, UnitOfWork, new_id
from resim.services.verification import attempts, verify_request
from resim.services.verification.verification import Evidence, channel_combos, facts_of

log = structlog.get_logger()


@dataclass(frozen=True)
class OpenedRequest:
    id: str
    state: State
    fee_minor: int
    fee_currency: str | None
    verification_methods: tuple[tuple[str, ...], ...]  # the combinations offered (SEC-02)


def new_otp(ctx: ServiceContext) -> str:
    """A fresh six-digit one-time code (the context's generator in tests)."""
    if ctx.otp_generator is not None:
        return ctx.otp_generator()
    return f"{secrets.randbelow(1_000_000):06d}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@retry_transient
def open_request(
    ctx: ServiceContext,
    *,
    msisdn: str,
    reason: str,
    channel: str = Channel.API.value,
    actor: str = "bss",
    eid: str | None = None,
    source_ip: str | None = None,
    device_id: str | None = None,
    country: str | None = None,
    lock_override: locks.LockOverride | None = None,
    target_form: str | None = None,
    delivery_mode: str | None = None,
    scope: Scope = UNRESTRICTED,
    send_code: bool = True,
) -> OpenedRequest:
    """Open a replacement request and send the one-time code to the e-mail on file.

    ``send_code=False``: no code is made or sent, for a request its opener
    verifies at once without one (an agent's ID-document check, issue 12).

    A line out of the caller's ``scope`` (another brand's) is NotFound (LINE_NOT_FOUND).

    ``delivery_mode``: "esim" (ordered from the SM-DP+), "pickup" (a card handed
    over at the store by an agent, :mod:`resim.services.delivery.handover`) or "courier"
    (a card sent to the postal address on file, :mod:`resim.services.delivery.delivery`).
    ``target_form`` ("esim" or "physical") alone means "esim" or "pickup"; given
    with a mode it must agree (FORM_MISMATCH). Refused when the brand's policy
    does not offer the mode (DELIVERY_MODE_NOT_OFFERED) and for courier without
    a postal address on file (NO_POSTAL_ADDRESS). Courier adds the policy's
    ``courier_fee_minor`` to the fee.
    ``device_id`` (stored only as its SHA-256) and ``country`` (ISO alpha-2) feed
    the new-device and new-country risk rules. A self-service request (portal,
    or an API caller without credentials) without a country gets the one
    ``ctx.geolocator`` finds for ``source_ip``; a trusted caller's address says
    nothing about the customer and is not looked up. Where the signal stays
    missing, the brand's ``missing_signal`` policy decides (domain.risk).
    A staff actor ("staff:<id>") over the brand's per-agent hourly limit gets
    TooManyAttempts and the reviewers an alert (services.agent_limits).

    Refuses (nothing written) when the line is locked (unless ``lock_override``
    is a valid agent override, see ``locks.check_line_lock``) or already has an
    open request. Two concurrent calls for one line: the UNIQUE open_line_id makes
    the second INSERT fail, and it is reported as REQUEST_ALREADY_OPEN. A busy or
    unreachable database is tried again and then reported as Unavailable (503),
    never as an unexplained error (``adapters.db.transient``).
    """
    spec = parse_open(
        msisdn=msisdn,
        reason=reason,
        channel=channel,
        eid=eid,
        device_id=device_id,
        country=country,
        target_form=target_form,
        delivery_mode=delivery_mode,
    )
    return open_parsed(
        ctx,
        spec,
        actor=actor,
        source_ip=source_ip,
        lock_override=lock_override,
        scope=scope,
        send_code=send_code,
    )


def open_quietly(
    ctx: ServiceContext,
    spec: OpenSpec,
    *,
    actor: str,
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> None:
    """Open for a caller who has proved nothing yet (issue 13, finding 15).

    The outcome is not the caller's to know: an unknown number, a locked line,
    a frozen account, an open request, no verification method on file, a
    delivery the brand does not offer, all end here like a success. The
    customer, if the number is theirs, learns the rest from the e-mail on file
    (the one-time code and the link to continue). Only refusals (DomainError)
    are swallowed; an outage still raises.
    """
    try:
        open_parsed(ctx, spec, actor=actor, source_ip=source_ip, scope=scope)
    except DomainError as exc:
        log.info("request.open_refused_quietly", code=exc.code, channel=spec.channel.value)


def _with_origin(
    ctx: ServiceContext, spec: OpenSpec, *, actor: str, source_ip: str | None
) -> OpenSpec:
    """The spec with the country the request came from, where resim must derive it.

    A self-service request (portal, or an API caller without credentials) that
    names no country gets the one ``ctx.geolocator`` finds for ``source_ip`` (the
    caller's address as ``entrypoints.api.forwarded`` decides it); a trusted
    caller's address says nothing about the customer and is not looked up.
    """
    if spec.country is not None or not source_ip or not is_self_service(spec.channel, actor):
        return spec
    return replace(spec, country=ctx.geolocator.country_of(source_ip))


def open_parsed(
    ctx: ServiceContext,
    spec: OpenSpec,
    *,
    actor: str = "bss",
    source_ip: str | None = None,
    lock_override: locks.LockOverride | None = None,
    scope: Scope = UNRESTRICTED,
    send_code: bool = True,
) -> OpenedRequest:
    """:func:`open_request` after :func:`parse_open`."""
    number, why, via, mode = spec.msisdn, spec.reason, spec.channel, spec.mode
    spec = _with_origin(ctx, spec, actor=actor, source_ip=source_ip)
    clean_eid, device_hash, clean_country = spec.eid, spec.device_hash, spec.country
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        if line.awaiting_sim:
            raise Refused(
                "this number has no SIM yet (reserved, or ported in and not activated): "
                "there is nothing to replace",
                code="LINE_HAS_NO_SIM",
            )
        subscriber = repo.get_subscriber(uow, line.subscriber_id)
        if subscriber.replacements_frozen_at is not None:
            raise Refused(
                "replacements on this account are frozen after suspicious activity; "
                "the operator's fraud team must review it first",
                code="ACCOUNT_FROZEN",
            )
        override_check = locks.check_line_lock(
            uow, line, now=now, channel=via, actor=actor, override=lock_override
        )
        if repo.open_request_for_line(uow, line.id) is not None:
            raise Conflict(
                "this line already has an open replacement request", code="REQUEST_ALREADY_OPEN"
            )
        brand = repo.get_brand(uow, line.brand_id)
        policy = brand.policy
        check_delivery(policy.delivery_modes, mode, has_address=bool(subscriber.postal_address))
        check_agent_rate(uow, actor=actor, limit=policy.agent_max_requests_per_hour, now=now)
        # SEC-02: only combinations this subscriber can complete; none: nothing is sent.
        combos = offered(channel_combos(policy, via.value), facts_of(subscriber))
        if not combos:
            raise Refused(
                "no verification method on file fits this channel; the customer must "
                "verify another way (for example in a store with an identity document)",
                code="NO_VERIFICATION_METHOD",
            )
        old = repo.bound_sim(uow, line.id)
        code = new_otp(ctx) if send_code else None
        # Opened is audited (request.created) and enqueues request.expire_unverified.
        request = ReplacementRequest.open(
            id=new_id(),
            line_id=line.id,
            brand_id=brand.id,
            subscriber_id=subscriber.id,
            msisdn=line.msisdn,
            reason=why,
            channel=via,
            actor=actor,
            at=now,
            old_iccid=old.iccid if old else None,
            eid=clean_eid,
            delivery_mode=mode,
            source_ip=source_ip,
            device_id=device_hash,
            country=clean_country,
            language=spec.language,
            fee_minor=_fee_due(
                uow,
                line.id,
                now,
                policy.fee.amount_minor,
                policy.fee.free_per_window,
                policy.fee.window_days,
            )
            + (policy.courier_fee_minor if mode == DeliveryMode.COURIER else 0),
            fee_currency=brand.currency,
            otp_hash=hash_otp(code, ctx.otp_pepper) if code is not None else None,
            otp_expires_at=(
                now + dt.timedelta(minutes=policy.otp_ttl_minutes) if code is not None else None
            ),
            verify_by=now + dt.timedelta(hours=policy.verification_window_hours),
        )
        # The "replacement_requested" notice below arms the "this was not me" link;
        # its hash (derived from the id) goes in with the INSERT, not an UPDATE after.
        request.issue_not_me_token(not_me_token_hash(not_me_token(ctx, request.id)))
        uow.requests.add(request)
        try:
            uow.flush()  # the UNIQUE open_line_id decides a race between two openers
        except Duplicate:
            raise Conflict(
                "this line already has an open replacement request", code="REQUEST_ALREADY_OPEN"
            ) from None
        if lock_override is not None and override_check is not None:
            locks.apply_override(
                uow, request, override=lock_override, check=override_check, actor=actor, at=now
            )
        notify_customer(
            ctx,
            uow,
            kind="replacement_requested",
            request=request,
            line=line,
            subscriber=subscriber,
            brand=brand,
        )
        if code is not None:
            enqueue_mail(
                ctx,
                uow,
                kind="one_time_code",
                request=request,
                subscriber=subscriber,
                brand=brand,
                context={"ttl_minutes": policy.otp_ttl_minutes},
                secret_context={"code": code},
            )
        try:
            uow.commit()
        except Duplicate:
            raise Conflict(
                "this line already has an open replacement request", code="REQUEST_ALREADY_OPEN"
            ) from None
        return OpenedRequest(
            request.id,
            request.state,
            request.fee_minor,
            request.fee_currency,
            tuple(tuple(c) for c in combos),
        )


def _fee_due(
    uow: UnitOfWork, line_id: str, now: dt.datetime, amount: int, free: int, window_days: int
) -> int:
    if amount == 0:
        return 0
    since = now - dt.timedelta(days=window_days)
    done = uow.requests.completed_since(line_id=line_id, since=since)
    return 0 if done < free else amount


def resend_code(ctx: ServiceContext, request_id: str, *, scope: Scope = UNRESTRICTED) -> None:
    """A fresh one-time code replaces the old one (same attempt counter).

    Resends back off like failed attempts (SEC-03): after the policy's
    ``backoff_after_failures`` resends, each further one must wait longer, so
    the link cannot be used to flood the customer's mailbox.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True, scope=scope)
        if request.state != State.REQUESTED:
            raise Conflict(
                "the request is not waiting for verification", code="NOT_AWAITING_VERIFICATION"
            )
        brand = repo.get_brand(uow, request.brand_id)
        limits = attempts.Limits.from_policy(brand.policy, ip_max_failures=ctx.ip_max_failures)
        attempts.guard(uow, [f"resend:{request.id}"], now, limits)
        attempts.record_failure(uow, [f"resend:{request.id}"], now, limits)
        subscriber = repo.get_subscriber(uow, request.subscriber_id)
        code = new_otp(ctx)
        request.issue_code(
            otp_hash=hash_otp(code, ctx.otp_pepper),
            expires_at=now + dt.timedelta(minutes=brand.policy.otp_ttl_minutes),
            actor="customer",
            at=now,
        )
        enqueue_mail(
            ctx,
            uow,
            kind="one_time_code",
            request=request,
            subscriber=subscriber,
            brand=brand,
            context={"ttl_minutes": brand.policy.otp_ttl_minutes},
            secret_context={"code": code},
        )
        uow.commit()


@retry_transient
def submit_verification(
    ctx: ServiceContext,
    request_id: str,
    *,
    otp: str | None = None,
    pin: str | None = None,
    password: str | None = None,
    totp: str | None = None,
    staff_id: str | None = None,
    actor: str = "customer",
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> State:
    """Verify with a combination the policy accepts on the request's channel, then assess risk.

    See :func:`resim.services.verification.verify_request.submit_verification` for the
    contract (counted failures, back-off, hard caps). ``staff_id`` is the
    calling agent (from the staff session): their live document check on the
    line counts as ``id_document``. Transient database errors: as open_request.
    """
    evidence = Evidence(otp=otp, pin=pin, password=password, totp=totp, staff_id=staff_id)
    return verify_request.submit_verification(
        ctx, request_id, evidence=evidence, actor=actor, source_ip=source_ip, scope=scope
    )
