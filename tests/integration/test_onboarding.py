"""Onboarding imports (resim.services.onboarding) on SQLite and PostgreSQL.

Every validation rule has a bad-row case; dry run, strict, idempotence, JSON
Lines, YAML, the CSV report, and a re-run after SIGKILL complete the picture.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit
from resim.services.context import ServiceContext
from resim.services.onboarding import import_dir, import_file
from resim.settings import Settings

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
HASH = "$argon2id$v=19$m=65536,t=3,p=4$bJ01+4MZRHZhN4IA+PgpSA$7Ux2O79KgkKg/rP2NOxo7HxnTn7hbkzwt0Q+1+sR8Ks"  # noqa: E501
ICC = iccid_with_check_digit


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[ServiceContext]:
    upgrade(db_url)
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    engine = build_engine(settings)
    yield build_context(settings, engine=engine)
    engine.dispose()


def count(ctx: ServiceContext, table: sa.Table) -> int:
    with ctx.uow() as uow:
        return int(uow.session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def onboard(ctx: ServiceContext, *kinds: str) -> None:
    import_file(ctx, "brands", SAMPLES / "brands.toml")
    for kind in kinds:
        report = import_file(ctx, kind, SAMPLES / f"{kind}.csv")
        assert report.bad == 0, report.errors


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


SUB_HEAD = "subscriber_id,brand_id,name,email,language,alt_msisdn,pin_hash,pin,created_at\n"
SIM_HEAD = "iccid,imsi,form,state,brand_id,ki\n"
LINE_HEAD = "msisdn,subscriber_id,brand_id,status,iccid\n"
GOOD_SIM = f"{ICC('894799300000000099')},242993000000099,esim,in_stock,polar-no,\n"

# (kind, needs, header + rows, line, field, words in the reason)
BAD_ROWS = [
    ("subscribers", (), SUB_HEAD + "a b,polar-no,N,n@x.no,,,,,\n", 2, "subscriber_id", "A-Z"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,N,not-mail,,,,,\n", 2, "email", "e-mail"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,N,n@x.no,,+47 1,,,\n", 2, "alt_msisdn", "phone"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,N,n@x.no,,,,,2024-01-01T10:00\n", 2,
     "created_at", "no zone"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,N,n@x.no,,,$argon2i$x,,\n", 2, "pin_hash",
     "argon2id"),
    ("subscribers", (), SUB_HEAD + f'A1,polar-no,N,n@x.no,,,"{HASH}",1234,\n', 2, "pin",
     "not both"),
    ("subscribers", (), SUB_HEAD + "A1,ghost,N,n@x.no,,,,,\n", 2, "brand_id", "unknown brand"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,,n@x.no,,,,,\n", 2, "name", "missing"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,N,n@x.no,xx_YY,,,,\n", 2, "language", "tag"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,N,n@x.no,,,,,\nA1,polar-no,M,m@x.no,,,,,\n", 3,
     "subscriber_id", "duplicate"),
    ("subscribers", (), SUB_HEAD + "A1,polar-no,N,n@x.no\n", 2, "-", "cells"),
    ("sims", (), SIM_HEAD + "8947993000000000012,242993000000099,esim,in_stock,polar-no,\n", 2,
     "iccid", "Luhn"),
    ("sims", (), SIM_HEAD + "89479930000,242993000000099,esim,in_stock,polar-no,\n", 2, "iccid",
     "18 to 20"),
    ("sims", (), SIM_HEAD + f"{ICC('894799300000000099')},24299A,esim,in_stock,polar-no,\n", 2,
     "imsi", "IMSI"),
    ("sims", (), SIM_HEAD + f"{ICC('894799300000000099')},242993000000099,card,in_stock,"
     "polar-no,\n", 2, "form", "one of"),
    ("sims", (), SIM_HEAD + f"{ICC('894799300000000099')},242993000000099,esim,lost,polar-no,\n",
     2, "state", "one of"),
    ("sims", (), SIM_HEAD + f"{ICC('894799300000000099')},242993000000099,esim,in_stock,polar-no,"
     "00112233\n", 2, "ki", "32 hexadecimal"),
    ("sims", (), SIM_HEAD + GOOD_SIM + GOOD_SIM.replace("99,esim", "98,esim"), 3, "iccid",
     "duplicate"),
    ("sims", (), SIM_HEAD + GOOD_SIM + GOOD_SIM.replace("0000000099,", "0000000083,", 1)
     .replace(ICC("894799300000000099"), ICC("894799300000000098")), 3, "imsi", "duplicate"),
    ("sims", ("sims",), SIM_HEAD + f"{ICC('894799300000000099')},242993000000001,esim,in_stock,"
     "polar-no,\n", 2, "imsi", "another SIM"),
    ("lines", ("subscribers", "sims"), LINE_HEAD + "+4741,ACC-1003,polar-no,active,"
     f"{ICC('894799300000000003')}\n", 2, "msisdn", "phone"),
    ("lines", ("subscribers", "sims"), LINE_HEAD + "+4741234569,NOBODY,polar-no,active,"
     f"{ICC('894799300000000003')}\n", 2, "subscriber_id", "no such subscriber"),
    ("lines", ("subscribers", "sims"), LINE_HEAD + "+4741234569,ACC-1003,polar-no,active,"
     f"{ICC('894799300000000077')}\n", 2, "iccid", "no such SIM"),
    ("lines", ("subscribers", "sims"), LINE_HEAD + "+4741234569,ACC-1003,polar-no,gone,"
     f"{ICC('894799300000000003')}\n", 2, "status", "one of"),
    ("lines", ("subscribers", "sims", "lines"), LINE_HEAD + "+4741234570,ACC-1003,polar-no,active,"
     f"{ICC('894799300000000003')}\n", 2, "iccid", "another line"),
    ("lines", ("subscribers", "sims", "lines"), LINE_HEAD + "+4741234569,ACC-1002,polar-no,active,"
     f"{ICC('894799300000000003')}\n", 2, "subscriber_id", "different value"),
    ("lines", ("subscribers", "sims"), LINE_HEAD + "+4741234569,ACC-1003,polar-no,active,"
     f"{ICC('894799300000000003')}\n+4741234569,ACC-1002,polar-no,active,"
     f"{ICC('894799300000000002')}\n", 3, "msisdn", "duplicate"),
    ("sim_changes", ("subscribers", "sims", "lines"), "msisdn,changed_at,old_iccid,new_iccid\n"
     f"+4741234567,2024-01-01T10:00:00,,{ICC('894799300000000001')}\n", 2, "changed_at",
     "no zone"),
    ("sim_changes", ("subscribers", "sims", "lines"), "msisdn,changed_at,old_iccid,new_iccid\n"
     f"+4741234599,2024-01-01T10:00:00Z,,{ICC('894799300000000001')}\n", 2, "msisdn",
     "no such line"),
    ("sim_changes", ("subscribers", "sims", "lines"), "msisdn,changed_at,old_iccid,new_iccid\n"
     f"+4741234567,2024-01-01T10:00:00Z,{ICC('894799300000000001')},"
     f"{ICC('894799300000000001')}\n", 2, "new_iccid", "same as"),
    ("locks", ("subscribers", "sims", "lines"), "msisdn,locked_at\n+4741234599,2024-01-01T10:00Z\n",
     2, "msisdn", "no such line"),
    ("locks", ("subscribers", "sims", "lines"), "msisdn,locked_at\n+4741234567,2024-01-01\n", 2,
     "locked_at", "no zone"),
    ("stock", (), "iccid,imsi,brand_id,profile_type,smdp\n"
     f"{ICC('894799300000000099')},242993000000099,polar-no,default,smdp.other.example\n", 2,
     "smdp", "SM-DP+"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "needs", "text", "line", "field", "words"), BAD_ROWS)
def test_every_rule_rejects_its_bad_row(
    ctx: ServiceContext,
    tmp_path: Path,
    kind: str,
    needs: tuple[str, ...],
    text: str,
    line: int,
    field: str,
    words: str,
) -> None:
    onboard(ctx, *needs)
    report_csv = tmp_path / "report.csv"
    report = import_file(ctx, kind, write(tmp_path / f"{kind}.csv", text), report_path=report_csv)
    assert report.bad >= 1
    hits = [e for e in report.errors if e.line == line and e.field == field]
    assert hits and words in hits[0].reason, report.errors
    rows = list(csv.DictReader(report_csv.open()))
    assert any(r["line"] == str(line) and r["field"] == field for r in rows)


def test_secret_cells_never_appear_in_the_report(ctx: ServiceContext, tmp_path: Path) -> None:
    onboard(ctx)
    ki = "00112233445566778899AABBCCDDEEFZ"
    text = SIM_HEAD + f"{ICC('894799300000000099')},242993000000099,esim,in_stock,polar-no,{ki}\n"
    report_csv = tmp_path / "r.csv"
    report = import_file(ctx, "sims", write(tmp_path / "s.csv", text), report_path=report_csv)
    assert report.rejected == 1
    assert ki not in report_csv.read_text() and all(ki not in e.reason for e in report.errors)


def test_a_real_run_writes_every_valid_row_and_binds_the_core(ctx: ServiceContext) -> None:
    onboard(ctx, "subscribers", "sims", "lines", "sim_changes", "locks", "stock")
    assert count(ctx, orm.line) == 3 and count(ctx, orm.sim_change) == 2
    with ctx.uow() as uow:
        sims = {r.iccid: r for r in uow.session.execute(sa.select(orm.sim))}
        subs = {r.id: r for r in uow.session.execute(sa.select(orm.subscriber))}
    assert sims[ICC("894799300000000002")].state == "suspended"
    assert sims[ICC("894799300000000001")].ki == "000102030405060708090A0B0C0D0E0F"
    assert subs["ACC-1002"].pin_hash.startswith("$argon2id$")  # clear PIN hashed
    assert ctx.core.imsi_of(msisdn="+4741234567") == "242993000000001"
    assert ctx.core.is_enabled(imsi="242993000000001")
    assert not ctx.core.is_enabled(imsi="242993000000002")  # the line is suspended


def test_dry_run_writes_nothing(ctx: ServiceContext) -> None:
    onboard(ctx)
    report = import_file(ctx, "subscribers", SAMPLES / "subscribers.csv", dry_run=True)
    assert (report.new, report.written) == (3, 0)
    assert count(ctx, orm.subscriber) == 0


def test_strict_writes_nothing_when_a_row_is_bad(ctx: ServiceContext, tmp_path: Path) -> None:
    onboard(ctx)
    bad = tmp_path / "subscribers.csv"
    shutil.copy(SAMPLES / "subscribers.csv", bad)
    with bad.open("a") as fh:
        fh.write("ACC-9,polar-no,X,not-mail,,,,,,,,\n")
    report = import_file(ctx, "subscribers", bad, strict=True)
    assert report.held_back and report.rejected == 1 and report.written == 0
    assert count(ctx, orm.subscriber) == 0
    assert import_file(ctx, "subscribers", bad).written == 3  # without --strict


def test_second_import_changes_nothing(ctx: ServiceContext) -> None:
    kinds = ("subscribers", "sims", "lines", "sim_changes", "locks", "stock")
    onboard(ctx, *kinds)
    for kind in kinds:
        report = import_file(ctx, kind, SAMPLES / f"{kind}.csv")
        assert report.written == 0 and report.unchanged == report.read and not report.bad


def test_jsonl_and_yaml(ctx: ServiceContext) -> None:
    assert import_file(ctx, "brands", SAMPLES / "brands.yaml").written == 1
    assert import_file(ctx, "brands", SAMPLES / "brands.toml").unchanged == 1  # same content
    report = import_file(ctx, "subscribers", SAMPLES / "subscribers.jsonl")
    assert report.written == 2 and not report.bad


def test_import_all_strict_checks_every_file_first(ctx: ServiceContext, tmp_path: Path) -> None:
    for kind in ("subscribers", "sims", "lines", "stock"):
        shutil.copy(SAMPLES / f"{kind}.csv", tmp_path / f"{kind}.csv")
    shutil.copy(SAMPLES / "brands.yaml", tmp_path / "brands.yaml")
    with (tmp_path / "stock.csv").open("a") as fh:
        fh.write("polar-no,8947993000000000012,242993000000099,default,\n")
    reports = import_dir(ctx, tmp_path, strict=True)
    assert [r.kind for r in reports] == ["brands", "subscribers", "sims", "lines", "stock"]
    assert count(ctx, orm.line) == 0 and count(ctx, orm.subscriber) == 0
    (tmp_path / "stock.csv").write_text((SAMPLES / "stock.csv").read_text())
    reports = import_dir(ctx, tmp_path, strict=True)
    assert [r.written for r in reports] == [0, 3, 4, 3, 5]


def big_files(directory: Path, n: int) -> None:
    with (directory / "subscribers.csv").open("w") as fh:
        fh.write("subscriber_id,brand_id,name,email\n")
        fh.writelines(f"S{i},polar-no,Name {i},s{i}@example.no\n" for i in range(n))
    with (directory / "sims.csv").open("w") as fh:
        fh.write("iccid,imsi,form,state,brand_id\n")
        fh.writelines(
            f"{ICC(f'8947994{i:011d}')},24299{i:010d},esim,active,polar-no\n" for i in range(n)
        )
    with (directory / "lines.csv").open("w") as fh:
        fh.write("msisdn,subscriber_id,brand_id,status,iccid\n")
        fh.writelines(
            f"+47{40000000 + i},S{i},polar-no,active,{ICC(f'8947994{i:011d}')}\n" for i in range(n)
        )


def test_an_import_killed_halfway_completes_on_rerun(
    ctx: ServiceContext, db_url: str, tmp_path: Path
) -> None:
    n = 6000
    onboard(ctx)
    big_files(tmp_path, n)
    for kind in ("subscribers", "sims"):
        assert import_file(ctx, kind, tmp_path / f"{kind}.csv").written == n
    env = {
        **os.environ,
        "RESIM_DATABASE_URL": db_url,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": KEY,
        "RESIM_LOG_LEVEL": "WARNING",
    }
    main = "from resim.entrypoints.cli import main; main()"
    args = [sys.executable, "-c", main, "import", "lines", str(tmp_path / "lines.csv"),
            "--batch-size", "200"]  # fmt: skip
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while count(ctx, orm.line) < 1000 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stderr:
        proc.stderr.close()
    done = count(ctx, orm.line)
    assert 0 < done < n, "the import was not killed halfway"
    report = import_file(ctx, "lines", tmp_path / "lines.csv")
    assert (report.unchanged, report.written, report.bad) == (done, n - done, 0)
    assert count(ctx, orm.line) == n
    with ctx.uow() as uow:
        bound = uow.session.scalar(
            sa.select(sa.func.count()).where(orm.sim.c.bound_line_id.is_not(None))
        )
        core = uow.session.scalar(
            sa.text("SELECT count(*) FROM corenet_subscriber WHERE msisdn IS NOT NULL")
        )
    assert bound == n and core == n
