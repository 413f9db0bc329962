"""RESIM_CAMARA_VERSION=2.2 (issue 15 item 3), over real HTTP on SQLite and PostgreSQL.

The r4.1 documents (spec/2.2/, see its SOURCE.txt) are served at the
release-candidate base paths, and every answer here is validated against
them: unknown properties at any depth are 400 INVALID_ARGUMENT,
monitoredPeriod stays within 1..999, the subscriptions answer 422
UNSUPPORTED_IDENTIFIER and 403 INVALID_TOKEN_CONTEXT and list a page at a time.
Attacks from outside: another client's subscription, anonymous calls,
oversized and malformed bodies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from camara_subs_support import Resim, make_resim, subscription_body
from pydantic import ValidationError

from resim.adapters.db import orm
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.bootstrap import build_camara
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.camara.subscriptions import SCOPE_CREATE, SCOPE_DELETE, SCOPE_READ
from resim.entrypoints.camara.versions import V2_1, V2_2
from resim.entrypoints.serving import ServerThread
from resim.services.onboarding import seed
from resim.settings import Settings

pytestmark = pytest.mark.integration

SIMSWAP = schemathesis.openapi.from_path(str(V2_2.simswap_spec))
SUBS = schemathesis.openapi.from_path(str(V2_2.subscriptions_spec))
SS, SUB = V2_2.simswap_prefix, V2_2.subscriptions_prefix
ALL = (SCOPE_CREATE, SCOPE_READ, SCOPE_DELETE, "sim-swap")


@dataclass
class Api:
    resim: Resim
    issuer: LocalTokenIssuer
    http: httpx.Client

    def headers(
        self, *scopes: str, client: str = "bank-a", phone: str | None = None
    ) -> dict[str, str]:
        token = self.issuer.issue(
            scopes=scopes or ALL, client_id=client, now=self.resim.clock.now(), phone_number=phone
        )
        return {"Authorization": f"Bearer {token}"}

    def call(
        self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
        headers: dict[str, str] | None = None, params: dict[str, str] | None = None, **who: Any,
    ) -> httpx.Response:  # fmt: skip
        sent = {**self.headers(**who), **(headers or {})}
        response = self.http.request(
            method, path, json=json, content=content, headers=sent, params=params
        )
        _conforms(method, path, response)
        return response


def _conforms(method: str, path: str, response: httpx.Response) -> None:
    """Documented status, and the body as the 2.2 schema says."""
    if path.startswith(SS):
        schema, template = SIMSWAP, path.removeprefix(SS)
    else:
        schema, template = SUBS, path.removeprefix(SUB)
        if template.count("/") == 2:
            template = "/subscriptions/{subscriptionId}"
    operation = schema[template][method.upper()]
    documented = operation.definition.raw["responses"]
    assert str(response.status_code) in documented, (response.status_code, response.text)
    if response.status_code != 204:
        operation.validate_response(response)
    assert response.headers.get("x-correlator")


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    resim = make_resim(db_url, tmp_path, camara_version="2.2", camara_rate_per_second=0)
    seed.upsert_brand(
        resim.ctx,
        seed.BrandSpec(
            "no", "Fjord", "NO", "NOK", "nb", "Europe/Oslo",
            BrandPolicy(verification=email_code_alone(), camara_monitored_days=1200),
        ),
    )  # fmt: skip
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
        public_base_url="https://api.resim.test",
        camara_version="2.2",
        camara_rate_per_second=0,
    )
    runtime = build_camara(settings, clock=resim.clock)
    assert runtime.version is V2_2
    issuer = LocalTokenIssuer.from_file(
        settings.camara_issuer_key_file,
        issuer=settings.camara_effective_issuer,
        audience=settings.camara_effective_audience,
    )
    server = ServerThread(build_app(resim.ctx, ApiConfig(camara=runtime))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield Api(resim, issuer, http)
    finally:
        server.stop()
        resim.engine.dispose()


class TestTheModeIsOneSetting:
    def test_an_unknown_version_stops_start_up(self) -> None:
        for bad in ("2.0", "2.3", "latest", ""):
            with pytest.raises(ValidationError):
                Settings(camara_version=bad)  # type: ignore[arg-type]
        assert Settings().camara_version == "2.1"

    def test_the_documents_of_the_mode_are_served_and_only_its_paths(self, api: Api) -> None:
        for prefix, spec in ((SS, V2_2.simswap_spec), (SUB, V2_2.subscriptions_spec)):
            served = api.http.get(f"{prefix}/openapi.yaml")
            assert (served.status_code, served.content) == (200, spec.read_bytes())
        for old in (V2_1.simswap_prefix, V2_1.subscriptions_prefix):
            assert api.http.get(f"{old}/openapi.yaml").status_code == 404
        body = {"phoneNumber": api.resim.add_line()}
        assert (
            api.http.post(
                f"{V2_1.simswap_prefix}/check", json=body, headers=api.headers()
            ).status_code
            == 404
        )


class TestSimSwap:
    @pytest.mark.parametrize("path", ["/check", "/retrieve-date"])
    def test_unknown_properties_are_invalid_argument(self, api: Api, path: str) -> None:
        msisdn = api.resim.add_line()
        ok = api.call("POST", SS + path, json={"phoneNumber": msisdn})
        assert ok.status_code == 200
        for extra in ({"foo": 1}, {"maxage": 24}, {"phonenumber": msisdn}, {"device": {}}):
            refused = api.call("POST", SS + path, json={"phoneNumber": msisdn, **extra})
            assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_ARGUMENT")
            assert next(iter(extra)) not in refused.json()["message"]  # not echoed

    def test_monitored_period_is_at_most_999_days(self, api: Api) -> None:
        msisdn = "+4740100001"
        seed.add_line(
            api.resim.ctx,
            seed.LineSpec(
                brand_id="no",
                msisdn=msisdn,
                name="Kunde",
                email="k@example.no",
                iccid=iccid_with_check_digit("894700100000000000"),
                imsi="242010000000001",
            ),
        )
        with api.resim.ctx.uow() as uow:  # activated 1,300 days ago: older than the limit
            uow.session.execute(
                sa.update(orm.line)
                .where(orm.line.c.msisdn == msisdn)
                .values(created_at=api.resim.clock.now() - dt.timedelta(days=1300))
            )
            uow.commit()
        answer = api.call("POST", SS + "/retrieve-date", json={"phoneNumber": msisdn})
        assert answer.json() == {"latestSimChange": None, "monitoredPeriod": 999}

    def test_latest_sim_change_is_short_and_rfc3339(self, api: Api) -> None:
        answer = api.call("POST", SS + "/retrieve-date", json={"phoneNumber": api.resim.add_line()})
        latest = answer.json()["latestSimChange"]
        assert len(latest) <= 64 and latest.endswith("Z")

    def test_anonymous_and_malformed(self, api: Api) -> None:
        anonymous = api.http.post(f"{SS}/check", json={"phoneNumber": "+4520100001"})
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "UNAUTHENTICATED")
        for raw in (b"{not json", b"[]", b"null", b'{"phoneNumber": "+4520100001", "x": '):
            bad = api.call("POST", SS + "/check", content=raw,
                           headers={"content-type": "application/json"})  # fmt: skip
            assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_ARGUMENT")
        huge = b'{"phoneNumber": "+4520100001", "pad": "' + b"x" * 2_000_000 + b'"}'
        too_big = api.http.post(
            f"{SS}/check", content=huge,
            headers={**api.headers(), "content-type": "application/json"},
        )  # fmt: skip
        assert too_big.status_code in (400, 413)


class TestSubscriptions:
    @pytest.mark.parametrize(
        "where",
        ["", "config", "config.subscriptionDetail", "sinkCredential", "protocolSettings"],
    )
    def test_unknown_properties_at_any_depth(self, api: Api, where: str) -> None:
        body = subscription_body(phone=api.resim.add_line())
        body["protocolSettings"] = {"method": "POST"}
        node = body
        for part in filter(None, where.split(".")):
            node = node[part]
        node["surprise"] = "x"
        refused = api.call("POST", SUB + "/subscriptions", json=body)
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_ARGUMENT")
        del node["surprise"]
        assert api.call("POST", SUB + "/subscriptions", json=body).status_code == 201

    def test_the_0_4_bounds(self, api: Api) -> None:
        phone = api.resim.add_line()
        many = subscription_body(phone=phone, subscriptionMaxEvents=1_000_001)
        too_many = api.call("POST", SUB + "/subscriptions", json=many)
        assert (too_many.status_code, too_many.json()["code"]) == (400, "OUT_OF_RANGE")
        long_token = api.call("POST", SUB + "/subscriptions",
                              json=subscription_body(phone=phone, token="t" * 4097))  # fmt: skip
        assert (long_token.status_code, long_token.json()["code"]) == (400, "INVALID_ARGUMENT")
        jwt = subscription_body(phone=phone)
        jwt["sinkCredential"] = {
            "credentialType": "PRIVATE_KEY_JWT",
            "clientId": "rp",
            "tokenUri": "https://rp.example.com/token",
        }
        private_key = api.call("POST", SUB + "/subscriptions", json=jwt)
        assert (private_key.status_code, private_key.json()["code"]) == (400, "INVALID_CREDENTIAL")
        initial = api.call("POST", SUB + "/subscriptions",
                           json=subscription_body(phone=phone, initialEvent="yes"))  # fmt: skip
        assert initial.status_code == 400

    def test_unsupported_identifier_and_not_applicable(self, api: Api) -> None:
        unknown = api.call("POST", SUB + "/subscriptions",
                           json=subscription_body(phone="+4520199999"))  # fmt: skip
        assert (unknown.status_code, unknown.json()["code"]) == (422, "UNSUPPORTED_IDENTIFIER")
        ceased = api.resim.add_line()
        with api.resim.ctx.uow() as uow:
            uow.session.execute(
                sa.update(orm.line).where(orm.line.c.msisdn == ceased).values(status="ceased")
            )
            uow.commit()
        refused = api.call("POST", SUB + "/subscriptions", json=subscription_body(phone=ceased))
        assert (refused.status_code, refused.json()["code"]) == (422, "SERVICE_NOT_APPLICABLE")

    def test_invalid_token_context_only_for_the_clients_own(self, api: Api) -> None:
        a, b = api.resim.add_line(), api.resim.add_line()
        view = api.call("POST", SUB + "/subscriptions", json=subscription_body(phone=a)).json()
        one = f"{SUB}/subscriptions/{view['id']}"
        for method in ("GET", "DELETE"):
            other_number = api.call(method, one, phone=b)
            assert (other_number.status_code, other_number.json()["code"]) == (
                403, "INVALID_TOKEN_CONTEXT",
            )  # fmt: skip
            stranger = api.call(method, one, client="bank-b", phone=a)
            assert (stranger.status_code, stranger.json()["code"]) == (404, "NOT_FOUND")
        assert api.call("GET", one, phone=a).status_code == 200  # still there
        assert api.http.get(one).status_code == 401  # anonymous

    def test_the_list_comes_a_page_at_a_time(self, api: Api) -> None:
        for _ in range(3):
            body = subscription_body(phone=api.resim.add_line())
            assert api.call("POST", SUB + "/subscriptions", json=body).status_code == 201
        first = api.call("GET", SUB + "/subscriptions", params={"perPage": "2"})
        assert first.json()["pagination"] == {
            "page": 1,
            "perPage": 2,
            "totalCount": 3,
            "totalPages": 2,
        }
        assert len(first.json()["subscriptions"]) == 2
        assert first.headers["x-total-count"] == "3"
        second = api.call("GET", SUB + "/subscriptions", params={"perPage": "2", "page": "2"})
        assert len(second.json()["subscriptions"]) == 1
        mine = {s["id"] for s in first.json()["subscriptions"] + second.json()["subscriptions"]}
        assert len(mine) == 3
        stranger = api.call("GET", SUB + "/subscriptions", client="bank-b")
        assert stranger.json()["subscriptions"] == []
        for bad in ({"perPage": "0"}, {"perPage": "101"}, {"page": "0"}, {"page": "x"}, {"q": "1"}):
            refused = api.call("GET", SUB + "/subscriptions", params=bad)
            assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_ARGUMENT")
