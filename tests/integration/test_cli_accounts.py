"""``resim accounts unfreeze`` and ``resim alerts list`` through Typer's runner (issue 12),
on SQLite and PostgreSQL: the command acts as the reviewer it names, with a reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from resim.adapters.db import orm
from resim.bootstrap import build_context
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.model import Line, Subscriber
from resim.domain.policy import BrandPolicy
from resim.entrypoints.cli import app
from resim.services.access import staff
from resim.services.onboarding import seed
from resim.settings import Settings

pytestmark = pytest.mark.integration
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
MSISDN = "+4520999001"


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    env = {
        "RESIM_DATABASE_URL": db_url,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": KEY,
        "RESIM_LOG_LEVEL": "WARNING",
    }
    assert CliRunner().invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    ctx = build_context(settings)
    seed.upsert_brand(
        ctx, seed.BrandSpec("dk", "Nordlys", "DK", "DKK", "da", "Europe/Copenhagen", BrandPolicy())
    )
    seed.add_line(
        ctx,
        seed.LineSpec(
            brand_id="dk",
            msisdn=MSISDN,
            name="Kunde",
            email="kunde@example.dk",
            iccid=iccid_with_check_digit("894501000000999001"),
            imsi="238010000999001",
        ),
    )
    with ctx.uow() as uow:
        line = uow.session.scalars(sa.select(Line).where(orm.line.c.msisdn == MSISDN)).one()
        subscriber = uow.session.get(Subscriber, line.subscriber_id)
        assert subscriber is not None
        subscriber.replacements_frozen_at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        subscriber.frozen_reason = "not_me"
        uow.commit()
    for username, role in (("rita", "reviewer"), ("alf", "agent")):
        staff.create_staff(
            ctx, username=username, role=role, display_name=username, password="a long password"
        )
    env["_db"] = db_url
    return env


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={k: v for k, v in env.items() if k != "_db"})
    return result.exit_code, result.output


def frozen(env: dict[str, str]) -> bool:
    engine = sa.create_engine(env["_db"])
    try:
        with engine.connect() as conn:
            return (
                conn.scalar(
                    sa.select(sa.func.count()).where(
                        orm.subscriber.c.replacements_frozen_at.is_not(None)
                    )
                )
                == 1
            )
    finally:
        engine.dispose()


def test_only_a_named_reviewer_with_a_reason_unfreezes(env: dict[str, str]) -> None:
    code, out = run(env, "accounts", "unfreeze", MSISDN, "--reviewer", "alf", "--reason", "x")
    assert code == 1 and "REVIEWER_REQUIRED" in out and frozen(env)
    code, out = run(env, "accounts", "unfreeze", MSISDN, "--reviewer", "rita", "--reason", " ")
    assert code == 1 and "REASON_REQUIRED" in out and frozen(env)
    code, out = run(
        env, "accounts", "unfreeze", MSISDN, "--reviewer", "rita", "--reason", "called back"
    )
    assert code == 0 and "unfrozen" in out and not frozen(env)
    code, out = run(env, "alerts", "list")
    assert code == 0
