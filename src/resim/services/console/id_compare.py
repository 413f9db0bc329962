"""The console's ID check: compare the document with the account (issue 14).

The agent reads the holder's name, birth date and the last digits of the
document number off the document and types them; :func:`compare_identity`
says match or no match. The account's values are never shown before a
match, so an agent cannot copy them and an impostor on the phone cannot have
them read back.

* Match: an ID check is recorded exactly as :func:`console.record_identity_check`
  records one (audited ``identity_check.recorded`` with the names of the
  fields compared), which unlocks the line's details for this agent.
* No match: nothing is unlocked; the failure is audited
  (``identity_check.no_match``: document type and the fields compared, never a
  value) and counted on ``idcheck:<staff>:<line>`` (back-off after the brand's
  ``backoff_after_failures``, a hard cap of :data:`MAX_NO_MATCHES` per window)
  and on the agent's shared ``agent:<staff>`` key (its cap alerts reviewers).
  The service commits the failure and then raises VerificationFailed
  (ID_NO_MATCH), so the count survives.

Values typed or on file never reach an error message, the audit log or a log line.
"""

from __future__ import annotations

import dataclasses

from resim.domain.id_match import OnFile, Read, compare, parse_birth_date
from resim.domain.identifiers import normalize_msisdn
from resim.errors import InvalidInput, VerificationFailed
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.console.console import (
    DOCUMENT_TYPES,
    LAST_DIGITS,
    RecordedCheck,
    add_identity_check,
)
from resim.services.context import ServiceContext
from resim.services.verification import attempts

MAX_NO_MATCHES = 5  # per agent and line, per failure window
NAME_MAX = 200


def _read(document_type: str, name: str, birth_date: str, last_digits: str) -> Read:
    if document_type not in DOCUMENT_TYPES:
        raise InvalidInput(
            f"document_type must be one of: {', '.join(DOCUMENT_TYPES)}",
            code="INVALID_DOCUMENT_TYPE",
        )
    clean_name = " ".join(name.split())
    if not clean_name or len(clean_name) > NAME_MAX:
        raise InvalidInput("type the name as printed on the document", code="INVALID_NAME")
    born = parse_birth_date(birth_date)
    if born is None:
        raise InvalidInput("type the birth date as printed", code="INVALID_BIRTH_DATE")
    if not LAST_DIGITS.match(last_digits):
        raise InvalidInput("last_digits must be exactly 4 digits", code="INVALID_LAST_DIGITS")
    return Read(clean_name, born, last_digits)


def compare_identity(
    ctx: ServiceContext,
    *,
    staff_id: str,
    msisdn: str,
    document_type: str,
    name: str,
    birth_date: str,
    last_digits: str,
    scope: Scope = UNRESTRICTED,
) -> RecordedCheck:
    """Compare the document with the account; on a match record the ID check.

    Refusals (nothing unlocked): InvalidInput for a missing or malformed value
    (nothing counted), NotFound for a line out of ``scope``, TooManyAttempts
    while this agent is backing off or capped on the line (nothing compared),
    VerificationFailed ID_NO_MATCH (counted and audited, see the module doc).
    """
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    actor = f"staff:{staff_id}"
    with ctx.uow() as uow:
        # Out of scope first: another brand's line is 404 whatever was typed.
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        read = _read(document_type, name, birth_date, last_digits)
        policy = repo.get_brand(uow, line.brand_id).policy
        base = attempts.Limits.from_policy(policy)
        limits = dataclasses.replace(base, caps={**base.caps, "idcheck": MAX_NO_MATCHES})
        own_key = f"idcheck:{staff_id}:{line.id}"
        keys = [own_key, f"agent:{staff_id}"]
        attempts.guard(uow, keys, now, limits)
        subscriber = repo.get_subscriber(uow, line.subscriber_id)
        on_file = OnFile(subscriber.name, subscriber.birth_date, subscriber.id_document_number)
        result = compare(on_file, read)
        if not result.matched:
            attempts.record_failure(uow, keys, now, limits, actor=actor)
            uow.audit(
                at=now,
                actor=actor,
                action="identity_check.no_match",
                object_type="line",
                object_id=line.id,
                detail={
                    "document_type": document_type,
                    "compared": list(result.compared),
                    "failures": attempts.failures(uow, own_key, now, limits),
                },
            )
            uow.commit()
            raise VerificationFailed("the document does not match the account", code="ID_NO_MATCH")
        attempts.clear(uow, [own_key])
        recorded = add_identity_check(
            uow,
            ctx,
            staff_id=staff_id,
            line_id=line.id,
            document_type=document_type,
            last_digits=last_digits,
            now=now,
            compared=result.compared,
        )
        uow.commit()
        return recorded
