"""The agent path in a real browser (Debian's Chromium, headless) against the real stack:
sign-in with password + TOTP, search, redacted view, ID check, full view, a request the
risk engine holds for two approvers, and two reviewers approving it. Screenshots of
each step go to test-output/screenshots/console-*.png; axe checks every page."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from browser_support import browser as browser
from browser_support import check_accessibility, new_page, screenshot
from browser_support import web_stack as web_stack

from resim.adapters.db import orm
from resim.bootstrap import build_context
from resim.domain.model import Line, Subscriber
from resim.entrypoints.demo import DemoStack
from resim.services.access import staff

pytestmark = pytest.mark.slow
SECOND_REVIEWER_PASSWORD = "second reviewer password"


def sign_in(page: Any, base: str, username: str, password: str, seed: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(seed).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/console")


def test_agent_path_from_search_to_four_eyes_approval(browser: Any, web_stack: DemoStack) -> None:
    base = web_stack.api.url
    creds = web_stack.credentials.staff
    line = next(x for x in web_stack.data.lines if x.brand_id == web_stack.data.lines[0].brand_id)
    ctx = build_context(web_stack.settings)
    with ctx.uow() as uow:  # a prior fraud flag: the request will need two approvers
        found = uow.session.scalars(sa.select(Line).where(orm.line.c.msisdn == line.msisdn)).one()
        subscriber = uow.session.get(Subscriber, found.subscriber_id)
        assert subscriber is not None
        subscriber.fraud_flags = 1
        uow.commit()
    second_seed = pyotp.random_base32()
    staff.create_staff(
        ctx,
        username="second-reviewer",
        role="reviewer",
        display_name="Second Reviewer",
        password=SECOND_REVIEWER_PASSWORD,
        totp_secret=second_seed,
    )

    agent = new_page(browser)
    agent.goto(f"{base}/console/login")
    check_accessibility(agent, "console login")
    screenshot(agent, "console-01-sign-in")
    who = creds["agent"]
    sign_in(agent, base, who.username, who.password, who.totp_seed)
    check_accessibility(agent, "console home")

    agent.get_by_role("link", name="Find a line").first.click()
    agent.get_by_label("Phone number").fill(line.msisdn)
    agent.get_by_role("button", name="Search").click()
    assert agent.locator("#redacted").is_visible()
    assert "***" in agent.locator("#name").inner_text()
    check_accessibility(agent, "console line redacted")
    screenshot(agent, "console-02-line-redacted")

    agent.get_by_label("Document type").select_option("passport")
    agent.get_by_label("Holder's name as printed").fill(line.name)
    agent.get_by_label("Birth date").fill(line.birth_date)
    agent.get_by_label("Last 4 digits of the document number").fill(line.document_number[-4:])
    agent.get_by_role("button", name="Compare with the account").click()
    assert agent.locator("#verified").is_visible()
    assert "***" not in agent.locator("#name").inner_text()
    check_accessibility(agent, "console line verified")
    screenshot(agent, "console-03-line-verified")

    agent.get_by_label("Reason").select_option("stolen")
    agent.get_by_label("New SIM and delivery").select_option("esim")
    agent.get_by_role("button", name="Open the request").click()
    agent.wait_for_url(f"{base}/console/requests/*")
    request_url = agent.url
    assert agent.locator("#state").get_attribute("data-state") == "in_review"
    assert agent.locator('#risk-reasons li[data-rule="prior_fraud_flag"]').count() == 1
    check_accessibility(agent, "console request (agent)")
    screenshot(agent, "console-04-request-held")

    for n, (username, password, seed) in enumerate(
        [
            (creds["reviewer"].username, creds["reviewer"].password, creds["reviewer"].totp_seed),
            ("second-reviewer", SECOND_REVIEWER_PASSWORD, second_seed),
        ],
        start=1,
    ):
        reviewer = new_page(browser)
        sign_in(reviewer, base, username, password, seed)
        reviewer.get_by_role("link", name="Review queue").first.click()
        check_accessibility(reviewer, f"console queue {n}")
        screenshot(reviewer, f"console-0{4 + n}-queue-reviewer-{n}")
        reviewer.goto(request_url)
        check_accessibility(reviewer, f"console request (reviewer {n})")
        reviewer.get_by_role("button", name="Approve", exact=True).click()
        reviewer.wait_for_url(request_url)
        screenshot(reviewer, f"console-0{6 + n}-approved-by-reviewer-{n}")
        # After the second approval the worker may already be ordering the eSIM.
        expected = {"in_review"} if n == 1 else {"approved", "provisioning", "ready"}
        assert reviewer.locator("#state").get_attribute("data-state") in expected
        assert f"{n} of 2" in reviewer.locator("#approvals").inner_text()

    reviewer.get_by_role("link", name="Audit trail").click()
    assert "request.approved" in reviewer.content()
    check_accessibility(reviewer, "console audit trail")
    screenshot(reviewer, "console-09-audit-trail")
    reviewer.get_by_role("link", name="Dashboard").first.click()
    assert reviewer.locator("#total-held").inner_text() == "1"
    check_accessibility(reviewer, "console dashboard")
    screenshot(reviewer, "console-10-dashboard")
