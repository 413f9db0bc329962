"""SEC-06/07/08 after the risk check, on SQLite and PostgreSQL: four eyes, cooling-off,
the per-agent rate limit (over real HTTP) and the post-swap holds at cut-over."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key, signed_in
from risk_support import audit_actions, new_line, set_policy, sha256, update_subscriber, verify
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.db import orm
from resim.domain.model import Subscriber
from resim.domain.workflow import State
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.errors import ExternalError, Refused
from resim.services import repo
from resim.services.replacement import queries, requests
from resim.services.risk import review

pytestmark = pytest.mark.integration
HOUR = dt.timedelta(hours=1)


def _held_for_two(system: System, n: int, actor: str = "staff:a1") -> str:
    msisdn, email = new_line(system, n)
    update_subscriber(system, msisdn, fraud_flags=1)  # prior_fraud_flag is a four-eyes rule
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost", actor=actor)
    assert verify(system, opened.id, email) == State.IN_REVIEW
    return opened.id


class TestFourEyes:
    def test_two_distinct_approvers_are_needed_and_self_and_duplicate_are_refused(
        self, system: System
    ) -> None:
        rid = _held_for_two(system, 300)
        assert queries.get_request_view(system.ctx, rid)["review"]["required_approvals"] == 2
        with pytest.raises(Refused) as own:
            review.review(system.ctx, rid, reviewer="staff:a1", approve_it=True)
        assert own.value.code == "SELF_REVIEW"
        with pytest.raises(Refused):  # a bare id is a staff id: still the creator
            review.review(system.ctx, rid, reviewer="a1", approve_it=True)
        assert review.review(system.ctx, rid, reviewer="staff:r1", approve_it=True) == (
            State.IN_REVIEW
        )
        (queued,) = queries.list_requests(system.ctx, state="in_review")
        assert queued["review"]["approvals"][0]["by"] == "staff:r1"
        assert queued["review"]["required_approvals"] == 2
        with pytest.raises(Refused) as twice:
            review.review(system.ctx, rid, reviewer="r1", approve_it=True)
        assert twice.value.code == "DUPLICATE_APPROVAL"
        assert review.review(system.ctx, rid, reviewer="staff:r2", approve_it=True) == (
            State.APPROVED
        )
        view = queries.get_request_view(system.ctx, rid)
        assert [a["by"] for a in view["review"]["approvals"]] == ["staff:r1", "staff:r2"]
        assert "request.approval_recorded" in audit_actions(system, rid)

    def test_one_rejection_rejects_even_after_an_approval(self, system: System) -> None:
        rid = _held_for_two(system, 301)
        review.review(system.ctx, rid, reviewer="staff:r1", approve_it=True)
        assert review.review(system.ctx, rid, reviewer="staff:r2", approve_it=False) == (
            State.REJECTED
        )

    def test_a_lock_override_needs_two_approvers_even_without_findings(
        self, system: System
    ) -> None:
        msisdn, email = new_line(system, 302)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        with system.ctx.uow() as uow:
            repo.get_request(uow, opened.id, lock=True).lock_override = True
            uow.commit()
        assert verify(system, opened.id, email) == State.IN_REVIEW
        review.review(system.ctx, opened.id, reviewer="staff:r1", approve_it=True)
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "in_review"

    def test_an_ordinary_review_needs_one_approver(self, system: System) -> None:
        msisdn, email = new_line(system, 303)
        update_subscriber(system, msisdn, address_changed_at=system.clock.now())
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        assert verify(system, opened.id, email) == State.IN_REVIEW
        assert review.review(system.ctx, opened.id, reviewer="r1", approve_it=True) == (
            State.APPROVED
        )

    def test_the_queue_is_oldest_first(self, system: System) -> None:
        first = _held_for_two(system, 304)
        system.clock.advance(dt.timedelta(minutes=5))
        second = _held_for_two(system, 305)
        assert [r["id"] for r in queries.list_requests(system.ctx, state="in_review")] == [
            first,
            second,
        ]


def _provision_jobs(system: System, rid: str) -> list[tuple[str, dt.datetime]]:
    j = orm.job
    with system.engine.connect() as conn:
        rows = conn.execute(
            sa.select(j.c.state, j.c.run_after).where(
                j.c.request_id == rid, j.c.kind == "esim.provision"
            )
        ).all()
    return [(r.state, r.run_after) for r in rows]


class TestCoolingOff:
    def test_no_provisioning_before_the_cooling_off_ends(self, system: System) -> None:
        set_policy(system, cooling_off_hours={"lost": 2})
        msisdn, email = new_line(system, 310)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        approved_at = system.clock.now()
        assert verify(system, opened.id, email) == State.APPROVED
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["cooling_off_until"] == (approved_at + 2 * HOUR).isoformat()
        assert _provision_jobs(system, opened.id) == [("pending", approved_at + 2 * HOUR)]
        system.clock.advance(2 * HOUR - dt.timedelta(seconds=1))
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "approved"
        system.clock.advance(dt.timedelta(seconds=1))
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "ready"

    def test_a_reason_without_cooling_off_is_ordered_at_once(self, system: System) -> None:
        set_policy(system, cooling_off_hours={"lost": 2})
        msisdn, email = new_line(system, 311)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        assert verify(system, opened.id, email) == State.APPROVED
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "ready"

    def test_a_provision_job_run_early_defers_itself(self, system: System) -> None:
        set_policy(system, cooling_off_hours={"stolen": 1})
        msisdn, email = new_line(system, 312)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        now = system.clock.now()
        assert verify(system, opened.id, email) == State.APPROVED
        with system.ctx.uow() as uow:
            uow.enqueue("esim.provision", at=now, request_id=opened.id)  # no delay: too early
            uow.commit()
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "approved"
        pending = [r for r in _provision_jobs(system, opened.id) if r[0] == "pending"]
        assert [run_after for _, run_after in pending] == [now + HOUR]


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


class TestPerAgentRateLimit:
    def test_over_the_limit_is_429_with_one_alert(self, system: System, http: httpx.Client) -> None:
        set_policy(system, agent_max_requests_per_hour=2)
        lines = [new_line(system, 320 + i)[0] for i in range(6)]
        a1_token, a1 = signed_in(system.ctx, "agent")
        a2_token, a2 = signed_in(system.ctx, "agent")

        def create(msisdn: str, token: str, **extra: str) -> httpx.Response:
            body = {"msisdn": msisdn, "reason": "lost", "channel": "agent", **extra}
            return http.post("/v1/requests", json=body, headers=bearer(token))

        assert [create(m, a1_token).status_code for m in lines[:2]] == [201, 201]
        refused = create(lines[2], a1_token)
        assert refused.status_code == 429
        assert refused.json()["code"] == "AGENT_RATE_LIMIT"
        assert int(refused.headers["retry-after"]) == 3600
        assert create(lines[3], a1_token).status_code == 429
        # The actor is the session's agent: naming a colleague in the body does not escape.
        assert create(lines[3], a1_token, actor=f"staff:{a2}").status_code == 429
        assert create(lines[3], a2_token).status_code == 201  # another agent is not limited
        with system.engine.connect() as conn:
            alerts = conn.execute(sa.select(orm.alert.c.kind, orm.alert.c.subject_id)).all()
            opened = sorted(conn.execute(sa.select(orm.replacement_request.c.actor)).scalars())
        assert [tuple(a) for a in alerts] == [("agent_rate_limit", a1)]
        assert opened == sorted([f"staff:{a1}", f"staff:{a1}", f"staff:{a2}"])  # refused: none
        system.clock.advance(HOUR)
        assert create(lines[4], a1_token).status_code == 201

    def test_origin_fields_are_validated_and_the_device_is_stored_hashed(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _ = new_line(system, 330)
        bss = bearer(client_key(system.ctx, "requests:write", "requests:read"))
        body = {"msisdn": msisdn, "reason": "lost", "country": "Denmark"}
        assert http.post("/v1/requests", json=body, headers=bss).status_code == 422
        body = {"msisdn": msisdn, "reason": "lost", "country": "dk", "device_id": "IMEI-35-1"}
        created = http.post("/v1/requests", json=body, headers=bss)
        assert created.status_code == 201
        assert "IMEI-35-1" not in created.text
        view = http.get(f"/v1/requests/{created.json()['id']}", headers=bss)
        assert view.status_code == 200, view.text
        assert view.json()["country"] == "DK"
        assert "IMEI-35-1" not in view.text and sha256("IMEI-35-1") not in view.text
        with system.engine.connect() as conn:
            stored = conn.execute(sa.select(orm.replacement_request.c.device_id)).scalar()
        assert stored == sha256("IMEI-35-1")


class TestPostSwapHolds:
    def test_the_core_network_gets_the_holds_at_cut_over(self, system: System) -> None:
        set_policy(system, sms_hold_hours=24, port_out_block_days=7)
        msisdn, email = new_line(system, 340)
        opened = requests.open_request(
            system.ctx, msisdn=msisdn, reason="damaged", device_id="phone-9", country="SE"
        )
        update_subscriber(system, msisdn, known_devices=[sha256("phone-9")])
        update_subscriber(system, msisdn, known_countries=["SE"])
        assert verify(system, opened.id, email) == State.APPROVED
        system.run_jobs()
        installed_at = system.clock.now()
        system.install(opened.id)
        system.clock.advance(dt.timedelta(minutes=3))
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "completed"
        new_imsi = system.core.imsi_of(msisdn=msisdn)
        assert new_imsi is not None
        sub = system.core.subscriber(imsi=new_imsi)
        assert sub is not None
        assert sub.sms_hold_until == installed_at + 24 * HOUR
        assert sub.port_out_block_until == installed_at + dt.timedelta(days=7)

    def test_zero_means_no_hold(self, system: System) -> None:
        set_policy(system, sms_hold_hours=0, port_out_block_days=0)
        msisdn, email = new_line(system, 341)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        verify(system, opened.id, email)
        system.run_jobs()
        system.install(opened.id)
        system.run_jobs()
        sub = system.core.subscriber(imsi=system.core.imsi_of(msisdn=msisdn) or "")
        assert sub is not None and (sub.sms_hold_until, sub.port_out_block_until) == (None, None)

    def test_a_completed_swap_remembers_its_device_and_country(self, system: System) -> None:
        msisdn, email = new_line(system, 342)
        opened = requests.open_request(
            system.ctx, msisdn=msisdn, reason="damaged", device_id="phone-5", country="NO"
        )
        verify(system, opened.id, email)  # new device and country: step-up needed
        with system.ctx.uow() as uow:
            req = repo.get_request(uow, opened.id, lock=True)
            req.verification_methods = [*req.verification_methods, "id_document"]
            review.assess_and_decide(system.ctx, uow, req, system.clock.now())
            uow.commit()
        system.run_jobs()
        system.install(opened.id)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "completed"
        with system.ctx.uow() as uow:
            line = repo.get_line_by_msisdn(uow, msisdn)
            sub = uow.session.get(Subscriber, line.subscriber_id)
            assert sub is not None
            assert (sub.known_devices, sub.known_countries) == ([sha256("phone-5")], ["NO"])


class HoldlessCore(BuiltinCoreNetwork):
    """A core network without post-swap holds, refusing them the way osmo-hlr does."""

    def apply_post_swap_holds(
        self,
        *,
        imsi: str,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        raise ExternalError("no holds here", retryable=False, code="CORE_HOLDS_UNSUPPORTED")


def test_a_core_that_cannot_hold_fails_the_cut_over_before_the_number_moves(
    system: System,
) -> None:
    msisdn, email, _, old_imsi = add_line(system, 343)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    verify(system, opened.id, email)
    system.run_jobs()
    system.ctx.core = HoldlessCore(system.engine)
    system.install(opened.id)
    system.run_jobs()
    view = queries.get_request_view(system.ctx, opened.id)
    assert view["state"] == "failed"
    assert view["failure"]["code"] == "CORE_HOLDS_UNSUPPORTED"
    assert system.core.imsi_of(msisdn=msisdn) == old_imsi  # never a number without its hold
