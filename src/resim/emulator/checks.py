"""Input checks of the emulated SM-DP+: peer input in, SGP.22 refusals out.

Liberal where SGP.22 allows it (padded ICCIDs, empty optional fields), strict
where a wrong value could corrupt the state (EID and ICCID digits).
"""

from __future__ import annotations

import hmac

from resim.domain.identifiers import normalize_eid, normalize_iccid
from resim.emulator.ids import sha256_hex
from resim.emulator.model import PhoneRefusal, Profile, ProfileState, SmdpRefusal, sources_of
from resim.errors import InvalidInput


def opt(value: str | None) -> str | None:
    """Absent and empty optional fields mean the same."""
    return value.strip() if value and value.strip() else None


def iccid(raw: str) -> str:
    """The ICCID without its F pad, or 1.6/2.1."""
    try:
        return normalize_iccid(raw)
    except InvalidInput as exc:
        raise SmdpRefusal("1.6", "2.1", exc.message, subject_identifier="iccid") from None


def eid(raw: str | None) -> str | None:
    """The 32-digit EID, None when absent, or 1.6/2.1."""
    if raw is None:
        return None
    try:
        return normalize_eid(raw)
    except InvalidInput as exc:
        raise SmdpRefusal("1.6", "2.1", exc.message, subject_identifier="eid") from None


def phone_eid(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    try:
        return normalize_eid(raw)
    except InvalidInput as exc:
        raise PhoneRefusal("invalid_eid", exc.message) from None


def phone_may_download(
    p: Profile,
    matching_id: str,
    cancelled: bool,
    device_eid: str | None,
    confirmation_code: str | None,
) -> None:
    """Refuse with a plain reason when a device may not download ``p`` with this code.

    Order matters for the message: a cancelled or used code says so before any
    check of the device or the confirmation code.
    """
    if cancelled or p.matching_id != matching_id:
        raise PhoneRefusal("cancelled", "this activation code was cancelled by the operator")
    if p.state in (ProfileState.DOWNLOADED, ProfileState.INSTALLED, ProfileState.ERROR):
        raise PhoneRefusal("used", "this activation code was already used")
    if p.state is not ProfileState.RELEASED:
        raise PhoneRefusal("not_released", "the profile is not released for download yet")
    if p.eid and device_eid and p.eid != device_eid:
        raise PhoneRefusal("eid_mismatch", "the profile is bound to another device (EID)")
    if p.confirmation_code_sha256 is not None:
        if not confirmation_code:
            raise PhoneRefusal("confirmation_code_required", "a confirmation code is required")
        if not hmac.compare_digest(sha256_hex(confirmation_code), p.confirmation_code_sha256):
            raise PhoneRefusal("confirmation_code_wrong", "the confirmation code is wrong")


def wrong_state(p: Profile, function: str) -> SmdpRefusal:
    """8.2.1/3.5, naming the states ``function`` needs (from the transition table)."""
    allowed = ", ".join(sorted(s.value for s in sources_of(function)))
    return SmdpRefusal(
        "8.2.1",
        "3.5",
        f"profile is {p.state.value}; {function} needs {allowed}",
        subject_identifier="iccid",
    )


def iccid_of(value: object) -> str | None:
    """The ICCID a function returned (downloadOrder), for the call log."""
    return value if isinstance(value, str) else None


def iccid_hint(params: tuple[object, ...]) -> str | None:
    """The ICCID of a call for the call log: the first parameter when it is one."""
    first = params[0] if params else None
    if isinstance(first, str):
        try:
            return normalize_iccid(first)
        except InvalidInput:
            return None
    return None
