"""SEC-02/SEC-03: verifying a request with the combinations a channel allows, counted.

Real database (SQLite and PostgreSQL), FrozenClock, FakeMailer; the services
are called as the API calls them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.crypto import hash_secret
from resim.adapters.db import orm
from resim.bootstrap import build_context, build_engine
from resim.domain.policy import BrandPolicy
from resim.domain.security import IdentityCheck, Role, StaffUser
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, Refused, TooManyAttempts, VerificationFailed
from resim.services import repo
from resim.services.onboarding import seed
from resim.services.replacement import queries, requests
from resim.services.verification import verify_request
from resim.services.verification.verification import Evidence
from resim.settings import Settings

pytestmark = pytest.mark.integration
PIN = "4321"


def set_policy(system: System, **knobs: Any) -> None:
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen", BrandPolicy(**knobs)
        ),
    )


def subscriber_of(system: System, msisdn: str) -> Any:
    """The subscriber row's plain columns (id, replacements_frozen_at, frozen_reason)."""
    s, line = orm.subscriber, orm.line
    with system.engine.connect() as conn:
        return conn.execute(
            sa.select(s.c.id, s.c.replacements_frozen_at, s.c.frozen_reason)
            .join(line, line.c.subscriber_id == s.c.id)
            .where(line.c.msisdn == msisdn)
        ).one()


def update_subscriber(system: System, msisdn: str, **values: Any) -> None:
    with system.ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, msisdn)
        sub = repo.get_subscriber(uow, line.subscriber_id)
        for key, value in values.items():
            setattr(sub, key, value)
        uow.commit()


def request_row(system: System, request_id: str) -> Any:
    with system.engine.connect() as conn:
        t = orm.replacement_request
        return conn.execute(sa.select(t).where(t.c.id == request_id)).one()


def audit_actions(system: System, object_id: str) -> list[str]:
    with system.engine.connect() as conn:
        t = orm.audit_event
        rows = conn.execute(sa.select(t.c.action).where(t.c.object_id == object_id)).all()
    return [r.action for r in rows]


def open_with_code(
    system: System, msisdn: str, email: str, channel: str = "api"
) -> tuple[str, str]:
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged", channel=channel)
    system.run_jobs()
    return opened.id, system.code_for(email)


def add_staff(system: System, staff_id: str) -> None:
    with system.ctx.uow() as uow:
        uow.session.add(
            StaffUser(
                id=staff_id,
                username=staff_id,
                display_name=staff_id,
                role=Role.AGENT,
                password_hash="x",
                created_at=system.clock.now(),
            )
        )
        uow.commit()


def add_id_check(system: System, staff_id: str, msisdn: str, minutes: int = 30) -> None:
    now = system.clock.now()
    with system.ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, msisdn)
        uow.session.add(
            IdentityCheck(
                id=f"chk-{staff_id}-{line.id[:6]}",
                staff_id=staff_id,
                line_id=line.id,
                method="id_document",
                verified_at=now,
                expires_at=now + dt.timedelta(minutes=minutes),
                document_type="passport",
                document_last_digits="1234",
            )
        )
        uow.commit()


class TestTheChannelsCombinationsDecide:
    def test_the_e_mail_code_alone_does_not_verify_under_the_defaults(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 101, pin=PIN)
        request_id, code = open_with_code(system, msisdn, email)
        with pytest.raises(InvalidInput) as err:
            requests.submit_verification(system.ctx, request_id, otp=code)
        assert err.value.code == "VERIFICATION_INCOMPLETE"
        assert "email_otp + pin" in err.value.message
        assert request_row(system, request_id).otp_attempts == 0  # nothing checked
        assert requests.submit_verification(system.ctx, request_id, otp=code, pin=PIN) in (
            State.APPROVED,
            State.IN_REVIEW,
        )

    def test_evidence_is_recorded_without_any_secret(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 102, pin=PIN)
        request_id, code = open_with_code(system, msisdn, email)
        requests.submit_verification(system.ctx, request_id, otp=code, pin=PIN)
        row = request_row(system, request_id)
        assert row.verification_methods == ["email_otp", "pin"]
        assert [(e["method"], e["strength"]) for e in row.verification_evidence] == [
            ("email_otp", 1),
            ("pin", 1),
        ]
        dumped = json.dumps(row.verification_evidence)
        assert code not in dumped and PIN not in dumped
        assert row.otp_hash is None  # single use

    def test_open_offers_only_completable_combinations(self, system: System) -> None:
        set_policy(system)
        msisdn, _, _, _ = add_line(system, 103, pin=PIN)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        assert opened.verification_methods == (("email_otp", "pin"),)

    def test_a_subscriber_without_a_second_factor_cannot_self_serve(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 104)
        with pytest.raises(Refused) as err:
            requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        assert err.value.code == "NO_VERIFICATION_METHOD"
        system.run_jobs()
        assert system.mail.to(email) == []  # no code sent
        # ... but an agent can verify them with an identity document
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged", channel="agent")
        assert opened.verification_methods == (("id_document",),)

    def test_password_verifies_with_the_code(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 105)
        update_subscriber(system, msisdn, password_hash=hash_secret("correct horse"))
        request_id, code = open_with_code(system, msisdn, email)
        with pytest.raises(VerificationFailed):
            requests.submit_verification(system.ctx, request_id, otp=code, password="wrong")
        requests.submit_verification(system.ctx, request_id, otp=code, password="correct horse")
        assert request_row(system, request_id).verification_methods == ["email_otp", "password"]


class TestTotp:
    def test_a_current_code_verifies_and_cannot_be_replayed(self, system: System) -> None:
        set_policy(system)
        seed_ = pyotp.random_base32()
        msisdn, email, _, _ = add_line(system, 110)
        update_subscriber(system, msisdn, totp_secret=seed_)
        first, _ = open_with_code(system, msisdn, email)
        code = pyotp.TOTP(seed_).at(system.clock.now())
        requests.submit_verification(system.ctx, first, totp=code)
        assert request_row(system, first).verification_methods == ["totp"]
        with system.ctx.uow() as uow:  # close the first so a second can open
            req = repo.get_request(uow, first, lock=True)
            req.move_to(State.CANCELLED, at=system.clock.now())
            uow.commit()
        second, _ = open_with_code(system, msisdn, email)
        with pytest.raises(VerificationFailed):
            requests.submit_verification(system.ctx, second, totp=code)  # same step: replay
        system.clock.advance(dt.timedelta(seconds=31))
        requests.submit_verification(
            system.ctx, second, totp=pyotp.TOTP(seed_).at(system.clock.now())
        )


class TestAnAgentsDocumentCheck:
    def test_only_a_live_check_by_this_agent_counts(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 120)
        add_staff(system, "agent-a")
        add_staff(system, "agent-b")
        add_id_check(system, "agent-a", msisdn)
        request_id, _ = open_with_code(system, msisdn, email, channel="agent")
        with pytest.raises(VerificationFailed):
            requests.submit_verification(
                system.ctx, request_id, staff_id="agent-b", actor="staff:agent-b"
            )
        system.clock.advance(dt.timedelta(seconds=31))
        state = requests.submit_verification(
            system.ctx, request_id, staff_id="agent-a", actor="staff:agent-a"
        )
        assert state in (State.APPROVED, State.IN_REVIEW)
        evidence = request_row(system, request_id).verification_evidence
        assert evidence[0]["method"] == "id_document"
        assert evidence[0]["document_type"] == "passport"
        assert evidence[0]["document_last_digits"] == "1234"
        assert evidence[0]["by"] == "staff:agent-a"

    def test_an_expired_check_does_not_count(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 121)
        add_staff(system, "agent-c")
        add_id_check(system, "agent-c", msisdn, minutes=5)
        request_id, _ = open_with_code(system, msisdn, email, channel="agent")
        system.clock.advance(dt.timedelta(minutes=6))
        with pytest.raises(VerificationFailed):
            requests.submit_verification(system.ctx, request_id, staff_id="agent-c")

    def test_the_document_check_is_not_offered_on_self_service(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 122, pin=PIN)
        add_staff(system, "agent-d")
        add_id_check(system, "agent-d", msisdn)
        request_id, _ = open_with_code(system, msisdn, email, channel="api")
        with pytest.raises(InvalidInput):
            requests.submit_verification(system.ctx, request_id, staff_id="agent-d")


class TestBackOffAndCaps:
    def test_back_off_doubles_and_a_blocked_caller_is_not_checked(self, system: System) -> None:
        set_policy(system, otp_max_attempts=50, backoff_after_failures=3, backoff_base_seconds=30)
        msisdn, email, _, _ = add_line(system, 130, pin=PIN)
        request_id, code = open_with_code(system, msisdn, email)
        for _ in range(3):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, request_id, otp=code, pin="0000")
        with pytest.raises(TooManyAttempts) as err:  # even the right answer is not checked
            requests.submit_verification(system.ctx, request_id, otp=code, pin=PIN)
        assert err.value.retry_after == pytest.approx(30)
        assert request_row(system, request_id).otp_attempts == 3
        system.clock.advance(dt.timedelta(seconds=30))
        with pytest.raises(VerificationFailed):
            requests.submit_verification(system.ctx, request_id, otp=code, pin="0000")
        with pytest.raises(TooManyAttempts) as err:
            requests.submit_verification(system.ctx, request_id, otp=code, pin=PIN)
        assert err.value.retry_after == pytest.approx(60)
        system.clock.advance(dt.timedelta(seconds=59))
        with pytest.raises(TooManyAttempts):
            requests.submit_verification(system.ctx, request_id, otp=code, pin=PIN)
        system.clock.advance(dt.timedelta(seconds=1))
        requests.submit_verification(system.ctx, request_id, otp=code, pin=PIN)

    def test_counters_survive_a_restart(self, system: System, db_url: str, tmp_path: Any) -> None:
        set_policy(system, otp_max_attempts=50, backoff_after_failures=2, backoff_base_seconds=600)
        msisdn, email, _, _ = add_line(system, 131, pin=PIN)
        request_id, code = open_with_code(system, msisdn, email)
        for _ in range(2):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, request_id, otp=code, pin="0000")
        # A new process: new engine and context on the same database.
        settings = Settings(
            database_url=db_url,
            data_dir=tmp_path,
            secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
        )
        engine = build_engine(settings)
        try:
            ctx = build_context(
                settings,
                engine=engine,
                smdp=system.ctx.smdp,
                core=system.core,
                mailer=system.mail,
                clock=system.clock,
            )
            with pytest.raises(TooManyAttempts):
                requests.submit_verification(ctx, request_id, otp=code, pin=PIN)
        finally:
            engine.dispose()

    def test_the_account_cap_freezes_replacements_and_alerts(self, system: System) -> None:
        set_policy(system, otp_max_attempts=50, account_max_failures=4, backoff_base_seconds=0)
        msisdn, email, _, _ = add_line(system, 132, pin=PIN)
        request_id, code = open_with_code(system, msisdn, email)
        for _ in range(4):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, request_id, otp=code, pin="0000")
        sub = subscriber_of(system, msisdn)
        assert sub.replacements_frozen_at == system.clock.now()
        assert sub.frozen_reason
        with pytest.raises(Refused) as err:
            requests.submit_verification(system.ctx, request_id, otp=code, pin=PIN)
        assert err.value.code == "ACCOUNT_FROZEN"
        with system.engine.connect() as conn:
            alerts = conn.execute(sa.select(orm.alert)).all()
        assert [(a.kind, a.subject_id) for a in alerts] == [("account_frozen", sub.id)]
        assert "account.frozen" in audit_actions(system, sub.id)
        with system.ctx.uow() as uow:
            req = repo.get_request(uow, request_id, lock=True)
            req.move_to(State.CANCELLED, at=system.clock.now())
            uow.commit()
        with pytest.raises(Refused) as err:
            requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        assert err.value.code == "ACCOUNT_FROZEN"

    def test_the_source_address_ceiling_alerts_reviewers_and_blocks_nobody(
        self, system: System
    ) -> None:
        """Issue 12: one address is many people (a shop's Wi-Fi); its ceiling only alerts."""
        set_policy(system, otp_max_attempts=50, backoff_base_seconds=0)
        system.ctx.ip_max_failures = 3
        ids = []
        for n in (133, 134, 135, 136):  # four accounts, one address
            msisdn, email, _, _ = add_line(system, n, pin=PIN)
            ids.append(open_with_code(system, msisdn, email))
        for request_id, code in ids[:3]:
            with pytest.raises(VerificationFailed):
                requests.submit_verification(
                    system.ctx, request_id, otp=code, pin="0000", source_ip="198.51.100.7"
                )
        with system.engine.connect() as conn:
            kinds = [a.kind for a in conn.execute(sa.select(orm.alert))]
        assert kinds == ["brute_force"]
        for request_id, code in (ids[0], ids[3]):  # one who failed, and a fresh customer
            requests.submit_verification(
                system.ctx, request_id, otp=code, pin=PIN, source_ip="198.51.100.7"
            )


class TestStepUp:
    def _held_for_step_up(self, system: System, n: int) -> tuple[str, str]:
        set_policy(system)
        seed_ = pyotp.random_base32()
        msisdn, email, _, _ = add_line(system, n, pin=PIN)
        update_subscriber(system, msisdn, totp_secret=seed_)
        request_id, _ = open_with_code(system, msisdn, email)
        with system.ctx.uow() as uow:  # what the risk check does on STEP_UP
            req = repo.get_request(uow, request_id, lock=True)
            req.move_to(State.VERIFIED, at=system.clock.now())
            req.verification_methods = ["email_otp", "pin"]
            req.step_up_methods = ["totp"]
            uow.commit()
        return request_id, seed_

    def test_a_stronger_method_lets_the_request_go_on(self, system: System) -> None:
        request_id, seed_ = self._held_for_step_up(system, 140)
        with pytest.raises(VerificationFailed):
            verify_request.submit_step_up(system.ctx, request_id, evidence=Evidence(totp="000000"))
        code = pyotp.TOTP(seed_).at(system.clock.now())
        state = verify_request.submit_step_up(system.ctx, request_id, evidence=Evidence(totp=code))
        assert state in (State.APPROVED, State.IN_REVIEW)
        row = request_row(system, request_id)
        assert row.verification_methods == ["email_otp", "pin", "totp"]
        assert "request.stepped_up" in audit_actions(system, request_id)

    def test_a_weaker_method_is_not_a_step_up(self, system: System) -> None:
        request_id, _ = self._held_for_step_up(system, 141)
        with pytest.raises(InvalidInput):
            verify_request.submit_step_up(system.ctx, request_id, evidence=Evidence(pin=PIN))

    def test_only_a_request_held_for_step_up_takes_one(self, system: System) -> None:
        set_policy(system)
        msisdn, email, _, _ = add_line(system, 142, pin=PIN)
        request_id, _ = open_with_code(system, msisdn, email)
        with pytest.raises(Conflict):
            verify_request.submit_step_up(system.ctx, request_id, evidence=Evidence(totp="123456"))
        assert queries.get_request_view(system.ctx, request_id)["state"] == "requested"
