"""SEC-03: asking for fresh codes backs off, so nobody can flood a customer's mailbox."""

from __future__ import annotations

import datetime as dt

import pytest
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system  # re-export the fixture

from resim.errors import TooManyAttempts
from resim.services.replacement import requests

pytestmark = pytest.mark.integration


def test_resends_back_off_after_the_policy_allows_a_few(system: System) -> None:
    msisdn, email, _, _ = add_line(system, 70)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    for _ in range(3):  # backoff_after_failures = 3 by default
        requests.resend_code(system.ctx, opened.id)
    with pytest.raises(TooManyAttempts) as refused:
        requests.resend_code(system.ctx, opened.id)
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
    system.run_jobs()
    codes = [m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "one_time_code"]
    assert len(codes) == 4  # the first code and three resends, not the refused one

    system.clock.advance(dt.timedelta(seconds=refused.value.retry_after + 1))
    requests.resend_code(system.ctx, opened.id)  # after the wait it works again
