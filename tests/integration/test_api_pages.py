"""The API over HTTP on loopback: credentials, public pages, the "not me" link."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from identity_support import bearer, client_key, staff_session
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread

pytestmark = pytest.mark.integration
Client = Callable[..., httpx.Client]


@pytest.fixture
def servers() -> Iterator[list[ServerThread]]:
    started: list[ServerThread] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def client(system: System, servers: list[ServerThread]) -> Callable[..., httpx.Client]:
    def make(**kw: object) -> httpx.Client:
        server = ServerThread(build_app(system.ctx, ApiConfig(**kw))).start()  # type: ignore[arg-type]
        servers.append(server)
        return httpx.Client(base_url=server.url, timeout=10)

    return make


def test_bss_routes_need_credentials(system: System, client: Callable[..., httpx.Client]) -> None:
    http = client()
    key = client_key(system.ctx, "requests:read")
    denied = http.get("/v1/requests")
    assert denied.status_code == 401
    assert denied.json()["code"] == "UNAUTHENTICATED"
    assert denied.headers["www-authenticate"] == "Bearer"
    assert http.get("/v1/requests", headers=bearer("wrong")).status_code == 401
    forged = key[:-4] + ("wxyz" if key.endswith("abcd") else "abcd")  # right id, wrong secret
    assert http.get("/v1/requests", headers=bearer(forged)).status_code == 401
    assert http.get("/v1/requests", headers={"Authorization": key}).status_code == 401
    ok = http.get("/v1/requests", headers=bearer(key))
    assert ok.status_code == 200
    assert http.get("/health").status_code == 200  # probes stay open


def test_status_page_says_where_the_request_is_without_personal_data(
    system: System, client: Callable[..., httpx.Client]
) -> None:
    msisdn, email, _, _ = add_line(system, 200)
    http = client()
    assert http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"}).status_code == 202
    system.run_jobs()
    rid = system.request_id_from_mail(email)  # the link in the code mail
    page = http.get(f"/status/{rid}")
    assert page.status_code == 200
    assert "Waiting for you to confirm who you are" in page.text
    assert msisdn not in page.text and email not in page.text
    assert http.get("/status/unknown").status_code == 404


def test_not_me_get_changes_nothing_and_post_cancels_once(
    system: System, client: Callable[..., httpx.Client]
) -> None:
    msisdn, email, _, _ = add_line(system, 201)
    http = client()
    http.headers.update(bearer(client_key(system.ctx)))
    rid = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "stolen"}).json()["id"]
    system.run_jobs()
    notice = next(
        m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "replacement_requested"
    )
    found = re.search(r"/not-me/([A-Za-z0-9_-]+)", notice.text)
    assert found
    link = f"/not-me/{found.group(1)}"
    assert http.get(link).status_code == 200  # a mail scanner following the link
    assert http.get(f"/v1/requests/{rid}").json()["state"] == "requested"
    stopped = http.post(link)
    assert (stopped.status_code, stopped.headers["location"]) == (303, "/portal/not-me/done")
    assert "stopped" in http.get("/portal/not-me/done").text
    assert http.get(f"/v1/requests/{rid}").json()["state"] == "cancelled"
    again = http.post(link)  # single use
    assert again.status_code == 303
    assert http.get("/portal/not-me/done").status_code == 404


def test_cancel_and_review_errors_are_stable_codes(
    system: System, client: Callable[..., httpx.Client]
) -> None:
    msisdn, _, _, _ = add_line(system, 202)
    http = client()
    http.headers.update(bearer(client_key(system.ctx)))
    rid = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}).json()["id"]
    review = http.post(
        f"/v1/requests/{rid}/review",
        json={"reviewer": "r1", "decision": "approve"},
        headers=bearer(staff_session(system.ctx, "reviewer")),
    )
    assert (review.status_code, review.json()["code"]) == (409, "NOT_IN_REVIEW")
    again = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"})
    assert (again.status_code, again.json()["code"]) == (409, "REQUEST_ALREADY_OPEN")
    assert (
        http.post(f"/v1/requests/{rid}/cancel", json={"actor": "agent-1"}).json()["state"]
        == "cancelled"
    )
    closed = http.post(f"/v1/requests/{rid}/cancel", json={})
    assert (closed.status_code, closed.json()["code"]) == (409, "REQUEST_CLOSED")
