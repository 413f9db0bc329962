"""Schemathesis against the normative sim-swap.yaml, over real HTTP.

The app runs on loopback with resim's own issuer; every generated request
(valid and invalid bodies, with and without x-correlator) is sent with a
2-legged token (``sim-swap``) or, for some cases, a 3-legged one. Generated
phone numbers of valid cases are often swapped for seeded lines so the checks reach the
200 answers and not only 404. Each response must be documented (status,
content type, headers, body schema), never a server error, and invalid
requests must be refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from camara_support import SPEC_SCHEMA as schema
from camara_support import add_sim_change, camara_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from resim.adapters.corenet.fake import FakeCoreNetwork
from resim.adapters.db.engine import create_read_engine
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.mail.fake import FakeMailer
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.bootstrap import build_camara, build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.camara.versions import V2_1, CamaraVersion
from resim.entrypoints.serving import ServerThread
from resim.services.context import FrozenClock
from resim.services.onboarding import seed

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
NUMBERS = ["+4520100001", "+4520100002", "+393301000001"]


@dataclass
class Served:
    url: str
    two_legged: str
    three_legged: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_app(tmp_path_factory.mktemp("camara-schemathesis"), V2_1)


def serve_app(data: Path, version: CamaraVersion) -> Iterator[Served]:
    """The app in ``version``'s mode (RESIM_CAMARA_VERSION) with the seeded lines."""
    url = f"sqlite:///{data / 'resim.db'}"
    upgrade(url)
    clock = FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    config = camara_settings(url, data, camara_rate_per_second=0, camara_version=version.mode)
    engine = build_engine(config, pool_size=4)
    ctx = build_context(
        config,
        engine=engine,
        smdp=FakeSmdpClient(),
        core=FakeCoreNetwork(clock.now),
        mailer=FakeMailer(),
        clock=clock,
    )
    for brand, country, days in (("dk", "DK", None), ("it", "IT", 30)):
        seed.upsert_brand(
            ctx,
            seed.BrandSpec(
                brand,
                brand,
                country,
                "EUR",
                "da",
                "Europe/Copenhagen",
                BrandPolicy(verification=email_code_alone(), camara_monitored_days=days),
            ),
        )
    for n, msisdn in enumerate(NUMBERS):
        sim = iccid_with_check_digit(f"8945017{n:011d}")
        seed.add_line(
            ctx,
            seed.LineSpec(
                brand_id="it" if msisdn.startswith("+39") else "dk",
                msisdn=msisdn,
                name="Kunde",
                email=f"k{n}@example.test",
                iccid=sim,
                imsi=f"238017{n:09d}",
            ),
        )
        add_sim_change(
            ctx,
            msisdn=msisdn,
            at=clock.now() - dt.timedelta(days=40 * n),
            old=sim,
            new=iccid_with_check_digit(f"8945016{n:011d}"),
        )
    read_engine = create_read_engine(url, pool_size=4)
    app = build_app(
        ctx, ApiConfig(camara=build_camara(config, clock=clock, read_engine=read_engine))
    )
    issuer = LocalTokenIssuer.from_file(
        config.camara_issuer_key_file,
        issuer=config.camara_effective_issuer,
        audience=config.camara_effective_audience,
    )
    server = ServerThread(app).start()
    try:
        yield Served(
            url=server.url + version.simswap_prefix,
            two_legged=issuer.issue(scopes=["sim-swap"], client_id="bank", now=clock.now()),
            three_legged=issuer.issue(
                scopes=["sim-swap"], client_id="bank", now=clock.now(), phone_number=NUMBERS[0]
            ),
        )
    finally:
        server.stop()
        engine.dispose()
        read_engine.dispose()


@schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_response_is_as_documented(case: Any, served: Served) -> None:
    call_and_check(case, served)


def call_and_check(case: Any, served: Served) -> None:
    """Send ``case`` (a seeded number often, the token as the body asks) and check it."""
    body = case.body if isinstance(case.body, dict) else None
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if body is not None and not negative and isinstance(body.get("phoneNumber"), str):
        # often a seeded number instead of a random one, so the 200 answers are reached
        pick = sum(body["phoneNumber"].encode()) % (len(NUMBERS) + 1)
        if pick < len(NUMBERS):
            body["phoneNumber"] = NUMBERS[pick]
    token = served.two_legged
    if body is not None and "phoneNumber" not in body:
        token = served.three_legged  # the number comes from the token
    case.call_and_validate(
        base_url=served.url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )


def test_the_spec_is_the_published_one() -> None:
    spec = Path(__file__).parents[2] / "src/resim/entrypoints/camara/spec"
    source = (spec / "SOURCE.txt").read_text()
    assert "6008716efcbe055a6ef71ef74df59b2d53e70b30" in source
    assert "Apache License 2.0" in source
    assert (spec / "sim-swap.yaml").read_text().count("version: 2.1.0") == 1
