"""Contract of the access and counter stores (resim.services.stores.access, .counters):
staff, API clients, bearer sessions and failure counters, in memory and on SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from stores_rig import MakeUow, databases, fixture_over

from resim.domain.security import ApiClient, AuthSession, Role, SessionKind, StaffUser
from resim.errors import Conflict
from resim.services.unit_of_work import new_id

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
make_uow = fixture_over(["memory", *databases()])


def staff(username: str, *, role: Role = Role.AGENT, active: bool = True) -> StaffUser:
    return StaffUser(
        id=new_id(),
        username=username,
        display_name=username.title(),
        role=role,
        password_hash="x",
        created_at=T0,
        active=active,
    )


class TestStaffStore:
    def test_accounts_are_found_by_id_and_username_and_listed_by_username(
        self, make_uow: MakeUow
    ) -> None:
        bo, al = staff("bo"), staff("al", role=Role.REVIEWER)
        with make_uow() as uow:
            uow.staff.add(bo)
            uow.staff.add(al)
            uow.commit()
        with make_uow() as uow:
            found = uow.staff.by_username("bo", lock=True)
            assert found is not None and found.id == bo.id
            assert uow.staff.by_username("nobody") is None
            assert uow.staff.get(al.id) is not None
            assert [s.username for s in uow.staff.all()] == ["al", "bo"]
            assert uow.staff.display_name(bo.id) == "Bo"
            assert uow.staff.display_name("missing") is None

    def test_a_taken_username_is_a_conflict(self, make_uow: MakeUow) -> None:
        with make_uow() as uow:
            uow.staff.add(staff("bo"))
            uow.commit()
        with make_uow() as uow, pytest.raises(Conflict) as caught:
            uow.staff.add(staff("bo"))
        assert caught.value.code == "USERNAME_TAKEN"

    def test_active_reviewers_only_and_changes_to_an_account_are_kept(
        self, make_uow: MakeUow
    ) -> None:
        with make_uow() as uow:
            for s in (
                staff("cy", role=Role.REVIEWER),
                staff("ab", role=Role.REVIEWER),
                staff("ag"),
                staff("zz", role=Role.REVIEWER, active=False),
            ):
                uow.staff.add(s)
            uow.commit()
        with make_uow() as uow:
            assert [s.username for s in uow.staff.active_reviewers()] == ["ab", "cy"]
            found = uow.staff.by_username("cy")
            assert found is not None
            found.active = False
            uow.commit()
        with make_uow() as uow:
            assert [s.username for s in uow.staff.active_reviewers()] == ["ab"]


class TestApiClientStore:
    def test_clients_are_listed_oldest_first_and_changes_are_kept(self, make_uow: MakeUow) -> None:
        young = ApiClient(
            id="c-2", name="young", secret_hash="h", scopes=["a"], created_at=T0 + dt.timedelta(1)
        )
        old = ApiClient(id="c-1", name="old", secret_hash="h", scopes=["a"], created_at=T0)
        with make_uow() as uow:
            uow.api_clients.add(young)
            uow.api_clients.add(old)
            uow.commit()
        with make_uow() as uow:
            assert [c.id for c in uow.api_clients.all()] == ["c-1", "c-2"]
            client = uow.api_clients.get("c-2", lock=True)
            assert client is not None
            client.active = False
            uow.commit()
        with make_uow() as uow:
            found = uow.api_clients.get("c-2")
            assert found is not None and found.active is False
            assert uow.api_clients.get("c-3") is None


class TestAuthSessionStore:
    def test_sessions_by_token_hash_and_only_live_ones_are_revoked(self, make_uow: MakeUow) -> None:
        bo = staff("bo")

        def session(token_hash: str, expires: dt.datetime) -> AuthSession:
            return AuthSession(
                id=new_id(),
                token_hash=token_hash,
                kind=SessionKind.STAFF,
                created_at=T0,
                expires_at=expires,
                staff_id=bo.id,
            )

        live, expired, revoked = (
            session("h-live", T0 + dt.timedelta(hours=8)),
            session("h-old", T0 - dt.timedelta(minutes=1)),
            session("h-gone", T0 + dt.timedelta(hours=8)),
        )
        revoked.revoked_at = T0 - dt.timedelta(minutes=5)
        with make_uow() as uow:
            uow.staff.add(bo)
            for s in (live, expired, revoked):
                uow.auth_sessions.add(s)
            uow.commit()
        with make_uow() as uow:
            found = uow.auth_sessions.by_token_hash("h-live")
            assert found is not None and found.id == live.id
            assert uow.auth_sessions.by_token_hash("h-none") is None
            assert uow.auth_sessions.revoke_live_of_staff(bo.id, T0) == 1
            uow.commit()
        with make_uow() as uow:
            again = uow.auth_sessions.get(live.id, lock=True)
            assert again is not None and again.revoked_at == T0
            gone = uow.auth_sessions.get(revoked.id)
            assert gone is not None and gone.revoked_at == T0 - dt.timedelta(minutes=5)


class TestAttemptCounterStore:
    def test_lock_creates_missing_counters_without_resetting_existing_ones(
        self, make_uow: MakeUow
    ) -> None:
        with make_uow() as uow:
            rows = uow.attempts.lock(["account:a", "request:r"], T0)
            assert sorted(rows) == ["account:a", "request:r"]
            assert rows["account:a"].failures == 0 and rows["account:a"].window_start == T0
            uow.attempts.save(
                "account:a",
                failures=3,
                window_start=T0,
                last_failure_at=T0,
                blocked_until=T0 + dt.timedelta(seconds=4),
            )
            uow.commit()
        later = T0 + dt.timedelta(minutes=1)
        with make_uow() as uow:
            rows = uow.attempts.lock(["account:a"], later)
            counter = rows["account:a"]
            assert (counter.failures, counter.window_start) == (3, T0)
            assert counter.blocked_until == T0 + dt.timedelta(seconds=4)
            assert counter.last_failure_at == T0

    def test_read_sees_only_existing_counters_and_clear_forgets(self, make_uow: MakeUow) -> None:
        with make_uow() as uow:
            uow.attempts.lock(["ip:1", "ip:2"], T0)
            uow.commit()
        with make_uow() as uow:
            assert sorted(uow.attempts.read(["ip:1", "ip:3"])) == ["ip:1"]
            assert uow.attempts.read([]) == {}
            uow.attempts.clear(["ip:1", "ip:9"])
            uow.attempts.clear([])
            uow.commit()
        with make_uow() as uow:
            assert sorted(uow.attempts.read(["ip:1", "ip:2"])) == ["ip:2"]
