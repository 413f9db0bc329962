"""What anonymous callers can learn (issue 13, finding 15), over real HTTP.

* ``POST /v1/requests`` without credentials answered an unknown number, a
  locked line, a frozen account and a line with a request already open each
  in its own way, and listed the subscriber's verification factors: an oracle
  for who is a customer and how they are protected. Now all of them (and a
  request really opened) get the same 202 and the same body; staff and API
  clients keep the detailed answers.
* The portal's form told the same apart (an error page per case, the verify
  page with the factors for a number that could be replaced): it now says
  "check your e-mail" for every number; the verify page is reached from the
  mail's link.
* ``/metrics`` was public: now a bearer token (RESIM_METRICS_TOKEN) or, without
  one, loopback only.
* ``X-Forwarded-For`` was believed from loopback by default (uvicorn's
  default): now only from RESIM_TRUSTED_PROXIES, empty by default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key
from test_portal_pages import token
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.crypto import bind_secrets
from resim.adapters.db import orm
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.locks import locks
from resim.services.replacement import requests

pytestmark = pytest.mark.integration
__all__ = ["system"]


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


def request_rows(system: System) -> list[Any]:
    # The keys are bound: the MatchingID is an encrypted column.
    with system.engine.connect() as conn, bind_secrets(system.ctx.secrets):
        return list(conn.execute(sa.select(orm.replacement_request)))


def freeze(system: System, msisdn: str) -> None:
    with system.engine.begin() as conn:
        sub = conn.execute(
            sa.select(orm.line.c.subscriber_id).where(orm.line.c.msisdn == msisdn)
        ).scalar_one()
        conn.execute(
            sa.update(orm.subscriber)
            .where(orm.subscriber.c.id == sub)
            .values(replacements_frozen_at=system.clock.now())
        )


class TestAnonymousOpeningAnswersEveryNumberAlike:
    def test_unknown_locked_frozen_open_and_fresh_numbers_get_the_same_answer(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        fresh, fresh_email, _, _ = add_line(system, 11)
        locked, _, _, _ = add_line(system, 12)
        frozen, _, _, _ = add_line(system, 13)
        already, _, _, _ = add_line(system, 14)
        unknown = "+4520199999"
        locks.lock_line(system.ctx, locked, actor="customer")
        freeze(system, frozen)
        requests.open_request(system.ctx, msisdn=already, reason="damaged")
        system.run_jobs()
        rows_before = len(request_rows(system))
        mails_before = len(system.mail.sent)
        http = api()

        answers = {
            name: http.post("/v1/requests", json={"msisdn": number, "reason": "lost"})
            for name, number in [
                ("unknown", unknown),
                ("locked", locked),
                ("frozen", frozen),
                ("already open", already),
                ("fresh", fresh),
            ]
        }
        seen = {(a.status_code, a.content) for a in answers.values()}
        assert len(seen) == 1, {n: (a.status_code, a.text) for n, a in answers.items()}
        [(status, _content)] = seen
        assert status == 202
        body = answers["fresh"].json()
        assert body["status"] == "accepted"
        assert "e-mail address on file" in body["message"]
        assert "verification_methods" not in body and "id" not in body  # no factors, no handle
        # Only the fresh line got a request (and mail); the refused ones changed nothing.
        assert len(request_rows(system)) == rows_before + 1
        system.run_jobs()
        assert {m.to for m in system.mail.sent[mails_before:]} == {fresh_email}

    def test_the_customer_continues_from_the_mail(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        msisdn, email, _, _ = add_line(system, 21)
        http = api()
        assert (
            http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"}).status_code == 202
        )
        system.run_jobs()
        [mail] = [m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "one_time_code"]
        link = re.search(r"https?://\S+/(?:status|c)/([0-9a-f-]+)", mail.text)
        assert link, mail.text
        rid = link.group(1)
        page = http.get(f"/status/{rid}")
        assert page.status_code == 200 and f"/portal/requests/{rid}/verify" in page.text
        verified = http.post(
            f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}
        )
        assert verified.status_code == 200, verified.text
        assert verified.json()["session_token"]

    def test_malformed_input_is_still_told_apart(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        # Format errors depend on the input alone, not on whose number it is.
        http = api()
        bad = http.post("/v1/requests", json={"msisdn": "not a number", "reason": "lost"})
        assert bad.status_code == 422
        override = http.post(
            "/v1/requests",
            json={"msisdn": "+4520100001", "reason": "lost", "lock_override": True},
        )
        assert override.status_code == 403
        assert override.json()["code"] == "LOCK_OVERRIDE_AGENT_ONLY"

    def test_a_customer_session_is_answered_like_anyone(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        mine, email, _, _ = add_line(system, 31)
        locked, _, _, _ = add_line(system, 32)
        locks.lock_line(system.ctx, locked, actor="customer")
        opened = requests.open_request(system.ctx, msisdn=mine, reason="damaged")
        system.run_jobs()
        http = api()
        verified = http.post(
            f"/v1/requests/{opened.id}/verification", json={"otp": system.code_for(email)}
        )
        customer = bearer(verified.json()["session_token"])
        answer = http.post(
            "/v1/requests", json={"msisdn": locked, "reason": "lost"}, headers=customer
        )
        assert answer.status_code == 202

    def test_staff_and_clients_keep_the_detailed_answers(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        fresh, _, _, _ = add_line(system, 41)
        locked, _, _, _ = add_line(system, 42)
        frozen, _, _, _ = add_line(system, 43)
        locks.lock_line(system.ctx, locked, actor="customer")
        freeze(system, frozen)
        http = api()
        key = bearer(client_key(system.ctx, "requests:write"))

        def code(msisdn: str) -> tuple[int, str]:
            answer = http.post(
                "/v1/requests", json={"msisdn": msisdn, "reason": "lost"}, headers=key
            )
            return answer.status_code, answer.json().get("code", "")

        assert code("+4520199998") == (404, "LINE_NOT_FOUND")
        assert code(locked) == (403, "SIM_CHANGE_LOCKED")
        assert code(frozen) == (403, "ACCOUNT_FROZEN")
        created = http.post("/v1/requests", json={"msisdn": fresh, "reason": "lost"}, headers=key)
        assert created.status_code == 201
        assert created.json()["verification_methods"] == [["email_otp"]]
        assert code(fresh) == (409, "REQUEST_ALREADY_OPEN")


class TestThePortalAnswersEveryNumberAlike:
    def test_every_number_gets_check_your_email_and_only_the_mail_leads_on(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        fresh, fresh_email, _, _ = add_line(system, 61)
        locked, _, _, _ = add_line(system, 62)
        frozen, _, _, _ = add_line(system, 63)
        already, _, _, _ = add_line(system, 64)
        locks.lock_line(system.ctx, locked, actor="customer")
        freeze(system, frozen)
        requests.open_request(system.ctx, msisdn=already, reason="damaged")
        system.run_jobs()
        rows_before = len(request_rows(system))
        mails_before = len(system.mail.sent)
        http = api()
        answers = []
        # A number of no brand here is told on the page where it was typed
        # (issue 12); every number of the brand gets the same answer.
        start = http.get("/portal")
        unknown = http.post(
            "/portal/start", data={"msisdn": "+4520199997", "csrf_token": token(start)}
        )
        assert (unknown.status_code, unknown.headers["location"]) == (303, "/portal")
        assert 'aria-invalid="true"' in http.get("/portal").text
        for number in (locked, frozen, already, fresh):
            start = http.get("/portal")
            moved = http.post("/portal/start", data={"msisdn": number, "csrf_token": token(start)})
            assert (moved.status_code, moved.headers["location"]) == (303, "/portal/choose")
            choose = http.get("/portal/choose")
            assert choose.status_code == 200
            opened = http.post(
                "/portal/requests",
                data={
                    "msisdn": number,
                    "reason": "lost",
                    "delivery": "esim",
                    "csrf_token": token(choose),
                },
            )
            answers.append((opened.status_code, opened.headers.get("location"), opened.content))
        assert set(answers) == {(303, "/portal/sent?brand=dk", b"")}
        sent = http.get("/portal/sent?brand=dk")
        assert sent.status_code == 200 and "Check your e-mail" in sent.text
        assert len(request_rows(system)) == rows_before + 1
        system.run_jobs()
        assert {m.to for m in system.mail.sent[mails_before:]} == {fresh_email}

        rid = system.request_id_from_mail(fresh_email)
        status = http.get(f"/status/{rid}")  # the mail's link
        assert f'href="/portal/requests/{rid}/verify"' in status.text
        verify = http.get(f"/portal/requests/{rid}/verify")
        assert verify.status_code == 200 and 'name="email_otp"' in verify.text


class TestMetricsAreForTheScraper:
    def test_with_a_token_only_its_bearer_reads_them(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        http = api(metrics_token="scrape-secret-1")
        none = http.get("/metrics")
        assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
        assert http.get("/metrics", headers=bearer("scrape-secret-2")).status_code == 401
        assert http.get("/metrics", headers={"Authorization": "scrape-secret-1"}).status_code == 401
        good = http.get("/metrics", headers=bearer("scrape-secret-1"))
        assert good.status_code == 200 and "resim_http_requests_total" in good.text

    def test_without_a_token_only_loopback_reads_them(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        direct = api()
        assert direct.get("/metrics").status_code == 200  # this test calls from 127.0.0.1
        # Behind a proxy on this host, the caller is who the proxy says: not loopback.
        proxied = api(trusted_proxies=("127.0.0.1",))
        refused = proxied.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert refused.status_code == 403
        assert "RESIM_METRICS_TOKEN" in refused.json()["message"]
        assert proxied.get("/metrics").status_code == 200  # the proxy host itself


class TestForwardedForIsBelievedOnlyFromTrustedProxies:
    def open_with(self, http: httpx.Client, system: System, n: int, forwarded: str) -> str:
        msisdn, _, _, _ = add_line(system, n)
        key = bearer(client_key(system.ctx, "requests:write"))
        created = http.post(
            "/v1/requests",
            json={"msisdn": msisdn, "reason": "lost"},
            headers={**key, "X-Forwarded-For": forwarded},
        )
        assert created.status_code == 201, created.text
        with system.engine.connect() as conn:
            return str(
                conn.execute(
                    sa.select(orm.replacement_request.c.source_ip).where(
                        orm.replacement_request.c.id == created.json()["id"]
                    )
                ).scalar_one()
            )

    def test_by_default_a_caller_on_loopback_cannot_choose_its_address(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        assert self.open_with(api(), system, 51, "203.0.113.9") == "127.0.0.1"

    def test_a_trusted_proxy_names_the_client_right_to_left(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        http = api(trusted_proxies=("127.0.0.0/8",))
        # "198.51.100.7" was written by the client; the proxy appended the real peer.
        assert self.open_with(http, system, 52, "198.51.100.7, 203.0.113.9") == "203.0.113.9"

    def test_rotating_the_header_does_not_dodge_the_per_address_count(
        self, system: System, api: Callable[..., httpx.Client]
    ) -> None:
        http = api()
        for i in range(3):
            failed = http.post(
                "/v1/auth/staff/login",
                json={"username": "nobody", "password": "wrong-password", "totp": "000000"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            assert failed.status_code in (400, 401, 429)
        with system.engine.connect() as conn:
            details = conn.execute(
                sa.select(orm.audit_event.c.detail).where(
                    orm.audit_event.c.action == "staff.login_failed"
                )
            ).scalars()
            assert {d["source_ip"] for d in details} == {"127.0.0.1"}
