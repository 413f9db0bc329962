"""The demo-data catalogue: per-country names and addresses, number blocks, identifiers.

Pure functions of an index, so the generator needs no memory of what it drew:
``msisdn_for`` is a bijection onto numbers that libphonenumber accepts as
valid mobile numbers of the country (the tests check samples of every block);
``iccid_for`` gives the brand's issuer prefix and a correct Luhn digit;
``imsi_for`` the country's MCC and the demo brand's fictional MNC.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from resim.demo.demo_data import DEMO_BRANDS, DemoBrand
from resim.errors import InvalidInput

# The tests draw samples from every block and check libphonenumber's verdict.
NUMBER_BLOCKS: dict[str, tuple[tuple[str, ...], int]] = {
    "DK": (("+4526", "+4527", "+4528"), 6),
    "NO": (("+479",), 7),
    "IT": (("+3932", "+3933", "+3934", "+3935"), 8),
    "FR": (("+3360", "+3361", "+3362", "+3364", "+3365", "+3366", "+3367", "+3368"), 7),
}


@dataclass(frozen=True)
class Country:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]  # (postcode, city)
    number_first: bool  # "12 rue ..." rather than "Vestergade 12"


COUNTRIES = {
    "DK": Country(
        ("Mette", "Lars", "Sofie", "Jens", "Freja", "Mads", "Ida", "Søren", "Anne", "Rasmus"),
        (
            "Jensen",
            "Nielsen",
            "Hansen",
            "Pedersen",
            "Andersen",
            "Christensen",
            "Larsen",
            "Sørensen",
        ),
        ("Vestergade", "Nørregade", "Algade", "Strandvejen", "Skovvej", "Kirkevej"),
        (("1050", "København K"), ("8000", "Aarhus C"), ("5000", "Odense C"), ("9000", "Aalborg")),
        False,
    ),
    "NO": Country(
        ("Ingrid", "Ola", "Nora", "Henrik", "Sigrid", "Jakob", "Emma", "Lars", "Kari", "Magnus"),
        ("Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg"),
        ("Storgata", "Kirkegata", "Parkveien", "Skolegata", "Fjordveien", "Bakkeveien"),
        (("0150", "Oslo"), ("5003", "Bergen"), ("7011", "Trondheim"), ("4006", "Stavanger")),
        False,
    ),
    "IT": Country(
        ("Giulia", "Marco", "Chiara", "Luca", "Sofia", "Matteo", "Francesca", "Andrea", "Sara"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"),
        ("Via Roma", "Via Garibaldi", "Corso Italia", "Via Dante", "Via Verdi", "Via Mazzini"),
        (("00184", "Roma"), ("20121", "Milano"), ("80134", "Napoli"), ("10121", "Torino")),
        False,
    ),
    "FR": Country(
        ("Camille", "Louis", "Chloé", "Hugo", "Léa", "Gabriel", "Manon", "Jules", "Inès"),
        ("Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Simon", "Michel", "Lefèvre"),
        ("rue de la Paix", "avenue Victor Hugo", "rue Pasteur", "boulevard Voltaire"),
        (("75011", "Paris"), ("69002", "Lyon"), ("13001", "Marseille"), ("31000", "Toulouse")),
        True,
    ),
}
_ASCII = str.maketrans({"ø": "o", "æ": "ae", "å": "a", "é": "e", "è": "e", "ç": "c"})


def msisdn_for(country: str, index: int, *, seed: int = 0, alternate: bool = False) -> str:
    """The ``index``-th number of a country's blocks: distinct for distinct indexes.

    Lines use the first half of the blocks, alternate numbers the second, so a
    subscriber's alternate number is never someone's line. An affine bijection
    scatters consecutive indexes across the range.
    """
    prefixes, digits = NUMBER_BLOCKS[country]
    half = len(prefixes) * 10**digits // 2
    if index >= half:
        raise InvalidInput(f"more than {half} lines for one {country} brand", code="DEMO_SIZE")
    k = (_multiplier(half) * index + seed * 2_654_435_761) % half + (half if alternate else 0)
    block, rest = divmod(k, 10**digits)
    return f"{prefixes[block]}{rest:0{digits}d}"


@functools.cache
def _multiplier(size: int) -> int:
    # Near size / golden ratio and coprime with size: a bijection of [0, size)
    # that sends neighbouring indexes far apart.
    a = int(size * 0.6180339887) | 1
    while math.gcd(a, size) != 1:
        a += 2
    return a


def _luhn_weights(value: int) -> int:
    # The Luhn sum of a 4-digit group whose last digit is doubled.
    total = 0
    for i, ch in enumerate(reversed(f"{value:04d}")):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total


_GROUP_SUM = tuple(_luhn_weights(v) for v in range(10_000))


@functools.cache
def _prefix_sum(prefix: str) -> int:
    # The prefix's share of the Luhn sum; the 11 counter digits sit at positions
    # 0-10 from the right of the payload, so the prefix starts at position 11.
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch) * (2 if (i + 11) % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total


def iccid_for(brand: DemoBrand, kind: int, n: int) -> str:
    """19 digits: issuer (89 + country + issuer), a kind digit, n (11 digits), Luhn.

    The Luhn digit comes from table look-ups (a million ICCIDs a run); the
    tests check it against ``luhn_check_digit``.
    """
    prefix = f"{brand.iccid_issuer}{kind}"
    total = (
        _prefix_sum(prefix)
        + _GROUP_SUM[n % 10_000]
        + _GROUP_SUM[n // 10_000 % 10_000]
        + _GROUP_SUM[n // 100_000_000]
    )
    return f"{prefix}{n:011d}{(10 - total % 10) % 10}"


def imsi_for(brand: DemoBrand, kind: int, n: int) -> str:
    return f"{brand.mcc_mnc}{kind}{n:09d}"


def select_brands(codes: str | None) -> list[DemoBrand]:
    """``dk,no`` -> those demo brands, in the demo's order; None or empty -> all four."""
    if not codes:
        return list(DEMO_BRANDS)
    wanted = {c.strip().upper() for c in codes.split(",") if c.strip()}
    unknown = wanted - {b.spec.country for b in DEMO_BRANDS}
    if unknown:
        raise InvalidInput(f"no demo brand for {', '.join(sorted(unknown))}", code="DEMO_BRAND")
    return [b for b in DEMO_BRANDS if b.spec.country in wanted]


def ascii_mail(first: str, last: str) -> str:
    """``Søren``, ``Lefèvre`` -> ``soren.lefevre``: the local part of a demo e-mail."""
    return f"{first}.{last}".lower().translate(_ASCII)
