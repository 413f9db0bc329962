"""The agent's counter path in a real browser (Chromium), in English and in Danish,
on SQLite and PostgreSQL (issue 14): search, the line overview, a wrong and then a
right ID check, a request for a SIM card, a reviewer's approval, the hand-over
from the store's stock and the printable receipt. axe checks every console page
visited; screenshots go to test-output/screenshots/counter-*.png (the receipt
also as printed)."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from browser_support import browser as browser
from browser_support import check_accessibility, new_page, screenshot
from browser_support import web_stack as web_stack

from resim.bootstrap import build_context
from resim.entrypoints.demo import DemoStack
from resim.services.access import staff

pytestmark = pytest.mark.slow
PASSWORD = "counter agent password"


def sign_in(page: Any, base: str, username: str, password: str, seed: str, lang: str) -> None:
    page.goto(f"{base}/console/login?lang={lang}")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("#totp").fill(pyotp.TOTP(seed).now())
    page.locator("#totp").press("Enter")
    page.wait_for_url(f"{base}/console")


def agent_path(browser: Any, stack: DemoStack, *, lang: str, locale: str, n: int) -> None:
    base = stack.api.url
    line = [x for x in stack.data.lines if x.brand_id == "nordlys-dk"][n]
    assert line.name and line.birth_date and line.document_number
    username = f"counter-{lang}"
    seed = pyotp.random_base32()
    ctx = build_context(stack.settings)
    staff.create_staff(
        ctx,
        username=username,
        role="agent",
        display_name=f"Counter Agent {lang.upper()}",
        password=PASSWORD,
        totp_secret=seed,
        brand_id="nordlys-dk",
    )
    agent = new_page(browser, locale=locale)
    sign_in(agent, base, username, PASSWORD, seed, lang)
    assert agent.locator("html").get_attribute("lang") == lang

    agent.goto(f"{base}/console/lines")
    agent.locator("#msisdn").fill(line.msisdn)
    agent.locator("#msisdn").press("Enter")
    agent.wait_for_selector("#current-sim")
    page_text = agent.content()
    assert line.name not in page_text and line.birth_date not in page_text
    assert line.document_number not in page_text
    assert "894599" not in agent.locator("#current-sim").inner_text().replace(" ", "")[4:]
    assert agent.locator("#fee-now").inner_text().strip()
    assert agent.locator("#replace-unavailable").is_visible()
    check_accessibility(agent, f"counter overview ({lang})")
    screenshot(agent, f"counter-{lang}-1-overview")

    def compare(birth_date: str) -> None:
        agent.locator("#document_type").select_option("passport")
        agent.locator("#holder_name").fill(f"  {line.name.upper()} ")
        agent.locator("#birth_date").fill(birth_date)
        agent.locator("#last_digits").fill(line.document_number[-4:])
        agent.locator("#last_digits").press("Enter")
        agent.wait_for_load_state()

    year = int(line.birth_date[:4])
    compare(f"{year + 1}{line.birth_date[4:]}")  # misread the year
    assert agent.locator("[role=alert]").is_visible()
    assert agent.locator("#redacted").is_visible() and line.name not in agent.content()
    check_accessibility(agent, f"counter no match ({lang})")
    screenshot(agent, f"counter-{lang}-2-no-match")
    compare(line.birth_date)
    assert agent.locator("#matched").is_visible() and agent.locator("#verified").is_visible()
    assert agent.locator("#name").inner_text() == line.name
    check_accessibility(agent, f"counter overview verified ({lang})")
    screenshot(agent, f"counter-{lang}-3-verified")

    agent.locator("#reason").select_option("damaged")
    agent.locator("#target_form").select_option("physical")
    agent.locator('form[action$="/requests"] button[type="submit"]').click()
    agent.wait_for_url(f"{base}/console/requests/*")
    request_url = agent.url
    check_accessibility(agent, f"counter request ({lang})")
    screenshot(agent, f"counter-{lang}-4-request")

    # A reviewer of their own per language: a TOTP code is never accepted twice.
    reviewer_seed = pyotp.random_base32()
    staff.create_staff(
        ctx,
        username=f"counter-reviewer-{lang}",
        role="reviewer",
        display_name=f"Counter Reviewer {lang.upper()}",
        password=PASSWORD,
        totp_secret=reviewer_seed,
    )
    reviewer = new_page(browser, locale=locale)
    sign_in(reviewer, base, f"counter-reviewer-{lang}", PASSWORD, reviewer_seed, lang)
    reviewer.goto(request_url)
    reviewer.locator('button[value="approve"]').first.click()
    reviewer.wait_for_load_state()
    assert reviewer.locator("#state").get_attribute("data-state") == "approved"
    reviewer.context.close()

    agent.goto(f"{base}/console/lines?msisdn={line.msisdn.replace('+', '%2B')}")
    agent.locator("#go-handover").click()
    agent.wait_for_url(f"{base}/console/requests/*/handover")
    cards = agent.locator('input[name="stock_iccid"]')
    assert cards.count() > 0
    chosen = cards.nth(1).get_attribute("value")
    assert chosen and chosen.startswith("89")
    check_accessibility(agent, f"counter hand-over ({lang})")
    screenshot(agent, f"counter-{lang}-5-stock")
    agent.locator("#iccid").fill(chosen[:-1] + str((int(chosen[-1]) + 1) % 10))  # a typo
    agent.locator("#hand-over").click()
    assert agent.locator("#error").is_visible()
    assert agent.locator("#iccid").get_attribute("aria-invalid") == "true"
    agent.locator("#iccid").fill("")
    agent.locator(f'input[value="{chosen}"]').check()
    agent.locator("#hand-over").click()
    agent.wait_for_url(f"{base}/console/requests/*/receipt")
    assert agent.locator("#receipt-new").inner_text() == chosen  # at once, no reload
    assert line.name not in agent.content()
    assert agent.locator("#receipt-agent").inner_text() == f"Counter Agent {lang.upper()}"
    assert "+0100" in agent.locator("#receipt-time").inner_text() or "CET" in (
        agent.locator("#receipt-time").inner_text()
    )
    check_accessibility(agent, f"counter receipt ({lang})")
    screenshot(agent, f"counter-{lang}-6-receipt")
    agent.emulate_media(media="print")
    assert not agent.locator(".site-header").is_visible()
    assert agent.locator("#receipt").is_visible()
    screenshot(agent, f"counter-{lang}-7-receipt-print")
    agent.context.close()


def test_the_counter_path_in_english_and_danish(browser: Any, web_stack: DemoStack) -> None:
    agent_path(browser, web_stack, lang="en", locale="en-GB", n=1)
    agent_path(browser, web_stack, lang="da", locale="da-DK", n=2)
