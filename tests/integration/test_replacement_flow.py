"""The replacement engine through its use cases, on SQLite and PostgreSQL.

Real database and built-in core network; the SM-DP+ is the in-package fake
(same core as the emulator) and mail is the FakeMailer.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.mail.fake import FakeMailer
from resim.adapters.sms.fake import FakeSmsGateway
from resim.bootstrap import build_context, build_engine
from resim.domain.activation import parse_activation_code
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.model import SimState
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.domain.workflow import State
from resim.emulator.core import SmdpCore
from resim.errors import Conflict, Refused, VerificationFailed
from resim.services.context import FrozenClock, ServiceContext
from resim.services.cutover.cutover import handle_download_progress
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.replacement import cancel, queries, requests
from resim.services.risk import review
from resim.settings import Settings

pytestmark = pytest.mark.integration


@dataclass
class System:
    ctx: ServiceContext
    smdp: SmdpCore
    mail: FakeMailer
    core: BuiltinCoreNetwork
    clock: FrozenClock
    engine: sa.Engine
    sms: FakeSmsGateway

    def run_jobs(self) -> int:
        return jobs.run_due_jobs(self.ctx)

    def code_for(self, email: str) -> str:
        mails = [m for m in self.mail.to(email) if m.headers.get("X-Resim-Kind") == "one_time_code"]
        assert mails, f"no one-time code mail to {email}"
        found = re.search(r"^\s+(\d{6})\s*$", mails[-1].text, re.M)
        assert found
        return found.group(1)

    def request_id_from_mail(self, email: str | None = None) -> str:
        """The request an anonymous caller opened (the newest code mail to ``email``,
        or to anyone): its id is in the mail's link, as the API and the portal tell
        an anonymous caller nothing (issue 13, finding 15)."""
        mails = [
            m
            for m in (self.mail.to(email) if email else self.mail.sent)
            if m.headers.get("X-Resim-Kind") == "one_time_code"
        ]
        assert mails, f"no one-time code mail to {email or 'anyone'}"
        found = re.search(r"/(?:status|c)/([0-9a-f-]+)", mails[-1].text)
        assert found, mails[-1].text
        return found.group(1)

    def install(self, request_id: str, *, fail: bool = False) -> None:
        code = parse_activation_code(
            queries.activation_view(self.ctx, request_id, reader="test", via="test")[
                "activation_code"
            ]
        )
        for note in self.smdp.download_and_install(
            code.matching_id, code.smdp_address, fail_install=fail
        ):
            handle_download_progress(self.ctx, note)


_counter = iter(range(10_000_000))


def imsi() -> str:
    return f"23801{next(_counter):010d}"


def iccid() -> str:
    return iccid_with_check_digit(f"894501{next(_counter):012d}")


@pytest.fixture
def system(db_url: str, tmp_path: object) -> Iterator[System]:
    upgrade(db_url)
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,  # type: ignore[arg-type]
        secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
    )
    engine = build_engine(settings, pool_size=10)
    clock = FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    smdp_core = SmdpCore(smdp_address="smdp.resim.test")
    mail = FakeMailer()
    core = BuiltinCoreNetwork(engine)
    sms = FakeSmsGateway()
    ctx = build_context(
        settings,
        engine=engine,
        smdp=FakeSmdpClient(smdp_core),
        core=core,
        mailer=mail,
        clock=clock,
        sms=sms,
    )
    seed.upsert_brand(
        ctx,
        seed.BrandSpec(
            "dk",
            "Nordlys Mobil",
            "DK",
            "DKK",
            "da",
            "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone()),
        ),
    )
    stock = [(iccid(), imsi()) for _ in range(5)]
    seed.add_stock(ctx, brand_id="dk", profile_type="default", profiles=stock)
    smdp_core.add_stock("default", [i for i, _ in stock])
    yield System(ctx, smdp_core, mail, core, clock, engine, sms)
    engine.dispose()


def add_line(system: System, n: int, **kw: object) -> tuple[str, str, str, str]:
    msisdn = f"+45201{n:05d}"
    sim_iccid, sim_imsi = iccid(), imsi()
    seed.add_line(
        system.ctx,
        seed.LineSpec(
            brand_id="dk",
            msisdn=msisdn,
            name=f"Kunde {n}",
            email=f"kunde{n}@example.dk",
            iccid=sim_iccid,
            imsi=sim_imsi,
            **kw,
        ),
    )  # type: ignore[arg-type]
    return msisdn, f"kunde{n}@example.dk", sim_iccid, sim_imsi


class TestAnEsimReplacementGoesFromRequestToCutOver:
    def test_lost_phone_end_to_end(self, system: System) -> None:
        msisdn, email, old_iccid, old_imsi = add_line(system, 1)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        # one transaction queues both: they may be sent in either order
        kinds = sorted(m.headers["X-Resim-Kind"] for m in system.mail.to(email))
        assert kinds == ["one_time_code", "replacement_requested"]

        state = requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        assert state == State.APPROVED
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "ready"
        assert view["old_sim_suspended"] is True
        assert system.core.is_enabled(imsi=old_imsi) is False  # lost: suspended at once
        assert system.core.imsi_of(msisdn=msisdn) == old_imsi  # number not moved yet

        system.install(opened.id)
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "completed"
        new_iccid = view["new_iccid"]
        with system.ctx.uow() as uow:
            new_imsi = uow.session.execute(
                sa.select(orm.sim.c.imsi).where(orm.sim.c.iccid == new_iccid)
            ).scalar_one()
            states = dict(
                uow.session.execute(
                    sa.select(orm.sim.c.iccid, orm.sim.c.state).where(
                        orm.sim.c.iccid.in_([old_iccid, new_iccid])
                    )
                ).all()
            )
        assert system.core.imsi_of(msisdn=msisdn) == new_imsi
        assert system.core.is_enabled(imsi=new_imsi)
        assert states == {old_iccid: SimState.RETIRED, new_iccid: SimState.ACTIVE}
        assert view["sim_change"]["old_iccid"] == old_iccid
        assert view["sim_change"]["new_iccid"] == new_iccid
        kinds = [m.headers["X-Resim-Kind"] for m in system.mail.to(email)]
        assert kinds[-2:] == ["esim_ready", "replacement_completed"]

    def test_device_change_keeps_old_sim_working_until_install(self, system: System) -> None:
        msisdn, email, _, old_imsi = add_line(system, 2)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi)
        system.install(opened.id)
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "completed"

    def test_activation_code_is_encrypted_at_rest(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 3)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        code = queries.activation_view(system.ctx, opened.id, reader="test", via="test")[
            "activation_code"
        ]
        with system.engine.connect() as conn:
            stored = conn.execute(sa.select(orm.replacement_request.c.activation_code_enc)).scalar()
        assert (
            stored and code not in stored and parse_activation_code(code).matching_id not in stored
        )
        assert all(code not in m.text for m in system.mail.sent)


class TestVerificationAndRisk:
    def test_wrong_codes_are_counted_and_the_limit_rejects(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 10)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        right = system.code_for(email)
        wrong = "000000" if right != "000000" else "111111"
        for _ in range(4):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, opened.id, otp=wrong)
            system.clock.advance(dt.timedelta(seconds=61))  # past the SEC-03 back-off
        with pytest.raises(VerificationFailed):
            requests.submit_verification(system.ctx, opened.id, otp=wrong)
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "rejected"
        with pytest.raises(Conflict):
            requests.submit_verification(system.ctx, opened.id, otp=right)

    def test_expired_code_is_refused(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 11)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        system.clock.advance(dt.timedelta(minutes=11))
        with pytest.raises(VerificationFailed, match="expired"):
            requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))

    def test_pin_is_required_where_policy_asks(self, system: System) -> None:
        seed.upsert_brand(
            system.ctx,
            seed.BrandSpec(
                "dk",
                "Nordlys Mobil",
                "DK",
                "DKK",
                "da",
                "Europe/Copenhagen",
                BrandPolicy(require_pin=True, verification=email_code_alone()),
            ),
        )
        msisdn, email, _, _ = add_line(system, 12, pin="4321")
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        assert opened.verification_methods == (("email_otp", "pin"),)
        system.run_jobs()
        with pytest.raises(VerificationFailed):
            requests.submit_verification(
                system.ctx, opened.id, otp=system.code_for(email), pin="1111"
            )
        assert (
            requests.submit_verification(
                system.ctx, opened.id, otp=system.code_for(email), pin="4321"
            )
            == State.APPROVED
        )

    def test_locked_line_is_refused_and_nothing_is_written(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 13, locked=True)
        with pytest.raises(Refused, match="SIM-change lock"):
            requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        with system.engine.connect() as conn:
            assert (
                conn.execute(
                    sa.select(sa.func.count()).select_from(orm.replacement_request)
                ).scalar()
                == 0
            )

    def test_recent_email_change_holds_for_review_and_reviewer_decides(
        self, system: System
    ) -> None:
        msisdn, email, _, _ = add_line(system, 14, email_changed_at=system.clock.now())
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost", actor="agent-7")
        system.run_jobs()
        assert (
            requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
            == State.IN_REVIEW
        )
        view = queries.get_request_view(system.ctx, opened.id)
        assert [r["rule"] for r in view["risk"]["reasons"]] == ["recent_email_change"]
        with pytest.raises(Refused):
            review.review(system.ctx, opened.id, reviewer="agent-7", approve_it=True)
        assert (
            review.review(system.ctx, opened.id, reviewer="rev-1", approve_it=True)
            == State.APPROVED
        )
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "ready"

    def test_replacement_within_window_is_held(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 15)
        first = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.run_jobs()
        requests.submit_verification(system.ctx, first.id, otp=system.code_for(email))
        system.run_jobs()
        system.install(first.id)
        system.run_jobs()
        second = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        assert (
            requests.submit_verification(system.ctx, second.id, otp=system.code_for(email))
            == State.IN_REVIEW
        )


class TestCancelExpireAndFailures:
    def test_not_me_link_cancels_once_and_the_stolen_sim_stays_barred(self, system: System) -> None:
        """Issue 12: whoever holds the stolen phone may read the mailbox the link went to,
        so "not me" cancels the request but never gives the SIM back (the loss report
        stands until a cut-over or a strongly verified "I found my phone")."""
        msisdn, email, _, old_imsi = add_line(system, 20)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False
        notice = next(
            m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "replacement_requested"
        )
        token = re.search(r"/not-me/([A-Za-z0-9_-]+)", notice.text)
        assert token
        cancel.cancel_by_token(system.ctx, token.group(1))
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "cancelled"
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert system.core.imsi_of(msisdn=msisdn) == old_imsi
        with pytest.raises(Exception, match="not valid"):
            cancel.cancel_by_token(system.ctx, token.group(1))
        cancelled = [p for p in system.smdp.profiles() if p.state.value == "Available"]
        assert len(cancelled) == 5  # the ordered profile went back to stock

    def test_unused_activation_code_expires_and_order_is_cancelled(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 21)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        system.clock.advance(dt.timedelta(hours=73))
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "expired"
        assert system.smdp.profile(view["new_iccid"]).state.value == "Available"
        with pytest.raises(Conflict, match="expired"):
            queries.activation_view(system.ctx, opened.id, reader="test", via="test")

    def test_no_stock_fails_visibly(self, system: System) -> None:
        with system.ctx.uow() as uow:
            uow.session.execute(
                sa.update(orm.sim)
                .where(orm.sim.c.state == SimState.IN_STOCK)
                .values(state=SimState.RETIRED)
            )
            uow.commit()
        msisdn, email, _, _ = add_line(system, 22)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "failed"
        assert view["failure"]["code"] == "NO_STOCK"


class TestConcurrency:
    def test_two_concurrent_requests_for_one_line_exactly_one_opens(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 30)
        barrier = threading.Barrier(2)
        results: list[str] = []

        def attempt() -> None:
            barrier.wait()
            try:
                requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
                results.append("opened")
            except Conflict:
                results.append("conflict")

        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["conflict", "opened"]

    def test_database_refuses_a_second_open_request_even_without_the_check(
        self, system: System
    ) -> None:
        msisdn, _, _, _ = add_line(system, 31)
        requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        with system.ctx.uow() as uow:
            row = uow.session.execute(sa.select(orm.replacement_request)).mappings().one()
            clone = dict(row)
            clone["id"] = "x" * 32
            clone["not_me_token_hash"] = None
            with pytest.raises(sa.exc.IntegrityError):
                uow.session.execute(sa.insert(orm.replacement_request).values(**clone))
                uow.flush()


class TestReissue:
    def test_failed_download_is_reissued_with_a_fresh_profile(self, system: System) -> None:
        from resim.services.replacement.reissue import reissue

        msisdn, email, _, _ = add_line(system, 40)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="profile_deleted")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        first = queries.get_request_view(system.ctx, opened.id)["new_iccid"]
        system.install(opened.id, fail=True)
        assert queries.get_request_view(system.ctx, opened.id)["install_failed_at"] is not None
        assert reissue(system.ctx, opened.id, actor="agent-3") == State.PROVISIONING
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "ready" and view["new_iccid"] != first
        assert system.smdp.profile(first).state.value == "Error"
        with system.ctx.uow() as uow:
            burned = uow.session.execute(
                sa.select(orm.sim.c.state).where(orm.sim.c.iccid == first)
            ).scalar_one()
        assert burned == SimState.RETIRED
        system.install(opened.id)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "completed"
        with pytest.raises(Conflict, match="installed"):
            reissue(system.ctx, opened.id, actor="agent-3")
