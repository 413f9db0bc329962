"""The SIM-change lock (SEC-05, lock on) and the agent's lock override (SEC-08).

Real database (SQLite and PostgreSQL), the API over HTTP on loopback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key, signed_in, staff_session
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.model import Line
from resim.domain.security import IdentityCheck, Role, StaffUser
from resim.domain.workflow import State
from resim.entrypoints.api.access import SCOPES
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.errors import Conflict, InvalidInput, NotFound, Refused
from resim.services.access.tenancy import Scope
from resim.services.locks import locks
from resim.services.notifications import notify
from resim.services.replacement import queries, requests
from resim.services.risk import review
from resim.services.unit_of_work import new_id

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ builders


def add_staff(system: System, username: str, role: Role = Role.AGENT) -> str:
    """A staff account (no login needed here: the tests call services as that staff id)."""
    staff_id = new_id()
    with system.ctx.uow() as uow:
        uow.session.add(
            StaffUser(
                id=staff_id,
                username=username,
                display_name=username.title(),
                role=role,
                password_hash="not-a-login-in-these-tests",
                created_at=system.clock.now(),
            )
        )
        uow.commit()
    return staff_id


def add_identity_check(
    system: System,
    *,
    staff_id: str,
    msisdn: str,
    minutes: float = 30,
    method: str = "id_document",
) -> str:
    """An agent's identity check on the line, live for ``minutes`` (negative: expired)."""
    now = system.clock.now()
    check_id = new_id()
    with system.ctx.uow() as uow:
        line_id = uow.session.scalar(sa.select(orm.line.c.id).where(orm.line.c.msisdn == msisdn))
        assert line_id is not None
        uow.session.add(
            IdentityCheck(
                id=check_id,
                staff_id=staff_id,
                line_id=line_id,
                method=method,
                verified_at=now - dt.timedelta(minutes=1),
                expires_at=now + dt.timedelta(minutes=minutes),
                document_type="passport",
                document_last_digits="1234",
            )
        )
        uow.commit()
    return check_id


def set_pending_unlock(system: System, msisdn: str, at: dt.datetime) -> None:
    with system.engine.begin() as conn:
        conn.execute(
            sa.update(orm.line).where(orm.line.c.msisdn == msisdn).values(unlock_effective_at=at)
        )


def line_row(system: System, msisdn: str) -> Any:
    with system.engine.connect() as conn:
        return conn.execute(sa.select(orm.line).where(orm.line.c.msisdn == msisdn)).one()


def audit_rows(system: System, action: str) -> list[Any]:
    with system.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(orm.audit_event)
                .where(orm.audit_event.c.action == action)
                .order_by(orm.audit_event.c.seq)
            )
        )


def mail_jobs(system: System, kind: str) -> list[dict[str, Any]]:
    with system.engine.connect() as conn:
        payloads = conn.execute(
            sa.select(orm.job.c.payload).where(orm.job.c.kind == "mail.send")
        ).scalars()
        found = [p for p in payloads if p["kind"] == kind]
    assert all("to" not in p and "context" not in p for p in found)  # sealed
    return [opened(system, p) for p in found]


def opened(system: System, payload: dict[str, Any]) -> dict[str, Any]:
    """A message job's payload with its sealed recipient and context opened."""
    message = notify.open_message(system.ctx, payload)
    return {**payload, "to": message.to, "context": message.context}


def request_count(system: System) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(orm.replacement_request)).scalar()
            or 0
        )


@pytest.fixture
def api(system: System) -> Iterator[Callable[..., httpx.Client]]:
    started: list[ServerThread] = []

    def make(**kw: Any) -> httpx.Client:
        server = ServerThread(build_app(system.ctx, ApiConfig(**kw))).start()
        started.append(server)
        return httpx.Client(base_url=server.url, timeout=10)

    yield make
    for server in started:
        server.stop()


# ------------------------------------------------------------------ lock on


class TestTurningTheLockOn:
    def test_a_locked_line_refuses_requests_over_http_with_a_clear_reason(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        msisdn, _, _, _ = add_line(system, 301)
        http = api()
        key = client_key(system.ctx, "lines:lock")  # the operator's app, on the customer's behalf
        locked = http.post(f"/v1/lines/{msisdn}/lock", headers=bearer(key))
        assert locked.status_code == 200, locked.text
        body = locked.json()
        assert body["locked"] is True
        assert body["unlock_effective_at"] is None
        assert dt.datetime.fromisoformat(body["since"]) == system.clock.now()
        [event] = audit_rows(system, "line.locked")
        client_id = http.get("/v1/auth/me", headers=bearer(key)).json()["id"]
        assert event.actor == f"client:{client_id}"  # named by its credentials

        # Whoever asks is refused: the BSS with its own key is told why; an
        # anonymous caller gets the answer every number gets (issue 13, finding 15).
        bss = bearer(client_key(system.ctx, "requests:write"))
        refused = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"}, headers=bss)
        assert refused.status_code == 403
        assert refused.json()["code"] == "SIM_CHANGE_LOCKED"
        assert "SIM-change lock" in refused.json()["message"]
        anonymous = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"})
        assert anonymous.status_code == 202
        assert "lock" not in anonymous.text.lower()
        assert request_count(system) == 0

        status = http.get(f"/v1/lines/{msisdn}/lock", headers=bearer(key))
        assert status.status_code == 200
        assert status.json()["locked"] is True

    def test_the_lock_routes_need_credentials_and_a_valid_number(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        msisdn, _, _, _ = add_line(system, 302)
        http = api()
        assert http.post(f"/v1/lines/{msisdn}/lock").status_code == 401
        assert http.get(f"/v1/lines/{msisdn}/lock").status_code == 401
        forged = bearer("tok-302")  # not a key nor a session
        assert http.post(f"/v1/lines/{msisdn}/lock", headers=forged).status_code == 401
        assert http.get(f"/v1/lines/{msisdn}/lock", headers=forged).status_code == 401
        for wrong in (
            client_key(system.ctx, *(s for s in SCOPES if s != "lines:lock")),  # no lock scope
            staff_session(system.ctx, "reviewer"),
            staff_session(system.ctx, "admin"),
        ):
            assert http.post(f"/v1/lines/{msisdn}/lock", headers=bearer(wrong)).status_code == 403
            assert http.get(f"/v1/lines/{msisdn}/lock", headers=bearer(wrong)).status_code == 403
        assert line_row(system, msisdn).sim_change_locked is False
        assert audit_rows(system, "line.locked") == []
        auth = bearer(client_key(system.ctx, "lines:lock"))
        assert http.post("/v1/lines/not-a-number/lock", headers=auth).status_code == 422
        missing = http.post("/v1/lines/+4520999999/lock", headers=auth)
        assert missing.status_code == 404
        assert missing.json()["code"] == "LINE_NOT_FOUND"

    def test_locking_is_idempotent_audited_and_notified_once(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 303)
        first = locks.lock_line(system.ctx, msisdn, actor="customer")
        system.clock.advance(dt.timedelta(minutes=5))
        second = locks.lock_line(system.ctx, msisdn, actor="customer")
        assert first.locked and second.locked
        assert second.since == first.since  # the second call changed nothing

        events = audit_rows(system, "line.locked")
        assert len(events) == 1
        assert events[0].actor == "customer"
        assert events[0].object_id == line_row(system, msisdn).id
        notices = mail_jobs(system, "lock_on")
        assert len(notices) == 1
        assert notices[0]["to"] == email
        assert notices[0]["language"] == "da"
        assert notices[0]["context"]["msisdn_masked"] != msisdn  # masked, never the number

    def test_a_customer_session_may_lock_only_its_own_line(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 304)
        with pytest.raises(NotFound):
            locks.lock_line(
                system.ctx,
                msisdn,
                actor="customer",
                scope=Scope.of_customer(line_id="another-line", request_id=None),
            )
        with pytest.raises(NotFound):
            locks.lock_line(
                system.ctx, msisdn, actor="staff:x", scope=Scope.of_brand("another-brand")
            )
        assert line_row(system, msisdn).sim_change_locked is False
        assert audit_rows(system, "line.locked") == []

    def test_over_http_a_customer_session_locks_its_own_line_and_no_other(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        msisdn, email, _, _ = add_line(system, 305)
        other, _, _, _ = add_line(system, 306)
        http = api()
        bss = bearer(client_key(system.ctx, "requests:write"))
        rid = http.post(
            "/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}, headers=bss
        ).json()["id"]
        system.run_jobs()
        verified = http.post(
            f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}
        )
        assert verified.status_code == 200, verified.text
        customer = bearer(verified.json()["session_token"])

        elsewhere = http.post(f"/v1/lines/{other}/lock", headers=customer)
        assert elsewhere.status_code == 404  # as if it did not exist
        assert elsewhere.json()["code"] == "LINE_NOT_FOUND"
        assert http.get(f"/v1/lines/{other}/lock", headers=customer).status_code == 404
        assert line_row(system, other).sim_change_locked is False

        locked = http.post(f"/v1/lines/{msisdn}/lock", headers=customer)
        assert locked.status_code == 200, locked.text
        assert locked.json()["locked"] is True
        assert http.get(f"/v1/lines/{msisdn}/lock", headers=customer).json()["locked"] is True
        assert [e.actor for e in audit_rows(system, "line.locked")] == ["customer"]


class TestAPendingUnlock:
    def test_still_refuses_until_its_effective_time_and_says_when(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        msisdn, _, _, _ = add_line(system, 310)
        locks.lock_line(system.ctx, msisdn, actor="customer")
        effective = system.clock.now() + dt.timedelta(hours=24)
        set_pending_unlock(system, msisdn, effective)

        http = api()
        bss = bearer(client_key(system.ctx, "requests:write"))
        refused = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"}, headers=bss)
        assert refused.status_code == 403
        assert refused.json()["code"] == "SIM_CHANGE_LOCKED"
        assert "2026-03-02 09:00 UTC" in refused.json()["message"]
        key = bearer(client_key(system.ctx, "lines:lock"))
        status = http.get(f"/v1/lines/{msisdn}/lock", headers=key).json()
        assert status["locked"] is True
        assert dt.datetime.fromisoformat(status["unlock_effective_at"]) == effective

        system.clock.advance(dt.timedelta(hours=24) - dt.timedelta(seconds=1))
        with pytest.raises(Refused):
            requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.clock.advance(dt.timedelta(seconds=1))
        assert locks.lock_status(system.ctx, msisdn).locked is False
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        assert opened.state == State.REQUESTED

    def test_locking_again_cancels_the_pending_unlock(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 311)
        locks.lock_line(system.ctx, msisdn, actor="customer")
        set_pending_unlock(system, msisdn, system.clock.now() + dt.timedelta(hours=1))
        system.clock.advance(dt.timedelta(minutes=10))
        again = locks.lock_line(system.ctx, msisdn, actor="client:bss")
        assert again.unlock_effective_at is None
        assert line_row(system, msisdn).unlock_effective_at is None
        events = audit_rows(system, "line.locked")
        assert [e.detail["cancelled_pending_unlock"] for e in events] == [False, True]
        assert len(mail_jobs(system, "lock_on")) == 2

        system.clock.advance(dt.timedelta(hours=2))  # past the cancelled unlock time
        with pytest.raises(Refused, match="SIM-change lock"):
            requests.open_request(system.ctx, msisdn=msisdn, reason="lost")

    def test_the_risk_check_also_denies_while_the_unlock_is_pending(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 312)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        # Locked after opening, unlock pending: the lock still holds at verification.
        with system.engine.begin() as conn:
            conn.execute(
                sa.update(orm.line)
                .where(orm.line.c.msisdn == msisdn)
                .values(
                    sim_change_locked=True,
                    unlock_effective_at=system.clock.now() + dt.timedelta(hours=1),
                )
            )
        state = requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        assert state == State.REJECTED


# ------------------------------------------------------------------ lock override


OVERRIDE = locks.LockOverride("customer in store with passport; phone stolen, cannot unlock")


class TestLockOverride:
    def test_needs_a_live_identity_check_by_this_agent_on_this_line(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 320, locked=True)
        other_msisdn, _, _, _ = add_line(system, 321)
        agent = add_staff(system, "agent320")
        colleague = add_staff(system, "agent321")
        add_identity_check(system, staff_id=agent, msisdn=msisdn, minutes=-1)  # expired
        add_identity_check(system, staff_id=colleague, msisdn=msisdn)  # someone else's
        add_identity_check(system, staff_id=agent, msisdn=other_msisdn)  # another line

        def attempt() -> None:
            requests.open_request(
                system.ctx,
                msisdn=msisdn,
                reason="stolen",
                channel="agent",
                actor=f"staff:{agent}",
                lock_override=OVERRIDE,
            )

        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.code == "IDENTITY_CHECK_REQUIRED"
        assert request_count(system) == 0
        assert audit_rows(system, "request.lock_override") == []

        add_identity_check(system, staff_id=agent, msisdn=msisdn)
        attempt()
        assert request_count(system) == 1

    def test_only_an_agent_with_a_justification_may_override(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 322, locked=True)
        unlocked, _, _, _ = add_line(system, 323)
        agent = add_staff(system, "agent322")
        add_identity_check(system, staff_id=agent, msisdn=msisdn)
        add_identity_check(system, staff_id=agent, msisdn=unlocked)
        cases: list[tuple[dict[str, Any], type[Exception], str]] = [
            ({"channel": "api", "actor": f"staff:{agent}"}, Refused, "LOCK_OVERRIDE_AGENT_ONLY"),
            ({"channel": "agent", "actor": "bss"}, Refused, "LOCK_OVERRIDE_AGENT_ONLY"),
            (
                {"channel": "agent", "actor": f"staff:{agent}", "lock_override": OVERRIDE},
                Conflict,
                "LOCK_NOT_ON",
            ),
            (
                {
                    "channel": "agent",
                    "actor": f"staff:{agent}",
                    "lock_override": locks.LockOverride("   "),
                },
                InvalidInput,
                "JUSTIFICATION_REQUIRED",
            ),
        ]
        for kw, error, code in cases:
            target = unlocked if code == "LOCK_NOT_ON" else msisdn
            kw.setdefault("lock_override", OVERRIDE)
            with pytest.raises(error) as raised:
                requests.open_request(system.ctx, msisdn=target, reason="lost", **kw)
            assert raised.value.code == code  # type: ignore[attr-defined]
        assert request_count(system) == 0

    def test_is_always_held_for_two_reviewers_and_audited(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 324, locked=True)
        agent = add_staff(system, "agent324")
        check = add_identity_check(system, staff_id=agent, msisdn=msisdn)
        opened = requests.open_request(
            system.ctx,
            msisdn=msisdn,
            reason="stolen",
            channel="agent",
            actor=f"staff:{agent}",
            lock_override=OVERRIDE,
        )
        system.run_jobs()
        # The lock goes off before verification: the override is still never auto-approved.
        with system.engine.begin() as conn:
            conn.execute(
                sa.update(orm.line)
                .where(orm.line.c.msisdn == msisdn)
                .values(sim_change_locked=False)
            )
        state = requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        assert state == State.IN_REVIEW

        with system.engine.connect() as conn:
            row = conn.execute(
                sa.select(orm.replacement_request).where(orm.replacement_request.c.id == opened.id)
            ).one()
        assert row.lock_override is True
        assert row.required_approvals == 2
        view = queries.get_request_view(system.ctx, opened.id)
        reasons = [r for r in view["risk"]["reasons"] if r["rule"] == "sim_change_lock"]
        assert reasons and reasons[0]["reason"].startswith(f"lock override by agent staff:{agent}")
        assert reasons[0]["outcome"] == "review"
        [event] = audit_rows(system, "request.lock_override")
        assert event.actor == f"staff:{agent}"
        assert event.detail["identity_check"] == check
        assert event.detail["justification"] == OVERRIDE.justification
        with pytest.raises(Refused):  # the agent who opened it cannot approve it
            review.review(system.ctx, opened.id, reviewer=f"staff:{agent}", approve_it=True)

    def test_on_a_still_locked_line_the_lock_rule_yields_review_not_deny(
        self, system: System
    ) -> None:
        msisdn, email, _, _ = add_line(system, 325, locked=True)
        agent = add_staff(system, "agent325")
        add_identity_check(system, staff_id=agent, msisdn=msisdn)
        opened = requests.open_request(
            system.ctx,
            msisdn=msisdn,
            reason="lost",
            channel="agent",
            actor=f"staff:{agent}",
            lock_override=OVERRIDE,
        )
        system.run_jobs()
        state = requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        assert state == State.IN_REVIEW  # not denied by the lock rule, not approved either

    def test_over_http_the_agent_override_opens_and_without_a_check_is_refused(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        msisdn, _, _, _ = add_line(system, 326, locked=True)
        token, agent = signed_in(system.ctx, "agent")
        session = bearer(token)
        colleague = add_staff(system, "agent327")
        http = api()
        body = {
            "msisdn": msisdn,
            "reason": "stolen",
            "channel": "agent",
            "lock_override": True,
            "justification": OVERRIDE.justification,
        }
        assert http.post("/v1/requests", json=body).status_code == 403  # anonymous: no agent
        bss = bearer(client_key(system.ctx))  # a machine client with every scope
        assert http.post("/v1/requests", json=body, headers=bss).status_code == 403
        as_api = http.post("/v1/requests", json={**body, "channel": "api"}, headers=bss)
        assert as_api.status_code == 403
        assert as_api.json()["code"] == "LOCK_OVERRIDE_AGENT_ONLY"

        # Naming a colleague who has a live check does not borrow their check:
        # the actor is the signed-in agent, whatever the body says.
        add_identity_check(system, staff_id=colleague, msisdn=msisdn)
        spoofed = {**body, "actor": f"staff:{colleague}"}
        refused = http.post("/v1/requests", json=spoofed, headers=session)
        assert refused.status_code == 403
        assert refused.json()["code"] == "IDENTITY_CHECK_REQUIRED"
        missing = http.post("/v1/requests", json={**body, "justification": None}, headers=session)
        assert missing.status_code == 422
        assert request_count(system) == 0

        checked = http.post(
            "/v1/identity-checks",
            json={"msisdn": msisdn, "document_type": "passport", "last_digits": "1234"},
            headers=session,
        )
        assert checked.status_code == 201, checked.text
        created = http.post("/v1/requests", json=spoofed, headers=session)
        assert created.status_code == 201, created.text
        with system.ctx.uow() as uow:
            line = uow.session.scalars(sa.select(Line).where(orm.line.c.msisdn == msisdn)).one()
            assert line.sim_change_locked is True  # the override leaves the lock on
        [event] = audit_rows(system, "request.lock_override")
        assert event.actor == f"staff:{agent}"
        assert event.detail["identity_check"] == checked.json()["id"]
