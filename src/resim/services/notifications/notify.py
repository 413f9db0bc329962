"""Enqueue customer messages as outbox jobs in the caller's transaction.

:func:`notify_customer` is the one way to tell a customer that something
happened to their request or line (SEC-04): one job per contact point on file
(``mail.send`` to the e-mail, ``sms.send`` to the alternate number and to the
old SIM while it still works), in the customer's language. :func:`enqueue_mail`
sends one mail to the e-mail on file only (the one-time code uses it: a code
never goes by SMS to the number being replaced, SEC-02).

The job carries everything needed to render the message later, sealed
(:func:`message_payload`): the recipient, the customer's name and every other
value of the message, secrets included (a one-time code, the "this was not
me" link), are one Fernet token under ``sealed``. In clear the jobs table keeps
only the message kind, its language and, for a text, which contact point it
goes to. ``resim keys rotate`` re-encrypts ``sealed``; done jobs are deleted
after ``RESIM_JOB_RETENTION_DAYS`` (:func:`resim.services.outbox.jobs.prune_done`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from resim.domain.identifiers import mask_msisdn
from resim.domain.model import (
    Brand,
    Line,
    ReplacementRequest,
    RequestKind,
    Sim,
    SimState,
    Subscriber,
)
from resim.services import repo
from resim.services.audit import redaction
from resim.services.context import ServiceContext
from resim.services.locks.loss_hooks import holds
from resim.services.notifications.brand_look import contact_values
from resim.services.replacement.continue_link import continue_url
from resim.services.unit_of_work import UnitOfWork


def request_ref(request_id: str) -> str:
    """The short reference customers and agents read aloud."""
    return request_id[:8].upper()


def message_language(
    request: ReplacementRequest | None, subscriber: Subscriber, brand: Brand
) -> str:
    """The language of a customer message: the portal language the request was
    opened in, else the subscriber's on file, else the brand's (issue 12)."""
    chosen = request.language if request is not None else None
    return chosen or subscriber.language or brand.language


def enqueue_mail(
    ctx: ServiceContext,
    uow: UnitOfWork,
    *,
    kind: str,
    request: ReplacementRequest,
    subscriber: Subscriber | None = None,
    brand: Brand | None = None,
    context: dict[str, Any] | None = None,
    secret_context: dict[str, Any] | None = None,
) -> str:
    """Enqueue one customer message; subscriber and brand are loaded when not given."""
    now = ctx.now()
    subscriber = subscriber or uow.subscribers.get(request.subscriber_id)
    brand = brand or uow.brands.get(request.brand_id)
    assert subscriber is not None and brand is not None  # foreign keys guarantee both
    base: dict[str, Any] = {
        "customer_name": subscriber.name,
        **contact_values(brand),
        "msisdn_masked": mask_msisdn(request.msisdn),
        "request_ref": request_ref(request.id),
        "reason": request.reason.value,  # a code: the mail templates translate it
        "status_url": f"{ctx.public_base_url}/status/{request.id}",
        # The signed link to pick the request up again (a fresh verification, never
        # a session): services.continue_link.
        "continue_url": continue_url(ctx, request.id, now=now),
        "timezone": brand.timezone,
    }
    base.update(context or {})
    payload = message_payload(
        ctx,
        kind=kind,
        to=subscriber.email,
        language=message_language(request, subscriber, brand),
        context={**base, **(secret_context or {})},
    )
    return uow.enqueue("mail.send", at=now, request_id=request.id, payload=payload)


def message_payload(
    ctx: ServiceContext,
    *,
    kind: str,
    to: str,
    language: str,
    context: dict[str, Any],
    **public: str,
) -> dict[str, Any]:
    """The payload of a ``mail.send`` or ``sms.send`` job, personal data sealed.

    ``to`` and ``context`` (names, addresses, links, codes: everything the
    template shows) are encrypted together; ``kind``, ``language`` and
    ``public`` (an SMS's ``target`` and ``old_iccid``) stay readable for the
    handler's checks and for operators counting jobs.
    """
    sealed = json.dumps({"to": to, "context": encode_context(context)})
    return {"kind": kind, "language": language, **public, "sealed": ctx.secrets.encrypt(sealed)}


@dataclass(frozen=True)
class OpenedMessage:
    """A message job's recipient and context (personal data: repr hides both)."""

    to: str = field(repr=False)
    context: dict[str, Any] = field(repr=False)


def open_message(ctx: ServiceContext, payload: dict[str, Any]) -> OpenedMessage:
    """The recipient and the rendering context of a message job (see :func:`message_payload`).

    Also reads jobs queued before payloads were sealed (``to`` and ``context``
    in clear, secrets in ``secret_context``). Tells :mod:`redaction` the
    recipient and the names in the context, so no log line of the job shows them.
    """
    sealed = payload.get("sealed")
    if isinstance(sealed, str):
        opened = json.loads(ctx.secrets.decrypt(sealed))
        to, raw = str(opened["to"]), dict(opened.get("context") or {})
    else:
        to, raw = str(payload["to"]), dict(payload.get("context") or {})
    context = decode_context(raw)
    secret = payload.get("secret_context")
    if isinstance(secret, str):
        context.update(json.loads(ctx.secrets.decrypt(secret)))
    redaction.tell(to, *(str(context[k]) for k in PERSONAL_KEYS if context.get(k)))
    return OpenedMessage(to=to, context=context)


# Context values that name a person (told to the log scrubber while a job sends).
PERSONAL_KEYS = ("customer_name", "staff_name")


# What each notice kind is about: a request (with the "this was not me" link) or
# a line (the SIM-change lock, SEC-05). Templates: MAIL_KINDS and SMS_KINDS.
REQUEST_NOTICES = frozenset(
    {
        "replacement_requested",
        "held_for_review",
        "replacement_approved",
        "replacement_rejected",
        "replacement_cancelled",
        "replacement_expired",
        "esim_ready",
        "card_dispatched",
        "replacement_completed",
        "replacement_failed",
        "request_taken_over",
    }
)
# A request that ends this way says whether its old SIM stays blocked by a loss report.
ENDINGS = frozenset(
    {"replacement_cancelled", "replacement_expired", "replacement_rejected", "replacement_failed"}
)
LINE_NOTICES = frozenset(
    {
        "lock_on",
        "unlock_requested",
        "unlock_effective",
        "account_unfrozen",
        "loss_reported",
        "loss_lifted",
    }
)


def not_me_token(ctx: ServiceContext, request_id: str) -> str:
    """The "this was not me" token of a request: HMAC-SHA256 of its id under a key
    derived from the OTP pepper (itself derived from the secret keys).

    Derivable, so every notice of the request can carry the link without the
    token being stored; the database keeps only :func:`not_me_token_hash` of it
    for lookup. Unguessable without the key; one request's token says nothing
    about another's.
    """
    key = hmac.new(ctx.otp_pepper, b"resim not-me link v1", hashlib.sha256).digest()
    mac = hmac.new(key, request_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def not_me_token_hash(token: str) -> str:
    """What is stored for lookup (same as ``requests.token_hash``)."""
    return hashlib.sha256(token.encode()).hexdigest()


def notify_customer(
    ctx: ServiceContext,
    uow: UnitOfWork,
    *,
    kind: str,
    request: ReplacementRequest | None = None,
    line: Line | None = None,
    subscriber: Subscriber | None = None,
    brand: Brand | None = None,
    context: dict[str, Any] | None = None,
) -> list[str]:
    """Enqueue one notice of ``kind`` on every contact point on file; return the job ids.

    Contact points: the e-mail (``mail.send``), the alternate number and the
    line's own number while its SIM still works (``sms.send`` each). The old
    SIM is skipped once it is suspended or retired, when the brand's policy
    turns ``notify_old_sim`` off, and always for line-separation requests,
    whose old SIM may be in the abuser's hands (SEC-12).

    Request notices (:data:`REQUEST_NOTICES`) need ``request`` and carry its
    "this was not me" link; this (re)arms the link's stored hash unless the
    customer already used it. Line notices (:data:`LINE_NOTICES`) need ``line``.
    ``context`` adds the kind's own values (``completed_at``, ``expires_at``,
    ``effective_at``); it must never hold a code: templates drop undeclared keys.
    Runs in the caller's unit of work: the jobs commit with the event or not at all.
    """
    now = ctx.now()
    if kind in REQUEST_NOTICES:
        if request is None:
            raise ValueError(f"notice {kind!r} is about a request")
        line_id, subscriber_id, brand_id = request.line_id, request.subscriber_id, request.brand_id
    elif kind in LINE_NOTICES:
        if line is None:
            raise ValueError(f"notice {kind!r} is about a line")
        line_id, subscriber_id, brand_id = line.id, line.subscriber_id, line.brand_id
    else:
        raise ValueError(f"unknown notice kind {kind!r}")
    subscriber = subscriber or uow.subscribers.get(subscriber_id)
    brand = brand or uow.brands.get(brand_id)
    line = line or uow.lines.get(line_id)
    assert subscriber is not None and brand is not None and line is not None  # foreign keys
    base: dict[str, Any] = {
        "customer_name": subscriber.name,
        **contact_values(brand),
        "msisdn_masked": mask_msisdn(line.msisdn),
        "timezone": brand.timezone,
    }
    secret: dict[str, Any] = {}
    request_id: str | None = None
    if request is not None and kind in REQUEST_NOTICES:
        request_id = request.id
        token = not_me_token(ctx, request.id)
        request.issue_not_me_token(not_me_token_hash(token))  # none once fraud was reported
        secret["not_me_url"] = f"{ctx.public_base_url}/not-me/{token}"
        base.update(
            {
                "msisdn_masked": mask_msisdn(request.msisdn),
                "request_ref": request_ref(request.id),
                "reason": request.reason.value,  # a code: the templates translate it
                "status_url": f"{ctx.public_base_url}/status/{request.id}",
                "continue_url": continue_url(ctx, request.id, now=now),
            }
        )
    if request is not None and kind in ENDINGS and holds(uow, request.old_iccid):
        base["sim_blocked"] = "yes"  # a loss report outlives the request (domain.loss)
    base.update(context or {})
    language = message_language(request, subscriber, brand)
    values = {**base, **secret}
    mail = message_payload(ctx, kind=kind, to=subscriber.email, language=language, context=values)
    jobs = [uow.enqueue("mail.send", at=now, request_id=request_id, payload=mail)]
    numbers = _sms_numbers(uow, brand, subscriber, line, request)
    if kind == "loss_reported":
        # Never a text to the lost phone: whoever holds it reads it.
        numbers = [n for n in numbers if n[1] != "old_sim"]
    elif kind == "loss_lifted" and all(n[1] != "old_sim" for n in numbers):
        # The found phone's SIM works again (loss.resume): it is told too.
        numbers.insert(0, (line.msisdn, "line", None))
    for number, target, iccid in numbers:
        public = {"target": target}
        if iccid is not None:
            public["old_iccid"] = iccid  # the handler checks again that this SIM still works
        sms = message_payload(
            ctx, kind=kind, to=number, language=language, context=values, **public
        )
        jobs.append(uow.enqueue("sms.send", at=now, request_id=request_id, payload=sms))
    return jobs


def _sms_numbers(
    uow: UnitOfWork,
    brand: Brand,
    subscriber: Subscriber,
    line: Line,
    request: ReplacementRequest | None,
) -> list[tuple[str, str, str | None]]:
    """(number, target, old SIM iccid) for each SMS contact point, without duplicates."""
    out: list[tuple[str, str, str | None]] = []
    old = working_old_sim(uow, line, request)
    separation = request is not None and request.kind == RequestKind.LINE_SEPARATION
    if old is not None and brand.policy.notify_old_sim and not separation:
        out.append((line.msisdn, "old_sim", old.iccid))
    if subscriber.alt_msisdn and subscriber.alt_msisdn != line.msisdn:
        out.append((subscriber.alt_msisdn, "alternate", None))
    return out


def working_old_sim(uow: UnitOfWork, line: Line, request: ReplacementRequest | None) -> Sim | None:
    """The SIM that answers on the line's number and is the customer's own, or None.

    For a request: its old SIM, while still active on the line and not
    suspended for the request (lost/stolen). After cut-over the number lives on
    the new SIM, which is exactly the one not to tell. For a line notice: the
    line's active SIM.
    """
    if request is not None:
        if request.old_iccid is None or request.old_sim_suspended:
            return None
        sim = uow.sims.get(request.old_iccid)
    else:
        sim = repo.bound_sim(uow, line.id)
    if sim is None or sim.state != SimState.ACTIVE or sim.line_id != line.id:
        return None
    return sim


def encode_context(values: dict[str, Any]) -> dict[str, Any]:
    """A job payload's context: datetimes become ``{"$dt": iso}`` (see decode_context)."""
    return {k: _jsonable(v) for k, v in values.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    return value


def decode_context(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"$dt"}:
            out[key] = dt.datetime.fromisoformat(value["$dt"])
        else:
            out[key] = value
    return out
