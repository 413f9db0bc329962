"""CAMARA notifications survive a SIGKILLed worker (real processes, real HTTP).

A ``resim worker`` process delivers six CloudEvents to a slow loopback sink
(each answer takes 0.8 s). Once the sink has seen three requests, the worker
is SIGKILLed (one or two deliveries are mid-flight then: the sink has the
request, the worker never hears the answer). A new worker finishes the job.

The guarantee (services.camara_delivery): at least once, with a stable
CloudEvents id. So: every event reaches the sink; an event is received twice
only if it was not yet recorded delivered when the worker died, and then with
the same id; an event recorded delivered is never sent again; and the sink's
bearer token never appears in the worker's log.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from crash_support import WorkerProcess

from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.events.capture import SinkCapture
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.services.camara import camara_subscriptions as subs
from resim.services.camara import subscription_events
from resim.services.onboarding import seed
from resim.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
SINK_TOKEN = "crash-sink-token-5d1e"


def _events(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(orm.camara_event.c.id, orm.camara_event.c.state)).all()
    return {r.id: r.state for r in rows}


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_killed_worker_loses_no_event_and_repeats_only_unrecorded_ones(
    db_url: str, tmp_path: Path
) -> None:
    upgrade(db_url)
    sink = SinkCapture(token=SINK_TOKEN, delay_s=0.8).start()
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_keys=SECRET_KEY,  # type: ignore[arg-type]
        camara_sink_allow_http_loopback=True,
    )
    engine = build_engine(settings, pool_size=5)
    ctx = build_context(settings, engine=engine)
    seed.upsert_brand(
        ctx,
        seed.BrandSpec(
            "dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen", BrandPolicy()
        ),
    )
    numbers = []
    for n in range(3):
        msisdn = f"+4540100{n:03d}"
        seed.add_line(
            ctx,
            seed.LineSpec(
                brand_id="dk",
                msisdn=msisdn,
                name=f"K {n}",
                email=f"k{n}@example.dk",
                iccid=iccid_with_check_digit(f"894503{n:012d}"),
                imsi=f"23803{n:010d}",
            ),
        )
        numbers.append(msisdn)
        for client in ("bank-a", "bank-b"):
            body = {
                "protocol": "HTTP",
                "sink": sink.url,
                "types": ["org.camaraproject.sim-swap-subscriptions.v0.swapped"],
                "config": {"subscriptionDetail": {"phoneNumber": msisdn}},
                "sinkCredential": {
                    "credentialType": "ACCESSTOKEN",
                    "accessToken": SINK_TOKEN,
                    "accessTokenExpiresUtc": (ctx.now() + dt.timedelta(days=1)).isoformat(),
                    "accessTokenType": "bearer",
                },
            }
            subs.create_subscription(ctx, caller=subs.Caller(client), body=body)
    with ctx.uow() as uow:  # what a cut-over does for each number, in its transaction
        for msisdn in numbers:
            subscription_events.enqueue_swap_events(ctx, uow, msisdn=msisdn, swapped_at=ctx.now())
        uow.commit()
    expected = set(_events(engine))
    assert len(expected) == 6

    env = {
        **os.environ,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_DATABASE_URL": db_url,
        "RESIM_SECRET_KEYS": SECRET_KEY,
        "RESIM_CAMARA_SINK_ALLOW_HTTP_LOOPBACK": "true",
        "RESIM_CAMARA_SINK_TIMEOUT_SECONDS": "5",
        "RESIM_WORKER_CONCURRENCY": "2",
        "RESIM_WORKER_POLL_SECONDS": "0.05",
        "RESIM_JOB_LEASE_SECONDS": "2",
        "RESIM_JOB_BACKOFF_BASE_SECONDS": "0.05",
        "RESIM_JOB_BACKOFF_CAP_SECONDS": "0.5",
        "RESIM_LOG_FORMAT": "json",
    }
    first = WorkerProcess(env, tmp_path / "worker-1.log")
    try:
        assert _wait(lambda: len(sink.received()) >= 3, 60), "the worker delivered nothing"
        first.signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        first.signal(signal.SIGKILL)
    recorded_at_kill = {i for i, state in _events(engine).items() if state == "delivered"}
    seen_at_kill = {r.event_id for r in sink.received()}
    assert seen_at_kill - recorded_at_kill, "the kill did not land mid-delivery"

    second = WorkerProcess(env, tmp_path / "worker-2.log")
    try:
        done = _wait(lambda: set(_events(engine).values()) == {"delivered"}, 60)
        second.signal(signal.SIGTERM)
        second.wait(15)
    finally:
        second.signal(signal.SIGKILL)
    assert done, f"not all delivered: {_events(engine)}"
    received = Counter(r.event_id for r in sink.received())
    assert set(received) == expected  # nothing lost, nothing foreign
    repeated = {i for i, n in received.items() if n > 1}
    assert all(n <= 2 for n in received.values()), received
    assert not repeated & recorded_at_kill  # a recorded delivery is never sent again
    assert repeated <= seen_at_kill
    for request in sink.received():
        assert request.authorization == f"Bearer {SINK_TOKEN}"
    for log in (first.log_path, second.log_path):
        assert SINK_TOKEN.encode() not in log.read_bytes()
    print(
        f"camara crash: {len(expected)} events, {sum(received.values())} receipts, "
        f"{len(repeated)} repeated, in flight at the kill: {len(seen_at_kill - recorded_at_kill)}"
    )
    sink.stop()
    engine.dispose()
