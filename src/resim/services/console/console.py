"""The agent console: a line's view, redacted until the caller is verified (SEC-08).

An agent looking a line up sees masked contact details ("A*** H***"), the lock
state and the open request, nothing an impostor could read back to them as
proof. After the agent records an ID-document check for the line
(:func:`record_identity_check`: document type and the last 4 digits of its
number, never an image) the same agent sees the full details until the check
expires (``ServiceContext.identity_check_ttl``). Other agents still see the
redacted view. Every look-up and every check is audited, so an insider who
browses lines leaves a trail.

Team VERIFY reads live checks (:func:`live_check`) as the ``id_document`` method.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from resim.domain.agent_channel import involved_staff
from resim.domain.identifiers import normalize_msisdn
from resim.domain.security import IdentityCheck
from resim.errors import InvalidInput, PermissionDenied
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.console.line_overview import overview
from resim.services.context import ServiceContext
from resim.services.locks.unfreeze import freeze_view
from resim.services.unit_of_work import UnitOfWork, new_id

DOCUMENT_TYPES = ("passport", "national_id", "driving_licence", "residence_permit")
LAST_DIGITS = re.compile(r"^[0-9]{4}$")


@dataclass(frozen=True)
class RecordedCheck:
    id: str
    line_id: str
    expires_at: dt.datetime


def mask_name(name: str) -> str:
    """ "Anna Hansen" -> "A*** H***": the initials only."""
    return " ".join(f"{part[0]}***" for part in name.split() if part) or "***"


def mask_email(email: str) -> str:
    """ "anna.hansen@example.dk" -> "a***@e***.dk"."""
    local, _, domain = email.partition("@")
    host, _, tld = domain.rpartition(".")
    masked_local = f"{local[:1]}***" if local else "***"
    if not host:
        return f"{masked_local}@***"
    return f"{masked_local}@{host[:1]}***.{tld}"


def mask_phone(number: str) -> str:
    """ "+4520123456" -> "+45******56": the country code and the last two digits."""
    if len(number) <= 5:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


def live_check(
    uow: UnitOfWork, *, staff_id: str, line_id: str, now: dt.datetime
) -> IdentityCheck | None:
    """The newest unexpired identity check this staff member recorded for the line."""
    return uow.identity_checks.newest_valid(staff_id=staff_id, line_id=line_id, at=now)


def record_identity_check(
    ctx: ServiceContext,
    *,
    staff_id: str,
    msisdn: str,
    document_type: str,
    last_digits: str,
    scope: Scope = UNRESTRICTED,
) -> RecordedCheck:
    """Record that ``staff_id`` checked the holder's ID document for the line. Audited.

    ``scope``: the agent's (their brand, if limited to one); another brand's line
    is NotFound. The last digits are stored on the check row but kept out of the
    audit detail.
    """
    if document_type not in DOCUMENT_TYPES:
        raise InvalidInput(
            f"document_type must be one of: {', '.join(DOCUMENT_TYPES)}",
            code="INVALID_DOCUMENT_TYPE",
        )
    if not LAST_DIGITS.match(last_digits):
        raise InvalidInput("last_digits must be exactly 4 digits", code="INVALID_LAST_DIGITS")
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        recorded = add_identity_check(
            uow,
            ctx,
            staff_id=staff_id,
            line_id=line.id,
            document_type=document_type,
            last_digits=last_digits,
            now=now,
        )
        uow.commit()
        return recorded


def add_identity_check(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    staff_id: str,
    line_id: str,
    document_type: str,
    last_digits: str,
    now: dt.datetime,
    compared: tuple[str, ...] | None = None,
) -> RecordedCheck:
    """Add the check row and its audit event in the caller's unit of work (not
    committed). ``compared``: the fields the console compared with the account
    (issue 14), None when the check was only recorded (the API)."""
    open_request = repo.open_request_for_line(uow, line_id)
    check = IdentityCheck(
        id=new_id(),
        staff_id=staff_id,
        line_id=line_id,
        method="id_document",
        verified_at=now,
        expires_at=now + ctx.identity_check_ttl,
        document_type=document_type,
        document_last_digits=last_digits,
        request_id=open_request.id if open_request else None,
    )
    uow.identity_checks.add(check)
    detail: dict[str, Any] = {
        "check_id": check.id,
        "document_type": document_type,
        "request_id": check.request_id,
        "expires_at": check.expires_at.isoformat(),
    }
    if compared is not None:
        detail["compared"] = list(compared)
        detail["matched"] = True
    uow.audit(
        at=now,
        actor=f"staff:{staff_id}",
        action="identity_check.recorded",
        object_type="line",
        object_id=line_id,
        detail=detail,
    )
    return RecordedCheck(check.id, line_id, check.expires_at)


def line_view(
    ctx: ServiceContext, *, staff_id: str, msisdn: str, scope: Scope = UNRESTRICTED
) -> dict[str, Any]:
    """The console's view of a line: redacted unless this agent holds a live check.
    A line out of the agent's ``scope`` is NotFound."""
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        subscriber = repo.get_subscriber(uow, line.subscriber_id)
        open_request = repo.open_request_for_line(uow, line.id)
        check = live_check(uow, staff_id=staff_id, line_id=line.id, now=now)
        verified = check is not None
        alt = subscriber.alt_msisdn
        view: dict[str, Any] = {
            "msisdn": line.msisdn,
            "brand_id": line.brand_id,
            "redacted": not verified,
            "identity_check_expires_at": check.expires_at.isoformat() if check else None,
            "name": subscriber.name if verified else mask_name(subscriber.name),
            "email": subscriber.email if verified else mask_email(subscriber.email),
            "alt_msisdn": (alt if verified else mask_phone(alt)) if alt else None,
            "language": subscriber.language,
            "sim_change_locked": line.is_locked(now),
            "unlock_effective_at": (
                line.unlock_effective_at.isoformat() if line.unlock_effective_at else None
            ),
            "open_request_id": open_request.id if open_request else None,
            "open_request_state": open_request.state.value if open_request else None,
            # Issue 12: shown before anyone tries to act on a frozen account.
            **freeze_view(uow, subscriber),
            # Issue 14: the overview an agent reads before acting.
            **overview(
                uow,
                line=line,
                subscriber=subscriber,
                open_request=open_request,
                staff_id=staff_id,
                verified=verified,
                now=now,
            ),
        }
        if verified:
            view["postal_address"] = subscriber.postal_address
        uow.audit(
            at=now,
            actor=f"staff:{staff_id}",
            action="line.viewed",
            object_type="line",
            object_id=line.id,
            detail={"redacted": not verified},
        )
        uow.commit()
        return view


def require_live_check_for_request(
    ctx: ServiceContext, *, staff_id: str, request_id: str, scope: Scope = UNRESTRICTED
) -> None:
    """PermissionDenied (IDENTITY_CHECK_REQUIRED) unless the agent verified the request's
    line; NotFound for a request out of the agent's ``scope``."""
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, scope=scope)
        if live_check(uow, staff_id=staff_id, line_id=request.line_id, now=now) is None:
            raise PermissionDenied(
                "check the customer's ID document for this line first",
                code="IDENTITY_CHECK_REQUIRED",
            )


def refuse_own_activation(
    ctx: ServiceContext, *, staff_id: str, request_id: str, scope: Scope = UNRESTRICTED
) -> None:
    """PermissionDenied (SECOND_PERSON_REQUIRED) if this staff member opened the request
    or recorded its verification evidence: they never read its activation code
    (issue 13: one agent must not complete a swap alone). The customer, or another
    staff member with a live check on the line, reads it instead. NotFound for a
    request out of ``scope``."""
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, scope=scope)
        if f"staff:{staff_id}" in involved_staff(request):
            raise PermissionDenied(
                "you opened or verified this request, so its activation code is for the "
                "customer or another staff member to read",
                code="SECOND_PERSON_REQUIRED",
            )
