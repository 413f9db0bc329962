"""The Geolocator port on a CSV file of address ranges (the operator's own data).

Format: one range per line, ``<CIDR>,<ISO 3166-1 alpha-2>``, IPv4 or IPv6;
blank lines and lines starting with ``#`` are skipped, and so is a first line
``network,country`` (a header). For example::

    # ranges of our own access network and of known roaming partners
    network,country
    198.51.100.0/24,DK
    2001:db8:45::/48,DK
    203.0.113.0/25,SE

When ranges overlap, the most specific (longest prefix) wins. The file is read
once, when the adapter is built (start-up); a file that cannot be read or has a
bad line stops start-up with the line number, so a typo is never silently an
unknown country. resim downloads no geolocation database: where no file is
configured, :class:`NoGeolocator` answers "unknown" for every address and the
brand's ``missing_signal`` policy decides (docs/security.md).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resim.errors import InvalidInput

if TYPE_CHECKING:
    from resim.services.ports import Geolocator

_COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_BYTES = 64 * 1024 * 1024

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class NoGeolocator:
    """No geolocation data: every address is of unknown country."""

    def country_of(self, address: str) -> str | None:
        return None


@dataclass(frozen=True)
class _Table:
    """Disjoint segments (first, last, country) of one IP version, sorted: a binary search."""

    starts: list[int]
    segments: list[tuple[int, int, str]]

    def lookup(self, value: int) -> str | None:
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and self.segments[i][1] >= value:
            return self.segments[i][2]
        return None


class CidrCountryFile:
    """Address -> country from the operator's CSV of ranges (see the module docstring)."""

    def __init__(self, ranges: list[tuple[IpNetwork, str]]) -> None:
        self._tables = {4: _build(ranges, 4), 6: _build(ranges, 6)}
        self.size = len(ranges)

    @classmethod
    def from_file(cls, path: Path) -> CidrCountryFile:
        try:
            if path.stat().st_size > MAX_BYTES:
                raise InvalidInput(f"geolocation file {path} is larger than {MAX_BYTES} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"geolocation file {path} cannot be read ({type(exc).__name__})"
            ) from None
        return cls(parse_ranges(text, source=str(path)))

    def country_of(self, address: str) -> str | None:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return self._tables[ip.version].lookup(int(ip))


def parse_ranges(text: str, *, source: str = "geolocation file") -> list[tuple[IpNetwork, str]]:
    """The (network, country) rows of a ranges CSV; InvalidInput names the first bad line."""
    out: list[tuple[IpNetwork, str]] = []
    seen: set[IpNetwork] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not out and line.replace(" ", "").lower() == "network,country":
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            raise InvalidInput(f"{source} line {number}: expected <CIDR>,<country code>")
        cidr, country = parts[0], parts[1].upper()
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            raise InvalidInput(
                f"{source} line {number}: {cidr[:60]!r} is not a network in CIDR notation"
                " (host bits must be zero)"
            ) from None
        if not _COUNTRY.match(country):
            raise InvalidInput(
                f"{source} line {number}: the country must be a two-letter ISO 3166-1 code"
            )
        if network in seen:
            raise InvalidInput(f"{source} line {number}: {network} is listed twice")
        seen.add(network)
        out.append((network, country))
    return out


def _build(ranges: list[tuple[IpNetwork, str]], version: int) -> _Table:
    """Flatten nested CIDR ranges into disjoint segments, the most specific range winning.

    CIDR blocks are either disjoint or nested, so a sweep with a stack of the
    blocks that contain the current position does it: sorted by start, wider
    first, each block cuts its parent's segment at its own start, and the
    parent resumes after the block ends.
    """
    blocks = sorted(
        ((int(n.network_address), int(n.broadcast_address), c) for n, c in ranges
         if n.version == version),
        key=lambda b: (b[0], -b[1]),
    )  # fmt: skip
    segments: list[tuple[int, int, str]] = []
    stack: list[tuple[int, int, str]] = []
    cursor = 0

    def emit(upto: int, country: str) -> None:
        nonlocal cursor
        if cursor <= upto:
            segments.append((cursor, upto, country))
        cursor = max(cursor, upto + 1)

    for first, last, country in blocks:
        while stack and stack[-1][1] < first:
            _, top_last, top_country = stack.pop()
            emit(top_last, top_country)
        if stack:
            emit(first - 1, stack[-1][2])
        stack.append((first, last, country))
        cursor = first
    while stack:
        _, top_last, top_country = stack.pop()
        emit(top_last, top_country)
    return _Table([s[0] for s in segments], segments)


if TYPE_CHECKING:

    def _conforms(a: CidrCountryFile, b: NoGeolocator) -> tuple[Geolocator, Geolocator]:
        return a, b
