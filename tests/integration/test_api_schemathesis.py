"""Schemathesis against the app's own OpenAPI document, in process (ASGI).

Every operation gets generated requests (valid and invalid) on its own copy
of one seeded SQLite database; each response must not be a server error, must
have a status code and content type the operation documents, and must match
the documented schema. Generated ``request_id``s are often swapped for a
seeded request (requested, in review, ready, completed), QR formats for png or
svg, and new requests' numbers for seeded lines, so the checks reach the
handlers and not only their 404 and 422 paths. The ES2+ callback is only
reached unauthenticated (its caller is the SM-DP+, with its own token).

Authentication lives in ONE fixture, ``auth_headers``: a real API key with
every scope, and signed-in staff sessions (agent, reviewer, admin). Each
operation is called as a caller its ``allow(...)`` rules admit: the client
when a scope admits it, otherwise the first staff role named, otherwise (for
"anyone" and customer-only routes) the client key.

Profile: 20 examples per operation, ``derandomize=True`` (the same cases every
run, no flakes), runs in well under a minute.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from identity_support import client_key, staff_session
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from resim.adapters.corenet.fake import FakeCoreNetwork
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.mail.fake import FakeMailer
from resim.bootstrap import build_context, build_engine
from resim.domain.activation import parse_activation_code
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.emulator.core import SmdpCore
from resim.entrypoints.api.access import access_rules
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.services.context import FrozenClock, ServiceContext
from resim.services.cutover.cutover import handle_download_progress
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.replacement import queries, requests
from resim.settings import Settings

pytestmark = pytest.mark.integration

SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
CODE = "424242"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Api:
    app: Any
    ctx: ServiceContext
    request_ids: list[str]
    msisdns: list[str]


def _seed(ctx: ServiceContext, smdp_core: SmdpCore) -> tuple[list[str], list[str]]:
    """Brand "dk", six lines, stock; requests left requested, in review, ready and completed."""
    seed.upsert_brand(
        ctx,
        seed.BrandSpec(
            "dk",
            "Nordlys Mobil",
            "DK",
            "DKK",
            "da",
            "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone()),
        ),
    )
    stock = [(iccid_with_check_digit(f"8945019{n:011d}"), f"238019{n:09d}") for n in range(1, 9)]
    seed.add_stock(ctx, brand_id="dk", profile_type="default", profiles=stock)
    smdp_core.add_stock("default", [i for i, _ in stock])
    msisdns = []
    for n in range(1, 7):
        msisdns.append(f"+452010000{n}")
        seed.add_line(
            ctx,
            seed.LineSpec(
                brand_id="dk",
                msisdn=msisdns[-1],
                name=f"Kunde {n}",
                email=f"kunde{n}@example.dk",
                iccid=iccid_with_check_digit(f"8945018{n:011d}"),
                imsi=f"238018{n:09d}",
                email_changed_at=ctx.now() if n == 2 else None,  # held for review
            ),
        )
    ctx.otp_generator = lambda: CODE
    ids = [
        requests.open_request(ctx, msisdn=m, reason="lost", actor="agent-1").id for m in msisdns[:4]
    ]
    for request_id in ids[1:]:
        requests.submit_verification(ctx, request_id, otp=CODE)
    jobs.run_due_jobs(ctx)
    code = parse_activation_code(
        queries.activation_view(ctx, ids[3], reader="test", via="test")["activation_code"]
    )
    for note in smdp_core.download_and_install(code.matching_id, code.smdp_address):
        handle_download_progress(ctx, note)
    jobs.run_due_jobs(ctx)
    states = [queries.get_request_view(ctx, i)["state"] for i in ids]
    assert states == ["requested", "in_review", "ready", "completed"], states
    return ids, msisdns


@dataclass
class Seeded:
    path: Path
    request_ids: list[str]
    msisdns: list[str]
    clock: FrozenClock
    smdp_core: SmdpCore
    core: FakeCoreNetwork


def _context(path: Path, clock: FrozenClock, smdp_core: SmdpCore, core: FakeCoreNetwork) -> Any:
    settings_ = Settings(
        database_url=f"sqlite:///{path}", data_dir=path.parent, secret_keys=SECRET_KEY
    )
    engine = build_engine(settings_, pool_size=5)
    return build_context(
        settings_,
        engine=engine,
        smdp=FakeSmdpClient(smdp_core),
        core=core,
        mailer=FakeMailer(),
        clock=clock,
    ), engine


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A migrated, seeded SQLite file; each operation's test works on a copy of it."""
    path = tmp_path_factory.mktemp("schemathesis") / "seeded.db"
    upgrade(f"sqlite:///{path}")
    clock = FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    smdp_core = SmdpCore(smdp_address="smdp.resim.test")
    core = FakeCoreNetwork(clock.now)
    ctx, engine = _context(path, clock, smdp_core, core)
    try:
        ids, msisdns = _seed(ctx, smdp_core)
    finally:
        engine.dispose()
    return Seeded(path, ids, msisdns, clock, smdp_core, core)


@pytest.fixture
def api(seeded: Seeded, tmp_path: Path) -> Iterator[Api]:
    """The app on a fresh copy of the seeded database (an operation's calls change it)."""
    path = tmp_path / "resim.db"
    src, dst = sqlite3.connect(seeded.path), sqlite3.connect(path)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    ctx, engine = _context(path, seeded.clock, seeded.smdp_core, seeded.core)
    app = build_app(ctx, ApiConfig(callback_token="callback-token"))
    yield Api(app, ctx, seeded.request_ids, seeded.msisdns)
    engine.dispose()


@pytest.fixture
def auth_headers(api: Api) -> dict[str, dict[str, str]]:
    """Credentials per kind of caller (the one place to change; see module doc)."""
    creds = {"client": client_key(api.ctx)}
    for role in ("agent", "reviewer", "admin"):
        creds[role] = staff_session(api.ctx, role)
    return {who: {"Authorization": f"Bearer {token}"} for who, token in creds.items()}


def _caller_for(app: Any, method: str, path: str) -> str:
    """Which credentials to send: a client if a scope admits it, else a staff role."""
    for route in app.routes:
        if getattr(route, "path", None) == path and method.upper() in getattr(route, "methods", ()):
            rules = access_rules(route) or ()
            if any(r.startswith("client:") for r in rules):
                return "client"
            for role in ("agent", "reviewer", "admin"):
                if role in rules:
                    return role
    return "client"


def _schema_app() -> Any:
    """The app built only to read its OpenAPI document: nothing here touches a database."""
    settings_ = Settings(database_url="sqlite://", data_dir=Path("unused"), secret_keys=SECRET_KEY)
    ctx = build_context(
        settings_,
        engine=sa.create_engine("sqlite://"),
        smdp=FakeSmdpClient(),
        core=FakeCoreNetwork(),
        mailer=FakeMailer(),
    )
    return build_app(ctx, ApiConfig())


schema = schemathesis.openapi.from_dict(_schema_app().openapi())
SEEDED = "seeded-"  # a request_id "seeded-<n>" is replaced by the n-th seeded request's id


@schema.hook
def flatmap_path_parameters(_context: Any, path_parameters: dict[str, Any]) -> Any:
    if not path_parameters or "request_id" not in path_parameters:
        return st.just(path_parameters)
    ids = st.sampled_from([f"{SEEDED}{n}" for n in range(4)] + [path_parameters["request_id"]])
    changed = {"request_id": ids}
    if "fmt" in path_parameters:
        changed["fmt"] = st.sampled_from(["png", "svg", path_parameters["fmt"]])
    return st.fixed_dictionaries(changed).map(lambda new: {**path_parameters, **new})


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Opening a request: often for a seeded line (lines 5 and 6 have none open yet)."""
    if context.operation.path != "/v1/requests" or not isinstance(body, dict):
        return st.just(body)
    numbers = ["+4520100001", "+4520100005", "+4520100006"]
    return st.sampled_from([None, *numbers]).map(
        lambda n: body if n is None else {**body, "msisdn": n}
    )


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: Any, api: Api, auth_headers: dict[str, dict[str, str]]
) -> None:
    rid = str((case.path_parameters or {}).get("request_id", ""))
    if rid.startswith(SEEDED):
        case.path_parameters["request_id"] = api.request_ids[int(rid.removeprefix(SEEDED))]
    headers = auth_headers[_caller_for(api.app, case.method, case.operation.path)]
    case.call_and_validate(app=api.app, headers=headers, checks=CHECKS)
