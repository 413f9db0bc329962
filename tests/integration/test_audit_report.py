"""SEC-09 reports: swaps, fraud-flagged swaps and reversals per brand, from real flows."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from test_replacement_flow import System, add_line, system  # noqa: F401  (fixture)
from typer.testing import CliRunner

from resim.entrypoints.cli import app
from resim.services.audit import audit_log, audit_report
from resim.services.audit.audit_report import BrandCounts
from resim.services.replacement import cancel, requests
from resim.services.risk import review

pytestmark = pytest.mark.integration
NOT_ME = re.compile(r"/not-me/([A-Za-z0-9_\-]{16,})")


def complete(sut: System, n: int) -> str:
    msisdn, email, _, _ = add_line(sut, n)
    opened = requests.open_request(sut.ctx, msisdn=msisdn, reason="lost")
    sut.run_jobs()
    requests.submit_verification(sut.ctx, opened.id, otp=sut.code_for(email))
    sut.run_jobs()
    sut.install(opened.id)
    sut.run_jobs()
    return opened.id


def test_the_report_counts_swaps_flags_and_reversals(system: System) -> None:  # noqa: F811
    start = system.clock.now()
    complete(system, 1)
    reported = complete(system, 2)
    tokens = [
        m
        for mail in system.mail.sent
        if (m := NOT_ME.search(mail.text)) and "kunde2@" in str(mail.to)
    ]
    assert tokens, "no not-me link mailed for request 2"
    cancel.cancel_by_token(system.ctx, tokens[-1].group(1))  # completed, then "not me"

    msisdn, email, _, _ = add_line(system, 3)  # approved, then cancelled: a reversal
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    system.run_jobs()
    requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    cancel.cancel(system.ctx, opened.id, actor="bss")

    msisdn, _, _, _ = add_line(system, 4)  # cancelled before verification: nothing
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    cancel.cancel(system.ctx, opened.id, actor="bss")

    msisdn, email, _, _ = add_line(
        system, 5, email_changed_at=system.clock.now() - dt.timedelta(days=2)
    )  # held for review, then rejected: flagged
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
    system.run_jobs()
    requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    review.review(system.ctx, opened.id, reviewer="rev-1", approve_it=False)

    end = system.clock.now() + dt.timedelta(seconds=1)
    report = audit_report.build_report(system.ctx, start=start, end=end)
    assert report == [
        BrandCounts("dk", requested=5, replacements=2, fraud_flagged=2, reversals=2)
    ], reported
    later = audit_report.build_report(
        system.ctx, start=end + dt.timedelta(days=1), end=end + dt.timedelta(days=2)
    )
    assert later == []
    assert audit_log.verify_chain(system.ctx).ok  # every flow's events chained

    settings_env = {
        "RESIM_DATABASE_URL": system.engine.url.render_as_string(hide_password=False),
        "RESIM_DATA_DIR": "/nonexistent-unused",
        "RESIM_SECRET_KEYS": "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
        "RESIM_LOG_LEVEL": "WARNING",
    }
    day = start.date().isoformat()
    result = CliRunner().invoke(
        app, ["audit", "report", "--from", day, "--to", day, "--json"], env=settings_env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["brands"] == [
        {"brand_id": "dk", "requested": 5, "replacements": 2, "fraud_flagged": 2, "reversals": 2}
    ]
    table = CliRunner().invoke(
        app, ["audit", "report", "--from", day, "--to", day], env=settings_env
    )
    assert table.exit_code == 0 and "dk" in table.output and "reversals" in table.output
