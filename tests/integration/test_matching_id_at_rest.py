"""Issue 13, finding 2: the MatchingID is encrypted at rest, on SQLite and PostgreSQL.

With the SM-DP+ address (public) the MatchingID *is* the activation code: a
database read was enough to install someone's number. Every check reads the
raw column or payload with SQL, as an attacker holding a copy of the database
would, and then shows that resim itself still reads the value back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_replacement_flow import System, add_line, iccid, imsi
from test_replacement_flow import system as system

from resim.adapters.crypto import SecretBox
from resim.adapters.db import orm
from resim.adapters.db.migrate import current_revision, head_revision, upgrade
from resim.adapters.mail.fake import FakeMailer
from resim.bootstrap import build_context, build_engine
from resim.domain.model import ReplacementRequest
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.domain.workflow import State
from resim.services.context import FrozenClock, ServiceContext
from resim.services.notifications import notify
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.replacement import queries, requests
from resim.services.replacement.reissue import reissue
from resim.services.unit_of_work import new_id
from resim.settings import Settings

pytestmark = pytest.mark.integration
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
LEGACY_MATCHING_ID = "K2D7Q-8WZ3M-P4HXA-N6TRB"
WITHDRAWN_MATCHING_ID = "04386-AGYFT-A74Y8-3F815"


def raw_matching_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT matching_id FROM replacement_request")).scalars()
        return [str(v) for v in rows if v is not None]


def raw_payloads(engine: sa.Engine) -> list[str]:
    """Every job payload as the database stores it (JSON text)."""
    with engine.connect() as conn:
        return [
            str(v) for v in conn.execute(sa.select(sa.cast(orm.job.c.payload, sa.Text))).scalars()
        ]


def ready(system: System, n: int) -> tuple[str, str]:
    """A request whose eSIM is ready: (request id, its MatchingID)."""
    msisdn, email, _, _ = add_line(system, n)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
    system.run_jobs()
    requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    system.run_jobs()
    code = queries.activation_view(system.ctx, opened.id, reader="test", via="test")
    return opened.id, code["matching_id"]


class TestTheMatchingIdIsEncrypted:
    def test_the_column_holds_a_token_and_resim_reads_the_id_back(self, system: System) -> None:
        rid, matching_id = ready(system, 1)
        (stored,) = raw_matching_ids(system.engine)
        assert matching_id not in stored and stored.startswith("gAAAAA")
        with system.ctx.uow() as uow:
            req = uow.session.get(ReplacementRequest, rid)
            assert req is not None and req.matching_id == matching_id
        # ... and the eSIM installs with it (the SM-DP+ matched the order).
        system.install(rid)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "completed"

    def test_a_reissue_withdraws_the_old_order_without_writing_its_id_in_clear(
        self, system: System
    ) -> None:
        rid, old_matching_id = ready(system, 2)
        old_iccid = queries.get_request_view(system.ctx, rid)["new_iccid"]
        assert reissue(system.ctx, rid, actor="agent-1") == State.PROVISIONING
        with system.engine.connect() as conn:
            withdrawal = conn.execute(
                sa.select(sa.cast(orm.job.c.payload, sa.Text)).where(
                    orm.job.c.kind == "esim.cancel_order"
                )
            ).scalar_one()
        assert old_iccid in withdrawal and "secret_context" in withdrawal
        assert all(old_matching_id not in p for p in raw_payloads(system.engine))
        system.run_jobs()
        # The SM-DP+ refuses a cancelOrder naming another order's MatchingID
        # (8.2.6/3.8): the profile being burned shows the sealed id arrived intact.
        assert system.smdp.profile(old_iccid).state.value == "Unavailable"
        assert queries.get_request_view(system.ctx, rid)["state"] == "ready"
        assert all(old_matching_id not in v for v in raw_matching_ids(system.engine))


# ------------------------------------------------------------------ migration 0009


def _later_columns(engine: sa.Engine) -> list[tuple[str, sa.Column[object]]]:
    """Columns the ORM maps today that the schema at this revision lacks (added by
    later migrations). The services write every mapped column, so the test adds
    them, nullable, while it makes rows as the code of 0008 did, and drops them
    again before the migrations run (``_drop_later_columns``)."""
    have = sa.inspect(engine)
    missing = []
    for table in orm.metadata.sorted_tables:
        if not have.has_table(table.name):
            continue
        present = {c["name"] for c in have.get_columns(table.name)}
        missing += [(table.name, c) for c in table.columns if c.name not in present]
    return missing


def _add_later_columns(engine: sa.Engine) -> list[tuple[str, str]]:
    added = []
    missing = _later_columns(engine)  # before the write transaction (SQLite locks)
    with engine.begin() as conn:
        for table, column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            conn.execute(sa.text(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {kind}'))
            added.append((table, column.name))
    return added


def _drop_later_columns(engine: sa.Engine, added: list[tuple[str, str]]) -> None:
    with engine.begin() as conn:
        for table, name in added:
            conn.execute(sa.text(f'ALTER TABLE {table} DROP COLUMN "{name}"'))


def _context_at_0008(db_url: str, tmp_path: Path) -> tuple[ServiceContext, sa.Engine]:
    upgrade(db_url, "0008")
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    engine = build_engine(settings, pool_size=3)
    ctx = build_context(settings, engine=engine, mailer=FakeMailer(), clock=FrozenClock())
    seed.upsert_brand(
        ctx,
        seed.BrandSpec(
            "dk", "Nordlys", "DK", "DKK", "da", "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone()),
        ),
    )  # fmt: skip
    return ctx, engine


def _as_written_before_0009(ctx: ServiceContext, engine: sa.Engine, rid: str) -> None:
    """Rewrite the request and its jobs the way resim stored them before 0009."""
    box = ctx.secrets
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE replacement_request SET matching_id = :m WHERE id = :id"),
            {"m": LEGACY_MATCHING_ID, "id": rid},
        )
        for job_id, payload in conn.execute(
            sa.select(orm.job.c.id, orm.job.c.payload).where(
                orm.job.c.kind.in_(["mail.send", "sms.send"])
            )
        ).all():
            message = notify.open_message(ctx, payload)
            secret = {
                k: message.context.pop(k) for k in ("code", "not_me_url") if k in message.context
            }
            legacy = {k: v for k, v in payload.items() if k != "sealed"}
            legacy.update(to=message.to, context=notify.encode_context(message.context))
            if secret:
                legacy["secret_context"] = box.encrypt(json.dumps(secret))
            conn.execute(sa.update(orm.job).where(orm.job.c.id == job_id).values(payload=legacy))
        conn.execute(
            sa.insert(orm.job).values(
                id=new_id(),
                kind="esim.cancel_order",
                request_id=rid,
                payload={"iccid": "8945010000000000014", "matching_id": WITHDRAWN_MATCHING_ID,
                         "final": "Unavailable"},
                state="done",
                attempts=1,
                run_after=ctx.now(),
                created_at=ctx.now(),
                finished_at=ctx.now(),
            )
        )  # fmt: skip


def test_0009_encrypts_what_was_stored_in_clear_and_needs_the_keys_to_do_it(
    empty_db_url: str, tmp_path: Path
) -> None:
    db_url = empty_db_url
    ctx, engine = _context_at_0008(db_url, tmp_path)
    added = _add_later_columns(engine)
    try:
        seed.add_line(
            ctx,
            seed.LineSpec(
                brand_id="dk", msisdn="+4520100001", name="Karen Blixen",
                email="karen@example.dk", iccid=iccid(), imsi=imsi(),
            ),
        )  # fmt: skip
        rid = requests.open_request(ctx, msisdn="+4520100001", reason="damaged").id
        _as_written_before_0009(ctx, engine, rid)
        with engine.begin() as conn:  # a row that refers to the request (SQLite rebuilds it)
            conn.execute(
                sa.insert(orm.sim_change).values(
                    id=new_id(), msisdn="+4520100001", changed_at=ctx.now(),
                    new_iccid="8945010000000000022", request_id=rid,
                    line_id=sa.select(orm.line.c.id).scalar_subquery(),
                )
            )  # fmt: skip
        _drop_later_columns(engine, added)
        before = " ".join(raw_payloads(engine) + raw_matching_ids(engine))
        for clear in (
            "karen@example.dk",
            "Karen Blixen",
            LEGACY_MATCHING_ID,
            WITHDRAWN_MATCHING_ID,
        ):
            assert clear in before  # the hole, as it was

        # Without keys the migration refuses (and changes nothing) rather than
        # leave the values in clear.
        engine.dispose()
        with pytest.raises(RuntimeError, match="RESIM_SECRET_KEYS"):
            upgrade(db_url)
        assert current_revision(db_url) == "0008"
        assert LEGACY_MATCHING_ID in raw_matching_ids(engine)

        assert upgrade(db_url, secrets=SecretBox([KEY])) == head_revision()
        after = " ".join(raw_payloads(engine) + raw_matching_ids(engine))
        for clear in ("karen@example.dk", "Karen Blixen", LEGACY_MATCHING_ID, WITHDRAWN_MATCHING_ID,
                      "+4520100001", "not-me"):  # fmt: skip
            assert clear not in after

        with ctx.uow() as uow:
            req = uow.session.get(ReplacementRequest, rid)
            assert req is not None and req.matching_id == LEGACY_MATCHING_ID
            cancel = uow.session.execute(
                sa.select(orm.job.c.payload).where(orm.job.c.kind == "esim.cancel_order")
            ).scalar_one()
        opened = json.loads(ctx.secrets.decrypt(cancel["secret_context"]))
        assert opened == {"matching_id": WITHDRAWN_MATCHING_ID}

        # The queued messages still go out, to the right address, with the name.
        jobs.run_due_jobs(ctx)
        mailer = ctx.mailer
        assert isinstance(mailer, FakeMailer)
        sent = mailer.to("karen@example.dk")
        kinds = {m.headers["X-Resim-Kind"] for m in sent}
        assert kinds == {"replacement_requested", "one_time_code"}
        assert any("Karen Blixen" in m.text and "/not-me/" in m.text for m in sent)
    finally:
        engine.dispose()


def test_0009_needs_no_keys_when_nothing_is_in_clear(empty_db_url: str) -> None:
    assert upgrade(empty_db_url) == head_revision()
