"""A plain import checks in a forked child while it writes (services/onboarding/pipeline.py).

Same outcome as checking every row first: same counts, same errors in file
order (in the report and its CSV), same rows; a usage error in the child
is the same usage error; a store that another process cannot open (an
in-memory database) falls back to one process.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit as icc
from resim.errors import InvalidInput
from resim.services.context import ServiceContext
from resim.services.onboarding import import_file
from resim.services.onboarding import pipeline as pipeline_module
from resim.settings import Settings

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
N = 260


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[ServiceContext]:
    upgrade(db_url)
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    engine = build_engine(settings)
    context = build_context(settings, engine=engine)
    import_file(context, "brands", SAMPLES / "brands.toml")
    yield context
    engine.dispose()


def files(directory: Path) -> dict[str, Path]:
    """Subscribers, SIMs and lines with bad and duplicate rows spread over every batch."""
    subs, sims, lines = (
        ["subscriber_id,brand_id,name,email\n"],
        ["iccid,imsi,form,state,brand_id,ki\n"],
        ["msisdn,subscriber_id,brand_id,status,iccid\n"],
    )
    for i in range(N):
        email = "not-mail" if i % 37 == 5 else f"s{i}@example.no"
        subs.append(f"S{i},polar-no,Name {i},{email}\n")
        if i % 41 == 7:
            subs.append(f"S{i - 1},polar-no,Again,again@example.no\n")  # a duplicate
        iccid = icc(f"8947994{i:011d}")
        ki = f"{i:032X}" if i % 3 else ""
        imsi = "24299A" if i % 53 == 9 else f"24299{i:010d}"
        sims.append(f"{iccid},{imsi},esim,in_stock,polar-no,{ki}\n")
        status = "suspended" if i % 11 == 0 else "active"
        sub = "NOBODY" if i % 43 == 3 else f"S{i}"
        lines.append(f"+47{40000000 + i},{sub},polar-no,{status},{iccid}\n")
    out = {}
    for kind, rows in (("subscribers", subs), ("sims", sims), ("lines", lines)):
        out[kind] = directory / f"{kind}.csv"
        out[kind].write_text("".join(rows))
    return out


def table_rows(ctx: ServiceContext) -> dict[str, list[tuple[object, ...]]]:
    """What was written, without the random ids."""
    with ctx.uow() as uow:
        s = uow.session
        return {
            "subscriber": sorted(
                (r.id, r.name, r.email, r.language) for r in s.execute(sa.select(orm.subscriber))
            ),
            "sim": sorted(
                (r.iccid, r.imsi, r.state, r.ki, r.line_id is not None, r.bound_line_id is not None)
                for r in s.execute(sa.select(orm.sim))
            ),
            "line": sorted(
                (r.msisdn, r.subscriber_id, r.status) for r in s.execute(sa.select(orm.line))
            ),
        }


def test_pipelined_and_two_pass_imports_agree(
    ctx: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pipeline_module.available(ctx.import_store)  # type: ignore[arg-type]
    paths = files(tmp_path)
    checked = {
        kind: import_file(ctx, kind, path, dry_run=True, batch_size=40)
        for kind, path in paths.items()
    }
    reports = {}
    for kind, path in paths.items():
        report_csv = tmp_path / f"{kind}.report.csv"
        reports[kind] = import_file(ctx, kind, path, batch_size=40, report_path=report_csv)
        before = checked[kind] if kind != "lines" else None
        got = reports[kind]
        assert got.written == got.new and got.bad > 0
        if before is not None:  # the dry run of later kinds saw no subscribers yet
            assert (got.read, got.new, got.rejected, got.conflict) == (
                before.read,
                before.new,
                before.rejected,
                before.conflict,
            )
            assert got.errors == before.errors
        lines_in_csv = [int(r["line"]) for r in csv.DictReader(report_csv.open())]
        assert lines_in_csv == [e.line for e in got.errors] == sorted(lines_in_csv)
    written = table_rows(ctx)
    assert len(written["line"]) == reports["lines"].written
    assert sum(1 for r in written["sim"] if r[4]) == reports["lines"].written
    assert all(r[3] is None or len(r[3]) == 32 for r in written["sim"])  # ki decrypted back
    with ctx.uow() as uow:  # encrypted at rest
        raw = uow.session.execute(sa.text("SELECT name, ki FROM subscriber, sim LIMIT 1")).one()
    assert raw.name.startswith("gAAAAA") and not raw.name.startswith("Name")

    # The same files again, in one process: nothing new, and the same rows.
    monkeypatch.setattr(pipeline_module, "available", lambda _store: False)
    for kind, path in paths.items():
        again = import_file(ctx, kind, path, batch_size=40)
        assert again.written == 0 and again.unchanged == reports[kind].written
    assert table_rows(ctx) == written


def test_a_usage_error_in_the_checking_process_is_the_same_usage_error(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    bad = tmp_path / "lines.csv"
    bad.write_text("msisdn,brand_id,status\n+4740000000,polar-no,active\n")
    with pytest.raises(InvalidInput) as caught:
        import_file(ctx, "lines", bad)
    assert caught.value.code == "IMPORT_COLUMNS"


def test_an_in_memory_database_imports_in_one_process(tmp_path: Path) -> None:
    engine = sa.create_engine(
        "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
    )
    orm.metadata.create_all(engine)
    from resim.adapters.corenet.builtin import CORENET_METADATA

    CORENET_METADATA.create_all(engine)
    settings = Settings(database_url="sqlite://", data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    ctx = build_context(settings, engine=engine)
    assert ctx.import_store is not None and not ctx.import_store.shareable
    import_file(ctx, "brands", SAMPLES / "brands.toml")
    paths = files(tmp_path)
    assert import_file(ctx, "subscribers", paths["subscribers"]).written > 200


def test_an_unexpected_error_in_the_checking_process_stops_the_import(
    ctx: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resim.services.onboarding.subscribers import Subscribers

    def broken(*_args: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(Subscribers, "classify", broken)
    paths = files(tmp_path)
    with pytest.raises(pipeline_module.ImportCheckFailed, match="RuntimeError: boom"):
        import_file(ctx, "subscribers", paths["subscribers"], batch_size=40)
    with ctx.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(orm.subscriber)) == 0
