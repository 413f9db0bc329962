"""Agents and the fraud team act, in a real browser (Chromium) against the real stack
(issue 12: finding 2, a frozen account; finding 4, an agent's eSIM for the customer).

Finding 2: a customer says "this was not me", which freezes the account. The agent
sees "frozen" on the line page before trying anything (no form to open a request);
a reviewer finds the alert, opens the line, sees why and since when, and unfreezes
it with a reason; the customer gets a mail. Where the brand's policy asks for two
reviewers (the demo's Italian brand), the first approval waits, the same reviewer
cannot approve twice, and a second reviewer lifts it.

Finding 4: an agent opens an eSIM request for the customer at the counter; once a
second person approved it and the eSIM is ready, the agent's request page offers
the hand-over screen with the QR code and the two manual values, never cached;
the customer gets no "your verification code" mail. With the e-mail hand-over
(the Italian brand) the console says so and the customer gets the ready link.

Screenshots: test-output/screenshots/agents-*.png; axe checks every new page.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from browser_support import browser as browser
from browser_support import check_accessibility, new_page, screenshot
from browser_support import web_stack as web_stack

from resim.adapters.mail.capture import CapturedMail, read_mailbox
from resim.bootstrap import build_context
from resim.entrypoints.demo import DemoStack
from resim.services.access import staff

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SECOND_PASSWORD = "second reviewer password"


def step(page: Any, name: str) -> None:
    check_accessibility(page, name)
    screenshot(page, name)


def sign_in(page: Any, base: str, username: str, password: str, seed: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(seed).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/console")


def signed_in_as(browser: Any, stack: DemoStack, role: str) -> Any:
    who = stack.credentials.staff[role]
    page = new_page(browser)
    sign_in(page, stack.api.url, who.username, who.password, who.totp_seed)
    return page


def new_staff(browser: Any, stack: DemoStack, role: str, username: str) -> Any:
    """A second person of ``role``, signed in (their own TOTP seed: a code is never
    accepted twice, so the demo's own account cannot sign in twice in one step)."""
    seed = pyotp.random_base32()
    staff.create_staff(
        build_context(stack.settings),
        username=username,
        role=role,
        display_name=username.replace("-", " ").title(),
        password=SECOND_PASSWORD,
        totp_secret=seed,
    )
    page = new_page(browser)
    sign_in(page, stack.api.url, username, SECOND_PASSWORD, seed)
    return page


def second_reviewer(browser: Any, stack: DemoStack) -> Any:
    return new_staff(browser, stack, "reviewer", "second-reviewer")


def mails(stack: DemoStack, email: str, kind: str) -> list[CapturedMail]:
    return [m for m in read_mailbox(stack.mail_dir) if email in m.to and m.kind == kind]


def wait_for_mail(stack: DemoStack, email: str, kind: str, timeout: float = 30) -> CapturedMail:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = mails(stack, email, kind)
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no {kind} mail to {email}")


def line_of(stack: DemoStack, brand_id: str, n: int = 0) -> Any:
    return [ln for ln in stack.data.lines if ln.brand_id == brand_id and ln.pin is None][n]


def customer_says_not_me(browser: Any, stack: DemoStack, line: Any, name: str) -> None:
    """The customer starts a request in the portal, then presses "not me" in the mail
    (as the real account holder would when someone else started it)."""
    page = new_page(browser)
    page.goto(f"{stack.api.url}/portal")
    page.fill("#msisdn", line.msisdn)
    page.keyboard.press("Enter")
    page.wait_for_selector("input[name=reason]")
    page.check("#reason-lost")
    page.locator("form[action='/portal/requests'] button[type=submit]").click()
    page.wait_for_url("**/portal/sent*")
    notice = wait_for_mail(stack, line.email, "replacement_requested")
    link = re.search(r"https?://\S+/not-me/[A-Za-z0-9_-]+", notice.text)
    assert link, notice.text
    page.goto(link.group(0))
    page.locator("form[action^='/not-me/'] button[type=submit]").click()
    page.wait_for_selector(".success")
    screenshot(page, f"agents-{name}-0-customer-not-me")
    page.context.close()


def open_line(page: Any, base: str, msisdn: str) -> None:
    page.goto(f"{base}/console/lines")
    page.get_by_label("Phone number").fill(msisdn)
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("h2")


def test_a_reviewer_unfreezes_a_frozen_account(browser: Any, web_stack: DemoStack) -> None:
    base = web_stack.api.url
    line = line_of(web_stack, "nordlys-dk")
    customer_says_not_me(browser, web_stack, line, "f2")

    agent = signed_in_as(browser, web_stack, "agent")
    open_line(agent, base, line.msisdn)
    frozen = agent.locator("#frozen")
    assert frozen.is_visible()
    assert "not theirs" in frozen.inner_text()
    assert "Only a fraud reviewer can unfreeze it." in frozen.inner_text()
    step(agent, "agents-f2-1-agent-sees-frozen")
    agent.get_by_label("Document type").select_option("passport")
    agent.get_by_label("Holder's name as printed").fill(line.name)
    agent.get_by_label("Birth date").fill(line.birth_date)
    agent.get_by_label("Last 4 digits of the document number").fill(line.document_number[-4:])
    agent.get_by_role("button", name="Compare with the account").click()
    assert agent.locator("#frozen").is_visible()
    assert agent.get_by_role("button", name="Open the request").count() == 0  # not offered
    step(agent, "agents-f2-2-agent-checked-still-frozen")

    reviewer = signed_in_as(browser, web_stack, "reviewer")
    reviewer.get_by_role("link", name="Open alerts").first.click()
    row = reviewer.locator("#alerts tr[data-kind=not_me]")
    assert row.count() == 1
    step(reviewer, "agents-f2-3-reviewer-alerts")
    row.get_by_role("link", name=line.msisdn).click()
    assert reviewer.locator("#frozen").is_visible()
    assert "not theirs" in reviewer.locator("#frozen").inner_text()
    step(reviewer, "agents-f2-4-reviewer-line-frozen")
    # No reason: the browser's own check stops it; a blank reason from the server's side:
    reviewer.get_by_label("Reason (required, recorded in the audit log)").fill("   ")
    reviewer.get_by_role("button", name="Unfreeze").click()
    assert "Give the reason for unfreezing the account." in reviewer.locator(".error").inner_text()
    assert reviewer.locator("#frozen").is_visible()
    reviewer.get_by_label("Reason (required, recorded in the audit log)").fill(
        "Called the customer back: the request was their son's; ID seen in store"
    )
    reviewer.get_by_role("button", name="Unfreeze").click()
    assert reviewer.locator("#unfrozen").is_visible()
    assert reviewer.locator("#frozen").count() == 0
    step(reviewer, "agents-f2-5-reviewer-unfrozen")
    reviewer.goto(f"{base}/console/alerts")
    assert reviewer.locator("#no-alerts").is_visible()

    mail = wait_for_mail(web_stack, line.email, "account_unfrozen")
    assert "lifted" in mail.text or mail.text  # in the customer's language
    open_line(agent, base, line.msisdn)
    assert agent.locator("#frozen").count() == 0
    assert agent.get_by_role("button", name="Open the request").is_visible()
    screenshot(agent, "agents-f2-6-agent-can-act-again")


def test_two_reviewers_where_the_brand_says_so(browser: Any, web_stack: DemoStack) -> None:
    base = web_stack.api.url
    line = line_of(web_stack, "lago-it")
    customer_says_not_me(browser, web_stack, line, "f2b")

    first = signed_in_as(browser, web_stack, "reviewer")
    open_line(first, base, line.msisdn)
    assert "Two different reviewers must approve." in first.content()
    first.get_by_label("Reason (required, recorded in the audit log)").fill("customer verified")
    first.get_by_role("button", name="Unfreeze").click()
    assert first.locator("#unfreeze-approved").is_visible()
    assert first.locator("#frozen").is_visible()
    assert first.locator("#unfreeze-pending").is_visible()
    step(first, "agents-f2b-1-first-approval")
    first.get_by_label("Reason (required, recorded in the audit log)").fill("me again")
    first.get_by_role("button", name="Unfreeze").click()
    error = first.locator(".error").inner_text()
    assert "A second reviewer must approve." in error
    step(first, "agents-f2b-2-same-reviewer-refused")

    second = second_reviewer(browser, web_stack)
    open_line(second, base, line.msisdn)
    second.get_by_label("Reason (required, recorded in the audit log)").fill("agreed")
    second.get_by_role("button", name="Unfreeze").click()
    assert second.locator("#unfrozen").is_visible()
    step(second, "agents-f2b-3-second-reviewer-unfrozen")
    wait_for_mail(web_stack, line.email, "account_unfrozen")


def agent_opens_esim_request(browser: Any, stack: DemoStack, line: Any, name: str) -> Any:
    agent = signed_in_as(browser, stack, "agent")
    open_line(agent, stack.api.url, line.msisdn)
    agent.get_by_label("Document type").select_option("national_id")
    agent.get_by_label("Holder's name as printed").fill(line.name)
    agent.get_by_label("Birth date").fill(line.birth_date)
    agent.get_by_label("Last 4 digits of the document number").fill(line.document_number[-4:])
    agent.get_by_role("button", name="Compare with the account").click()
    agent.get_by_label("Reason").select_option("device_change")
    agent.get_by_label("New SIM and delivery").select_option("esim")
    agent.get_by_role("button", name="Open the request").click()
    agent.wait_for_url(f"{stack.api.url}/console/requests/*")
    step(agent, f"agents-{name}-1-request-opened")
    return agent


def second_person_approves(browser: Any, stack: DemoStack, request_url: str, name: str) -> None:
    reviewer = signed_in_as(browser, stack, "reviewer")
    for _ in range(3):  # approvals needed: as many as the risk check asked
        reviewer.goto(request_url)
        if reviewer.get_by_role("button", name="Approve", exact=True).count() == 0:
            break
        reviewer.get_by_role("button", name="Approve", exact=True).click()
        reviewer.wait_for_url(request_url)
        if reviewer.locator("#state").get_attribute("data-state") != "in_review":
            break
        reviewer.close()
        reviewer = second_reviewer(browser, stack)
    screenshot(reviewer, f"agents-{name}-2-approved")


def wait_for_state(page: Any, url: str, state: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(url)
        if page.locator("#state").get_attribute("data-state") == state:
            return
        time.sleep(0.5)
    raise AssertionError(f"{url} never reached {state}")


def test_the_agent_shows_the_esim_on_the_screen(browser: Any, web_stack: DemoStack) -> None:
    line = line_of(web_stack, "nordlys-dk", 1)
    agent = agent_opens_esim_request(browser, web_stack, line, "f4")
    request_url = agent.url
    assert agent.locator("#screen-later").is_visible()
    second_person_approves(browser, web_stack, request_url, "f4")
    wait_for_state(agent, request_url, "ready")
    step(agent, "agents-f4-3-ready")

    response = agent.context.request.get(f"{request_url}/screen")
    assert response.headers["cache-control"] == "no-store"
    agent.get_by_role("link", name="Show the eSIM to the customer").click()
    agent.wait_for_url(f"{request_url}/screen")
    assert agent.locator("#screen-qr img").is_visible()
    smdp = agent.locator("#screen-smdp").inner_text().strip()
    matching_id = agent.locator("#screen-matching-id").inner_text().strip()
    assert smdp and matching_id and "." in smdp
    step(agent, "agents-f4-4-screen-for-the-customer")

    # Another agent's browser (another session) gets no screen.
    other = new_staff(browser, web_stack, "agent", "other-agent")
    refused = other.goto(f"{request_url}/screen")
    assert refused is not None and refused.status == 403
    assert matching_id not in other.content()
    assert mails(web_stack, line.email, "one_time_code") == []


def test_with_the_email_policy_the_customer_gets_the_ready_link(
    browser: Any, web_stack: DemoStack
) -> None:
    line = line_of(web_stack, "lago-it", 1)
    agent = agent_opens_esim_request(browser, web_stack, line, "f4b")
    request_url = agent.url
    assert agent.locator("#handoff-email").is_visible()
    second_person_approves(browser, web_stack, request_url, "f4b")
    wait_for_state(agent, request_url, "ready")
    assert agent.locator("#handoff-email").is_visible()
    assert agent.get_by_role("link", name="Show the eSIM to the customer").count() == 0
    step(agent, "agents-f4b-3-ready-sent-by-mail")
    ready = wait_for_mail(web_stack, line.email, "esim_ready")
    request_id = request_url.rsplit("/", 1)[1]
    assert f"/c/{request_id}." in ready.text  # the signed continue link (issue 12.3)
    assert mails(web_stack, line.email, "one_time_code") == []


def test_the_agent_takes_over_a_customers_stuck_request(browser: Any, web_stack: DemoStack) -> None:
    """A customer started in the portal, never got past the code and walks into a store:
    the agent checks the ID, takes the request over; the customer is told."""
    base = web_stack.api.url
    line = line_of(web_stack, "nordlys-dk", 2)
    customer = new_page(browser)
    customer.goto(f"{base}/portal")
    customer.fill("#msisdn", line.msisdn)
    customer.keyboard.press("Enter")
    customer.wait_for_selector("input[name=reason]")
    customer.check("#reason-lost")
    customer.locator("form[action='/portal/requests'] button[type=submit]").click()
    customer.wait_for_url("**/portal/sent*")
    customer.context.close()

    agent = signed_in_as(browser, web_stack, "agent")
    open_line(agent, base, line.msisdn)
    agent.get_by_role("link", name="Open the request").click()
    agent.wait_for_url(f"{base}/console/requests/*")
    assert agent.locator("#state").get_attribute("data-state") == "requested"
    assert agent.locator("#check-first").is_visible()  # no ID check yet: nothing offered
    assert agent.get_by_role("button", name="Take over").count() == 0
    step(agent, "agents-take-1-check-first")
    request_url = agent.url

    open_line(agent, base, line.msisdn)
    agent.get_by_label("Document type").select_option("driving_licence")
    agent.get_by_label("Holder's name as printed").fill(line.name)
    agent.get_by_label("Birth date").fill(line.birth_date)
    agent.get_by_label("Last 4 digits of the document number").fill(line.document_number[-4:])
    agent.get_by_role("button", name="Compare with the account").click()
    agent.goto(request_url)
    assert agent.get_by_role("button", name="Take over").is_visible()
    assert agent.get_by_role("button", name="Cancel the request").is_visible()
    step(agent, "agents-take-2-offered")
    agent.get_by_role("button", name="Take over").click()
    agent.wait_for_url(request_url)
    assert agent.locator("#state").get_attribute("data-state") == "in_review"
    assert agent.get_by_role("button", name="Take over").count() == 0
    step(agent, "agents-take-3-taken-over")
    wait_for_mail(web_stack, line.email, "request_taken_over")
