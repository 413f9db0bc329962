"""Comparing what an agent reads off an ID document with the account (issue 14).

Pure functions, no I/O. The agent types the holder's name, birth date and the
last digits of the document number as printed; the account's values are never
shown before the comparison, so the agent cannot simply copy them.

Names are compared after :func:`normalize_name`: case, accents and other
diacritics, apostrophes, hyphens and runs of spaces do not matter ("  ANNA-
Sofie  Sørensen" matches "Anna Sofie Sorensen"); the order of the parts does.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import unicodedata
from dataclasses import dataclass

# Letters NFKD leaves whole: spelled as a person without the key would type them.
_FOLD = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ð": "d", "þ": "th", "ł": "l", "đ": "d", "\u0131": "i"}
)
_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2013\u2014.,]+")
_APOSTROPHES = re.compile(r"['\u2019`]")
LAST_DIGITS_COUNT = 4


def normalize_name(raw: str) -> str:
    """Lower case, no diacritics, separators as single spaces, trimmed."""
    folded = raw.casefold().translate(_FOLD)
    decomposed = unicodedata.normalize("NFKD", folded)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", _APOSTROPHES.sub("", bare)).strip()


def parse_birth_date(raw: str) -> dt.date | None:
    """A date typed as 1985-04-12 (the browser's date field), 12.04.1985 or 12/04/1985
    (day first, as printed on European documents); None if it is none of these."""
    text = raw.strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def document_digits(number: str) -> str:
    """The digits of a document number, in order ("AB 12-34567" -> "1234567")."""
    return "".join(ch for ch in number if ch.isdigit())


@dataclass(frozen=True)
class OnFile:
    """The account's values (personal data: never logged, never shown before a match)."""

    name: str
    birth_date: str | None  # ISO 8601 date
    document_number: str | None


@dataclass(frozen=True)
class Read:
    """What the agent read off the document."""

    name: str
    birth_date: dt.date | None
    last_digits: str


@dataclass(frozen=True)
class Comparison:
    """``matched``: every value on file equals what was read. ``compared``: the
    fields that were on file and compared (names only, for the audit log)."""

    matched: bool
    compared: tuple[str, ...]


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def compare(on_file: OnFile, read: Read) -> Comparison:
    """Match only if the name and every other value on file agree. A value the
    account lacks (no birth date or document number on file) is not compared."""
    compared = ["name"]
    matched = _same(normalize_name(on_file.name), normalize_name(read.name))
    if on_file.birth_date:
        compared.append("birth_date")
        typed = read.birth_date.isoformat() if read.birth_date else ""
        matched = _same(on_file.birth_date, typed) and matched
    if on_file.document_number:
        compared.append("document_number")
        tail = document_digits(on_file.document_number)[-LAST_DIGITS_COUNT:]
        matched = _same(tail, read.last_digits) and matched
    return Comparison(matched, tuple(compared))
