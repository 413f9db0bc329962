"""Throttle the one who fails (issue 12, SEC-03), in the services, on SQLite and PostgreSQL.

* The count of attempts left that the portal shows is exactly the number of
  further wrong attempts the server checks before a block (the request's
  ``otp_max_attempts`` and the account's cap both count), each tried after the
  countdown the page showed before it: a property over policies and earlier
  failures on the account.
* A source address is a ceiling that alerts, never a block of the others
  behind it; the customer who fails is still stopped.
* Staff sign-in failures are counted apart from customers' codes, both ways.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from identity_support import PASSWORD, enrol
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.errors import Conflict, Refused, TooManyAttempts, Unauthenticated, VerificationFailed
from resim.services import repo
from resim.services.access import staff
from resim.services.onboarding import seed
from resim.services.replacement import cancel, portal, requests
from resim.services.verification import attempts

pytestmark = pytest.mark.integration
ADDRESS = "198.51.100.23"
_numbers = itertools.count(7000)


def set_policy(system: System, **knobs: Any) -> BrandPolicy:
    policy = BrandPolicy(verification=email_code_alone(), **knobs)
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec("dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen", policy),
    )
    return policy


def opened(system: System) -> tuple[str, str, str]:
    """A new line with an open request: (request id, its code, msisdn)."""
    msisdn, email, _, _ = add_line(system, next(_numbers))
    made = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    system.run_jobs()
    return made.id, system.code_for(email), msisdn


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def alerts(system: System) -> list[tuple[str, str]]:
    with system.engine.connect() as conn:
        return [(a.kind, a.subject_id) for a in conn.execute(sa.select(orm.alert))]


class TestTheAttemptsLeftAreHonest:
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        otp_max=st.integers(1, 6),
        account_cap=st.integers(1, 8),
        backoff_after=st.integers(0, 4),
        base=st.sampled_from([0.0, 30.0]),
        earlier=st.integers(0, 8),
    )
    def test_the_count_shown_is_the_number_of_wrong_attempts_checked_before_a_block(
        self,
        system: System,
        otp_max: int,
        account_cap: int,
        backoff_after: int,
        base: float,
        earlier: int,
    ) -> None:
        policy = set_policy(
            system,
            otp_max_attempts=otp_max,
            account_max_failures=account_cap,
            backoff_after_failures=backoff_after,
            backoff_base_seconds=base,
        )
        rid, code, _ = opened(system)
        now = system.clock.now()
        with system.ctx.uow() as uow:  # failures on this account before this request
            sub = repo.get_request(uow, rid).subscriber_id
            limits = attempts.Limits.from_policy(policy)
            for _ in range(min(earlier, account_cap - 1)):
                attempts.record_failure(uow, [f"account:{sub}"], now, limits)
            uow.commit()
        view = portal.portal_request(system.ctx, rid)
        shown = view.attempts_left
        checked = 0
        while True:
            system.clock.advance(dt.timedelta(seconds=view.retry_in_seconds))
            try:
                requests.submit_verification(system.ctx, rid, otp=wrong(code), source_ip=ADDRESS)
            except VerificationFailed:
                checked += 1
            except TooManyAttempts as exc:
                assert exc.code != "BACKING_OFF", "the countdown shown was too short"
                break
            except (Refused, Conflict):
                break
            else:
                raise AssertionError("a wrong code verified")
            view = portal.portal_request(system.ctx, rid)
            if view.state.value == "requested":
                assert view.attempts_left == shown - checked
        assert checked == shown
        assert shown >= 1 or earlier >= account_cap - 1

    def test_the_account_cap_lowers_the_count_below_the_requests(self, system: System) -> None:
        set_policy(system, otp_max_attempts=5, account_max_failures=6, backoff_base_seconds=0)
        first, code, msisdn = opened(system)
        for _ in range(4):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, first, otp=wrong(code))
        cancel.cancel(system.ctx, first, actor="customer")
        again = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        assert portal.portal_request(system.ctx, again.id).attempts_left == 2  # not 5

    def test_the_countdown_is_the_back_off_still_to_wait(self, system: System) -> None:
        set_policy(system, otp_max_attempts=9, backoff_after_failures=2, backoff_base_seconds=30)
        rid, code, _ = opened(system)
        for _ in range(2):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, rid, otp=wrong(code))
        assert portal.portal_request(system.ctx, rid).retry_in_seconds == 30
        system.clock.advance(dt.timedelta(seconds=12.5))
        assert portal.portal_request(system.ctx, rid).retry_in_seconds == 18  # rounded up
        system.clock.advance(dt.timedelta(seconds=17.5))
        assert portal.portal_request(system.ctx, rid).retry_in_seconds == 0


class TestOneAddressIsManyPeople:
    def test_others_behind_the_address_are_not_blocked_and_the_one_who_fails_is(
        self, system: System
    ) -> None:
        set_policy(system, otp_max_attempts=5, backoff_after_failures=3, backoff_base_seconds=30)
        failing, failing_code, _ = opened(system)
        for _ in range(3):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(
                    system.ctx, failing, otp=wrong(failing_code), source_ip=ADDRESS
                )
        others = [opened(system) for _ in range(3)]
        for rid, code, _ in others[:2]:  # six failures from the address in all
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, rid, otp=wrong(code), source_ip=ADDRESS)
        with pytest.raises(TooManyAttempts):  # the one who failed backs off
            requests.submit_verification(system.ctx, failing, otp=failing_code, source_ip=ADDRESS)
        fresh, fresh_code, _ = others[2]
        requests.submit_verification(system.ctx, fresh, otp=fresh_code, source_ip=ADDRESS)
        assert alerts(system) == []  # far below the ceiling

    def test_the_ceiling_raises_one_alert_per_window(self, system: System) -> None:
        set_policy(system, otp_max_attempts=5, backoff_base_seconds=0)
        system.ctx.ip_max_failures = 4
        made = [opened(system) for _ in range(6)]
        for rid, code, _ in made[:5]:
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, rid, otp=wrong(code), source_ip=ADDRESS)
        assert alerts(system) == [("brute_force", ADDRESS)]
        rid, code, _ = made[5]
        requests.submit_verification(system.ctx, rid, otp=code, source_ip=ADDRESS)


class TestStaffSignInIsCountedApart:
    def sign_in(self, system: System, username: str, seed_: str, **kw: Any) -> Any:
        return staff.login(
            system.ctx,
            username=username,
            password=kw.get("password", PASSWORD),
            totp_code=pyotp.TOTP(seed_).at(system.clock.now()),
            source_ip=ADDRESS,
        )

    def test_customers_failures_never_lock_a_staff_member_out(self, system: System) -> None:
        set_policy(system, otp_max_attempts=5, backoff_after_failures=1, backoff_base_seconds=600)
        system.ctx.ip_max_failures = 3
        for rid, code, _ in [opened(system) for _ in range(4)]:
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, rid, otp=wrong(code), source_ip=ADDRESS)
        username, seed_ = enrol(system.ctx, "agent")
        assert self.sign_in(system, username, seed_).staff_id

    def test_staff_failures_never_block_customers(self, system: System) -> None:
        set_policy(system, otp_max_attempts=5)
        system.ctx.ip_max_failures = 3
        username, seed_ = enrol(system.ctx, "agent")
        for _ in range(3):
            with pytest.raises(Unauthenticated):
                self.sign_in(system, username, seed_, password="not the password")
        assert ("brute_force", ADDRESS) in alerts(system)  # the sign-in ceiling alerts
        with pytest.raises(TooManyAttempts):  # the staff member who failed backs off
            self.sign_in(system, username, seed_)
        rid, code, _ = opened(system)
        requests.submit_verification(system.ctx, rid, otp=code, source_ip=ADDRESS)
        other, other_seed = enrol(system.ctx, "agent")
        assert self.sign_in(system, other, other_seed).staff_id  # a colleague, same Wi-Fi
