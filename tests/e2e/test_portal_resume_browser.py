"""Every state can be resumed, in a real browser (issue 12, findings 1 and 3).

The demo stack (API, worker, SM-DP+ emulator, mail capture) on SQLite and on
PostgreSQL; Chromium clicks through as the customer would:

* finding 1: Back after "Send me a code" (no "resubmit the form?" page),
  reload, a double-click (one code), and closing the tab then starting again
  with the number (a fresh code and the link come by mail);
* finding 3: the eSIM is ready on the laptop, the 30-minute session ends, and
  the customer opens the "eSIM ready" mail on the new phone (a second browser
  context): "Show my eSIM again", a fresh code, the QR code;
* as an attacker: a tampered continue link gets a clear 404 page.

Time that would have to pass (a minute between codes, the half-hour session)
is moved in the database instead of waited for, as the clock is the system's.
Screenshots: test-output/screenshots/resume-*.png.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest
import sqlalchemy as sa
from browser_support import (
    PHONE,
    check_accessibility,
    new_page,
    screenshot,
)
from browser_support import browser as browser
from browser_support import web_stack as web_stack

from resim.adapters.db import orm
from resim.adapters.mail.capture import CapturedMail, read_mailbox
from resim.bootstrap import build_context
from resim.domain.model import ReplacementRequest
from resim.entrypoints.demo import DemoStack
from resim.entrypoints.web.i18n import translations as page_texts
from resim.locale import normalize_language

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CONTINUE = re.compile(r"https?://\S+/c/([0-9a-f]{32})\.[0-9a-z]+\.[A-Za-z0-9_-]{16}")
OLD_LINK = re.compile(r"https?://\S+/status/([0-9a-f]{32})")  # before issue 12: no signature
CODE = re.compile(r"^\s+(\d{6})\s*$", re.M)


def step(page: Any, name: str) -> None:
    check_accessibility(page, name)
    screenshot(page, name)


def mails(stack: DemoStack, email: str, kind: str) -> list[CapturedMail]:
    return [m for m in read_mailbox(stack.mail_dir) if email in m.to and m.kind == kind]


def wait_for_mails(
    stack: DemoStack, email: str, kind: str, count: int, timeout: float = 30
) -> list[CapturedMail]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = mails(stack, email, kind)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{kind}: {len(mails(stack, email, kind))} mail(s), wanted {count}")


def link_in(mail: CapturedMail) -> tuple[str, str]:
    """(the continue link, the request id in it)."""
    found = CONTINUE.search(mail.text) or OLD_LINK.search(mail.text)
    assert found, mail.text
    return found.group(0), found.group(1)


def code_in(mail: CapturedMail) -> str:
    found = CODE.search(mail.text)
    assert found
    return found.group(1)


def portal_line(stack: DemoStack, n: int) -> Any:
    """A demo customer the portal serves with the e-mail code alone (no PIN)."""
    return [ln for ln in stack.data.lines[1:] if ln.pin is None][n]


def to_choose(page: Any, base: str, msisdn: str) -> None:
    page.goto(f"{base}/portal")
    page.fill("#msisdn", msisdn)
    page.locator("form[action='/portal/start'] button").click()
    page.wait_for_selector("#reason-damaged")
    page.check("#reason-damaged")


def in_the_database(stack: DemoStack, change: Any) -> None:
    ctx = build_context(stack.settings)
    with ctx.uow() as uow:
        change(uow)
        uow.commit()


def minutes_passed_since_the_code(stack: DemoStack, rid: str, minutes: int) -> None:
    """As if the code of ``rid`` had been mailed ``minutes`` earlier."""

    def move(uow: Any) -> None:
        req = uow.session.get(ReplacementRequest, rid)
        req.otp_expires_at = req.otp_expires_at - dt.timedelta(minutes=minutes)

    in_the_database(stack, move)


def session_ended(stack: DemoStack, rid: str) -> None:
    """As if the half-hour customer session of ``rid`` had run out."""

    def end(uow: Any) -> None:
        t = orm.auth_session
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        uow.session.execute(sa.update(t).where(t.c.request_id == rid).values(expires_at=past))

    in_the_database(stack, end)


def test_back_reload_and_a_double_click_after_send_me_a_code(
    browser: Any, web_stack: DemoStack
) -> None:
    line = portal_line(web_stack, 0)
    base = web_stack.api.url
    page = new_page(browser, locale="en-GB")
    to_choose(page, base, line.msisdn)
    page.locator("form[action='/portal/requests'] button[type=submit]").click()
    page.wait_for_url("**/portal/sent*")
    step(page, "resume-1-sent")
    page.go_back()  # the choose page again, not "Confirm form resubmission"
    page.wait_for_url("**/portal/choose")
    assert page.locator("#reason-damaged").count() == 1
    assert page.locator(f"input[name=msisdn][value='{line.msisdn}']").count() == 1
    step(page, "resume-2-back-on-choose")
    page.reload()
    page.wait_for_url("**/portal/choose")
    assert page.locator("#reason-lost").count() == 1
    page.check("#reason-damaged")
    page.locator("form[action='/portal/requests'] button[type=submit]").dblclick()
    try:
        page.wait_for_url("**/portal/sent*")
    except Exception as exc:  # the second submit may abort the first one's navigation
        if "ERR_ABORTED" not in str(exc):
            raise
        page.wait_for_url("**/portal/sent*")
    assert "use the newest" in page.inner_text("main")
    [code_mail] = wait_for_mails(web_stack, line.email, "one_time_code", 1)
    time.sleep(2)  # the worker would have sent a second one by now
    assert len(mails(web_stack, line.email, "one_time_code")) == 1, "one code for three presses"
    link, rid = link_in(code_mail)
    page.goto(link)
    page.wait_for_url(f"**/portal/requests/{rid}/verify")
    page.fill("#f0-email_otp", code_in(code_mail))
    if page.locator("#f0-fee").count():
        page.check("#f0-fee")
    page.locator("form[action$='/verify'] button[type=submit]").first.click()
    page.wait_for_url(f"**/portal/requests/{rid}")
    page.go_back()  # to the verify page: it has moved on and says so, no resubmission
    page.wait_for_url(f"**/portal/requests/{rid}*")
    screenshot(page, "resume-3-back-after-verifying")
    page.context.close()


def test_closing_the_tab_then_starting_again_mails_a_fresh_code(
    browser: Any, web_stack: DemoStack
) -> None:
    line = portal_line(web_stack, 1)
    base = web_stack.api.url
    first = new_page(browser, locale="da-DK")
    to_choose(first, base, line.msisdn)
    first.locator("form[action='/portal/requests'] button[type=submit]").click()
    first.wait_for_url("**/portal/sent*")
    [opened] = wait_for_mails(web_stack, line.email, "one_time_code", 1)
    _, rid = link_in(opened)
    first.context.close()  # the tab is closed; the mail is not read

    minutes_passed_since_the_code(web_stack, rid, 3)
    again = new_page(browser, locale="da-DK", viewport=PHONE)
    to_choose(again, base, line.msisdn)
    again.locator("form[action='/portal/requests'] button[type=submit]").click()
    again.wait_for_url("**/portal/sent*")
    step(again, "resume-4-sent-again-da")
    fresh = wait_for_mails(web_stack, line.email, "one_time_code", 2)[-1]
    link, same = link_in(fresh)
    assert same == rid, "the open request is continued, not a second one opened"
    again.goto(link)
    again.wait_for_url(f"**/portal/requests/{rid}/verify")
    old = code_in(opened)
    if old != code_in(fresh):
        again.fill("#f0-email_otp", old)
        again.locator("form[action$='/verify'] button[type=submit]").first.click()
        again.wait_for_url(f"**/portal/requests/{rid}/verify")
        assert again.locator("[role=alert]").count() == 1  # the old code no longer works
        step(again, "resume-5-old-code-refused-da")
    again.fill("#f0-email_otp", code_in(fresh))
    if again.locator("#f0-fee").count():
        again.check("#f0-fee")
    again.locator("form[action$='/verify'] button[type=submit]").first.click()
    again.wait_for_url(f"**/portal/requests/{rid}")
    step(again, "resume-6-status-da")
    again.context.close()


def test_the_esim_shown_again_on_the_new_phone_after_the_session_ended(
    browser: Any, web_stack: DemoStack
) -> None:
    line = portal_line(web_stack, 2)
    base = web_stack.api.url
    laptop = new_page(browser, locale="en-GB")
    to_choose(laptop, base, line.msisdn)
    laptop.locator("form[action='/portal/requests'] button[type=submit]").click()
    laptop.wait_for_url("**/portal/sent*")
    [code_mail] = wait_for_mails(web_stack, line.email, "one_time_code", 1)
    link, rid = link_in(code_mail)
    laptop.goto(link)
    if not laptop.url.endswith("/verify"):  # an unsigned status link (before issue 12)
        laptop.locator("a[href$='/verify']").first.click()
    laptop.fill("#f0-email_otp", code_in(code_mail))
    if laptop.locator("#f0-fee").count():
        laptop.check("#f0-fee")
    laptop.locator("form[action$='/verify'] button[type=submit]").first.click()
    laptop.wait_for_selector(".qr img", timeout=45_000)
    screenshot(laptop, "resume-7-laptop-ready")

    session_ended(web_stack, rid)
    laptop.reload()
    assert laptop.locator(".qr img").count() == 0
    assert laptop.locator("text=Show my eSIM again").count() == 1
    step(laptop, "resume-8-laptop-session-ended")
    laptop.context.close()

    [ready] = wait_for_mails(web_stack, line.email, "esim_ready", 1)
    # In the customer's language, the mail names the button the page shows; no "log in"
    lang = normalize_language(ready.language or "en")
    assert page_texts("portal", lang).gettext("Show my eSIM again") in ready.text
    assert "log in" not in ready.text.lower() and "sign in" not in ready.text.lower()
    ready_link, same = link_in(ready)
    assert same == rid
    phone = new_page(browser, locale="en-GB", viewport=PHONE)  # the new phone
    phone.goto(ready_link)
    phone.wait_for_url(f"**/portal/requests/{rid}")
    assert phone.locator(".qr img").count() == 0
    step(phone, "resume-9-phone-from-the-mail")
    phone.locator("form[action$='/reconfirm/code'] button").click()
    phone.wait_for_url(f"**/portal/requests/{rid}/reconfirm")
    step(phone, "resume-10-phone-confirm-again")
    again = wait_for_mails(web_stack, line.email, "one_time_code", 2)[-1]
    phone.fill("#f0-email_otp", code_in(again))
    phone.locator("form[action$='/reconfirm'] button[type=submit]").first.click()
    phone.wait_for_url(f"**/portal/requests/{rid}")
    phone.wait_for_selector(".qr img")
    assert phone.locator("#matching-id").count() == 1
    step(phone, "resume-11-phone-esim-shown-again")
    phone.context.close()


def test_a_tampered_continue_link_gets_a_clear_page(browser: Any, web_stack: DemoStack) -> None:
    line = portal_line(web_stack, 3)
    page = new_page(browser, locale="fr-FR")
    to_choose(page, web_stack.api.url, line.msisdn)
    page.locator("form[action='/portal/requests'] button[type=submit]").click()
    [code_mail] = wait_for_mails(web_stack, line.email, "one_time_code", 1)
    link, _ = link_in(code_mail)
    answer = page.goto(link[:-3] + ("xyz" if not link.endswith("xyz") else "abc"))
    assert answer is not None and answer.status == 404
    assert "Ce lien n’est pas valide" in page.inner_text("main")  # noqa: RUF001
    step(page, "resume-12-tampered-link-fr")
    page.context.close()
