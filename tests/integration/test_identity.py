"""Who is calling (issue 3, point 1): staff, machine clients, sessions, the agent console.

Through the services on SQLite and PostgreSQL; the HTTP side is in
``test_access_matrix.py``.
"""

from __future__ import annotations

import datetime as dt
import json

import pyotp
import pytest
import sqlalchemy as sa
from identity_support import PASSWORD, client_key, enrol
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.entrypoints.api.access import SCOPES
from resim.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from resim.services.access import api_clients, sessions, staff
from resim.services.access.tenancy import Scope
from resim.services.console import console
from resim.services.replacement import requests

pytestmark = pytest.mark.integration


def audit_rows(system: System, action: str) -> list[dict[str, object]]:
    with system.engine.connect() as conn:
        rows = conn.execute(
            sa.select(orm.audit_event.c.actor, orm.audit_event.c.detail).where(
                orm.audit_event.c.action == action
            )
        ).all()
    return [{"actor": r.actor, "detail": r.detail} for r in rows]


def totp_now(system: System, seed: str) -> str:
    return pyotp.TOTP(seed).at(system.clock.now())


class TestStaffAccounts:
    def test_enrolment_returns_the_totp_uri_once_and_stores_seed_encrypted(
        self, system: System
    ) -> None:
        seed = pyotp.random_base32()
        enrolled = staff.create_staff(
            system.ctx,
            username="Anna.Agent",
            role="agent",
            display_name="Anna",
            password=PASSWORD,
            totp_secret=seed,
        )
        assert enrolled.username == "anna.agent"
        assert enrolled.totp_uri.startswith("otpauth://totp/") and seed in enrolled.totp_uri
        with system.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT totp_secret, password_hash FROM staff_user")).one()
        assert seed not in str(row.totp_secret) and PASSWORD not in row.password_hash
        assert row.password_hash.startswith("$argon2id$")
        listed = staff.list_staff(system.ctx)
        assert [s["username"] for s in listed] == ["anna.agent"]
        assert seed not in json.dumps(listed) and "argon2" not in json.dumps(listed)
        created = audit_rows(system, "staff.created")
        assert len(created) == 1 and PASSWORD not in json.dumps(created)
        assert seed not in json.dumps(created)

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("username", "x", "INVALID_USERNAME"),
            ("username", "has space", "INVALID_USERNAME"),
            ("role", "root", "INVALID_ROLE"),
            ("password", "short", "WEAK_PASSWORD"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_is_written(
        self, system: System, field: str, value: str, code: str
    ) -> None:
        args = {"username": "bob", "role": "agent", "display_name": "Bob", "password": PASSWORD}
        args[field] = value
        with pytest.raises(InvalidInput) as caught:
            staff.create_staff(system.ctx, **args)  # type: ignore[arg-type]
        assert caught.value.code == code
        if field == "password":
            assert value not in caught.value.message
        assert staff.list_staff(system.ctx) == []

    def test_a_taken_username_is_a_conflict(self, system: System) -> None:
        username, _ = enrol(system.ctx, "agent")
        with pytest.raises(Conflict):
            staff.create_staff(
                system.ctx, username=username, role="admin", display_name="X", password=PASSWORD
            )


class TestStaffLogin:
    def test_password_and_current_totp_give_a_session_that_resolves(self, system: System) -> None:
        username, seed = enrol(system.ctx, "reviewer")
        signed_in = staff.login(
            system.ctx, username=username, password=PASSWORD, totp_code=totp_now(system, seed)
        )
        caller = sessions.resolve_bearer(system.ctx, signed_in.session.token)
        assert (caller.kind, caller.role, caller.id) == ("staff", "reviewer", signed_in.staff_id)
        assert signed_in.session.expires_at == system.clock.now() + dt.timedelta(hours=8)
        with system.engine.connect() as conn:
            stored = conn.execute(sa.select(orm.auth_session.c.token_hash)).scalar_one()
        assert stored == sessions.sha256_hex(signed_in.session.token)
        assert signed_in.session.token not in json.dumps(audit_rows(system, "staff.login"))

    @pytest.mark.parametrize("wrong", ["user", "password", "totp", "disabled"])
    def test_every_failure_is_one_generic_error_and_is_audited(
        self, system: System, wrong: str
    ) -> None:
        username, seed = enrol(system.ctx, "agent")
        code = totp_now(system, seed)
        bad_code = f"{(int(code) + 1) % 1_000_000:06d}"
        password = "not the password" if wrong == "password" else PASSWORD
        if wrong == "disabled":
            staff.disable_staff(system.ctx, username=username)
        with pytest.raises(Unauthenticated) as caught:
            staff.login(
                system.ctx,
                username="nobody" if wrong == "user" else username,
                password=password,
                totp_code=bad_code if wrong == "totp" else code,
            )
        assert caught.value.code == "LOGIN_FAILED"
        assert caught.value.message == staff.LOGIN_FAILED
        failed = audit_rows(system, "staff.login_failed")
        assert len(failed) == 1
        text = json.dumps(failed)
        assert password not in text and code not in text and bad_code not in text
        with system.engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(orm.auth_session)).scalar() == 0
            )

    def test_a_totp_code_works_once(self, system: System) -> None:
        username, seed = enrol(system.ctx, "admin")
        code = totp_now(system, seed)
        staff.login(system.ctx, username=username, password=PASSWORD, totp_code=code)
        with pytest.raises(Unauthenticated):
            staff.login(system.ctx, username=username, password=PASSWORD, totp_code=code)
        system.clock.advance(dt.timedelta(seconds=30))
        staff.login(
            system.ctx, username=username, password=PASSWORD, totp_code=totp_now(system, seed)
        )

    def test_logout_and_disable_end_sessions_and_sessions_expire(self, system: System) -> None:
        username, seed = enrol(system.ctx, "agent")
        first = staff.login(
            system.ctx, username=username, password=PASSWORD, totp_code=totp_now(system, seed)
        )
        sessions.revoke_session(system.ctx, session_id=first.session.id, actor="test")
        with pytest.raises(Unauthenticated):
            sessions.resolve_bearer(system.ctx, first.session.token)
        system.clock.advance(dt.timedelta(minutes=1))
        second = staff.login(
            system.ctx, username=username, password=PASSWORD, totp_code=totp_now(system, seed)
        )
        staff.disable_staff(system.ctx, username=username)
        with pytest.raises(Unauthenticated):
            sessions.resolve_bearer(system.ctx, second.session.token)
        other, other_seed = enrol(system.ctx, "reviewer")
        third = staff.login(
            system.ctx, username=other, password=PASSWORD, totp_code=totp_now(system, other_seed)
        )
        system.clock.advance(dt.timedelta(hours=8))
        with pytest.raises(Unauthenticated):
            sessions.resolve_bearer(system.ctx, third.session.token)


class TestMachineClients:
    def test_the_key_resolves_to_its_scopes_and_only_a_hash_is_stored(self, system: System) -> None:
        issued = api_clients.create_client(
            system.ctx, name="BSS", scopes=["requests:read"], known_scopes=SCOPES
        )
        assert issued.key.startswith(f"rsk_{issued.client_id}_")
        secret = issued.key.removeprefix(f"rsk_{issued.client_id}_")
        caller = sessions.resolve_bearer(system.ctx, issued.key)
        assert (caller.kind, caller.id, caller.scopes) == (
            "client",
            issued.client_id,
            frozenset({"requests:read"}),
        )
        with system.engine.connect() as conn:
            row = conn.execute(sa.select(orm.api_client)).one()
        assert row.secret_hash == sessions.sha256_hex(secret) and secret not in row.secret_hash
        assert row.last_used_at is not None
        listed = json.dumps(api_clients.list_clients(system.ctx))
        assert secret not in listed and row.secret_hash not in listed

    def test_wrong_secret_unknown_client_and_revoked_key_are_refused(self, system: System) -> None:
        key = client_key(system.ctx, "requests:write")
        client_id = key.split("_")[1]
        for bad in (key[:-2] + "xx", f"rsk_{'0' * 32}_{key[-20:]}", "rsk_", "rsk_abc"):
            with pytest.raises(Unauthenticated) as caught:
                sessions.resolve_bearer(system.ctx, bad)
            assert key[-20:] not in caught.value.message
        api_clients.revoke_client(system.ctx, client_id=client_id)
        with pytest.raises(Unauthenticated):
            sessions.resolve_bearer(system.ctx, key)

    def test_unknown_scopes_are_refused(self, system: System) -> None:
        with pytest.raises(InvalidInput):
            api_clients.create_client(
                system.ctx, name="x", scopes=["everything"], known_scopes=SCOPES
            )
        with pytest.raises(InvalidInput):
            api_clients.create_client(system.ctx, name="x", scopes=[], known_scopes=SCOPES)
        assert api_clients.list_clients(system.ctx) == []


class TestCustomerSessions:
    def test_issued_only_for_a_verified_request_and_bound_to_it(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 700)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.run_jobs()
        with pytest.raises(Conflict):
            sessions.issue_customer_session(system.ctx, request_id=opened.id)
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        issued = sessions.issue_customer_session(system.ctx, request_id=opened.id)
        caller = sessions.resolve_bearer(system.ctx, issued.token)
        assert (caller.kind, caller.request_id) == ("customer", opened.id)
        assert caller.line_id is not None
        system.clock.advance(dt.timedelta(minutes=30))
        with pytest.raises(Unauthenticated):
            sessions.resolve_bearer(system.ctx, issued.token)


class TestAgentConsole:
    def test_redacted_until_the_agent_checks_an_id_document(self, system: System) -> None:
        msisdn, email, _, _ = add_line(system, 710)
        agent, _ = enrol(system.ctx, "agent")
        other, _ = enrol(system.ctx, "agent")
        agent_id, other_id = (
            next(s["id"] for s in staff.list_staff(system.ctx) if s["username"] == name)
            for name in (agent, other)
        )
        before = console.line_view(system.ctx, staff_id=agent_id, msisdn=msisdn)
        assert before["redacted"] is True
        assert before["name"] == "K*** 7***" and before["email"] == "k***@e***.dk"
        assert email not in json.dumps(before) and "Kunde" not in json.dumps(before)
        with pytest.raises(InvalidInput):
            console.record_identity_check(
                system.ctx,
                staff_id=agent_id,
                msisdn=msisdn,
                document_type="passport",
                last_digits="12345",
            )
        with pytest.raises(InvalidInput):
            console.record_identity_check(
                system.ctx,
                staff_id=agent_id,
                msisdn=msisdn,
                document_type="selfie",
                last_digits="1234",
            )
        console.record_identity_check(
            system.ctx,
            staff_id=agent_id,
            msisdn=msisdn,
            document_type="passport",
            last_digits="4321",
        )
        after = console.line_view(system.ctx, staff_id=agent_id, msisdn=msisdn)
        assert after["redacted"] is False
        assert (after["name"], after["email"]) == ("Kunde 710", email)
        assert console.line_view(system.ctx, staff_id=other_id, msisdn=msisdn)["redacted"] is True
        recorded = audit_rows(system, "identity_check.recorded")
        assert len(recorded) == 1 and "4321" not in json.dumps(recorded)
        assert len(audit_rows(system, "line.viewed")) == 3
        system.clock.advance(dt.timedelta(minutes=30))
        assert console.line_view(system.ctx, staff_id=agent_id, msisdn=msisdn)["redacted"] is True

    def test_reading_an_activation_code_needs_the_agents_own_live_check(
        self, system: System
    ) -> None:
        msisdn, _, _, _ = add_line(system, 711)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        agent, _ = enrol(system.ctx, "agent")
        agent_id = staff.list_staff(system.ctx)[0]["id"]
        assert staff.list_staff(system.ctx)[0]["username"] == agent
        with pytest.raises(PermissionDenied):
            console.require_live_check_for_request(
                system.ctx, staff_id=agent_id, request_id=opened.id
            )
        console.record_identity_check(
            system.ctx,
            staff_id=agent_id,
            msisdn=msisdn,
            document_type="national_id",
            last_digits="0042",
        )
        console.require_live_check_for_request(system.ctx, staff_id=agent_id, request_id=opened.id)

    def test_a_brand_limited_agent_cannot_see_another_brands_line(self, system: System) -> None:
        msisdn, _, _, _ = add_line(system, 712)
        with pytest.raises(NotFound):
            console.line_view(
                system.ctx, staff_id="x", msisdn=msisdn, scope=Scope.of_brand("other-brand")
            )
