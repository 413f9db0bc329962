"""Issue 13, finding 8: every read of an activation code leaves an audit row naming the reader.

Over real HTTP on loopback, on SQLite and PostgreSQL: the verified customer,
the operator's app (``activation:read``), an agent after an ID check, the QR
routes and the portal page each write one ``activation.read`` row with the
reader and the source address, never the code. Refused reads write nothing.
The portal's poller, shown an unchanged page, reads (and audits) nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key, signed_in
from risk_support import origin_rules_off
from test_portal_pages import browser, open_via_forms, verify_via_form
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread

pytestmark = pytest.mark.integration
VERSION = re.compile(r'data-version="([^"]+)"')


@pytest.fixture
def base_url(system: System) -> Iterator[str]:
    origin_rules_off(system)  # callers send no device here: see risk_support
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def reads(system: System, request_id: str) -> list[Any]:
    """The request's activation.read audit rows, oldest first."""
    a = orm.audit_event
    with system.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    a.c.actor, a.c.source, a.c.object_type, sa.cast(a.c.detail, sa.Text).label("d")
                )
                .where(a.c.action == "activation.read", a.c.object_id == request_id)
                .order_by(a.c.seq)
            ).all()
        )


def ready_via_api(system: System, http: httpx.Client, n: int) -> tuple[str, str, str]:
    """A ready eSIM request opened and verified over the API: (id, customer token, msisdn)."""
    msisdn, email, _, _ = add_line(system, n)
    opened = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "damaged"})
    assert opened.status_code == 202  # anonymous: no id in the answer (finding 15)
    system.run_jobs()
    rid = system.request_id_from_mail(email)
    verified = http.post(f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)})
    assert verified.status_code == 200, verified.text
    system.run_jobs()
    return rid, verified.json()["session_token"], msisdn


def customer_session_id(system: System, request_id: str) -> str:
    s = orm.auth_session
    with system.engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(s.c.id).where(s.c.request_id == request_id, s.c.kind == "customer")
            ).scalar_one()
        )


class TestEveryReadIsAudited:
    def test_the_customer_the_qr_codes_the_app_and_the_agent_each_leave_a_row(
        self, system: System, http: httpx.Client
    ) -> None:
        rid, token, msisdn = ready_via_api(system, http, 1)
        assert reads(system, rid) == []
        customer = bearer(token)

        act = http.get(f"/v1/requests/{rid}/activation", headers=customer)
        assert act.status_code == 200
        secret, matching_id = act.json()["activation_code"], act.json()["matching_id"]
        png = http.get(f"/v1/requests/{rid}/activation/qr.png", headers=customer)
        svg = http.get(f"/v1/requests/{rid}/activation/qr.svg", headers=customer)
        assert png.status_code == svg.status_code == 200

        app_key = client_key(system.ctx, "activation:read")
        assert (
            http.get(f"/v1/requests/{rid}/activation", headers=bearer(app_key)).status_code == 200
        )

        agent_token, agent_id = signed_in(system.ctx, "agent")
        agent = bearer(agent_token)
        http.post(
            "/v1/identity-checks",
            json={"msisdn": msisdn, "document_type": "passport", "last_digits": "1234"},
            headers=agent,
        ).raise_for_status()
        assert http.get(f"/v1/requests/{rid}/activation", headers=agent).status_code == 200

        session = customer_session_id(system, rid)
        client_id = app_key.split("_")[1]
        rows = reads(system, rid)
        assert [(r.actor, r.object_type, r.source) for r in rows] == [
            (f"customer:session:{session}", "request", "127.0.0.1"),
            (f"customer:session:{session}", "request", "127.0.0.1"),
            (f"customer:session:{session}", "request", "127.0.0.1"),
            (f"client:{client_id}", "request", "127.0.0.1"),
            (f"staff:{agent_id}", "request", "127.0.0.1"),
        ]
        assert ['"via": "api"' in r.d or '"via":"api"' in r.d for r in rows] == [
            True, False, False, True, True,
        ]  # fmt: skip
        assert "qr.png" in rows[1].d and "qr.svg" in rows[2].d
        for row in rows:  # the row names the read, never what was read
            assert secret not in str(row) and matching_id not in str(row)

    def test_refused_reads_write_no_row_and_show_no_code(
        self, system: System, http: httpx.Client
    ) -> None:
        rid, _, _ = ready_via_api(system, http, 2)
        other, other_token, _ = ready_via_api(system, http, 3)
        attempts = {
            "anonymous": {},
            "agent without an ID check": bearer(signed_in(system.ctx, "agent")[0]),
            "client without activation:read": bearer(client_key(system.ctx, "requests:read")),
            "another request's customer": bearer(other_token),
            "reviewer": bearer(signed_in(system.ctx, "reviewer")[0]),
        }
        for who, headers in attempts.items():
            for path in ("activation", "activation/qr.png"):
                refused = http.get(f"/v1/requests/{rid}/{path}", headers=headers)
                assert refused.status_code in (401, 403, 404), (who, path, refused.status_code)
                assert "1$" not in refused.text
        assert reads(system, rid) == []
        assert reads(system, other) == []


class TestThePortal:
    def test_the_page_audits_each_showing_and_the_poller_reads_nothing_unchanged(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 4)
        with browser(base_url) as owner, browser(base_url) as stranger:
            rid = open_via_forms(system, owner, msisdn)
            assert verify_via_form(owner, rid, system.code_for(email)).status_code == 303
            system.run_jobs()
            page = owner.get(f"/portal/requests/{rid}")
            assert "Install your new eSIM" in page.text
            rows = reads(system, rid)
            session = customer_session_id(system, rid)
            assert [(r.actor, r.source) for r in rows] == [
                (f"customer:session:{session}", "127.0.0.1")
            ]
            assert "portal" in rows[0].d

            found = VERSION.search(page.text)
            assert found
            version = html.unescape(found.group(1))
            polled = owner.get(f"/portal/requests/{rid}/status.json", params={"v": version})
            assert polled.status_code == 200 and "html" not in polled.json()
            assert polled.json()["version"] == version and polled.json()["state"] == "ready"
            assert len(reads(system, rid)) == 1  # an unchanged poll reads no code

            fresh = owner.get(f"/portal/requests/{rid}/status.json", params={"v": "stale"})
            assert "matching-id" in fresh.json()["html"]
            assert len(reads(system, rid)) == 2

            seen = stranger.get(f"/portal/requests/{rid}")
            assert seen.status_code == 200 and "matching-id" not in seen.text
            assert len(reads(system, rid)) == 2  # no session: no code, no row
