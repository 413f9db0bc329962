"""Issue 13, finding 1, replayed over real HTTP on SQLite and PostgreSQL: staff and
API clients of one brand acted on another brand's lines and requests.

As reported: a reviewer limited to brand A approved a held request of brand B; an
agent of A opened, cancelled and reissued requests on B's lines; an API key
limited to A read B's activation code, and installing it moved B's number. Each
attack is made here as reported; each answer is 404 (as for a request that does
not exist) and nothing of B's changes. B's own staff and key then do the same
successfully, so the objects were live and the refusal is the brand's.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key, staff_session
from tenancy_support import (
    OTHER,
    OWN,
    BrandObjects,
    add_other_brand,
    brand_objects,
    request_states,
    snapshot,
)
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.activation import parse_activation_code
from resim.domain.workflow import State
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.cutover.cutover import handle_download_progress

pytestmark = pytest.mark.integration


@pytest.fixture
def world(system: System) -> Iterator[tuple[httpx.Client, BrandObjects, BrandObjects]]:
    """(HTTP client of a running app, brand A's objects, brand B's objects)."""
    add_other_brand(system)
    a = brand_objects(system, OWN, 1)
    b = brand_objects(system, OTHER, 1)
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield http, a, b
    finally:
        server.stop()


def _imsi_of(system: System, msisdn: str) -> str | None:
    return system.core.imsi_of(msisdn=msisdn)


def _sim_changes_of(system: System, msisdn: str) -> int:
    t = orm.sim_change
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.msisdn == msisdn)
            ).scalar_one()
        )


class TestAnApiKeyOfOneBrand:
    def test_cannot_read_another_brands_activation_code_nor_move_its_number(
        self, system: System, world: tuple[httpx.Client, BrandObjects, BrandObjects]
    ) -> None:
        http, a, b = world
        attacker = bearer(client_key(system.ctx, brand_id=OWN))  # every scope, brand A
        number_before = _imsi_of(system, b.ready_msisdn)
        before = snapshot(system)

        for path in ("activation", "activation/qr.png", "activation/qr.svg", ""):
            url = f"/v1/requests/{b.ready}/{path}".rstrip("/")
            answer = http.get(url, headers=attacker)
            assert answer.status_code == 404, (url, answer.text)
            assert answer.json()["code"] == "REQUEST_NOT_FOUND"
        for action in ("reissue", "cancel"):
            answer = http.post(f"/v1/requests/{b.ready}/{action}", json={}, headers=attacker)
            assert answer.status_code == 404, (action, answer.text)
        # the same answer as for a request that does not exist: existence is not revealed
        missing = http.get("/v1/requests/no-such-request/activation", headers=attacker)
        assert missing.status_code == 404
        foreign = http.get(f"/v1/requests/{b.ready}/activation", headers=attacker)
        assert missing.json() == foreign.json()

        assert snapshot(system) == before
        assert request_states(system, {b.ready}) == {b.ready: State.READY}
        assert _imsi_of(system, b.ready_msisdn) == number_before
        assert _sim_changes_of(system, b.ready_msisdn) == 0

        # Its own brand's code it reads.
        own_code = http.get(f"/v1/requests/{a.ready}/activation", headers=attacker)
        assert own_code.status_code == 200, own_code.text

        # Brand B's own key reads B's code, and installing it moves B's number: the
        # code was live, and only the brand stopped the attacker.
        owner = bearer(client_key(system.ctx, "activation:read", brand_id=OTHER))
        read = http.get(f"/v1/requests/{b.ready}/activation", headers=owner)
        assert read.status_code == 200, read.text
        code = parse_activation_code(read.json()["activation_code"])
        for note in system.smdp.download_and_install(code.matching_id, code.smdp_address):
            handle_download_progress(system.ctx, note)
        system.run_jobs()
        assert request_states(system, {b.ready}) == {b.ready: State.COMPLETED}
        assert _imsi_of(system, b.ready_msisdn) != number_before
        assert _sim_changes_of(system, b.ready_msisdn) == 1

    def test_lists_and_sim_changes_hold_its_own_brand_only(
        self, system: System, world: tuple[httpx.Client, BrandObjects, BrandObjects]
    ) -> None:
        http, a, b = world
        key = bearer(client_key(system.ctx, brand_id=OWN))
        listed = http.get("/v1/requests?limit=500", headers=key).json()
        assert {r["id"] for r in listed} == a.request_ids
        changes = http.get("/v1/sim-changes", headers=key).json()
        assert [c["request_id"] for c in changes] == [a.completed]
        found = http.get("/v1/sim-changes", params={"msisdn": b.completed_msisdn}, headers=key)
        assert found.status_code == 200 and found.json() == []
        mine = http.get("/v1/sim-changes", params={"msisdn": a.completed_msisdn}, headers=key)
        assert [c["request_id"] for c in mine.json()] == [a.completed]


class TestAReviewerOfOneBrand:
    def test_cannot_approve_or_reject_another_brands_held_request(
        self, system: System, world: tuple[httpx.Client, BrandObjects, BrandObjects]
    ) -> None:
        http, a, b = world
        reviewer = bearer(staff_session(system.ctx, "reviewer", brand_id=OWN))
        before = snapshot(system)

        for decision in ("approve", "reject"):
            api = http.post(
                f"/v1/requests/{b.held}/review", json={"decision": decision}, headers=reviewer
            )
            assert api.status_code == 404, api.text
            page = http.post(
                f"/console/requests/{b.held}/review",
                data={"decision": decision},
                headers=reviewer,
            )
            assert page.status_code == 404, page.text
        for url in (f"/console/requests/{b.held}", f"/console/requests/{b.held}/audit"):
            assert http.get(url, headers=reviewer).status_code == 404, url
        queue = http.get("/console/queue", headers=reviewer)
        assert a.held in queue.text and b.held not in queue.text
        held = http.get("/v1/requests?state=in_review", headers=reviewer).json()
        assert [r["id"] for r in held] == [a.held]

        assert snapshot(system) == before
        view = http.get(
            f"/v1/requests/{b.held}", headers=bearer(client_key(system.ctx, brand_id=OTHER))
        ).json()
        assert view["state"] == "in_review"
        assert view["review"]["approvals"] == [] and view["reviewed_by"] is None

        # Brand B's reviewer decides it.
        own = bearer(staff_session(system.ctx, "reviewer", brand_id=OTHER))
        decided = http.post(
            f"/v1/requests/{b.held}/review", json={"decision": "approve"}, headers=own
        )
        assert decided.status_code == 200 and decided.json()["state"] == "approved", decided.text


class TestAnAgentOfOneBrand:
    def test_cannot_open_cancel_or_reissue_on_another_brands_lines(
        self, system: System, world: tuple[httpx.Client, BrandObjects, BrandObjects]
    ) -> None:
        http, _, b = world
        agent = bearer(staff_session(system.ctx, "agent", brand_id=OWN))
        before = snapshot(system)

        checks = [
            ("GET", f"/v1/lines/{b.msisdn}", None),
            (
                "POST",
                "/v1/identity-checks",
                {"msisdn": b.held_msisdn, "document_type": "passport", "last_digits": "1234"},
            ),
            (
                "POST",
                "/v1/requests",
                {"msisdn": b.completed_msisdn, "reason": "lost", "channel": "agent"},
            ),
            ("POST", f"/v1/requests/{b.requested}/cancel", {}),
            ("POST", f"/v1/requests/{b.held}/cancel", {}),
            ("POST", f"/v1/requests/{b.ready}/reissue", {}),
            ("GET", f"/v1/requests/{b.ready}/activation", None),
            ("POST", f"/v1/lines/{b.completed_msisdn}/lock", {}),
            ("GET", f"/console/lines?msisdn={quote(b.completed_msisdn)}", None),
        ]
        for method, url, body in checks:
            answer = http.request(method, url, json=body, headers=agent)
            assert answer.status_code == 404, (method, url, answer.text)
        for url, form in (
            (
                f"/console/lines/{b.completed_msisdn}/identity-check",
                {"document_type": "passport", "last_digits": "1234"},
            ),
            (
                f"/console/lines/{b.completed_msisdn}/requests",
                {"reason": "lost", "target_form": "esim"},
            ),
        ):
            assert http.post(url, data=form, headers=agent).status_code == 404, url

        assert snapshot(system) == before
        assert request_states(system, {b.requested, b.held, b.ready}) == {
            b.requested: State.REQUESTED,
            b.held: State.IN_REVIEW,
            b.ready: State.READY,
        }

        # Brand B's agent does the same on B's lines.
        own = bearer(staff_session(system.ctx, "agent", brand_id=OTHER))
        cancelled = http.post(f"/v1/requests/{b.requested}/cancel", json={}, headers=own)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        reissued = http.post(f"/v1/requests/{b.ready}/reissue", json={}, headers=own)
        assert reissued.status_code == 200 and reissued.json()["state"] == "provisioning"
        opened = http.post(
            "/v1/requests",
            json={"msisdn": b.completed_msisdn, "reason": "lost", "channel": "agent"},
            headers=own,
        )
        assert opened.status_code == 201, opened.text
