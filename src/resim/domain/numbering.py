"""Fast E.164 validity, with exactly libphonenumber's rules, for bulk imports.

``phonenumbers.parse`` + ``is_valid_number`` costs about 60 us a number, which
alone would take a minute for a million lines. A number already written in
E.164 (``+`` and digits) needs no parsing: its country calling code is a
prefix, and validity is "the national number matches the general pattern and
one number-type pattern of a region of that code, each with its possible
lengths" (``phonenumberutil._number_type_helper``). This module compiles those
patterns once per calling code into one regular expression, and answers
``None`` (not sure) for anything else, so callers fall back to the full
library (:func:`resim.domain.identifiers.normalize_msisdn`).

Pure; the compiled patterns are cached per process.
"""

from __future__ import annotations

import re
from functools import cache

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

_E164 = re.compile(r"\+[1-9][0-9]{5,14}")
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def _desc_regex(desc: object, fallback_lengths: list[int]) -> str | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if pattern is None:
        return None
    lengths = list(getattr(desc, "possible_length", None) or fallback_lengths)
    if lengths == [-1]:
        return None
    ahead = "|".join(f"[0-9]{{{n}}}$" for n in sorted(set(lengths)))
    return f"(?=(?:{ahead}))(?:{pattern})$"


@cache
def _compiled(calling_code: int) -> tuple[re.Pattern[str], re.Pattern[str] | None] | None:
    """(validity pattern, national prefix pattern) for a calling code, or None."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(calling_code)
    if not regions:
        return None
    alternatives: list[str] = []
    prefixes: list[str] = []
    for region in regions:
        md = PhoneMetadata.metadata_for_region_or_calling_code(calling_code, region)
        if md is None or md.general_desc is None:
            return None  # unusual metadata: let the library decide
        # The library strips a national prefix even after "+CC" (``+33 0...``):
        # such numbers are left to it.
        for prefix in (md.national_prefix_for_parsing, md.national_prefix):
            if prefix:
                prefixes.append(f"(?:{prefix})")
        general_lengths = list(md.general_desc.possible_length or [])
        general = _desc_regex(md.general_desc, general_lengths)
        if general is None:
            continue
        types = [r for r in (_desc_regex(getattr(md, t), general_lengths) for t in _TYPES) if r]
        if types:
            alternatives.append(f"(?={general})(?:{'|'.join(types)})")
    if not alternatives:
        return None
    national = re.compile("|".join(prefixes)) if prefixes else None
    return re.compile("|".join(f"(?:{a})" for a in alternatives)), national


def e164_valid(value: str) -> bool | None:
    """True/False when ``value`` is in E.164 form (``+4741234567``); None when unsure.

    Agrees with ``phonenumbers.is_valid_number(phonenumbers.parse(value))`` on
    E.164 input (tested against it on random numbers).
    """
    if not _E164.fullmatch(value):
        return None
    digits = value[1:]
    for n in (1, 2, 3):
        code = int(digits[:n])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            compiled = _compiled(code)
            if compiled is None:
                return None
            valid, national = compiled
            rest = digits[n:]
            if national is not None and national.match(rest):
                return None
            return valid.match(rest) is not None
    return False
