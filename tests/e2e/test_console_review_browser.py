"""The reviewer's path in a real browser (issue 14.3), in English and in Danish.

Three requests of one brand are held for review. A reviewer who is not signed in
opens the queue, is sent to the sign-in and comes back to it; reads the queue
(brand, masked number, channel, age, reasons in words); approves the first request
with "Approve and next" and lands on the next one; tries to reject it without a
reason (refused: the form keeps the page), then rejects it with a reason and the
confirmation, and sees the note on the request. A second reviewer in Danish
approves the last one with "Godkend og næste" and is told the queue is done.
axe checks each page; screenshots go to test-output/screenshots/review-*.png.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from browser_support import browser as browser
from browser_support import check_accessibility, latest_code, new_page, screenshot
from browser_support import web_stack as web_stack

from resim.adapters.db import orm
from resim.bootstrap import build_context
from resim.domain.model import Line, Subscriber
from resim.entrypoints.demo import DemoStack
from resim.services.access import staff
from resim.services.context import ServiceContext
from resim.services.replacement import queries, requests

pytestmark = pytest.mark.slow
PASSWORD = "reviewer path password"
APPROVED = ("approved", "provisioning", "ready")  # the stack's worker goes on at once


def hold(ctx: ServiceContext, stack: DemoStack, msisdn: str, email: str, reason: str) -> str:
    """A portal request on the line, held for review: its e-mail changed yesterday."""
    with ctx.uow() as uow:
        line = uow.session.scalars(sa.select(Line).where(orm.line.c.msisdn == msisdn)).one()
        subscriber = uow.session.get(Subscriber, line.subscriber_id)
        assert subscriber is not None
        subscriber.email_changed_at = ctx.now() - dt.timedelta(days=1)
        uow.commit()
    opened = requests.open_request(
        ctx, msisdn=msisdn, reason=reason, channel="portal", actor="customer"
    )
    state = requests.submit_verification(ctx, opened.id, otp=latest_code(stack, email))
    assert state == "in_review", state
    return opened.id


def reviewer(ctx: ServiceContext, name: str) -> tuple[str, str]:
    username, seed = f"rev-{name.split()[0].lower()}", pyotp.random_base32()
    staff.create_staff(
        ctx,
        username=username,
        role="reviewer",
        display_name=name,
        password=PASSWORD,
        totp_secret=seed,
    )
    return username, seed


def sign_in_here(page: Any, username: str, seed: str, *, labels: tuple[str, str, str]) -> None:
    user, password, code = labels
    page.get_by_label(user).fill(username)
    page.get_by_label(password).fill(PASSWORD)
    page.get_by_label(code).fill(pyotp.TOTP(seed).now())
    page.locator("form[action='/console/login'] button[type=submit]").click()


def test_reviewer_path_in_english_and_danish(browser: Any, web_stack: DemoStack) -> None:
    base = web_stack.api.url
    ctx = build_context(web_stack.settings)
    brand = web_stack.data.lines[0].brand_id
    lines = [x for x in web_stack.data.lines if x.brand_id == brand][:3]
    held = [
        hold(ctx, web_stack, x.msisdn, x.email, reason)
        for x, reason in zip(lines, ("lost", "damaged", "device_change"), strict=True)
    ]
    rita = reviewer(ctx, "Rita Jensen")
    omar = reviewer(ctx, "Omar Lund")

    # English: signed out, the queue leads to the sign-in and back.
    page = new_page(browser, locale="en-GB")
    page.goto(f"{base}/console/queue")
    page.wait_for_url(f"{base}/console/login?next=*")
    check_accessibility(page, "review sign-in")
    screenshot(page, "review-01-sign-in")
    sign_in_here(page, *rita, labels=("Username", "Password", "Code from your authenticator app"))
    page.wait_for_url(f"{base}/console/queue")
    assert "Rita Jensen" in page.locator("#signed-in-as").inner_text()
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 3
    first_row = rows.nth(0).inner_text()
    assert "Portal" in first_row and "Lost" in first_row and "waiting" in first_row
    assert "The e-mail address on the account changed recently." in first_row
    assert lines[0].msisdn not in first_row and "*" in first_row
    check_accessibility(page, "review queue (en)")
    screenshot(page, "review-02-queue-en")

    page.locator("#queue tbody tr").nth(0).get_by_role("link").click()
    page.wait_for_url(f"{base}/console/requests/{held[0]}")
    check_accessibility(page, "review request (en)")
    screenshot(page, "review-03-request-en")
    page.get_by_role("button", name="Approve and next").click()
    page.wait_for_url(f"{base}/console/requests/{held[1]}?done=approved")
    assert page.locator("#approved-next").is_visible()
    assert queries.get_request_view(ctx, held[0])["state"] in APPROVED
    assert page.locator("#reason").inner_text() == "Broken"
    check_accessibility(page, "review next request (en)")
    screenshot(page, "review-04-next-request-en")

    # Reject: the reason and the confirmation are required (the browser says so
    # before sending; the server refuses too, see test_console_review.py).
    page.get_by_role("button", name="Reject", exact=True).click()
    assert page.url.endswith("?done=approved")  # not sent
    assert page.locator("#reject-note:invalid").count() == 1
    page.get_by_label("Reason for rejecting (required)").fill("The ID did not match the account")
    page.get_by_role("button", name="Reject", exact=True).click()
    assert page.locator("#reject-confirm:invalid").count() == 1
    assert queries.get_request_view(ctx, held[1])["state"] == "in_review"
    screenshot(page, "review-05-reject-confirm-en")
    page.get_by_label("I am sure: reject this request.").check()
    page.get_by_role("button", name="Reject", exact=True).click()
    page.wait_for_url(f"{base}/console/requests/{held[1]}")
    assert page.locator("#state").inner_text() == "Rejected"
    note = page.locator("#review-note").inner_text()
    assert "The ID did not match the account" in note and "Rita Jensen" in note
    assert "staff:" not in page.content().split("<main", 1)[1]
    check_accessibility(page, "review rejected (en)")
    screenshot(page, "review-06-rejected-en")

    # Danish: the second reviewer approves the last one and the queue is done.
    dansk = new_page(browser, locale="da-DK")
    dansk.goto(f"{base}/console/queue")
    dansk.wait_for_url(f"{base}/console/login?next=*")
    sign_in_here(dansk, *omar, labels=("Brugernavn", "Adgangskode", "Kode fra din godkendelsesapp"))
    dansk.wait_for_url(f"{base}/console/queue")
    row = dansk.locator("#queue tbody tr")
    assert row.count() == 1
    assert "Ny telefon" in row.inner_text() and "venter" in row.inner_text()
    assert "E-mailadressen på kontoen blev ændret for nylig." in row.inner_text()
    check_accessibility(dansk, "review queue (da)")
    screenshot(dansk, "review-07-queue-da")
    row.get_by_role("link").click()
    dansk.wait_for_url(f"{base}/console/requests/{held[2]}")
    check_accessibility(dansk, "review request (da)")
    screenshot(dansk, "review-08-request-da")
    dansk.get_by_role("button", name="Godkend og næste").click()
    dansk.wait_for_url(f"{base}/console/queue?done=empty")
    assert dansk.locator("#queue-done").is_visible()
    assert dansk.locator("#queue-empty").is_visible()
    assert queries.get_request_view(ctx, held[2])["state"] in APPROVED
    check_accessibility(dansk, "review queue done (da)")
    screenshot(dansk, "review-09-queue-done-da")
