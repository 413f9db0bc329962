"""SEC-05: turning the SIM-change lock off needs strong verification, a notice and a delay."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.errors import Conflict, InvalidInput, Refused, VerificationFailed
from resim.services import repo
from resim.services.locks import unlock
from resim.services.notifications import notify
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.replacement import requests
from resim.services.verification.verification import Evidence

pytestmark = pytest.mark.integration
PIN = "8642"


def set_policy(system: System, **knobs: Any) -> None:
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen", BrandPolicy(**knobs)
        ),
    )


def line_row(system: System, msisdn: str) -> Any:
    with system.engine.connect() as conn:
        return conn.execute(sa.select(orm.line).where(orm.line.c.msisdn == msisdn)).one()


def mail_jobs(system: System) -> list[dict[str, Any]]:
    with system.engine.connect() as conn:
        rows = conn.execute(sa.select(orm.job.c.payload).where(orm.job.c.kind == "mail.send")).all()
    out = []
    for r in rows:
        message = notify.open_message(system.ctx, r.payload)  # recipient and context: sealed
        out.append({**r.payload, "to": message.to, "context": message.context})
    return out


def locked_line(system: System, n: int) -> tuple[str, str]:
    set_policy(system, unlock_delay_hours=24)
    msisdn, email, _, _ = add_line(system, n, pin=PIN, locked=True)
    return msisdn, email


def unlock_code(system: System, msisdn: str, email: str) -> str:
    started = unlock.start_unlock(system.ctx, msisdn)
    assert started.code_sent
    assert ("email_otp", "pin") in started.methods
    system.run_jobs()
    return system.code_for(email)


class TestUnlocking:
    def test_the_unlock_takes_effect_only_after_the_delay(self, system: System) -> None:
        msisdn, email = locked_line(system, 201)
        code = unlock_code(system, msisdn, email)
        scheduled = unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code, pin=PIN))
        start = system.clock.now()
        assert scheduled.effective_at == start + dt.timedelta(hours=24)

        # The customer is told at once (no code in the notice).
        notices = [p for p in mail_jobs(system) if p["kind"] == "unlock_requested"]
        assert len(notices) == 1 and notices[0]["to"] == email
        assert code not in str(notices[0]) and PIN not in str(notices[0])

        # Before the effective time: the lock holds and jobs do not run early.
        system.clock.advance(dt.timedelta(hours=23, minutes=59))
        jobs.run_due_jobs(system.ctx)
        with system.ctx.uow() as uow:
            assert repo.get_line_by_msisdn(uow, msisdn).is_locked(system.clock.now())
        assert line_row(system, msisdn).sim_change_locked is True

        # After it: the job clears the lock and tells the customer.
        system.clock.advance(dt.timedelta(minutes=1))
        jobs.run_due_jobs(system.ctx)
        row = line_row(system, msisdn)
        assert row.sim_change_locked is False and row.unlock_effective_at is None
        assert [p["kind"] for p in mail_jobs(system)].count("unlock_effective") == 1
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        assert opened.id

    def test_the_e_mail_code_alone_does_not_unlock(self, system: System) -> None:
        msisdn, email = locked_line(system, 202)
        code = unlock_code(system, msisdn, email)
        with pytest.raises(InvalidInput) as err:
            unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code))
        assert err.value.code == "VERIFICATION_INCOMPLETE"
        assert line_row(system, msisdn).unlock_effective_at is None

    def test_a_wrong_pin_is_counted_and_the_code_stays_unused(self, system: System) -> None:
        msisdn, email = locked_line(system, 203)
        code = unlock_code(system, msisdn, email)
        with pytest.raises(VerificationFailed):
            unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code, pin="0000"))
        with system.engine.connect() as conn:
            t = orm.attempt_counter
            keys = {r.key: r.failures for r in conn.execute(sa.select(t))}
        line_id = line_row(system, msisdn).id
        assert keys[f"unlock:{line_id}"] == 1
        assert any(k.startswith("account:") for k in keys)
        assert line_row(system, msisdn).unlock_effective_at is None
        unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code, pin=PIN))

    def test_the_code_is_single_use_and_expires(self, system: System) -> None:
        msisdn, email = locked_line(system, 204)
        code = unlock_code(system, msisdn, email)
        system.clock.advance(dt.timedelta(minutes=11))
        with pytest.raises(VerificationFailed, match="expired"):
            unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code, pin=PIN))

    def test_locking_again_cancels_a_pending_unlock(self, system: System) -> None:
        msisdn, email = locked_line(system, 205)
        code = unlock_code(system, msisdn, email)
        unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code, pin=PIN))
        with system.ctx.uow() as uow:  # what lock_line does: clear the pending unlock
            repo.get_line_by_msisdn(uow, msisdn).unlock_effective_at = None
            uow.commit()
        system.clock.advance(dt.timedelta(hours=25))
        jobs.run_due_jobs(system.ctx)
        assert line_row(system, msisdn).sim_change_locked is True

    def test_an_unlocked_or_pending_line_cannot_start_another(self, system: System) -> None:
        set_policy(system)
        msisdn, _, _, _ = add_line(system, 206, pin=PIN)
        with pytest.raises(Conflict) as err:
            unlock.start_unlock(system.ctx, msisdn)
        assert err.value.code == "NOT_LOCKED"
        msisdn, email = locked_line(system, 207)
        code = unlock_code(system, msisdn, email)
        unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code, pin=PIN))
        with pytest.raises(Conflict) as err:
            unlock.start_unlock(system.ctx, msisdn)
        assert err.value.code == "UNLOCK_PENDING"

    def test_a_frozen_account_cannot_unlock(self, system: System) -> None:
        msisdn, email = locked_line(system, 208)
        code = unlock_code(system, msisdn, email)
        with system.ctx.uow() as uow:
            line = repo.get_line_by_msisdn(uow, msisdn)
            repo.get_subscriber(uow, line.subscriber_id).replacements_frozen_at = system.clock.now()
            uow.commit()
        with pytest.raises(Refused):
            unlock.confirm_unlock(system.ctx, msisdn, evidence=Evidence(otp=code, pin=PIN))
