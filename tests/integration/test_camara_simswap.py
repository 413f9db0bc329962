"""CAMARA SIM Swap 2.1.0 over real HTTP, on SQLite and PostgreSQL.

Every response is checked against the normative sim-swap.yaml (status
documented, body schema, x-correlator) by ``camara_support.conforms``.
Tokens come from resim's own issuer; time is the system's FrozenClock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from camara_support import BASE, Camara, add_sim_change, camara_settings, serve_camara
from test_replacement_flow import System, add_line, iccid, imsi
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.services.onboarding import seed
from resim.services.replacement import requests

pytestmark = pytest.mark.integration

DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)
A, B, C, D = "+4520100001", "+4520100002", "+4520100003", "+4520100004"
E, F = "+393301000001", "+393301000002"
UNKNOWN = "+4520199999"


def _line(system: System, brand: str, msisdn: str, age: dt.timedelta) -> str:
    """A line activated ``age`` ago; returns its SIM's ICCID."""
    sim = iccid()
    system.clock.advance(-age)
    try:
        seed.add_line(
            system.ctx,
            seed.LineSpec(
                brand_id=brand,
                msisdn=msisdn,
                name="Kunde",
                email=f"{msisdn[1:]}@example.test",
                iccid=sim,
                imsi=imsi(),
            ),
        )
    finally:
        system.clock.advance(age)
    return sim


@pytest.fixture
def history(system: System) -> System:
    """dk (no legal limit) and it (30 days), lines with known SIM-change histories."""
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "it",
            "Lago Mobile",
            "IT",
            "EUR",
            "it",
            "Europe/Rome",
            BrandPolicy(verification=email_code_alone(), camara_monitored_days=30),
        ),
    )
    now = system.clock.now()
    for msisdn, brand, age, change_age in (
        (A, "dk", 400 * DAY, 5 * HOUR),
        (B, "dk", 400 * DAY, 300 * DAY),
        (C, "dk", 2 * DAY, None),  # brand-new line: its activation counts
        (D, "dk", 400 * DAY, None),
        (E, "it", 400 * DAY, 40 * DAY),
        (F, "it", 400 * DAY, 10 * DAY),
    ):
        first = _line(system, brand, msisdn, age)
        if change_age is not None:
            add_sim_change(system.ctx, msisdn=msisdn, at=now - change_age, old=first, new=iccid())
    with system.ctx.uow() as uow:
        uow.session.execute(
            sa.update(orm.line).where(orm.line.c.msisdn == D).values(status="ceased")
        )
        uow.commit()
    return system


@pytest.fixture
def api(history: System, db_url: str, tmp_path: Path) -> Iterator[Camara]:
    yield from serve_camara(history.ctx, camara_settings(db_url, tmp_path))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class TestCheck:
    def test_answers_from_the_sim_change_records(self, api: Camara, history: System) -> None:
        token = api.token("sim-swap:check")

        def swapped(msisdn: str, max_age: int | None = None) -> bool:
            body: dict[str, object] = {"phoneNumber": msisdn}
            if max_age is not None:
                body["maxAge"] = max_age
            answer = api.post("/check", body, token)
            assert answer.status_code == 200, answer.text
            return bool(answer.json()["swapped"])

        assert swapped(A) is True  # 5 h ago, default maxAge 240
        assert swapped(A, 6) is True
        assert swapped(A, 4) is False
        assert swapped(B, 2400) is False  # 300 days ago
        assert swapped(C) is True  # activated 2 days ago: a new subscription is a swap
        assert swapped(C, 47) is False
        assert swapped(C, 49) is True
        assert swapped(E, 720) is False  # 40 days ago, 30-day brand
        assert swapped(F, 720) is True

    def test_max_age_beyond_the_brands_legal_limit_is_out_of_range(self, api: Camara) -> None:
        answer = api.post("/check", {"phoneNumber": E, "maxAge": 721}, api.token("sim-swap"))
        assert answer.status_code == 400
        assert answer.json() == {
            "status": 400,
            "code": "OUT_OF_RANGE",
            "message": "Check monitor period could not exceed local regulations (30 days)",
        }
        # the Danish brand has no limit: the spec's maximum applies
        ok = api.post("/check", {"phoneNumber": A, "maxAge": 2400}, api.token("sim-swap"))
        assert ok.status_code == 200

    @pytest.mark.parametrize(
        ("max_age", "code"),
        [(2401, "OUT_OF_RANGE"), (100000, "OUT_OF_RANGE"), (0, "INVALID_ARGUMENT"),
         (-5, "INVALID_ARGUMENT"), ("240", "INVALID_ARGUMENT"), (24.5, "INVALID_ARGUMENT"),
         (None, "INVALID_ARGUMENT"), (True, "INVALID_ARGUMENT")],
    )  # fmt: skip
    def test_max_age_outside_the_spec(self, api: Camara, max_age: object, code: str) -> None:
        answer = api.post("/check", {"phoneNumber": A, "maxAge": max_age}, api.token())
        assert (answer.status_code, answer.json()["code"]) == (400, code)


class TestRetrieveDate:
    def test_latest_change_activation_and_monitored_period(
        self, api: Camara, history: System
    ) -> None:
        now = history.clock.now()
        token = api.token("sim-swap:retrieve-date")

        def latest(msisdn: str) -> dict[str, object]:
            answer = api.post("/retrieve-date", {"phoneNumber": msisdn}, token)
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        assert at(str(latest(A)["latestSimChange"])) == now - 5 * HOUR
        assert latest(A).keys() == {"latestSimChange"}
        assert at(str(latest(B)["latestSimChange"])) == now - 300 * DAY  # unlimited brand
        assert at(str(latest(C)["latestSimChange"])) == now - 2 * DAY  # activation
        assert latest(E) == {"latestSimChange": None, "monitoredPeriod": 30}
        assert at(str(latest(F)["latestSimChange"])) == now - 10 * DAY
        assert str(latest(A)["latestSimChange"]).endswith("Z")

    def test_a_cut_over_through_the_workflow_is_seen(self, api: Camara, history: System) -> None:
        msisdn, email, _, _ = add_line(history, 77)
        history.clock.advance(30 * DAY)
        body = {"phoneNumber": msisdn, "maxAge": 1}
        assert api.post("/check", body, api.token()).json() == {"swapped": False}
        opened = requests.open_request(history.ctx, msisdn=msisdn, reason="damaged")
        history.run_jobs()
        requests.submit_verification(history.ctx, opened.id, otp=history.code_for(email))
        history.run_jobs()
        history.install(opened.id)
        history.run_jobs()
        cut_over = history.clock.now()
        assert api.post("/check", body, api.token()).json() == {"swapped": True}
        answer = api.post("/retrieve-date", {"phoneNumber": msisdn}, api.token())
        assert at(answer.json()["latestSimChange"]) == cut_over


class TestIdentifiers:
    @pytest.mark.parametrize("path", ["/check", "/retrieve-date"])
    def test_two_and_three_legged_rules(self, api: Camara, path: str) -> None:
        two = api.token("sim-swap")
        three = api.token("sim-swap", phone=A)
        missing = api.post(path, {}, two)
        assert (missing.status_code, missing.json()["code"]) == (422, "MISSING_IDENTIFIER")
        extra = api.post(path, {"phoneNumber": A}, three)  # even the same number
        assert (extra.status_code, extra.json()["code"]) == (422, "UNNECESSARY_IDENTIFIER")
        bound = api.post(path, {}, three)
        assert bound.status_code == 200, bound.text

    @pytest.mark.parametrize("path", ["/check", "/retrieve-date"])
    def test_unknown_ceased_and_malformed_numbers(self, api: Camara, path: str) -> None:
        token = api.token("sim-swap")
        unknown = api.post(path, {"phoneNumber": UNKNOWN}, token)
        assert (unknown.status_code, unknown.json()["code"]) == (404, "IDENTIFIER_NOT_FOUND")
        ceased = api.post(path, {"phoneNumber": D}, token)
        assert (ceased.status_code, ceased.json()["code"]) == (422, "SERVICE_NOT_APPLICABLE")
        bound_unknown = api.post(path, {}, api.token("sim-swap", phone=UNKNOWN))
        assert bound_unknown.status_code == 404
        for bad in ("4520100001", "+0520100001", "+45", "+45201000011234567", 4520100001, "", None):
            answer = api.post(path, {"phoneNumber": bad}, token)
            assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_ARGUMENT"), bad
            assert str(bad) not in answer.json()["message"] or bad in ("", None)


class TestAuthentication:
    @pytest.mark.parametrize("path", ["/check", "/retrieve-date"])
    def test_tokens_and_scopes(self, api: Camara, history: System, path: str) -> None:
        body = {"phoneNumber": A}
        assert api.post(path, body, None).status_code == 401
        expired = api.token("sim-swap", ttl=60)
        history.clock.advance(dt.timedelta(minutes=5))
        answer = api.post(path, body, expired)
        assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert expired not in answer.text
        assert api.post(path, body, "not-a-jwt").status_code == 401
        other = api.http.post(BASE + path, json=body, headers={"authorization": "Basic abc"})
        assert other.status_code == 401
        wrong_aud = api.token("sim-swap", aud="https://elsewhere.test")
        assert api.post(path, body, wrong_aud).status_code == 401
        own_scope = "sim-swap:check" if path == "/check" else "sim-swap:retrieve-date"
        other_scope = "sim-swap:retrieve-date" if path == "/check" else "sim-swap:check"
        denied = api.post(path, body, api.token(other_scope, "sim-swap-subscriptions:read"))
        assert (denied.status_code, denied.json()["code"]) == (403, "PERMISSION_DENIED")
        assert api.post(path, body, api.token(own_scope)).status_code == 200
        assert api.post(path, body, api.token("sim-swap")).status_code == 200

    def test_the_bss_credentials_are_not_camara_tokens(self, api: Camara) -> None:
        from identity_support import client_key

        key = client_key(api.ctx, "sim-changes:read")
        assert api.post("/check", {"phoneNumber": A}, key).status_code == 401


class TestCorrelatorAndFormat:
    def test_x_correlator_is_echoed_made_or_refused(self, api: Camara) -> None:
        token = api.token()
        echoed = api.post("/check", {"phoneNumber": A}, token, {"x-correlator": "b4333c46-49c0"})
        assert echoed.headers["x-correlator"] == "b4333c46-49c0"
        made = api.post("/check", {"phoneNumber": A}, token)
        assert len(made.headers["x-correlator"]) == 36
        error = api.post("/check", {"phoneNumber": UNKNOWN}, token, {"x-correlator": "abc:1"})
        assert (error.status_code, error.headers["x-correlator"]) == (404, "abc:1")
        refused = api.post("/check", {"phoneNumber": A}, token, {"x-correlator": "a b"})
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_ARGUMENT")
        too_long = api.post("/check", {"phoneNumber": A}, token, {"x-correlator": "a" * 257})
        assert too_long.status_code == 400

    def test_bodies_that_are_not_the_schema(self, api: Camara) -> None:
        headers = {"authorization": f"Bearer {api.token()}", "content-type": "application/json"}
        for raw in (b"{not json", b"[]", b'"x"', b"", b"null"):
            answer = api.http.post(BASE + "/check", content=raw, headers=headers)
            assert answer.status_code == 400, (raw, answer.text)
            assert answer.json()["code"] == "INVALID_ARGUMENT"
            assert answer.headers.get("x-correlator")
        as_text = api.http.post(
            BASE + "/check",
            content=b'{"phoneNumber": "+4520100001"}',
            headers={**headers, "content-type": "text/plain"},
        )
        assert (as_text.status_code, as_text.json()["code"]) == (400, "INVALID_ARGUMENT")
        # properties the schema does not name are ignored (it allows them)
        ok = api.post("/check", {"phoneNumber": A, "note": "x"}, api.token())
        assert ok.status_code == 200

    def test_other_paths_keep_the_bss_format(self, api: Camara) -> None:
        answer = api.http.post("/v1/requests", json={"msisdn": 5})
        assert answer.status_code == 422 and "status" not in answer.json()
        assert "x-correlator" not in answer.headers
        unknown = api.http.get(BASE + "/nothing")
        assert unknown.json() == {
            "status": 404,
            "code": "NOT_FOUND",
            "message": "The specified resource is not found.",
        }

    def test_answers_are_counted_not_audited(self, api: Camara, history: System) -> None:
        with history.ctx.uow() as uow:
            before = uow.session.execute(sa.select(sa.func.count()).select_from(orm.audit_event))
            audit_rows = before.scalar_one()
        api.post("/check", {"phoneNumber": A}, api.token())
        api.post("/check", {"phoneNumber": UNKNOWN}, api.token())
        metrics = api.http.get("/metrics").text
        assert 'resim_camara_answers_total{operation="check",outcome="swapped"} 1.0' in metrics
        assert (
            'resim_camara_answers_total{operation="check",outcome="IDENTIFIER_NOT_FOUND"} 1.0'
            in metrics
        )
        with history.ctx.uow() as uow:
            after = uow.session.execute(sa.select(sa.func.count()).select_from(orm.audit_event))
            assert after.scalar_one() == audit_rows
        spec = api.http.get(BASE + "/openapi.yaml")
        assert spec.status_code == 200 and b"version: 2.1.0" in spec.content


def test_rate_limit_per_client(history: System, db_url: str, tmp_path: Path) -> None:
    settings = camara_settings(db_url, tmp_path, camara_rate_per_second=0.01, camara_burst=2)
    for api in serve_camara(history.ctx, settings):
        first, second = api.token(client="bank-1"), api.token(client="bank-2")
        body = {"phoneNumber": A}
        assert [api.post("/check", body, first).status_code for _ in range(2)] == [200, 200]
        limited = api.post("/check", body, first)
        assert (limited.status_code, limited.json()["code"]) == (429, "TOO_MANY_REQUESTS")
        assert int(limited.headers["retry-after"]) >= 1
        assert api.post("/check", body, second).status_code == 200  # its own bucket


def test_a_required_purpose(history: System, db_url: str, tmp_path: Path) -> None:
    purpose = "dpv:FraudPreventionAndDetection"
    settings = camara_settings(db_url, tmp_path, camara_required_purpose=purpose)
    for api in serve_camara(history.ctx, settings):
        body = {"phoneNumber": A}
        none = api.post("/check", body, api.token("sim-swap"))
        assert (none.status_code, none.json()["code"]) == (403, "PERMISSION_DENIED")
        other = api.post("/check", body, api.token("sim-swap", purpose="dpv:Marketing"))
        assert other.status_code == 403
        claimed = api.post("/check", body, api.token("sim-swap", purpose=purpose))
        assert claimed.status_code == 200
        scoped = api.post("/check", body, api.token(f"{purpose}#sim-swap:check"))
        assert scoped.status_code == 200
