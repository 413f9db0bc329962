"""Issue 13, finding 4: a request waiting for a step-up expires like an unverified one.

Before the fix a verified request the risk check held for a stronger method
stayed ``verified`` for ever (130 days later still open): it held the line (new
requests refused) and, for a lost or stolen phone, the old SIM stayed barred
with nothing in progress. Over real HTTP on loopback, SQLite and PostgreSQL,
with the frozen clock moved by hand.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from identity_support import bearer, client_key
from risk_support import audit_actions, set_policy, sha256, update_subscriber
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.adapters.db.migrate import MIGRATIONS
from resim.domain.model import SimState
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.errors import Conflict
from resim.services import repo
from resim.services.replacement import queries
from resim.services.risk import review
from resim.services.verification import verify_request
from resim.services.verification.verification import Evidence

pytestmark = pytest.mark.integration

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def held_for_step_up(system: System, http: httpx.Client, n: int, reason: str) -> tuple[str, str]:
    """A request from a device the account has never used (new_device: step-up), verified
    with the e-mail code over HTTP: (request id, old IMSI). Jobs run (old SIM barred)."""
    msisdn, email, _, old_imsi = add_line(system, n)
    update_subscriber(system, msisdn, known_devices=[sha256("phone-1")])
    created = http.post(
        "/v1/requests",
        json={"msisdn": msisdn, "reason": reason, "device_id": "phone-2"},
        headers=bss(system),
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    system.run_jobs()
    verified = http.post(f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["state"] == "verified"
    view = queries.get_request_view(system.ctx, rid)
    assert view["risk"]["step_up_methods"] == ["id_document", "totp"]
    system.run_jobs()
    return rid, old_imsi


def bss(system: System) -> dict[str, str]:
    """The operator's BSS (a machine client): told 201 or why not, unlike anonymous callers."""
    return bearer(client_key(system.ctx, "requests:write"))


def sim_state(system: System, imsi: str) -> str:
    with system.engine.connect() as conn:
        return str(
            conn.execute(sa.select(orm.sim.c.state).where(orm.sim.c.imsi == imsi)).scalar_one()
        )


def jobs_of(system: System, request_id: str, kind: str) -> list[str]:
    t = orm.job
    with system.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.c.state).where(t.c.request_id == request_id, t.c.kind == kind)
            ).scalars()
        )


class TestAStepUpThatNeverComesExpires:
    def test_a_stolen_phone_request_expires_the_old_sim_stays_barred_and_the_line_is_free(
        self, system: System, http: httpx.Client
    ) -> None:
        rid, old_imsi = held_for_step_up(system, http, 4001, "stolen")
        msisdn = queries.get_request_view(system.ctx, rid)["msisdn"]
        assert system.core.is_enabled(imsi=old_imsi) is False  # stolen: barred at verification

        system.clock.advance(23 * HOUR)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "verified"
        again = http.post(
            "/v1/requests", json={"msisdn": msisdn, "reason": "stolen"}, headers=bss(system)
        )
        assert again.status_code == 409 and again.json()["code"] == "REQUEST_ALREADY_OPEN"

        system.clock.advance(2 * HOUR)  # 25 h after verification: past the 24 h window
        system.run_jobs()
        view = queries.get_request_view(system.ctx, rid)
        assert view["state"] == "expired"
        assert view["failure"]["code"] == "STEP_UP_EXPIRED"
        assert "request.expired" in audit_actions(system, rid)
        # The thief's SIM is not given back: expiry is no proof the phone was found.
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert sim_state(system, old_imsi) == SimState.SUSPENDED.value
        assert jobs_of(system, rid, "core.resume_old") == []
        kinds = [m.headers["X-Resim-Kind"] for m in system.mail.sent]
        assert kinds[-1] == "replacement_expired"
        # The step-up can no longer be given, and the line takes a new request.
        with pytest.raises(Conflict) as late:
            verify_request.submit_step_up(system.ctx, rid, evidence=Evidence(totp="123456"))
        assert late.value.code == "NOT_AWAITING_STEP_UP"
        new = http.post(
            "/v1/requests", json={"msisdn": msisdn, "reason": "stolen"}, headers=bss(system)
        )
        assert new.status_code == 201, new.text

    def test_a_brand_sets_its_own_window(self, system: System, http: httpx.Client) -> None:
        set_policy(system, step_up_window_hours=2)
        rid, old_imsi = held_for_step_up(system, http, 4002, "device_change")
        system.clock.advance(HOUR)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "verified"
        system.clock.advance(HOUR + dt.timedelta(seconds=1))
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "expired"
        assert system.core.is_enabled(imsi=old_imsi)  # device change: never barred

    def test_a_step_up_given_in_time_is_not_expired(
        self, system: System, http: httpx.Client
    ) -> None:
        rid, _ = held_for_step_up(system, http, 4003, "damaged")
        with system.ctx.uow() as uow:  # the risk check is satisfied as submit_step_up does
            req = repo.get_request(uow, rid, lock=True)
            req.verification_methods = [*req.verification_methods, "totp"]
            review.assess_and_decide(system.ctx, uow, req, system.clock.now())
            uow.commit()
        assert queries.get_request_view(system.ctx, rid)["state"] == "approved"
        system.clock.advance(48 * HOUR)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] != "expired"
        assert jobs_of(system, rid, "request.expire_step_up") == ["done"]


def _migration() -> ModuleType:
    (path,) = (MIGRATIONS / "versions").glob("*_sec_flow_step_up_expiry.py")
    spec = importlib.util.spec_from_file_location("step_up_expiry_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestRequestsStuckBeforeTheFix:
    def test_the_migration_gives_each_stuck_request_its_expiry(
        self, system: System, http: httpx.Client
    ) -> None:
        stuck, old_imsi = held_for_step_up(system, http, 4004, "lost")
        young, _ = held_for_step_up(system, http, 4005, "damaged")
        with system.engine.begin() as conn:  # as left by the code before the fix
            conn.execute(sa.delete(orm.job).where(orm.job.c.kind == "request.expire_step_up"))
            conn.execute(
                sa.update(orm.replacement_request)
                .where(orm.replacement_request.c.id == stuck)
                .values(verified_at=system.clock.now() - dt.timedelta(days=130))
            )
        system.run_jobs()
        assert queries.get_request_view(system.ctx, stuck)["state"] == "verified"

        migration = _migration()
        with system.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            migration.upgrade()
        system.run_jobs()
        assert queries.get_request_view(system.ctx, stuck)["state"] == "expired"
        assert system.core.is_enabled(imsi=old_imsi) is False  # lost: stays barred
        assert queries.get_request_view(system.ctx, young)["state"] == "verified"
        system.clock.advance(25 * HOUR)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, young)["state"] == "expired"
