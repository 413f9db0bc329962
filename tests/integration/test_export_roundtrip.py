"""``resim export``: generated data -> import -> export -> import -> export, lossless.

On SQLite and PostgreSQL. The first export must say what the generator wrote
(same rows, times as the same instants); the second, from a fresh database
loaded with the first export, must be byte-identical to it.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from onboarding_support import import_dataset
from typer.testing import CliRunner

from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.mail.fake import FakeMailer
from resim.bootstrap import build_context
from resim.demo.demo_generator import generate
from resim.entrypoints.cli import app
from resim.services.context import FrozenClock, ServiceContext
from resim.services.onboarding import formats, import_dir
from resim.services.onboarding.onboarding_export import export_all, export_kind
from resim.settings import Settings
from testdb import drop_pg_database, make_pg_database

pytestmark = pytest.mark.integration
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="


def make_context(db_url: str, tmp_path: Path) -> ServiceContext:
    upgrade(db_url)
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    return build_context(settings, mailer=FakeMailer(), clock=FrozenClock())


@pytest.fixture
def second_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same back end as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    url, name = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate(out, lines=500, seed=11, stock_per_brand=15, locks_percent=10, with_keys=True)
    return out


def normalized(directory: Path, kind: str) -> list[dict[str, Any]]:
    """A file's rows, sorted by key, absent values dropped, times as UTC instants."""
    path = next(p for p in directory.iterdir() if p.stem == kind and p.suffix != ".tmp")
    rows = []
    for _, row in formats.read_rows(path):
        clean: dict[str, Any] = {k: v for k, v in row.items() if v}
        for k in formats.TIME_COLUMNS & clean.keys():
            clean[k] = formats.parse_time(clean[k]).astimezone(dt.UTC)
        rows.append(clean)
    return sorted(rows, key=lambda r: tuple(str(r.get(k)) for k in formats.KEYS[kind]))


class TestRoundTrip:
    def test_generated_data_survives_import_export_import_export(
        self, db_url: str, second_db_url: str, tmp_path: Path, dataset: Path
    ) -> None:
        first = make_context(db_url, tmp_path)
        import_dataset(first, dataset)
        report = export_all(first, tmp_path / "export1", include_keys=True)
        assert report.counts["lines"] == 500
        for kind in formats.TABULAR_KINDS:
            assert normalized(tmp_path / "export1", kind) == normalized(dataset, kind), kind
        with (dataset / "brands.toml").open("rb") as fh:
            generated_brands = tomllib.load(fh)
        with (tmp_path / "export1" / "brands.toml").open("rb") as fh:
            assert tomllib.load(fh) == generated_brands

        second = make_context(second_db_url, tmp_path)
        import_dataset(second, tmp_path / "export1")
        again = import_dir(second, tmp_path / "export1")  # idempotent: nothing new
        assert [(r.kind, r.written, r.bad) for r in again] == [
            (kind, 0, 0) for kind in formats.KINDS
        ]
        export_all(second, tmp_path / "export2", include_keys=True)
        names = sorted(p.name for p in (tmp_path / "export1").iterdir())
        assert names == sorted(p.name for p in (tmp_path / "export2").iterdir())
        assert len(names) == len(formats.KINDS)
        match, mismatch, errors = filecmp.cmpfiles(
            tmp_path / "export1", tmp_path / "export2", names, shallow=False
        )
        assert (mismatch, errors) == ([], []) and len(match) == len(formats.KINDS)

    def test_json_lines_and_yaml_say_the_same_as_csv_and_toml(
        self, db_url: str, tmp_path: Path, dataset: Path
    ) -> None:
        ctx = make_context(db_url, tmp_path)
        import_dataset(ctx, dataset)
        export_all(ctx, tmp_path / "csv")
        export_all(ctx, tmp_path / "jsonl", fmt="jsonl")
        for kind in formats.TABULAR_KINDS:
            assert normalized(tmp_path / "jsonl", kind) == normalized(tmp_path / "csv", kind)
        export_kind(ctx, "brands", tmp_path / "brands.yaml")
        with (tmp_path / "csv" / "brands.toml").open("rb") as fh:
            as_toml = tomllib.load(fh)
        assert yaml.safe_load((tmp_path / "brands.yaml").read_text()) == as_toml

    def test_json_lines_and_yaml_import_back_to_the_same_files(
        self, db_url: str, second_db_url: str, tmp_path: Path, dataset: Path
    ) -> None:
        first = make_context(db_url, tmp_path)
        import_dataset(first, dataset)
        export_all(first, tmp_path / "csv", include_keys=True)
        export_all(first, tmp_path / "jsonl", fmt="jsonl", include_keys=True)
        (tmp_path / "jsonl" / "brands.toml").unlink()
        export_kind(first, "brands", tmp_path / "jsonl" / "brands.yaml")

        second = make_context(second_db_url, tmp_path)
        import_dataset(second, tmp_path / "jsonl")
        export_all(second, tmp_path / "again", include_keys=True)
        names = sorted(p.name for p in (tmp_path / "csv").iterdir())
        match, mismatch, errors = filecmp.cmpfiles(
            tmp_path / "csv", tmp_path / "again", names, shallow=False
        )
        assert (mismatch, errors) == ([], []) and len(match) == len(formats.KINDS)


class TestExportContract:
    def test_keys_and_clear_secrets_stay_out_unless_asked(
        self, db_url: str, tmp_path: Path, dataset: Path
    ) -> None:
        ctx = make_context(db_url, tmp_path)
        import_dataset(ctx, dataset)
        result = CliRunner().invoke(
            app,
            ["export", "all", str(tmp_path / "out")],
            env={
                "RESIM_DATABASE_URL": db_url,
                "RESIM_DATA_DIR": str(tmp_path),
                "RESIM_SECRET_KEYS": KEY,
                "RESIM_LOG_LEVEL": "WARNING",
            },
        )
        assert result.exit_code == 0, result.output
        keys = {r["ki"] for r in normalized(dataset, "sims")}
        everything = "".join(p.read_text() for p in (tmp_path / "out").iterdir())
        assert not any(k in everything for k in keys)
        header = (tmp_path / "out" / "sims.csv").read_text().splitlines()[0]
        assert header == "iccid,imsi,form,state,brand_id,profile_type"
        sub_header = (tmp_path / "out" / "subscribers.csv").read_text().splitlines()[0]
        assert ",pin," not in sub_header and ",password," not in sub_header
        assert "$argon2id$" in everything  # hashes, never clear values

        with_keys = CliRunner().invoke(
            app,
            ["export", "sims", str(tmp_path / "sims.csv"), "--include-keys"],
            env={"RESIM_DATABASE_URL": db_url, "RESIM_SECRET_KEYS": KEY},
        )
        assert with_keys.exit_code == 0
        assert not any(k in with_keys.output for k in keys)  # the file only
        assert keys <= {r.get("ki") for r in normalized(tmp_path, "sims")}

    def test_one_brand_only_and_times_in_utc_sorted_by_key(
        self, db_url: str, tmp_path: Path, dataset: Path
    ) -> None:
        ctx = make_context(db_url, tmp_path)
        import_dataset(ctx, dataset)
        report = export_all(ctx, tmp_path / "no", brand_id="fjordnett-no")
        rows = list(formats.read_rows(tmp_path / "no" / "lines.csv"))
        assert rows and {r["brand_id"] for _, r in rows} == {"fjordnett-no"}
        assert [r["msisdn"] for _, r in rows] == sorted(r["msisdn"] for _, r in rows)
        assert all(r["created_at"].endswith("+00:00") for _, r in rows)
        changes = [r for _, r in formats.read_rows(tmp_path / "no" / "sim_changes.csv")]
        assert changes and all(c["msisdn"].startswith("+47") for c in changes)
        assert report.counts["brands"] == 1
        with ctx.uow() as uow:
            stock = uow.session.scalar(
                sa.select(sa.func.count()).select_from(orm.sim).where(orm.sim.c.state == "in_stock")
            )
        assert stock == 4 * 15
        assert report.counts["stock"] == 15

    def test_unknown_kind_and_format_are_refused(self, db_url: str, tmp_path: Path) -> None:
        env = {"RESIM_DATABASE_URL": db_url, "RESIM_SECRET_KEYS": KEY}
        upgrade(db_url)
        bad_kind = CliRunner().invoke(app, ["export", "pets", str(tmp_path / "x.csv")], env=env)
        assert bad_kind.exit_code == 1 and "ONBOARDING_KIND" in bad_kind.output
        bad_ext = CliRunner().invoke(app, ["export", "lines", str(tmp_path / "x.xlsx")], env=env)
        assert bad_ext.exit_code == 1 and "ONBOARDING_FORMAT" in bad_ext.output
