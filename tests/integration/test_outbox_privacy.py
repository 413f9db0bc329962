"""Issue 13, finding 10: the outbox holds no personal data in clear, and done jobs go.

Mail and SMS jobs used to carry the recipient's address, name and numbers in
clear, and done jobs were never deleted. Here a whole replacement, a lock and
a reviewer alert run; then every payload is read with SQL and searched for
every address, name and number involved, on SQLite and PostgreSQL. The same
messages must still reach the right people. Then the retention prune: by the
service, by ``resim jobs prune`` and by the worker.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_notices import ALT, OTP, report, requested_mail, with_alt
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system
from typer.testing import CliRunner

from resim.adapters.db import orm
from resim.domain.workflow import State
from resim.entrypoints.cli import app
from resim.entrypoints.worker import Worker
from resim.services.access import staff
from resim.services.locks import locks
from resim.services.outbox import jobs
from resim.services.replacement import queries, requests
from resim.services.unit_of_work import new_id

pytestmark = pytest.mark.integration
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="  # the system fixture's key
REVIEWER_EMAIL = "rita.reviewer@operator.test"
REVIEWER_NAME = "Rita Revisor"


def raw_payloads(system: System) -> list[str]:
    with system.engine.connect() as conn:
        query = sa.select(orm.job.c.kind, sa.cast(orm.job.c.payload, sa.Text))
        return [f"{kind} {text}" for kind, text in conn.execute(query).all()]


def job_states(system: System) -> dict[str, str]:
    with system.engine.connect() as conn:
        return dict(conn.execute(sa.select(orm.job.c.id, orm.job.c.state)).all())  # type: ignore[arg-type]


def count(system: System, table: sa.Table) -> int:
    with system.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def completed(system: System, n: int) -> tuple[str, str, str]:
    """A replacement run to the end: (request id, msisdn, e-mail)."""
    msisdn, email, _, _ = add_line(system, n)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
    system.run_jobs()
    assert requests.submit_verification(system.ctx, opened.id, otp=OTP) == State.APPROVED
    system.run_jobs()
    system.install(opened.id)
    system.run_jobs()
    assert queries.get_request_view(system.ctx, opened.id)["state"] == "completed"
    return opened.id, msisdn, email


class TestNoPersonalDataInPayloads:
    def test_every_message_job_is_sealed_and_still_reaches_its_people(self, system: System) -> None:
        system.ctx.otp_generator = lambda: OTP
        staff.create_staff(
            system.ctx,
            username="rita",
            role="reviewer",
            display_name=REVIEWER_NAME,
            password="correct horse battery",
            email=REVIEWER_EMAIL,
        )
        # A whole replacement, texting the alternate number and the old SIM.
        msisdn, email, _, _ = add_line(system, 1)
        with_alt(system, msisdn)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=OTP)
        system.run_jobs()
        system.install(opened.id)
        system.run_jobs()
        # A lock notice (about a line), and a "not me" that alerts reviewers.
        locks.lock_line(system.ctx, msisdn, actor="customer")
        other, other_email, _, _ = add_line(system, 2)
        requests.open_request(system.ctx, msisdn=other, reason="lost")
        system.run_jobs()
        report(system, requested_mail(system, other_email).text)
        system.run_jobs()

        payloads = raw_payloads(system)
        kinds = {p.split(" ", 1)[0] for p in payloads}
        assert {"mail.send", "sms.send", "alert.notify"} <= kinds
        personal = [email, "Kunde 1", msisdn, ALT, other_email, "Kunde 2", other,
                    REVIEWER_EMAIL, REVIEWER_NAME, OTP, "/not-me/"]  # fmt: skip
        for payload in payloads:
            for value in personal:
                assert value not in payload, f"{value!r} in a job payload: {payload[:120]}"

        # Sealed is not lost: each message reached its addressee, with the name.
        mails = system.mail.to(email)
        assert {"replacement_requested", "one_time_code", "esim_ready", "replacement_completed",
                "lock_on"} <= {m.headers["X-Resim-Kind"] for m in mails}  # fmt: skip
        assert all("Kunde 1" in m.text for m in mails)
        assert system.sms.to(ALT) and system.sms.to(msisdn)
        (alert_mail,) = system.mail.to(REVIEWER_EMAIL)
        assert REVIEWER_NAME in alert_mail.text

    def test_a_message_job_cannot_be_read_without_the_keys(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 3)
        requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        with system.engine.connect() as conn:
            payload = conn.execute(
                sa.select(orm.job.c.payload).where(orm.job.c.kind == "mail.send")
            ).first()
        assert payload is not None
        assert set(payload[0]) == {"kind", "language", "sealed"}


class TestDoneJobsArePruned:
    def test_only_done_jobs_past_the_retention_and_of_closed_requests_go(
        self, system: System
    ) -> None:
        system.ctx.otp_generator = lambda: OTP
        done_request, _, _ = completed(system, 10)
        msisdn, _, _, _ = add_line(system, 11)
        still_open = requests.open_request(system.ctx, msisdn=msisdn, reason="lost").id
        system.run_jobs()  # its notices are done; its expiry job is pending
        locks.lock_line(system.ctx, msisdn, actor="customer")  # a line notice, no request
        system.run_jobs()
        dead = new_id()
        with system.engine.begin() as conn:
            conn.execute(
                sa.insert(orm.job).values(
                    id=dead, kind="mail.send", payload={}, state="dead", attempts=12,
                    run_after=system.clock.now(), created_at=system.clock.now(),
                    finished_at=system.clock.now(),
                )
            )  # fmt: skip
        before = job_states(system)
        calls = count(system, orm.external_call)
        assert calls > 0

        # Younger than the retention: nothing goes.
        system.clock.advance(system.ctx.job_retention - dt.timedelta(minutes=1))
        assert jobs.prune_done(system.ctx) == 0
        assert job_states(system) == before

        system.clock.advance(dt.timedelta(minutes=2))
        with system.engine.connect() as conn:
            rows = conn.execute(sa.select(orm.job.c.id, orm.job.c.request_id, orm.job.c.state))
            expected_gone = {r.id for r in rows if r.state == "done" and r.request_id != still_open}
        assert expected_gone and jobs.prune_done(system.ctx, batch=3) == len(expected_gone)
        after = job_states(system)
        assert set(after) == set(before) - expected_gone
        assert after[dead] == "dead"
        with system.engine.connect() as conn:
            kept = conn.execute(
                sa.select(orm.job.c.state).where(orm.job.c.request_id == still_open)
            ).scalars()
            assert "done" in set(kept)  # an open request keeps its history
            orphans = conn.execute(
                sa.select(sa.func.count())
                .select_from(orm.external_call)
                .where(orm.external_call.c.job_id.not_in(list(after)))
            ).scalar_one()
            left = set(
                conn.execute(
                    sa.select(orm.job.c.state).where(orm.job.c.request_id == done_request)
                ).scalars()
            )
        assert orphans == 0 and "done" not in left  # (its never-run expiry jobs stay pending)
        assert count(system, orm.external_call) < calls
        # The closed request itself and its audit trail are untouched.
        assert queries.get_request_view(system.ctx, done_request)["state"] == "completed"

    def test_the_worker_prunes_when_asked_to(self, system: System) -> None:
        system.ctx.otp_generator = lambda: OTP
        completed(system, 12)
        old = {i for i, state in job_states(system).items() if state == "done"}
        assert old
        system.clock.advance(system.ctx.job_retention + dt.timedelta(hours=1))
        Worker(system.ctx, concurrency=2, poll_seconds=0.01).run(until_idle=True)
        assert old <= set(job_states(system))  # not asked: kept
        Worker(system.ctx, concurrency=2, poll_seconds=0.01, prune_every_seconds=3600).run(
            until_idle=True
        )
        assert not old & set(job_states(system))

    def test_resim_jobs_prune_uses_the_retention_setting(
        self, system: System, tmp_path: Path
    ) -> None:
        # The CLI runs on the wall clock: jobs that finished 8 and 2 days ago.
        now = dt.datetime.now(dt.UTC)
        old, recent = new_id(), new_id()
        with system.engine.begin() as conn:
            for job_id, age in ((old, 8), (recent, 2)):
                at = now - dt.timedelta(days=age)
                conn.execute(
                    sa.insert(orm.job).values(
                        id=job_id, kind="mail.send", payload={}, state="done", attempts=1,
                        run_after=at, created_at=at, finished_at=at,
                    )
                )  # fmt: skip
        env = {
            "RESIM_DATABASE_URL": system.engine.url.render_as_string(hide_password=False),
            "RESIM_DATA_DIR": str(tmp_path),
            "RESIM_SECRET_KEYS": KEY,
            "RESIM_LOG_LEVEL": "WARNING",
        }
        runner = CliRunner()
        result = runner.invoke(app, ["jobs", "prune"], env={**env, "RESIM_JOB_RETENTION_DAYS": "7"})
        assert result.exit_code == 0, result.output
        assert "1 done jobs deleted (finished more than 7 days ago)" in result.output
        assert set(job_states(system)) == {recent}
        result = runner.invoke(app, ["jobs", "prune", "--older-than-days", "1"], env=env)
        assert result.exit_code == 0 and "1 done jobs deleted" in result.output, result.output
        assert job_states(system) == {}
        refused = runner.invoke(app, ["jobs", "prune", "--older-than-days", "-1"], env=env)
        assert refused.exit_code == 2
