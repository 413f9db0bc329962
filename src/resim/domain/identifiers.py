"""Identifiers of the mobile world, validated: MSISDN (E.164), ICCID, IMSI, EID.

Pure functions; errors are :class:`resim.errors.InvalidInput` with a message
that names the field but never echoes more than the caller sent.
"""

from __future__ import annotations

import re

import phonenumbers

from resim.errors import InvalidInput

_DIGITS = re.compile(r"^[0-9]+$")


def luhn_check_digit(payload: str) -> str:
    """The Luhn (mod 10) check digit for a string of digits (ITU-T E.118 for ICCIDs)."""
    if not _DIGITS.match(payload):
        raise InvalidInput("Luhn payload must be digits only")
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:  # the digit next to the check digit is doubled
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")  # 2d, minus 9 when over 9


def luhn_valid(number: str) -> bool:
    """Whether the last digit of ``number`` (digits only) is its Luhn check digit.

    The same rule as :func:`luhn_check_digit`, in a few C-level operations:
    the bulk importer checks millions of ICCIDs.
    """
    if not number or not _DIGITS.match(number):
        return False
    raw = number.encode("ascii")
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)
    return total % 10 == 0


def iccid_with_check_digit(payload: str) -> str:
    """Append the Luhn digit: ``payload`` of 17-19 digits gives an 18-20 digit ICCID."""
    return payload + luhn_check_digit(payload)


def normalize_iccid(raw: str) -> str:
    """Validate an ICCID and return it without the ``F`` pad (ES2+ sends 19 digits + F).

    An ICCID is 18 to 20 digits starting with 89 (telecom industry) whose last
    digit is the Luhn check digit over the others.
    """
    value = raw.strip().upper()
    if value.endswith("F"):
        value = value[:-1]
    if not _DIGITS.match(value) or not 18 <= len(value) <= 20:
        raise InvalidInput("ICCID must be 18 to 20 digits")
    if not value.startswith("89"):
        raise InvalidInput("ICCID must start with 89")
    if luhn_check_digit(value[:-1]) != value[-1]:
        raise InvalidInput("ICCID check digit is wrong")
    return value


def normalize_imsi(raw: str) -> str:
    """An IMSI is 6 to 15 digits (MCC 3, MNC 2-3, MSIN); usually exactly 15."""
    value = raw.strip()
    if not _DIGITS.match(value) or not 6 <= len(value) <= 15:
        raise InvalidInput("IMSI must be 6 to 15 digits")
    return value


def normalize_eid(raw: str) -> str:
    """An EID is exactly 32 digits (SGP.22 / SGP.29)."""
    value = raw.strip()
    if not _DIGITS.match(value) or len(value) != 32:
        raise InvalidInput("EID must be exactly 32 digits")
    return value


def normalize_msisdn(raw: str, *, default_region: str | None = None) -> str:
    """Parse a phone number and return it in E.164 (``+4520123456``).

    Numbers without ``+`` need ``default_region`` (ISO 3166 alpha-2). The number
    must be valid for its region according to libphonenumber's metadata.
    """
    try:
        parsed = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(
            "phone number could not be parsed; use E.164 such as +4520123456"
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput("phone number is not a valid number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def msisdn_region(msisdn: str) -> str | None:
    """ISO country code of an E.164 number, or None when unknown."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(msisdn, None))


def mask_msisdn(msisdn: str) -> str:
    """``+4520123456`` -> ``+45******56``: for logs and redacted views."""
    if len(msisdn) <= 5:
        return "*" * len(msisdn)
    return msisdn[:3] + "*" * (len(msisdn) - 5) + msisdn[-2:]


def mask_postal_address(address: str) -> str:
    """ "Vestergade 12, 1050 København K" -> "V********* 1*, 1*** K******** K".

    The first character of each word and the punctuation stay, so the customer
    recognises their own address without a stranger learning it.
    """
    words = []
    for word in address.split():
        core = word.rstrip(",.;")
        tail = word[len(core) :]
        words.append((core[:1] + "*" * (len(core) - 1) if core else "") + tail)
    return " ".join(words)
