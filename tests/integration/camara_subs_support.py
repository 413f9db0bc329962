"""A resim for the CAMARA subscription tests: real database, built-in core network,
the in-package SM-DP+ fake, a frozen clock, and a swap helper that drives a
real replacement (request, e-mail code, provisioning, install) to its cut-over.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.events.fake import FakeEventSink
from resim.adapters.events.resolver import FakeResolver
from resim.adapters.mail.fake import FakeMailer
from resim.adapters.sms.fake import FakeSmsGateway
from resim.bootstrap import build_context, build_engine
from resim.domain.activation import parse_activation_code
from resim.domain.camara_events import SWAPPED
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.emulator.core import SmdpCore
from resim.services.context import FrozenClock, ServiceContext
from resim.services.cutover.cutover import handle_download_progress
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.ports import EventSink
from resim.services.replacement import queries, requests
from resim.settings import Settings

SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
SINK_TOKEN = "sink-token-7f3a9c-do-not-log"
SINK_NAMES = ("rp.example.com", "other.example.com")
PUBLIC_ADDRESS = "93.184.215.14"  # a public address; no test sends anything to it
_numbers = itertools.count(1)


@dataclass
class Resim:
    ctx: ServiceContext
    smdp: SmdpCore
    mail: FakeMailer
    clock: FrozenClock
    engine: sa.Engine
    sink: FakeEventSink

    def run_jobs(self) -> int:
        return jobs.run_due_jobs(self.ctx)

    def add_line(self) -> str:
        n = next(_numbers)
        msisdn = f"+45301{n:05d}"
        seed.add_line(
            self.ctx,
            seed.LineSpec(
                brand_id="dk",
                msisdn=msisdn,
                name=f"Kunde {n}",
                email=f"camara{n}@example.dk",
                iccid=_iccid(),
                imsi=_imsi(),
            ),
        )
        return msisdn

    def swap(self, msisdn: str) -> None:
        """A device-change replacement of ``msisdn`` through to its cut-over (jobs run)."""
        self.add_stock(1)
        opened = requests.open_request(self.ctx, msisdn=msisdn, reason="device_change")
        self.run_jobs()
        requests.submit_verification(self.ctx, opened.id, otp=self._last_code())
        self.run_jobs()
        code = parse_activation_code(
            queries.activation_view(self.ctx, opened.id, reader="test", via="test")[
                "activation_code"
            ]
        )
        for note in self.smdp.download_and_install(code.matching_id, code.smdp_address):
            handle_download_progress(self.ctx, note)
        self.run_jobs()
        assert queries.get_request_view(self.ctx, opened.id)["state"] == "completed"

    def add_stock(self, count: int) -> None:
        stock = [(_iccid(), _imsi()) for _ in range(count)]
        seed.add_stock(self.ctx, brand_id="dk", profile_type="default", profiles=stock)
        self.smdp.add_stock("default", [i for i, _ in stock])

    def _last_code(self) -> str:
        mails = [m for m in self.mail.sent if m.headers.get("X-Resim-Kind") == "one_time_code"]
        found = re.search(r"^\s+(\d{6})\s*$", mails[-1].text, re.M)
        assert found
        return found.group(1)


def _iccid() -> str:
    return iccid_with_check_digit(f"894502{next(_numbers):012d}")


def _imsi() -> str:
    return f"23802{next(_numbers):010d}"


def make_resim(
    db_url: str,
    tmp_path: Path,
    *,
    event_sink: EventSink | None = None,
    resolver: FakeResolver | None = None,
    **settings: Any,
) -> Resim:
    upgrade(db_url)
    settings.setdefault("camara_sink_allow_http_loopback", True)
    config = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_keys=SECRET_KEY,  # type: ignore[arg-type]
        job_backoff_base_seconds=1.0,
        job_backoff_cap_seconds=8.0,
        job_max_attempts=5,
        **settings,
    )
    engine = build_engine(config, pool_size=10)
    clock = FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    smdp_core = SmdpCore(smdp_address="smdp.resim.test")
    sink = FakeEventSink()
    # No DNS in tests: sink names resolve only through this table, to a public
    # address the FakeEventSink never contacts (HTTP delivery tests use loopback).
    resolver = resolver or FakeResolver({name: [PUBLIC_ADDRESS] for name in SINK_NAMES})
    ctx = build_context(
        config,
        engine=engine,
        smdp=FakeSmdpClient(smdp_core),
        core=BuiltinCoreNetwork(engine),
        mailer=FakeMailer(),
        clock=clock,
        sms=FakeSmsGateway(),
        event_sink=event_sink or sink,
        sink_resolver=resolver,
    )
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
    assert isinstance(ctx.mailer, FakeMailer)
    return Resim(ctx, smdp_core, ctx.mailer, clock, engine, sink)


@pytest.fixture
def resim(db_url: str, tmp_path: Path) -> Iterator[Resim]:
    system = make_resim(db_url, tmp_path)
    yield system
    system.engine.dispose()


def subscription_body(
    *,
    sink: str = "https://rp.example.com/sink",
    phone: str | None = None,
    token: str | None = SINK_TOKEN,
    expires: str = "2027-01-01T00:00:00Z",
    **config: Any,
) -> dict[str, Any]:
    """A valid ``POST /subscriptions`` body (2-legged when ``phone`` is given)."""
    body: dict[str, Any] = {
        "protocol": "HTTP",
        "sink": sink,
        "types": [SWAPPED],
        "config": {"subscriptionDetail": {"phoneNumber": phone} if phone else {}, **config},
    }
    if token is not None:
        body["sinkCredential"] = {
            "credentialType": "ACCESSTOKEN",
            "accessToken": token,
            "accessTokenExpiresUtc": expires,
            "accessTokenType": "bearer",
        }
    return body
