"""The demo-data generator: sizes, determinism, validity, consistent history, flat memory."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import phonenumbers
import pytest
from argon2 import PasswordHasher

from resim.demo.demo_catalog import (
    COUNTRIES,
    NUMBER_BLOCKS,
    iccid_for,
    imsi_for,
    msisdn_for,
)
from resim.demo.demo_data import DEMO_BRANDS
from resim.demo.demo_generator import generate
from resim.domain.identifiers import luhn_check_digit, normalize_iccid
from resim.errors import InvalidInput
from resim.services.onboarding import formats

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MOBILE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
BRAND_COUNTRY = {b.spec.id: b.spec.country for b in DEMO_BRANDS}


def rows(directory: Path, kind: str, ext: str = "csv") -> list[dict[str, str]]:
    return [r for _, r in formats.read_rows(directory / f"{kind}.{ext}")]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, lines=2000, seed=5, sim_changes=700, locks_percent=5, stock_per_brand=10)
    return out


class TestSizes:
    def test_exact_counts_for_the_arguments(self, tmp_path: Path) -> None:
        report = generate(tmp_path, lines=1000, brands="dk,no", sim_changes=250, stock_per_brand=7)
        assert report.counts["lines"] == 1000 == len(rows(tmp_path, "lines"))
        assert report.counts["sim_changes"] == 250 == len(rows(tmp_path, "sim_changes"))
        assert report.counts["sims"] == 1000 + 250  # one retired SIM per change
        assert report.counts["stock"] == 14 and report.counts["brands"] == 2
        assert {r["brand_id"] for r in rows(tmp_path, "lines")} == {"nordlys-dk", "fjordnett-no"}
        assert len(rows(tmp_path, "subscribers")) == report.counts["subscribers"] < 1000

    def test_three_changes_a_line_is_the_most(self, tmp_path: Path) -> None:
        generate(tmp_path / "max", lines=50, sim_changes=150)
        per_line = defaultdict(int)
        for r in rows(tmp_path / "max", "sim_changes"):
            per_line[r["msisdn"]] += 1
        assert set(per_line.values()) == {3} and len(per_line) == 50
        with pytest.raises(InvalidInput):
            generate(tmp_path / "over", lines=50, sim_changes=151)
        with pytest.raises(InvalidInput):
            generate(tmp_path / "where", lines=5, brands="se")


class TestDeterminism:
    def test_same_seed_same_bytes_other_seed_other_data(self, tmp_path: Path) -> None:
        for name, seed in (("a", 3), ("b", 3), ("c", 4)):
            generate(tmp_path / name, lines=300, seed=seed, with_keys=True)
        for kind in formats.TABULAR_KINDS:
            a = (tmp_path / "a" / f"{kind}.csv").read_bytes()
            assert a == (tmp_path / "b" / f"{kind}.csv").read_bytes(), kind
        a_lines = (tmp_path / "a" / "lines.csv").read_bytes()
        assert a_lines != (tmp_path / "c" / "lines.csv").read_bytes()

    def test_json_lines_hold_the_same_rows(self, tmp_path: Path) -> None:
        generate(tmp_path / "csv", lines=200, seed=2)
        generate(tmp_path / "jsonl", lines=200, seed=2, fmt="jsonl")
        for kind in formats.TABULAR_KINDS:
            as_csv = [{k: v for k, v in r.items() if v} for r in rows(tmp_path / "csv", kind)]
            assert as_csv == rows(tmp_path / "jsonl", kind, "jsonl"), kind


class TestValidity:
    def test_every_number_block_holds_valid_mobile_numbers_of_its_country(self) -> None:
        rng = random.Random(1)
        for country, (prefixes, digits) in NUMBER_BLOCKS.items():
            half = len(prefixes) * 10**digits // 2
            for alternate in (False, True):
                for index in [0, half - 1, *(rng.randrange(half) for _ in range(150))]:
                    number = phonenumbers.parse(msisdn_for(country, index, alternate=alternate))
                    assert phonenumbers.is_valid_number(number), (country, index)
                    assert phonenumbers.region_code_for_number(number) == country
                    assert phonenumbers.number_type(number) in MOBILE  # DK: fixed line or mobile

    def test_numbers_are_distinct_for_distinct_indexes(self) -> None:
        for country in NUMBER_BLOCKS:
            drawn = [msisdn_for(country, i, seed=9) for i in range(20_000)]
            assert len(set(drawn)) == len(drawn)
            assert not set(drawn) & {msisdn_for(country, i, alternate=True) for i in range(2000)}

    def test_iccid_check_digit_from_tables_is_luhn(self) -> None:
        rng = random.Random(2)
        for brand in DEMO_BRANDS:
            for kind in (1, 2, 3):
                for n in [0, 9, 10_000, 10**11 - 1, *(rng.randrange(10**11) for _ in range(300))]:
                    iccid = iccid_for(brand, kind, n)
                    assert len(iccid) == 19 and iccid.startswith(brand.iccid_issuer)
                    assert iccid[-1] == luhn_check_digit(iccid[:-1])
                    assert normalize_iccid(iccid) == iccid
            assert imsi_for(brand, 1, 42).startswith(brand.mcc_mnc)

    def test_files_hold_valid_identifiers_and_resolving_references(self, data: Path) -> None:
        subscribers = {r["subscriber_id"]: r for r in rows(data, "subscribers")}
        sims = {r["iccid"]: r for r in rows(data, "sims") + rows(data, "stock")}
        for iccid, sim in sims.items():
            assert normalize_iccid(iccid) == iccid
            mcc_mnc = next(b.mcc_mnc for b in DEMO_BRANDS if b.spec.id == sim["brand_id"])
            assert len(sim["imsi"]) == 15 and sim["imsi"].startswith(mcc_mnc)
        assert len({s["imsi"] for s in sims.values()}) == len(sims)
        lines = rows(data, "lines")
        assert len({r["msisdn"] for r in lines}) == len(lines)
        for line in lines[::20]:
            number = phonenumbers.parse(line["msisdn"])
            assert phonenumbers.is_valid_number(number)
            assert phonenumbers.region_code_for_number(number) == BRAND_COUNTRY[line["brand_id"]]
        for line in lines:
            assert subscribers[line["subscriber_id"]]["brand_id"] == line["brand_id"]
            assert sims[line["iccid"]]["state"] == line["status"]  # active or suspended
            assert sims[line["iccid"]]["brand_id"] == line["brand_id"]
        for sub in subscribers.values():
            assert formats.SUBSCRIBER_ID.fullmatch(sub["subscriber_id"])
            assert formats.ARGON2ID_PHC.fullmatch(sub["pin_hash"])
            assert sub["email"].endswith(".example") and sub["email"].isascii()
            assert sub["language"] in {"da", "nb", "it", "fr", "en"}
            if sub["alt_msisdn"]:
                assert phonenumbers.is_valid_number(phonenumbers.parse(sub["alt_msisdn"]))

    def test_the_documented_pin_matches_every_hash(self, tmp_path: Path) -> None:
        report = generate(tmp_path, lines=20, seed=8)
        hashes = {r["pin_hash"] for r in rows(tmp_path, "subscribers")}
        assert len(hashes) == 1 and PasswordHasher().verify(hashes.pop(), report.pin)
        passwords = {r["password_hash"] for r in rows(tmp_path, "subscribers")} - {""}
        assert all(PasswordHasher().verify(h, report.password) for h in passwords)

    def test_names_and_addresses_need_no_csv_escaping_beyond_quotes(self) -> None:
        # The generator writes CSV cells itself (fast path): only quotes around
        # addresses and hashes; nothing else may hold a comma, quote or newline.
        for c in COUNTRIES.values():
            for text in (*c.first_names, *c.last_names, *c.streets, *(p + x for p, x in c.cities)):
                assert not set(text) & {",", '"', "\n", "\r"}


class TestHistory:
    def test_change_chains_end_at_the_current_sim_and_old_sims_are_retired(
        self, data: Path
    ) -> None:
        lines = {r["msisdn"]: r for r in rows(data, "lines")}
        sims = {r["iccid"]: r for r in rows(data, "sims")}
        chains: dict[str, list[dict[str, str]]] = defaultdict(list)
        for change in rows(data, "sim_changes"):
            chains[change["msisdn"]].append(change)
        assert 0 < len(chains) < len(lines)
        for msisdn, changes in chains.items():
            changes.sort(key=lambda c: formats.parse_time(c["changed_at"]))
            line = lines[msisdn]
            created = formats.parse_time(line["created_at"])
            assert 1 <= len(changes) <= 3
            assert changes[-1]["new_iccid"] == line["iccid"]
            for before, after in itertools.pairwise(changes):
                assert before["new_iccid"] == after["old_iccid"]
            for change in changes:
                at = formats.parse_time(change["changed_at"])
                assert created < at < NOW
                assert sims[change["old_iccid"]]["state"] == "retired"
                assert sims[change["old_iccid"]]["brand_id"] == line["brand_id"]
        used = {c["old_iccid"] for cs in chains.values() for c in cs}
        assert used == {i for i, s in sims.items() if s["state"] == "retired"}

    def test_times_carry_the_brands_zone_and_locks_follow_the_history(self, data: Path) -> None:
        last_event = {r["msisdn"]: formats.parse_time(r["created_at"]) for r in rows(data, "lines")}
        for change in rows(data, "sim_changes"):
            at = formats.parse_time(change["changed_at"])
            assert at.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
            last_event[change["msisdn"]] = max(last_event[change["msisdn"]], at)
        locks = rows(data, "locks")
        assert 40 <= len(locks) <= 170  # 5% of 2000
        for lock in locks:
            assert last_event[lock["msisdn"]] <= formats.parse_time(lock["locked_at"]) < NOW


@pytest.mark.slow
def test_memory_stays_flat_from_20k_to_200k_lines(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        from resim.demo.demo_generator import generate
        generate(Path(sys.argv[1]), lines=int(sys.argv[2]), seed=1)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    peaks = {}
    for n in (20_000, 200_000):
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / str(n)), str(n)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ},
        )
        peaks[n] = int(done.stdout.split()[-1])  # KiB
    assert peaks[200_000] - peaks[20_000] < 10 * 1024, peaks  # under 10 MiB for 10x the rows


def test_the_command_writes_the_files_and_prints_the_demo_pin(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from resim.entrypoints.cli import app

    args = ["demo-data", "--lines", "40", "--out", str(tmp_path), "--brands", "it", "--seed", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "lines: 40 rows" in result.output and "PIN:" in result.output
    assert {p.name for p in tmp_path.iterdir()} == {
        "brands.toml",
        *(f"{k}.csv" for k in formats.TABULAR_KINDS),
    }
    bad = CliRunner().invoke(
        app, ["demo-data", "--lines", "4", "--out", str(tmp_path), "--brands", "xx"]
    )
    assert bad.exit_code == 1 and "DEMO_BRAND" in bad.output
