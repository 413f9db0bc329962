"""SEC-09: the audit log is hash-chained and append-only, and tampering is found.

Each tampering test plays an attacker with database rights: drop the
append-only triggers, change the table, then run ``resim audit verify`` (CLI
runner) and the service, and check that the first broken row is named.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.mail.fake import FakeMailer
from resim.bootstrap import build_context, build_engine
from resim.domain.audit_chain import GENESIS_HASH, link_hash
from resim.domain.model import AuditEvent
from resim.entrypoints.cli import app
from resim.errors import Refused
from resim.services.audit import audit_log
from resim.services.context import FrozenClock, ServiceContext
from resim.services.unit_of_work import new_id
from resim.settings import Settings

pytestmark = pytest.mark.integration
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


class Env:
    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url = db_url
        self.env = {
            "RESIM_DATABASE_URL": db_url,
            "RESIM_DATA_DIR": str(tmp_path),
            "RESIM_SECRET_KEYS": KEY,
            "RESIM_LOG_LEVEL": "WARNING",
        }
        settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
        self.engine = build_engine(settings, pool_size=5)
        self.clock = FrozenClock(T0)
        self.ctx: ServiceContext = build_context(
            settings, engine=self.engine, mailer=FakeMailer(), clock=self.clock
        )

    def write(self, n: int, *, actor: str = "test", step: dt.timedelta = dt.timedelta()) -> None:
        """``n`` audit events, one transaction each."""
        for i in range(n):
            with self.ctx.uow() as uow:
                uow.audit(
                    at=self.clock.now(),
                    actor=actor,
                    action="test.event",
                    object_type="request",
                    object_id=f"r{i}",
                    detail={"i": i, "note": "ærø"},
                )
                uow.commit()
            self.clock.advance(step)

    def sql(self, *statements: str, **params: object) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement), params)

    def drop_triggers(self) -> None:
        if self.engine.dialect.name == "sqlite":
            self.sql("DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete")
        else:
            self.sql("DROP TRIGGER audit_event_append_only ON audit_event")

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env=self.env)
        return result.exit_code, result.output

    def rows(self) -> list[dict[str, object]]:
        t = orm.audit_event
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.seq)).mappings()]


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    upgrade(db_url)
    e = Env(db_url, tmp_path)
    yield e
    e.engine.dispose()


def assert_broken(env: Env, *, seq: int, kind: str, row_id: str | None = None) -> str:
    result = audit_log.verify_chain(env.ctx)
    assert result.broken is not None, "tampering not detected"
    assert (result.broken.seq, result.broken.kind) == (seq, kind), result.broken
    if row_id is not None:
        assert result.broken.id == row_id
    code, out = env.cli("audit", "verify")
    assert code == 1, out
    assert f"seq={seq}" in out and f"kind={kind}" in out
    if row_id is not None:
        assert row_id in out
    return out


class TestEveryCommitExtendsTheChain:
    def test_rows_are_dense_and_linked_and_the_head_follows(self, env: Env) -> None:
        env.write(3)
        rows = env.rows()
        assert [r["seq"] for r in rows] == [1, 2, 3]
        prev = GENESIS_HASH
        for r in rows:
            assert r["prev_hash"] == prev
            assert r["hash"] == link_hash(prev, r)
            prev = str(r["hash"])
        with env.engine.connect() as conn:
            head = conn.execute(sa.select(orm.audit_chain_head)).one()
        assert (head.last_seq, head.last_hash) == (3, prev)
        code, out = env.cli("audit", "verify")
        assert code == 0 and "3 rows verified" in out, out

    def test_an_audit_event_added_to_the_session_by_hand_is_chained_too(self, env: Env) -> None:
        with env.ctx.uow() as uow:
            uow.session.add(
                AuditEvent(
                    id=new_id(), at=T0, actor="x", action="a.b", object_type="t", object_id="1"
                )
            )
            uow.flush()
            uow.commit()
        assert env.rows()[0]["hash"] is not None
        assert audit_log.verify_chain(env.ctx).ok

    def test_a_rolled_back_transaction_leaves_no_row_and_no_gap(self, env: Env) -> None:
        env.write(1)
        with env.ctx.uow() as uow:
            uow.audit(at=T0, actor="x", action="a.b", object_type="t", object_id="1")
        env.write(1)
        assert [r["seq"] for r in env.rows()] == [1, 2]
        assert audit_log.verify_chain(env.ctx).ok

    def test_concurrent_writers_keep_one_order(self, env: Env) -> None:
        def work() -> None:
            env.write(10)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r["seq"] for r in env.rows()] == list(range(1, 41))
        assert audit_log.verify_chain(env.ctx).ok


class TestTheDatabaseRefusesChanges:
    def test_update_and_delete_are_refused(self, env: Env) -> None:
        env.write(2)
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            env.sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 1")
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            env.sql("DELETE FROM audit_event WHERE seq = 2")
        assert [r["actor"] for r in env.rows()] == ["test", "test"]


class TestVerifyNamesTheFirstBrokenRow:
    def test_an_edited_row(self, env: Env) -> None:
        env.write(5)
        env.drop_triggers()
        victim = env.rows()[2]
        env.sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3")
        out = assert_broken(env, seq=3, kind="edited", row_id=str(victim["id"]))
        assert "content does not match its hash" in out

    def test_an_edited_row_with_a_recomputed_hash(self, env: Env) -> None:
        env.write(5)
        env.drop_triggers()
        row = env.rows()[2]
        forged = {**row, "actor": "mallory"}
        digest = link_hash(str(row["prev_hash"]), forged)
        env.sql("UPDATE audit_event SET actor = 'mallory', hash = :h WHERE seq = 3", h=digest)
        assert_broken(env, seq=4, kind="reordered")

    def test_a_deleted_row(self, env: Env) -> None:
        env.write(5)
        env.drop_triggers()
        env.sql("DELETE FROM audit_event WHERE seq = 2")
        out = assert_broken(env, seq=3, kind="deleted")
        assert "seq 2 missing" in out

    def test_the_deleted_last_row(self, env: Env) -> None:
        env.write(4)
        env.drop_triggers()
        env.sql("DELETE FROM audit_event WHERE seq = 4")
        out = assert_broken(env, seq=4, kind="deleted")
        assert "chain head records seq 4" in out

    def test_swapped_rows(self, env: Env) -> None:
        env.write(5)
        env.drop_triggers()
        env.sql(
            "UPDATE audit_event SET seq = 1000 WHERE seq = 2",
            "UPDATE audit_event SET seq = 2 WHERE seq = 3",
            "UPDATE audit_event SET seq = 3 WHERE seq = 1000",
        )
        moved = env.rows()[1]
        assert_broken(env, seq=2, kind="reordered", row_id=str(moved["id"]))

    def test_a_row_deleted_and_reinserted_at_the_end(self, env: Env) -> None:
        env.write(4)
        env.drop_triggers()
        env.sql(
            "UPDATE audit_event SET seq = 5 WHERE seq = 2",
            "UPDATE audit_chain_head SET last_seq = 5",
        )
        assert_broken(env, seq=3, kind="deleted")

    def test_a_row_inserted_outside_the_chain(self, env: Env) -> None:
        env.write(2)
        env.sql(
            "INSERT INTO audit_event (seq, id, at, actor, action, object_type, object_id, detail)"
            " VALUES (3, 'forged', '2026-03-01 09:00:00', 'mallory', 'x', 'y', 'z', '{}')"
        )
        assert_broken(env, seq=3, kind="unchained", row_id="forged")

    def test_a_head_that_does_not_match_the_last_row(self, env: Env) -> None:
        env.write(3)
        env.sql("UPDATE audit_chain_head SET last_hash = :h", h="f" * 64)
        out = assert_broken(env, seq=3, kind="head")
        assert "does not match the last row" in out


class TestExportAndOfflineVerification:
    def test_a_segment_exports_with_hashes_and_reverifies(self, env: Env, tmp_path: Path) -> None:
        env.write(6, step=dt.timedelta(days=1))
        for fmt in ("jsonl", "csv"):
            out = tmp_path / f"seg.{fmt}"
            code, text = env.cli(
                "audit", "export", "--from", "2026-03-03", "--to", "2026-03-04",
                "--format", fmt, "--output", str(out),
            )  # fmt: skip
            assert code == 0, text
            assert "seq 3..4" in text
            prev = str(env.rows()[1]["hash"])
            assert prev in text  # the hash before the segment, for the auditor
            code, text = env.cli("audit", "verify-export", str(out), "--prev-hash", prev)
            assert code == 0 and "2 rows verified" in text, text
            code, text = env.cli("audit", "verify-export", str(out), "--prev-hash", "0" * 64)
            assert code == 1 and "seq 3" in text
        lines = (tmp_path / "seg.jsonl").read_text().splitlines()
        first = json.loads(lines[0])
        assert first["seq"] == 3 and first["detail"] == {"i": 2, "note": "ærø"}
        edited = tmp_path / "edited.jsonl"
        edited.write_text(lines[0].replace('"i": 2', '"i": 7') + "\n" + lines[1] + "\n")
        code, text = env.cli("audit", "verify-export", str(edited))
        assert code == 1 and "seq 3" in text and "edited" in text

    def test_bad_dates_and_formats_are_refused(self, env: Env) -> None:
        assert env.cli("audit", "export", "--from", "yesterday", "--to", "2026-01-01")[0] == 2
        assert env.cli("audit", "export", "--from", "2026-01-01", "--to", "2026-01-02",
                       "--format", "xml")[0] == 2  # fmt: skip
        assert env.cli("audit", "report", "--from", "2026-02-01", "--to", "2026-01-01")[0] == 2


class TestRetention:
    def test_retention_under_three_years_is_refused_at_start_up(self, env: Env) -> None:
        result = CliRunner().invoke(
            app, ["audit", "verify"], env={**env.env, "RESIM_AUDIT_RETENTION_DAYS": "365"}
        )
        assert result.exit_code == 2 and "RESIM_AUDIT_RETENTION_DAYS" in result.output

    def test_prune_refuses_dates_inside_the_retention_period(self, env: Env) -> None:
        env.write(2)
        with pytest.raises(Refused) as err:
            audit_log.prune(env.ctx, before=T0, retention_days=1095)
        assert err.value.code == "RETENTION_NOT_REACHED"
        code, out = env.cli("audit", "prune", "--before", dt.date.today().isoformat())
        assert code == 1 and "RETENTION_NOT_REACHED" in out
        assert len(env.rows()) == 2

    def test_prune_keeps_the_rest_verifiable_from_an_anchor(self, env: Env) -> None:
        env.write(5, step=dt.timedelta(days=200))  # T0 .. T0+800 days
        env.clock.advance(dt.timedelta(days=1200))
        before = T0 + dt.timedelta(days=500)  # rows 1..3 are older
        anchor_hash = str(env.rows()[2]["hash"])
        deleted, anchor = audit_log.prune(env.ctx, before=before, retention_days=1095)
        assert (deleted, anchor) == (3, 3)
        rows = env.rows()
        assert [r["seq"] for r in rows] == [4, 5, 6]  # 6: the "audit.pruned" event
        assert rows[-1]["action"] == "audit.pruned"
        result = audit_log.verify_chain(env.ctx)
        assert result.ok and result.anchor_seq == 3 and result.rows == 3, result.summary()
        with env.engine.connect() as conn:
            head = conn.execute(sa.select(orm.audit_chain_head)).one()
        assert head.anchor_hash == anchor_hash
        # rows after the anchor are still protected
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            env.sql("DELETE FROM audit_event WHERE seq = 4")
        # and an edit after the anchor is still found
        env.drop_triggers()
        env.sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 4")
        assert_broken(env, seq=4, kind="edited")

    def test_a_broken_chain_is_not_pruned(self, env: Env) -> None:
        env.write(3)
        env.drop_triggers()
        env.sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3")
        env.clock.advance(dt.timedelta(days=2000))
        with pytest.raises(Refused) as err:
            audit_log.prune(env.ctx, before=T0 + dt.timedelta(days=1), retention_days=1095)
        assert err.value.code == "AUDIT_CHAIN_BROKEN"
        assert len(env.rows()) == 3


def test_migration_chains_rows_written_before_0002(empty_db_url: str, tmp_path: Path) -> None:
    db_url = empty_db_url
    upgrade(db_url, "0001")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        for i in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO audit_event (id, at, actor, action, object_type, object_id,"
                    " detail) VALUES (:id, :at, 'legacy', 'old.event', 'request', :oid, :detail)"
                ),
                {
                    "id": f"legacy{i}",
                    "at": dt.datetime(2025, 1, 1, 10, i)
                    if "sqlite" in db_url
                    else dt.datetime(2025, 1, 1, 10, i, tzinfo=dt.UTC),
                    "oid": f"r{i}",
                    "detail": json.dumps({"n": i}),
                },
            )
    engine.dispose()
    upgrade(db_url)
    e = Env(db_url, tmp_path)
    try:
        result = audit_log.verify_chain(e.ctx)
        assert result.ok and result.rows == 3, result.summary()
        e.write(1)
        assert audit_log.verify_chain(e.ctx).rows == 4
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            e.sql("DELETE FROM audit_event WHERE seq = 1")
    finally:
        e.engine.dispose()


def test_prune_anchor_seeded(env: Env) -> None:
    with env.engine.connect() as conn:
        head = conn.execute(sa.select(orm.audit_chain_head)).one()
    assert (head.anchor_seq, head.anchor_hash) == (0, GENESIS_HASH)
