"""Line separation (SEC-12): a survivor of abuse takes their line off a shared account.

An agent, who has checked the survivor's identity document (a live
``IdentityCheck`` by this agent on this line), moves the line to a new account
in the survivor's name and orders an eSIM for it, in one transaction. The old
SIM is suspended at once (the abuser may hold it), like a stolen one.

The original account holder is never told: nothing here or at any later step
writes to them. Every notice of a request resolves its recipient from
``request.subscriber_id``, which is the survivor's new account from the start;
team NOTIFY's old-SIM SMS is skipped for ``RequestKind.LINE_SEPARATION``.

The survivor's free-text account of why is sensitive: it is never logged and is
kept only encrypted (with the unit of work's keys) in the ``line.separated``
audit event, next to a reason code that reports can count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resim.domain.identifiers import normalize_eid, normalize_msisdn
from resim.domain.model import (
    Channel,
    Reason,
    ReplacementRequest,
    RequestKind,
    Subscriber,
)
from resim.domain.text import has_control_characters
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, Refused
from resim.locale import LANGUAGES, normalize_language
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.locks import locks
from resim.services.notifications.notify import notify_customer
from resim.services.risk.review import assess_and_decide
from resim.services.unit_of_work import Duplicate, new_id

REASON_CODES = ("domestic_abuse", "stalking", "coercive_control", "other")
NOTE_MAX = 2000
NAME_MAX = 120


@dataclass(frozen=True)
class SeparationSpec:
    """What the agent enters for the survivor (the survivor's own contact details)."""

    msisdn: str
    name: str
    email: str
    language: str
    reason_code: str
    alt_msisdn: str | None = None
    note: str | None = None  # free text: never logged, stored only encrypted
    eid: str | None = None


@dataclass(frozen=True)
class Separation:
    request_id: str
    subscriber_id: str
    state: State


def separate_line(
    ctx: ServiceContext,
    spec: SeparationSpec,
    *,
    staff_id: str,
    scope: Scope = UNRESTRICTED,
) -> Separation:
    """Move the line to a new account for the survivor and order an eSIM for it.

    Needs a live identity check by ``staff_id`` on the line (the agent's
    ``id_document`` check is the request's verification). In one transaction:
    the new subscriber, the line moved to it, a ``line_separation`` request in
    state verified, the old SIM's suspension job, the survivor's notice, and
    the risk decision (``review.assess_and_decide``), so the request goes on to
    approval or review like an agent's request. A locked line is treated as a
    lock override (two approvers, always reviewed). Refuses, with nothing
    written: bad input (422), no live check (403), an open request (409), a
    line out of the agent's ``scope`` (404, as a line that does not exist).
    """
    number = normalize_msisdn(spec.msisdn)
    name, email, language = _contact(spec)
    alt = normalize_msisdn(spec.alt_msisdn) if spec.alt_msisdn else None
    clean_eid = normalize_eid(spec.eid) if spec.eid else None
    if spec.reason_code not in REASON_CODES:
        raise InvalidInput(
            f"reason_code must be one of: {', '.join(REASON_CODES)}", code="INVALID_REASON_CODE"
        )
    note = (spec.note or "").strip()
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"the note is longer than {NOTE_MAX} characters", code="NOTE_TOO_LONG")
    actor = f"staff:{staff_id}"
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, lock=True, scope=scope)
        check = locks.live_identity_check(uow, staff_id=staff_id, line_id=line.id, now=now)
        if check is None or check.method != "id_document":
            raise Refused(
                "a line separation needs a live identity-document check by this agent on this line",
                code="IDENTITY_CHECK_REQUIRED",
            )
        if repo.open_request_for_line(uow, line.id) is not None:
            raise Conflict(
                "this line already has an open replacement request; it must end first",
                code="REQUEST_ALREADY_OPEN",
            )
        survivor = Subscriber(
            id=new_id(),
            brand_id=line.brand_id,
            name=name,
            email=email,
            language=language,
            created_at=now,
            alt_msisdn=alt,
        )
        uow.subscribers.add(survivor)
        uow.flush()  # no ORM relationships: insert the parent first
        from_subscriber = line.subscriber_id
        line.subscriber_id = survivor.id
        old = repo.bound_sim(uow, line.id)
        brand = repo.get_brand(uow, line.brand_id)
        locked = line.is_locked(now)
        request = ReplacementRequest.open(
            id=new_id(),
            kind=RequestKind.LINE_SEPARATION,
            line_id=line.id,
            brand_id=line.brand_id,
            subscriber_id=survivor.id,
            msisdn=line.msisdn,
            # The abuser may hold the old SIM: treat it as stolen (suspended at once).
            reason=Reason.STOLEN,
            channel=Channel.AGENT,
            actor=actor,
            at=now,
            old_iccid=old.iccid if old else None,
            eid=clean_eid,
            fee_currency=brand.currency,  # no fee: a survivor pays nothing to leave
            # A locked line: the separation overrides the lock, with two approvers.
            lock_override=locked,
            required_approvals=locks.OVERRIDE_APPROVALS if locked else 1,
            verify_by=None,  # verified in this very transaction
        )
        uow.requests.add(request)
        try:
            uow.flush()
        except Duplicate:
            raise Conflict(
                "this line already has an open replacement request", code="REQUEST_ALREADY_OPEN"
            ) from None
        detail: dict[str, object] = {
            "reason_code": spec.reason_code,
            "request": request.id,
            "from_subscriber": from_subscriber,
            "to_subscriber": survivor.id,
            "identity_check": check.id,
        }
        if note:
            detail["note_enc"] = ctx.secrets.encrypt(note)
        uow.audit(
            at=now,
            actor=actor,
            action="line.separated",
            object_type="line",
            object_id=line.id,
            detail=detail,
        )
        _verify_by_document(request, check_id=check.id, actor=actor, at=now)
        if request.old_iccid:
            uow.enqueue("core.suspend_old", at=now, request_id=request.id)
        notify_customer(
            ctx,
            uow,
            kind="replacement_requested",
            request=request,
            subscriber=survivor,
            brand=brand,
        )
        assess_and_decide(ctx, uow, request, now)
        uow.commit()
        return Separation(request.id, survivor.id, request.state)


def _verify_by_document(
    request: ReplacementRequest, *, check_id: str, actor: str, at: dt.datetime
) -> None:
    request.verify(
        methods=["id_document"],
        evidence=[
            {"method": "id_document", "at": at.isoformat(), "by": actor, "identity_check": check_id}
        ],
        actor=actor,
        at=at,
    )


def _contact(spec: SeparationSpec) -> tuple[str, str, str]:
    # Line breaks and NUL would end up in the survivor's mail headers, where
    # the mailer refuses them and every notice to the survivor dies in its job.
    if has_control_characters(spec.name):
        raise InvalidInput(
            "name must not contain control characters (line breaks, tabs, NUL)",
            code="INVALID_NAME",
        )
    if has_control_characters(spec.email):
        raise InvalidInput(
            "email address must not contain control characters (line breaks, tabs, NUL)",
            code="INVALID_EMAIL",
        )
    name = spec.name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"name must be 1 to {NAME_MAX} characters", code="INVALID_NAME")
    email = spec.email.strip()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        raise InvalidInput("email address is not valid", code="INVALID_EMAIL")
    raw = spec.language.strip()
    language = normalize_language(raw)
    if language == "en" and not raw.lower().startswith("en"):  # unknown tags fall back to en
        raise InvalidInput(
            f"language must be one of: {', '.join(LANGUAGES)}", code="INVALID_LANGUAGE"
        )
    return name, email, language
