"""SEC-03: brute-forcing a code or a PIN over HTTP, spread over two API processes, is capped.

Two real ``resim serve`` processes share one database (a SQLite file, and
PostgreSQL). Wrong guesses alternate between them, several in flight at once.
The counters live in the database under row locks, so the number of guesses
that were actually checked (one ``verification.failed`` audit event each)
never exceeds the account cap; then even the right answer is refused, the
account is frozen and reviewers are alerted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.mail.fake import FakeMailer
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.emulator.core import SmdpCore
from resim.entrypoints.api.access import SCOPES
from resim.entrypoints.demo import free_port
from resim.services.access import api_clients
from resim.services.context import ServiceContext
from resim.services.onboarding import seed
from resim.services.replacement import requests
from resim.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
CAP = 6
CODE = "246810"
PIN = "9753"
GUESSES = 3 * CAP


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-c",
        "from resim.entrypoints.cli import main; main()",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"resim serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not become healthy")


class Stack:
    def __init__(self, ctx: ServiceContext, engine: sa.Engine, bases: list[str]) -> None:
        self.ctx, self.engine, self.bases = ctx, engine, bases

    def checked(self, request_id: str) -> int:
        t = orm.audit_event
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(t.c.object_id == request_id, t.c.action == "verification.failed")
                )
                or 0
            )

    def frozen(self, msisdn: str) -> bool:
        s, line = orm.subscriber, orm.line
        with self.engine.connect() as conn:
            at = conn.scalar(
                sa.select(s.c.replacements_frozen_at)
                .join(line, line.c.subscriber_id == s.c.id)
                .where(line.c.msisdn == msisdn)
            )
        return at is not None

    def alerts(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r.kind for r in conn.execute(sa.select(orm.alert.c.kind))]


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    upgrade(db_url)
    settings = Settings(data_dir=tmp_path, database_url=db_url, secret_keys=SecretStr(SECRET_KEY))
    engine = build_engine(settings)
    ctx = build_context(
        settings,
        engine=engine,
        smdp=FakeSmdpClient(SmdpCore(smdp_address="smdp.resim.test")),
        core=BuiltinCoreNetwork(engine),
        mailer=FakeMailer(),
    )
    ctx.otp_generator = lambda: CODE
    policy = BrandPolicy(otp_max_attempts=100, account_max_failures=CAP, backoff_base_seconds=0)
    seed.upsert_brand(
        ctx, seed.BrandSpec("dk", "Nordlys", "DK", "DKK", "da", "Europe/Copenhagen", policy)
    )
    env = {
        **os.environ,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_DATABASE_URL": db_url,
        "RESIM_SECRET_KEYS": SECRET_KEY,
        "RESIM_API_TOKENS": "",
        "RESIM_LOG_LEVEL": "WARNING",
    }
    procs, bases = [], []
    try:
        for n in range(2):
            port = free_port()
            procs.append(_serve(env, port, tmp_path / f"api-{n}.log"))
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            _wait_healthy(base, proc)
        yield Stack(ctx, engine, bases)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        engine.dispose()


def _line(stack: Stack, n: int) -> str:
    msisdn = f"+45301{n:05d}"
    seed.add_line(
        stack.ctx,
        seed.LineSpec(
            brand_id="dk",
            msisdn=msisdn,
            name=f"Kunde {n}",
            email=f"kunde{n}@example.dk",
            iccid=iccid_with_check_digit(f"894501{n:012d}"),
            imsi=f"23801{n:010d}",
            pin=PIN,
        ),
    )
    return msisdn


def _attack(stack: Stack, request_id: str, bodies: list[dict[str, str]]) -> Counter[int]:
    def send(i: int) -> int:
        base = stack.bases[i % 2]  # alternate between the two processes
        answer = httpx.post(
            f"{base}/v1/requests/{request_id}/verification", json=bodies[i], timeout=60
        )
        assert answer.status_code in (400, 403, 429), answer.text
        for secret in (CODE, PIN):
            assert secret not in answer.text
        return answer.status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        return Counter(pool.map(send, range(len(bodies))))


@pytest.mark.parametrize("target", ["otp", "pin"])
def test_guessing_is_capped_across_two_api_processes(stack: Stack, target: str) -> None:
    msisdn = _line(stack, 1 if target == "otp" else 2)
    opened = requests.open_request(stack.ctx, msisdn=msisdn, reason="damaged")
    if target == "otp":
        bodies = [{"otp": f"{i:06d}", "pin": PIN} for i in range(GUESSES)]  # never CODE
    else:
        bodies = [{"otp": CODE, "pin": f"{1000 + i}"} for i in range(GUESSES)]  # never PIN
    statuses = _attack(stack, opened.id, bodies)

    checked = stack.checked(opened.id)
    assert checked == CAP, f"{checked} guesses were checked; the cap is {CAP} ({statuses})"
    assert statuses[400] == CAP
    assert statuses[403] + statuses[429] == GUESSES - CAP

    right = httpx.post(
        f"{stack.bases[0]}/v1/requests/{opened.id}/verification",
        json={"otp": CODE, "pin": PIN},
        timeout=30,
    )
    assert right.status_code in (403, 429)
    assert right.json()["code"] in ("ACCOUNT_FROZEN", "ATTEMPTS_CAPPED")
    reader = api_clients.create_client(
        stack.ctx, name="bss", scopes=["requests:read"], known_scopes=SCOPES
    )
    state = httpx.get(
        f"{stack.bases[1]}/v1/requests/{opened.id}",
        headers={"Authorization": f"Bearer {reader.key}"},
        timeout=30,
    ).json()["state"]
    assert state == "requested"
    assert stack.frozen(msisdn)
    assert stack.alerts() == ["account_frozen"]
