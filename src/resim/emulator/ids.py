"""Identifiers the emulated SM-DP+ makes up: ICCIDs for stock, MatchingIDs, hashes.

MatchingIDs come from :func:`resim.domain.activation.generate_matching_id`
(four groups of five characters over 0-9 A-Z, re-exported here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from resim.domain.activation import generate_matching_id
from resim.domain.identifiers import iccid_with_check_digit
from resim.errors import InvalidInput

# Accepted from peers: printable ASCII without space and '$' (the Activation Code
# separator), as resim.domain.activation reads peer codes; at most 64 characters.
MATCHING_ID_RE = re.compile(r"^[\x21-\x23\x25-\x7e]{1,64}$")


class UtcClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


__all__ = [
    "MATCHING_ID_RE",
    "UtcClock",
    "generate_matching_id",
    "make_iccids",
    "random_iccid_prefix",
    "sha256_hex",
]


def random_iccid_prefix() -> str:
    """``8999`` + 5 random digits: a restarted emulator does not reissue old ICCIDs."""
    return "8999" + f"{secrets.randbelow(10**5):05d}"


def make_iccids(count: int, *, prefix: str, start: int = 0, length: int = 19) -> list[str]:
    """``count`` valid ICCIDs ``prefix + zero-padded counter + Luhn`` of ``length`` digits.

    The default length 19 makes every ICCID travel padded with ``F`` on ES2+.
    """
    width = length - 1 - len(prefix)
    if width < 1 or not prefix.startswith("89") or not 18 <= length <= 20:
        raise InvalidInput("ICCID prefix must start with 89 and leave room for a counter")
    if start + count > 10**width:
        raise InvalidInput("ICCID counter would overflow the prefix")
    return [iccid_with_check_digit(f"{prefix}{n:0{width}d}") for n in range(start, start + count)]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
