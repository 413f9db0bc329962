"""The operator's ranges file (Geolocator port): longest prefix wins, bad files stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from resim.adapters.geo.ranges import CidrCountryFile, NoGeolocator, parse_ranges
from resim.bootstrap import build_geolocator
from resim.errors import InvalidInput
from resim.settings import Settings

RANGES = """\
# the operator's access network and two roaming partners
network,country
10.0.0.0/8,DK
10.1.0.0/16,SE
10.1.2.0/24,NO
10.2.0.0/16,FI
2001:db8::/32,DK
2001:db8:5::/48,de
0.0.0.0/1,IS
"""


@pytest.fixture
def geo(tmp_path: Path) -> CidrCountryFile:
    path = tmp_path / "ranges.csv"
    path.write_text(RANGES)
    return CidrCountryFile.from_file(path)


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("10.0.0.1", "DK"),
        ("10.1.0.5", "SE"),  # nested: the /16 inside the /8
        ("10.1.2.3", "NO"),  # nested twice
        ("10.1.3.0", "SE"),  # after the /24, back in its parent
        ("10.2.255.255", "FI"),
        ("10.3.0.0", "DK"),  # after every child, back in the /8
        ("9.255.255.255", "IS"),  # in the /1, before the /8
        ("11.0.0.0", "IS"),
        ("128.0.0.1", None),
        ("2001:db8::1", "DK"),
        ("2001:db8:5::9", "DE"),  # countries are upper-cased
        ("2001:db9::1", None),
        ("::ffff:10.1.2.3", "NO"),  # an IPv4-mapped IPv6 address is its IPv4 address
        ("not an address", None),
        ("", None),
    ],
)
def test_longest_prefix_wins(geo: CidrCountryFile, address: str, country: str | None) -> None:
    assert geo.country_of(address) == country


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("10.0.0.0/8\n", "line 1: expected <CIDR>,<country code>"),
        ("10.0.0.1/8,DK\n", "host bits must be zero"),
        ("# c\n10.0.0.0/8,Denmark\n", "line 2: the country must be"),
        ("10.0.0.0/8,DK\n10.0.0.0/8,SE\n", "listed twice"),
        ("banana,DK\n", "not a network"),
    ],
)
def test_a_bad_line_is_named(text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_ranges(text, source="ranges.csv")
    assert words in err.value.message


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, secret_keys=SecretStr(""), **kw)  # type: ignore[arg-type]


def test_no_file_configured_means_every_country_is_unknown(tmp_path: Path) -> None:
    geo = build_geolocator(_settings(tmp_path))
    assert isinstance(geo, NoGeolocator) and geo.country_of("10.0.0.1") is None


def test_a_configured_file_is_used_and_a_broken_one_stops_start_up(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(RANGES)
    assert build_geolocator(_settings(tmp_path, geo_ranges_file=good)).country_of("10.1.2.3") == (
        "NO"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("10.0.0.0/8,DK\nnonsense\n")
    with pytest.raises(InvalidInput, match="line 2"):
        build_geolocator(_settings(tmp_path, geo_ranges_file=bad))
    with pytest.raises(InvalidInput, match="cannot be read"):
        build_geolocator(_settings(tmp_path, geo_ranges_file=tmp_path / "absent.csv"))
