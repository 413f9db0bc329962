"""Issue 11: a peer that always fails costs a bounded number of calls, ends visibly, alerts.

The bench ran without an SMS sink: every text went to a gateway address where
nothing listened, and 447 ``sms.send`` jobs made 2,678 failed calls, each with
its attempt row, outcome and reschedule, eating the worker's CPU. Here the
real HTTP gateway client talks to a closed port (connection refused) or to a
gateway that refuses resim's token, under the real job runner and a frozen
clock moved from one due time to the next.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system  # re-export the fixture

from resim.adapters.db import orm
from resim.adapters.sms.capture import SmsCapture
from resim.adapters.sms.http import HttpSmsGateway
from resim.entrypoints.api.metrics import DatabaseCollector
from resim.services.outbox.peer_circuit import FAILURES_TO_OPEN
from resim.services.replacement import requests

pytestmark = pytest.mark.integration

TEXTS = 20  # one "replacement requested" text to each old SIM


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_requests(system: System, first: int) -> None:
    for n in range(first, first + TEXTS):
        msisdn, _, _, _ = add_line(system, n)
        requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")


def sms_jobs(system: System) -> list[sa.Row[tuple[object, ...]]]:
    with system.engine.connect() as conn:
        return list(conn.execute(sa.select(orm.job).where(orm.job.c.kind == "sms.send")).all())


def sms_calls(system: System) -> int:
    with system.engine.connect() as conn:
        found = conn.execute(
            sa.select(sa.func.count())
            .select_from(orm.external_call)
            .where(orm.external_call.c.target == "sms.send")
        ).scalar()
    return int(found or 0)


def peer_alerts(system: System) -> list[sa.Row[tuple[object, ...]]]:
    with system.engine.connect() as conn:
        return list(
            conn.execute(sa.select(orm.alert).where(orm.alert.c.kind == "peer_unavailable")).all()
        )


def run_until_texts_settle(system: System, *, horizon: dt.timedelta) -> dt.timedelta:
    """Run due jobs, then move the clock to the next text's due time; stop when no
    text is pending or ``horizon`` has passed. Returns the time that passed."""
    start = system.clock.now()
    while system.clock.now() - start < horizon:
        system.run_jobs()
        due = [r.run_after for r in sms_jobs(system) if r.state == "pending"]
        if not due:
            break
        system.clock.advance(max(min(due) - system.clock.now(), dt.timedelta(0)))
        system.clock.advance(dt.timedelta(milliseconds=1))
    return system.clock.now() - start


class TestAGatewayNobodyListensOn:
    def test_calls_stay_bounded_the_texts_end_dead_and_one_alert_is_raised(
        self, system: System
    ) -> None:
        system.ctx.sms = HttpSmsGateway(f"http://127.0.0.1:{closed_port()}/messages", timeout=2)
        open_requests(system, 400)
        took = run_until_texts_settle(system, horizon=dt.timedelta(hours=6))

        rows = sms_jobs(system)
        assert len(rows) == TEXTS
        assert {r.state for r in rows} == {"dead"}  # bounded: every text gave up
        assert all(r.attempts == system.ctx.job_max_attempts for r in rows)
        assert all(("SMS_UNAVAILABLE" in (r.last_error or "")) for r in rows)
        assert took < dt.timedelta(hours=2)
        # Not a loop: each text retried on its own would have made TEXTS x 12 = 240
        # calls; paused, the peer sees the first failures and one probe per pause.
        calls = sms_calls(system)
        assert FAILURES_TO_OPEN <= calls <= 2 * TEXTS, calls
        (alert,) = peer_alerts(system)
        assert alert.subject_type == "peer" and alert.subject_id == "sms"
        assert "SMS_UNAVAILABLE" in alert.detail["error"]
        assert alert.acknowledged_at is None
        with system.engine.connect() as conn:
            notify = conn.execute(
                sa.select(orm.job.c.state).where(orm.job.c.kind == "alert.notify")
            ).all()
        assert [n.state for n in notify] == ["done"]
        gauges = {m.name: m for m in DatabaseCollector(system.ctx).collect()}
        samples = gauges["resim_alerts_unacknowledged"].samples
        assert [(x.labels, x.value) for x in samples] == [({"kind": "peer_unavailable"}, 1)]

    def test_mail_keeps_flowing_while_the_texts_are_paused(self, system: System) -> None:
        system.ctx.sms = HttpSmsGateway(f"http://127.0.0.1:{closed_port()}/messages", timeout=2)
        open_requests(system, 430)
        system.run_jobs()
        with system.engine.connect() as conn:
            mail = conn.execute(
                sa.select(orm.job.c.state).where(orm.job.c.kind == "mail.send")
            ).all()
        assert {m.state for m in mail} == {"done"}
        assert system.ctx.peers.state("sms", system.clock.now()) == "open"
        assert system.ctx.peers.state("mail", system.clock.now()) == "closed"


class TestAGatewayThatRefusesResimsToken:
    def test_texts_wait_with_an_alert_and_go_out_once_the_token_is_fixed(
        self, system: System, tmp_path: Path
    ) -> None:
        with SmsCapture(tmp_path / "sms", token="right") as capture:
            system.ctx.sms = HttpSmsGateway(capture.url, token=SecretStr("wrong"))
            open_requests(system, 460)
            run_until_texts_settle(system, horizon=dt.timedelta(minutes=2))
            assert {r.state for r in sms_jobs(system)} == {"pending"}  # not dead at once
            (alert,) = peer_alerts(system)
            assert "SMS_GATEWAY_MISCONFIGURED" in alert.detail["error"]
            assert "RESIM_SMS_GATEWAY_TOKEN" in alert.detail["error"]
            assert "wrong" not in str(alert.detail)

            system.ctx.sms = HttpSmsGateway(capture.url, token=SecretStr("right"))
            run_until_texts_settle(system, horizon=dt.timedelta(hours=1))
            assert {r.state for r in sms_jobs(system)} == {"done"}
            assert len(capture.messages()) == TEXTS
            assert system.ctx.peers.state("sms", system.clock.now()) == "closed"
