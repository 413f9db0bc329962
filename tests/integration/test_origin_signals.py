"""Issue 13 finding 5, on SQLite and PostgreSQL over real HTTP: the new-device and
new-country rules (SEC-07) no longer depend on the caller volunteering a device and a
country. A self-service caller who sends neither is treated as unknown (the brand's
``missing_signal`` policy, default step-up); the portal sends a device of its own (a
cookie) and the country comes from the operator's ranges file; the explanation is
stored with the decision."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key
from risk_support import audit_actions, sha256, update_subscriber
from test_portal_pages import open_via_forms, verify_via_form
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.adapters.geo.ranges import CidrCountryFile, NoGeolocator
from resim.domain.model import Brand
from resim.domain.policy import BrandPolicy
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.replacement import cancel, queries

pytestmark = pytest.mark.integration


@pytest.fixture
def base_url(system: System) -> Iterator[str]:
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    yield server.url
    server.stop()


def patch_policy(system: System, **changes: object) -> None:
    with system.ctx.uow() as uow:
        brand = uow.session.get(Brand, "dk")
        assert brand is not None
        policy = dataclasses.replace(brand.policy, **changes)  # type: ignore[arg-type]
        brand.policy_data = policy.to_dict()
        uow.commit()


def ranges_file(tmp_path: Path, country: str) -> CidrCountryFile:
    """The operator's ranges: the test server's loopback clients are in ``country``."""
    path = tmp_path / "ranges.csv"
    path.write_text(f"network,country\n# test\n127.0.0.0/8,{country}\n198.51.100.0/24,NO\n")
    return CidrCountryFile.from_file(path)


def anonymous_open(base_url: str, msisdn: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/requests", json={"msisdn": msisdn, "reason": "damaged", **extra}
    )


def open_anonymously(system: System, base_url: str, msisdn: str, email: str) -> str:
    """Open without credentials: the API answers 202 whatever the number (issue 13,
    finding 15), so the request's id comes from the link in the code mail."""
    opened = anonymous_open(base_url, msisdn)
    assert opened.status_code == 202, opened.text
    system.run_jobs()
    return system.request_id_from_mail(email)


def verify_anonymously(system: System, base_url: str, rid: str, email: str) -> str:
    system.run_jobs()
    done = httpx.post(
        f"{base_url}/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}
    )
    assert done.status_code == 200, done.text
    return str(done.json()["state"])


def reasons(system: System, rid: str) -> dict[str, str]:
    view = queries.get_request_view(system.ctx, rid)
    return {r["rule"]: r["reason"] for r in view["risk"]["reasons"]}


def request_count(system: System) -> int:
    with system.engine.connect() as conn:
        t = orm.replacement_request
        return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())


class TestAnAnonymousCallerWhoSendsNothingIsTreatedAsUnknown:
    def test_both_rules_fire_and_the_request_waits_for_a_step_up(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 700)
        rid = open_anonymously(system, base_url, msisdn, email)
        assert verify_anonymously(system, base_url, rid, email) == "verified"
        view = queries.get_request_view(system.ctx, rid)
        assert view["risk"]["outcome"] == "step_up"
        assert view["risk"]["step_up_methods"] == ["id_document", "totp"]
        why = reasons(system, rid)
        assert set(why) == {"new_device", "new_country"}
        assert "without a device" in why["new_device"]
        assert "could not be determined" in why["new_country"]
        assert "self-service" in why["new_device"] and "(step_up)" in why["new_device"]
        assert audit_actions(system, rid).count("risk.step_up_required") == 1

    def test_a_brand_that_chose_ignore_lets_it_through_and_records_nothing(
        self, system: System, base_url: str
    ) -> None:
        patch_policy(
            system,
            missing_signal={
                "new_device": {"self_service": "ignore"},
                "new_country": {"self_service": "ignore"},
            },
        )
        msisdn, email, _, _ = add_line(system, 701)
        rid = open_anonymously(system, base_url, msisdn, email)
        assert verify_anonymously(system, base_url, rid, email) == "approved"
        assert reasons(system, rid) == {}

    def test_a_brand_may_send_it_to_review_instead(self, system: System, base_url: str) -> None:
        patch_policy(system, missing_signal={"new_device": {"self_service": "review"}})
        msisdn, email, _, _ = add_line(system, 702)
        rid = open_anonymously(system, base_url, msisdn, email)
        assert verify_anonymously(system, base_url, rid, email) == "in_review"
        view = queries.get_request_view(system.ctx, rid)
        found = {r["rule"]: r["outcome"] for r in view["risk"]["reasons"]}
        assert found == {"new_device": "review", "new_country": "step_up"}

    def test_an_anonymous_caller_cannot_name_a_device_or_country(
        self, system: System, base_url: str
    ) -> None:
        msisdn, _, _, _ = add_line(system, 703)
        update_subscriber(system, msisdn, known_devices=[sha256("IMEI-1")], known_countries=["DK"])
        for extra in ({"device_id": "IMEI-1"}, {"country": "DK"}):
            refused = anonymous_open(base_url, msisdn, **extra)
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "ORIGIN_NOT_ACCEPTED"
            assert "IMEI-1" not in refused.text
        assert request_count(system) == 0

    def test_a_trusted_client_without_them_is_not_held_by_default(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 704)
        key = bearer(client_key(system.ctx, "requests:write", "requests:read"))
        rid = httpx.post(
            f"{base_url}/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}, headers=key
        ).json()["id"]
        system.run_jobs()
        done = httpx.post(
            f"{base_url}/v1/requests/{rid}/verification",
            json={"otp": system.code_for(email)},
            headers=key,
        )
        assert done.json()["state"] == "approved"
        assert reasons(system, rid) == {}


class TestTheCountryComesFromTheOperatorsRanges:
    def test_a_known_country_does_not_fire_an_unknown_one_does(
        self, system: System, base_url: str, tmp_path: Path
    ) -> None:
        msisdn, email, _, _ = add_line(system, 710)
        update_subscriber(system, msisdn, known_countries=["DK"])
        patch_policy(system, missing_signal={"new_device": {"self_service": "ignore"}})
        system.ctx.geolocator = ranges_file(tmp_path, "DK")
        rid = open_anonymously(system, base_url, msisdn, email)
        assert verify_anonymously(system, base_url, rid, email) == "approved"
        assert reasons(system, rid) == {}
        with system.engine.connect() as conn:
            t = orm.replacement_request
            stored = conn.execute(sa.select(t.c.country).where(t.c.id == rid)).scalar_one()
        assert stored == "DK"

        other, other_email, _, _ = add_line(system, 711)
        update_subscriber(system, other, known_countries=["DK"])
        system.ctx.geolocator = ranges_file(tmp_path, "SE")
        rid = open_anonymously(system, base_url, other, other_email)
        assert verify_anonymously(system, base_url, rid, other_email) == "verified"
        assert reasons(system, rid) == {
            "new_country": "the request comes from a country this customer has not used before (SE)"
        }

    def test_without_a_ranges_file_the_country_is_unknown(
        self, system: System, base_url: str
    ) -> None:
        system.ctx.geolocator = NoGeolocator()
        patch_policy(system, missing_signal={"new_device": {"self_service": "ignore"}})
        msisdn, email, _, _ = add_line(system, 712)
        update_subscriber(system, msisdn, known_countries=["DK"])
        rid = open_anonymously(system, base_url, msisdn, email)
        assert verify_anonymously(system, base_url, rid, email) == "verified"
        assert set(reasons(system, rid)) == {"new_country"}


DEVICE_COOKIE = re.compile(r"resim_device=([A-Za-z0-9_-]+)")


def stored_device(system: System, rid: str) -> str | None:
    with system.engine.connect() as conn:
        t = orm.replacement_request
        return conn.execute(sa.select(t.c.device_id).where(t.c.id == rid)).scalar_one()


class TestThePortalRecognisesTheBrowser:
    def test_a_device_cookie_is_set_and_a_known_browser_is_not_a_new_device(
        self, system: System, base_url: str, tmp_path: Path
    ) -> None:
        system.ctx.geolocator = ranges_file(tmp_path, "DK")
        msisdn, email, _, _ = add_line(system, 720)
        update_subscriber(system, msisdn, known_countries=["DK"])
        with httpx.Client(base_url=base_url, timeout=10) as http:
            first = open_via_forms(system, http, msisdn, reason="damaged")
            cookie = http.cookies.get("resim_device")
            assert cookie and len(cookie) >= 40
            device = stored_device(system, first)
            # Only a hash of a keyed hash of the cookie is stored, never the value.
            assert device is not None and cookie not in device and device != sha256(cookie)
            system.run_jobs()
            verify_via_form(http, first, system.code_for(email))
            assert queries.get_request_view(system.ctx, first)["state"] == "verified"
            assert set(reasons(system, first)) == {"new_device"}
            # What a completed replacement from this browser leaves behind:
            update_subscriber(system, msisdn, known_devices=[device])
            cancel.cancel(system.ctx, first, actor="customer")
            second = open_via_forms(system, http, msisdn, reason="damaged")
            assert stored_device(system, second) == device  # the same browser, the same device
            system.run_jobs()
            verify_via_form(http, second, system.code_for(email))
            assert queries.get_request_view(system.ctx, second)["state"] == "approved"
            assert reasons(system, second) == {}

    def test_the_cookie_is_httponly_and_lax_and_another_browser_is_new(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 721)
        with httpx.Client(base_url=base_url, timeout=10) as http:
            start = http.get("/portal")
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', start.text)
            assert token
            opened = http.post(
                "/portal/requests",
                data={
                    "msisdn": msisdn,
                    "reason": "damaged",
                    "delivery": "esim",
                    "csrf_token": token.group(1),
                },
            )
            assert opened.status_code == 303
            # the quiet answer keeps it
            assert opened.headers["location"].split("?")[0] == "/portal/sent"
            header = next(
                h for h in opened.headers.get_list("set-cookie") if h.startswith("resim_device=")
            ).lower()
            assert "httponly" in header and "samesite=lax" in header
            assert "max-age=34560000" in header and "secure" not in header  # http here
            system.run_jobs()
            rid = system.request_id_from_mail(email)
            first = stored_device(system, rid)
        cancel.cancel(system.ctx, rid, actor="customer")
        with httpx.Client(base_url=base_url, timeout=10) as stranger:
            stranger.cookies.set("resim_device", "not-ours", domain="127.0.0.1")  # replaced
            other = open_via_forms(system, stranger, msisdn, reason="damaged")
            assert stranger.cookies.get("resim_device") not in (None, "not-ours")
            assert stored_device(system, other) not in (None, first)


def test_the_default_policy_shows_every_choice() -> None:
    shown = BrandPolicy().to_dict()["missing_signal"]
    assert shown == {
        "new_device": {"self_service": "step_up", "trusted": "ignore"},
        "new_country": {"self_service": "step_up", "trusted": "ignore"},
    }
