"""The subscriptions API over real HTTP on loopback, every answer checked against
sim-swap-subscriptions.yaml; notifications to a real loopback sink.

Tokens come from resim's own issuer (``LocalTokenIssuer``), verified by the app
exactly as in production (signature, issuer, audience, expiry, scopes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from camara_subs_openapi import SPEC_PATH, check_cloud_event, check_response
from camara_subs_support import SINK_TOKEN, Resim, make_resim, subscription_body

from resim.adapters.events.capture import SinkCapture
from resim.adapters.events.http import HttpEventSink
from resim.adapters.jwks import StaticJwksSource
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.domain.camara_events import CLOUDEVENTS_CONTENT_TYPE, SUBSCRIPTION_ENDED, SWAPPED
from resim.domain.sink_address import SinkAddressRules
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.camara.auth import CamaraAccess
from resim.entrypoints.camara.mount import CamaraRuntime
from resim.entrypoints.camara.ratelimit import RateLimiter
from resim.entrypoints.camara.subscriptions import (
    PREFIX,
    SCOPE_CREATE,
    SCOPE_DELETE,
    SCOPE_READ,
)
from resim.entrypoints.camara.tokens import TokenRules, TokenVerifier
from resim.entrypoints.serving import ServerThread

pytestmark = pytest.mark.integration

ISS, AUD = "https://auth.resim.test", "https://api.resim.test"
LIST, ONE = "/subscriptions", "/subscriptions/{subscriptionId}"
ALL_SCOPES = (SCOPE_CREATE, SCOPE_READ, SCOPE_DELETE)


@dataclass
class Api:
    resim: Resim
    issuer: LocalTokenIssuer
    http: httpx.Client
    sink: SinkCapture

    def token(
        self, *scopes: str, client: str = "bank-a", phone: str | None = None
    ) -> dict[str, str]:
        token = self.issuer.issue(
            scopes=scopes or ALL_SCOPES,
            client_id=client,
            now=self.resim.clock.now(),
            phone_number=phone,
        )
        return {"Authorization": f"Bearer {token}", "x-correlator": "corr-42"}

    def post(self, body: Any, **token: Any) -> httpx.Response:
        response = self.http.post(f"{PREFIX}/subscriptions", json=body, headers=self.token(**token))
        check_response("post", LIST, response, loopback_sink=True)
        return response

    def get(self, sub_id: str, **token: Any) -> httpx.Response:
        response = self.http.get(f"{PREFIX}/subscriptions/{sub_id}", headers=self.token(**token))
        check_response("get", ONE, response, loopback_sink=True)
        return response


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    # The sink listens on loopback: allowed here as RESIM_CAMARA_SINK_ALLOW_HTTP_LOOPBACK does.
    sink = HttpEventSink(timeout=2.0, rules=SinkAddressRules(allow_loopback=True))
    resim = make_resim(db_url, tmp_path, event_sink=sink)
    issuer = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
    verifier = TokenVerifier(
        TokenRules(issuer=ISS, audience=AUD),
        StaticJwksSource(issuer.jwks()),
        clock=resim.clock,
    )
    runtime = CamaraRuntime(CamaraAccess(verifier, RateLimiter(rate=0, burst=1)), issuer=issuer)
    server = ServerThread(build_app(resim.ctx, ApiConfig(camara=runtime))).start()
    sink = SinkCapture(token=SINK_TOKEN).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield Api(resim, issuer, http, sink)
    finally:
        sink.stop()
        server.stop()
        resim.engine.dispose()


class TestTheLifecycleOverHttp:
    def test_create_list_read_delete(self, api: Api) -> None:
        msisdn = api.resim.add_line()
        created = api.post(subscription_body(phone=msisdn, subscriptionMaxEvents=2))
        assert created.status_code == 201
        assert created.headers["x-correlator"] == "corr-42"
        view = created.json()
        assert view["status"] == "ACTIVE" and "sinkCredential" not in view
        listed = api.http.get(f"{PREFIX}/subscriptions", headers=api.token(SCOPE_READ))
        check_response("get", LIST, listed)
        assert [v["id"] for v in listed.json()] == [view["id"]]
        assert api.get(view["id"]).json() == view
        deleted = api.http.delete(
            f"{PREFIX}/subscriptions/{view['id']}", headers=api.token(SCOPE_DELETE)
        )
        check_response("delete", ONE, deleted)
        assert deleted.status_code == 204
        gone = api.get(view["id"])
        assert gone.status_code == 404 and gone.json()["code"] == "NOT_FOUND"

    def test_three_legged_create_and_read_omit_the_number(self, api: Api) -> None:
        msisdn = api.resim.add_line()
        created = api.post(subscription_body(), phone=msisdn)
        assert created.status_code == 201
        assert created.json()["config"]["subscriptionDetail"] == {}
        assert (
            api.get(created.json()["id"], phone=msisdn).json()["config"]["subscriptionDetail"] == {}
        )

    def test_another_client_never_sees_it(self, api: Api) -> None:
        view = api.post(subscription_body(phone=api.resim.add_line())).json()
        stranger = api.get(view["id"], client="bank-b")
        assert stranger.status_code == 404
        assert "rp.example.com" not in stranger.text and SINK_TOKEN not in stranger.text
        deleted = api.http.delete(
            f"{PREFIX}/subscriptions/{view['id']}", headers=api.token(client="bank-b")
        )
        check_response("delete", ONE, deleted)
        assert deleted.status_code == 404
        listed = api.http.get(f"{PREFIX}/subscriptions", headers=api.token(client="bank-b"))
        assert listed.json() == []
        assert api.get(view["id"]).status_code == 200  # still there for its owner


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return body


_DROP = object()
PAST = "2025-01-01T00:00:00Z"


def test_the_spec_is_served_byte_for_byte(api: Api) -> None:
    served = api.http.get(f"{PREFIX}/openapi.yaml")
    assert served.status_code == 200
    assert served.content == SPEC_PATH.read_bytes()


class TestEveryErrorCode:
    @pytest.mark.parametrize(
        ("path", "value", "code"),
        [
            ("sink", _DROP, "INVALID_ARGUMENT"),
            ("types", ["org.camaraproject.sim-swap-subscriptions.v0.other"], "INVALID_ARGUMENT"),
            ("config.subscriptionDetail.phoneNumber", "4530100001", "INVALID_ARGUMENT"),
            ("config.subscriptionExpireTime", "tomorrow", "INVALID_ARGUMENT"),
            ("sinkCredential.accessToken", _DROP, "INVALID_ARGUMENT"),
            ("protocol", "MQTT3", "INVALID_PROTOCOL"),
            ("protocol", "SMTP", "INVALID_ARGUMENT"),
            ("sink", "http://rp.example.com/sink", "INVALID_SINK"),
            ("sink", "https://user:pw@rp.example.com/sink", "INVALID_SINK"),
            ("sinkCredential.credentialType", "PLAIN", "INVALID_CREDENTIAL"),
            ("sinkCredential.credentialType", "REFRESHTOKEN", "INVALID_CREDENTIAL"),
            ("sinkCredential.accessTokenType", "mac", "INVALID_TOKEN"),
            # CAMARA test plan r3.3 creation_24: a past expire time is INVALID_ARGUMENT
            ("config.subscriptionExpireTime", PAST, "INVALID_ARGUMENT"),
            # creation_26: a sink that is not a URL fails the schema (format: uri)
            ("sink", "not-an-url", "INVALID_ARGUMENT"),
            ("sink", "https://", "INVALID_ARGUMENT"),
            ("sink", "https://rp.example.com:port/sink", "INVALID_ARGUMENT"),
            ("sink", "https://rp.example.com/a sink", "INVALID_ARGUMENT"),
            ("sink", "", "INVALID_ARGUMENT"),
            # a URL, but unfit for the HTTP protocol: INVALID_SINK
            ("sink", "ftp://rp.example.com/sink", "INVALID_SINK"),
            ("sink", "mailto:events@rp.example.com", "INVALID_SINK"),
            ("sink", "https://rp.example.com/sink#part", "INVALID_SINK"),
            ("config.subscriptionMaxEvents", 0, "OUT_OF_RANGE"),
            ("sinkCredential.accessTokenExpiresUtc", PAST, "OUT_OF_RANGE"),
        ],
    )
    def test_bad_request_codes(self, api: Api, path: str, value: Any, code: str) -> None:
        body = _with(subscription_body(phone=api.resim.add_line()), path, value)
        response = api.post(body)
        assert (response.status_code, response.json()["code"]) == (400, code)
        assert SINK_TOKEN not in response.text

    def test_test_plan_creation_26_not_a_url_and_expired(self, api: Api) -> None:
        """sim_swap_subscription_creation_26: a sink that is not a URL and a past
        expire time in one body: 400 INVALID_ARGUMENT, nothing created."""
        body = _with(subscription_body(phone=api.resim.add_line()), "sink", "not-an-url")
        body = _with(body, "config.subscriptionExpireTime", PAST)
        response = api.post(body)
        check_response("post", LIST, response)
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_ARGUMENT")
        assert api.http.get(f"{PREFIX}/subscriptions", headers=api.token(SCOPE_READ)).json() == []

    def test_a_body_that_is_not_json(self, api: Api) -> None:
        response = api.http.post(
            f"{PREFIX}/subscriptions",
            content=b"{not json",
            headers={**api.token(), "Content-Type": "application/json"},
        )
        check_response("post", LIST, response)
        assert response.json()["code"] == "INVALID_ARGUMENT"

    def test_identifier_codes(self, api: Api) -> None:
        msisdn = api.resim.add_line()
        missing = api.post(subscription_body())
        unnecessary = api.post(subscription_body(phone=msisdn), phone=msisdn)
        unknown = api.post(subscription_body(phone="+4599999999"))
        assert [(r.status_code, r.json()["code"]) for r in (missing, unnecessary, unknown)] == [
            (422, "MISSING_IDENTIFIER"),
            (422, "UNNECESSARY_IDENTIFIER"),
            (422, "SERVICE_NOT_APPLICABLE"),
        ]

    def test_already_exists(self, api: Api) -> None:
        body = subscription_body(phone=api.resim.add_line())
        assert api.post(body).status_code == 201
        again = api.post(body)
        assert (again.status_code, again.json()["code"]) == (409, "ALREADY_EXISTS")

    def test_unauthenticated_and_permission_denied(self, api: Api) -> None:
        body = subscription_body(phone=api.resim.add_line())
        anonymous = api.http.post(f"{PREFIX}/subscriptions", json=body)
        check_response("post", LIST, anonymous)
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "UNAUTHENTICATED")
        wrong_scope = api.http.post(
            f"{PREFIX}/subscriptions", json=body, headers=api.token(SCOPE_READ)
        )
        check_response("post", LIST, wrong_scope)
        assert (wrong_scope.status_code, wrong_scope.json()["code"]) == (403, "PERMISSION_DENIED")
        for method, scope in (("get", SCOPE_CREATE), ("delete", SCOPE_READ)):
            response = api.http.request(
                method, f"{PREFIX}/subscriptions/abc", headers=api.token(scope)
            )
            check_response(method, ONE, response)
            assert response.status_code == 403


class TestNotificationsReachARealSink:
    def test_a_cut_over_posts_a_valid_cloud_event_with_the_bearer_token(self, api: Api) -> None:
        msisdn = api.resim.add_line()
        view = api.post(
            subscription_body(phone=msisdn, sink=api.sink.url, subscriptionMaxEvents=1)
        ).json()
        api.resim.swap(msisdn)
        received = api.sink.received()
        assert [r.body["type"] for r in received if r.body] == [SWAPPED, SUBSCRIPTION_ENDED]
        for request in received:
            assert request.authorization == f"Bearer {SINK_TOKEN}"
            assert request.content_type == CLOUDEVENTS_CONTENT_TYPE
            assert request.status == 204
            assert request.body is not None
            assert request.correlator == request.body["id"]
            check_cloud_event(request.body)
        assert received[0].body is not None
        assert received[0].body["data"] == {"subscriptionId": view["id"], "phoneNumber": msisdn}
        assert api.get(view["id"]).json()["status"] == "EXPIRED"

    def test_a_failing_sink_gets_the_same_event_again(self, api: Api) -> None:
        msisdn = api.resim.add_line()
        api.post(subscription_body(phone=msisdn, sink=api.sink.url))
        api.sink.answer_next(500, 503)
        api.resim.swap(msisdn)
        for _ in range(2):
            api.resim.clock.advance(dt.timedelta(seconds=10))
            api.resim.run_jobs()
        statuses = [r.status for r in api.sink.received()]
        assert statuses == [500, 503, 204]
        assert len({r.event_id for r in api.sink.received()}) == 1
