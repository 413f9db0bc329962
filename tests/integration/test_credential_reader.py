"""Bearer credentials read outside a transaction (issue 16): the API's path.

``resolve_bearer(..., reader=SqlCredentialReader(read engine))`` must answer
exactly as the unit-of-work path does (``test_identity.py``), on SQLite and
PostgreSQL: same callers, same refusals, revocation and expiry seen at once.
And a customer's verification issues the session in its own transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyotp
import pytest
import sqlalchemy as sa
from identity_support import PASSWORD, client_key, enrol
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.adapters.db.credential_reader import SqlCredentialReader
from resim.adapters.db.engine import create_read_engine
from resim.errors import Unauthenticated, VerificationFailed
from resim.services.access import api_clients, sessions, staff
from resim.services.replacement import requests
from resim.services.verification import verify_request

pytestmark = pytest.mark.integration


@pytest.fixture
def reader(system: System) -> Iterator[SqlCredentialReader]:
    engine = create_read_engine(system.engine.url.render_as_string(hide_password=False))
    try:
        yield SqlCredentialReader(engine)
    finally:
        engine.dispose()


def both(system: System, reader: SqlCredentialReader, token: str) -> sessions.Caller:
    """The caller by the reader, checked equal to the unit of work's answer."""
    by_reader = sessions.resolve_bearer(system.ctx, token, reader=reader)
    assert by_reader == sessions.resolve_bearer(system.ctx, token)
    return by_reader


def refused_by_both(system: System, reader: SqlCredentialReader, token: str) -> None:
    with pytest.raises(Unauthenticated) as by_reader:
        sessions.resolve_bearer(system.ctx, token, reader=reader)
    with pytest.raises(Unauthenticated) as by_uow:
        sessions.resolve_bearer(system.ctx, token)
    assert by_reader.value.message == by_uow.value.message == sessions.INVALID_CREDENTIALS


def login(system: System, role: str, *, brand_id: str | None = None) -> tuple[str, str]:
    username, seed = enrol(system.ctx, role, brand_id=brand_id)
    code = pyotp.TOTP(seed).at(system.clock.now())
    signed_in = staff.login(system.ctx, username=username, password=PASSWORD, totp_code=code)
    return username, signed_in.session.token


def last_used(system: System) -> dt.datetime | None:
    with system.engine.connect() as conn:
        value: dt.datetime | None = conn.execute(sa.select(orm.api_client.c.last_used_at)).scalar()
    return value


class TestStaffSessions:
    def test_resolve_as_by_the_unit_of_work(
        self, system: System, reader: SqlCredentialReader
    ) -> None:
        _, token = login(system, "reviewer")
        caller = both(system, reader, token)
        assert (caller.kind, caller.role, caller.brand_id) == ("staff", "reviewer", None)
        assert caller.session_id is not None and caller.expires_at is not None

    def test_revoked_disabled_and_expired_are_refused_at_once(
        self, system: System, reader: SqlCredentialReader
    ) -> None:
        _, first = login(system, "agent")
        caller = both(system, reader, first)
        assert caller.session_id is not None
        sessions.revoke_session(system.ctx, session_id=caller.session_id, actor="test")
        refused_by_both(system, reader, first)
        system.clock.advance(dt.timedelta(minutes=1))
        username, second = login(system, "agent")
        both(system, reader, second)
        staff.disable_staff(system.ctx, username=username)
        refused_by_both(system, reader, second)
        system.clock.advance(dt.timedelta(minutes=1))
        _, third = login(system, "admin")
        both(system, reader, third)
        system.clock.advance(dt.timedelta(hours=8))
        refused_by_both(system, reader, third)
        refused_by_both(system, reader, "not-a-session-token")
        refused_by_both(system, reader, "x" * 201)


class TestMachineClients:
    def test_resolve_as_by_the_unit_of_work_and_last_used_is_written_once_a_minute(
        self, system: System, reader: SqlCredentialReader
    ) -> None:
        key = client_key(system.ctx, "requests:write", "requests:read")
        assert last_used(system) is None
        caller = sessions.resolve_bearer(system.ctx, key, reader=reader)
        assert caller.kind == "client" and caller.scopes == {"requests:write", "requests:read"}
        first = last_used(system)
        assert first == system.clock.now()
        system.clock.advance(dt.timedelta(seconds=59))
        assert both(system, reader, key) == caller
        assert last_used(system) == first
        system.clock.advance(dt.timedelta(seconds=1))
        sessions.resolve_bearer(system.ctx, key, reader=reader)
        assert last_used(system) == system.clock.now()

    def test_wrong_secret_unknown_client_and_revoked_key_are_refused(
        self, system: System, reader: SqlCredentialReader
    ) -> None:
        key = client_key(system.ctx, "requests:write")
        client_id = key.split("_")[1]
        for bad in (key[:-2] + "xx", f"rsk_{'0' * 32}_{key[-20:]}", "rsk_", "rsk_abc"):
            refused_by_both(system, reader, bad)
        both(system, reader, key)
        api_clients.revoke_client(system.ctx, client_id=client_id)
        refused_by_both(system, reader, key)


class TestCustomerVerification:
    def test_the_session_is_issued_in_the_verifications_transaction(
        self, system: System, reader: SqlCredentialReader
    ) -> None:
        msisdn, email, _, _ = add_line(system, 710)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.run_jobs()
        with pytest.raises(VerificationFailed):
            verify_request.verify_and_issue_session(system.ctx, opened.id, otp="000000")
        with system.engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(orm.auth_session)).scalar() == 0
            )
        commits: list[object] = []

        def count(conn: object) -> None:
            commits.append(conn)

        sa.event.listen(system.engine, "commit", count)
        try:
            state, issued = verify_request.verify_and_issue_session(
                system.ctx, opened.id, otp=system.code_for(email), source_ip="192.0.2.7"
            )
        finally:
            sa.event.remove(system.engine, "commit", count)
        assert len(commits) == 1
        caller = both(system, reader, issued.token)
        assert (caller.kind, caller.request_id, caller.id) == ("customer", opened.id, issued.id)
        assert caller.line_id is not None and state.value in ("approved", "in_review", "verified")
        with system.engine.connect() as conn:
            actions = list(
                conn.execute(
                    sa.select(orm.audit_event.c.action, orm.audit_event.c.detail)
                    .where(orm.audit_event.c.object_id == opened.id)
                    .order_by(orm.audit_event.c.seq)
                )
            )
        assert actions[-1].action == "session.customer.issued"
        assert actions[-1].detail["session_id"] == issued.id
        assert issued.token not in str([a.detail for a in actions])
        system.clock.advance(dt.timedelta(minutes=30))
        refused_by_both(system, reader, issued.token)
