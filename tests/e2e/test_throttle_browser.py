"""Issue 12 in a real browser: one shop, one address, many customers (findings 5 and 8).

The demo stack on loopback, so every browser here comes from the same
address, as customers on a shop's Wi-Fi do. Two customers type six wrong
codes between them; each is told honestly how many attempts are left and,
once they must wait, sees a countdown that ticks (and is right without
JavaScript), never a clock time with "+0100". Then a third customer with the
right code gets through, and the shop's agent signs in. SQLite and
PostgreSQL; screenshots in test-output/screenshots/throttle-*.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from browser_support import (
    PHONE,
    check_accessibility,
    continue_from_the_mail,
    latest_code,
    new_page,
    screenshot,
)
from browser_support import browser as browser
from browser_support import web_stack as web_stack

from resim.entrypoints.demo import DemoStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CLOCK = re.compile(r"\+0[0-9]00|\bCET\b|\bGMT\b")


def open_request(page: Any, stack: DemoStack, msisdn: str, email: str) -> str:
    """From the start page to the verify page, as a customer does; the page's URL."""
    page.goto(f"{stack.api.url}/portal")
    page.fill("#msisdn", msisdn)
    page.locator("form[action='/portal/start'] button").click()
    page.check("#reason-damaged")
    page.locator("form[action='/portal/requests'] button[type=submit]").click()
    continue_from_the_mail(page, stack, email)
    return str(page.url)


def enter(page: Any, code: str) -> None:
    page.fill("#f0-email_otp", code)
    if page.locator("#f0-fee").count():
        page.check("#f0-fee")
    page.locator("form[action$='/verify'] button[type=submit]").first.click()
    page.wait_for_load_state()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def text(page: Any) -> str:
    return str(page.inner_text("main"))


def test_six_wrong_codes_in_a_shop_stop_only_the_ones_who_typed_them(
    browser: Any, web_stack: DemoStack
) -> None:
    lines = [ln for ln in web_stack.data.lines[1:] if ln.pin is None][:3]
    first, second, fresh = lines

    # The first customer types three wrong codes: an honest count, then a countdown.
    a = new_page(browser, locale="en-GB")
    a_url = open_request(a, web_stack, first.msisdn, first.email)
    a_code = latest_code(web_stack, first.email)
    for left in (4, 3):
        enter(a, wrong(a_code))
        assert f"You have {left} attempts left." in text(a)
    enter(a, wrong(a_code))
    shown = text(a)
    assert "That did not match." in shown and "You have 2 attempts left." in shown
    assert "You can try again in 30 seconds." in shown
    assert not CLOCK.search(shown), shown
    check_accessibility(a, "throttle verify with countdown")
    screenshot(a, "throttle-1-attempts-left-and-countdown")
    a.wait_for_function(  # the script ticks it down
        "() => /You can try again in (1[0-9]|2[0-7]) seconds\\./"
        ".test(document.querySelector('.countdown').textContent)",
        timeout=10_000,
    )
    screenshot(a, "throttle-2-countdown-ticking")
    enter(a, a_code)  # even the right code waits; nothing is checked or counted
    blocked = text(a)
    assert "Please wait before you try again." in blocked
    assert re.search(r"You can try again in \d+ seconds\.", blocked), blocked
    assert not CLOCK.search(blocked), blocked
    screenshot(a, "throttle-3-right-code-must-wait")

    # A second customer on the same Wi-Fi, in Danish: three more wrong codes (six in all).
    b = new_page(browser, locale="da-DK")
    open_request(b, web_stack, second.msisdn, second.email)
    b_code = latest_code(web_stack, second.email)
    for _ in range(3):
        enter(b, wrong(b_code))
    danish = text(b)
    assert "Du har 2 forsøg tilbage." in danish
    assert "Du kan prøve igen om 30 sekunder." in danish
    screenshot(b, "throttle-4-danish-countdown")

    # Coming back to the page later: the count and the countdown are still there.
    a.goto(a_url)
    again = text(a)
    assert "You have 2 attempts left." in again and "That did not match." not in again
    assert re.search(r"You can try again in \d+ seconds\.", again), again
    check_accessibility(a, "throttle verify notice")
    screenshot(a, "throttle-4b-back-on-the-page")

    # Without JavaScript the page is right when it is rendered (Italian: three plural forms).
    plain = browser.new_context(locale="it-IT", java_script_enabled=False)
    still = plain.new_page()
    still.goto(a_url)
    italian = str(still.inner_text("main"))
    assert "Ti restano 2 tentativi." in italian
    assert re.search(r"Puoi riprovare tra \d+ secondi\.", italian), italian
    assert not CLOCK.search(italian), italian
    screenshot(still, "throttle-5-italian-without-javascript")
    plain.close()

    # Finding 5: a fresh customer with the right code gets through, from the same address.
    c = new_page(browser, locale="fr-FR", viewport=PHONE)
    open_request(c, web_stack, fresh.msisdn, fresh.email)
    enter(c, latest_code(web_stack, fresh.email))
    c.wait_for_selector("#status")
    screenshot(c, "throttle-6-fresh-customer-gets-through")

    # ... and the shop's agent signs in.
    agent = new_page(browser)
    who = web_stack.credentials.staff["agent"]
    agent.goto(f"{web_stack.api.url}/console/login")
    agent.get_by_label("Username").fill(who.username)
    agent.get_by_label("Password").fill(who.password)
    agent.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(who.totp_seed).now())
    agent.get_by_role("button", name="Sign in").click()
    agent.wait_for_url(f"{web_stack.api.url}/console")
    screenshot(agent, "throttle-7-agent-signed-in")
    for page in (a, b, c, agent):
        page.context.close()
