"""Cheap, pure checks of one field of an onboarding row.

Each function takes the cell's text (already stripped, never empty) and
returns the normalised value, or raises :class:`FieldError` whose reason
never repeats the value (a cell may hold a secret).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import TypeVar

from resim.domain.identifiers import luhn_valid, normalize_msisdn
from resim.domain.numbering import e164_valid
from resim.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)


class FieldError(ValueError):
    """A cell that fails its rule; ``reason`` is safe to print and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_DIGITS = re.compile(r"[0-9]+")
_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,40}")
_BRAND = re.compile(r"[A-Za-z0-9._-]{1,40}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_KEY_HEX = re.compile(r"[0-9A-Fa-f]{32}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,63})+")
_PROFILE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# argon2id PHC string: $argon2id$v=19$m=65536,t=3,p=4$<salt b64>$<hash b64>
_ARGON2ID = re.compile(
    r"\$argon2id\$v=19\$m=[0-9]{1,8},t=[0-9]{1,4},p=[0-9]{1,3}"
    r"\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}"
)


def msisdn(value: str, region: str | None = None) -> str:
    """E.164; a number without ``+`` is read as a national number of ``region``."""
    fast = e164_valid(value)
    if fast is True:
        return value
    if fast is False:
        raise FieldError("not a valid phone number for its country (E.164: +4741234567)")
    try:
        return normalize_msisdn(value, default_region=region)
    except InvalidInput as exc:
        raise FieldError(exc.message) from None


def iccid(value: str) -> str:
    """18-20 digits starting 89 with a correct Luhn check digit (a trailing F pad is dropped)."""
    if value[-1:] in ("F", "f"):
        value = value[:-1]
    if not _DIGITS.fullmatch(value) or not 18 <= len(value) <= 20:
        raise FieldError("ICCID must be 18 to 20 digits")
    if not value.startswith("89"):
        raise FieldError("ICCID must start with 89")
    if not luhn_valid(value):
        raise FieldError("ICCID check digit (Luhn) is wrong")
    return value


def imsi(value: str) -> str:
    if not _DIGITS.fullmatch(value) or not 6 <= len(value) <= 15:
        raise FieldError("IMSI must be 6 to 15 digits (MCC, MNC, MSIN)")
    return value


def aware_time(value: str) -> dt.datetime:
    """ISO 8601 with a zone (``Z`` or ``+01:00``); a time without one is refused."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FieldError("not an ISO 8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise FieldError("time has no zone (write 2024-05-01T10:00:00+02:00 or ...Z)")
    return parsed.astimezone(dt.UTC)


def enum(cls: type[E], value: str) -> E:
    member = cls._value2member_map_.get(value)  # what cls(value) finds first, without its call
    if member is not None:
        return member  # type: ignore[return-value]
    try:
        return cls(value)
    except ValueError:
        raise FieldError("must be one of " + ", ".join(m.value for m in cls)) from None


def account_id(value: str) -> str:
    if not _ACCOUNT.fullmatch(value):
        raise FieldError("must be 1 to 40 of A-Z a-z 0-9 . _ -")
    return value


def brand_id(value: str) -> str:
    if not _BRAND.fullmatch(value):
        raise FieldError("must be 1 to 40 of A-Z a-z 0-9 . _ -")
    return value


def email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise FieldError("not an e-mail address")
    return value


def language(value: str) -> str:
    if len(value) > 16 or not _LANGUAGE.fullmatch(value):
        raise FieldError("not a language tag (such as nb, da, fr-CA)")
    return value


def argon2id_hash(value: str) -> str:
    """An argon2id PHC string, checked by shape only (it cannot be checked otherwise)."""
    if len(value) > 200 or not _ARGON2ID.fullmatch(value):
        raise FieldError("not an argon2id PHC string ($argon2id$v=19$m=..,t=..,p=..$salt$hash)")
    return value


def sim_key(value: str) -> str:
    """Ki or OPc: 32 hex digits, returned upper-case."""
    if not _KEY_HEX.fullmatch(value):
        raise FieldError("must be 32 hexadecimal digits (128 bits)")
    return value.upper()


def hostname(value: str) -> str:
    if len(value) > 253 or not _HOST.fullmatch(value):
        raise FieldError("not a host name")
    return value.lower()


def profile_type(value: str) -> str:
    if not _PROFILE.fullmatch(value):
        raise FieldError("must be 1 to 64 of A-Z a-z 0-9 . _ : -")
    return value


def text(value: str, limit: int = 400) -> str:
    if len(value) > limit:
        raise FieldError(f"longer than {limit} characters")
    return value
