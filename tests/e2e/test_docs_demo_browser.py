"""Issue 14.6 in a real browser (Chromium) against the demo stack.

* /docs and /redoc with every request to a host other than loopback blocked
  (as on a network without internet): Swagger UI lists the operations and
  ReDoc shows the API's content, and the pages asked for nothing outside.
* The demo portal's "simulate the phone installing this eSIM" button: the
  customer presses it on the ready page and the page turns to "active"; the
  same session on an app built from production settings sees no button and
  the route is not there; another browser cannot press it for the customer.
Screenshots: test-output/screenshots/.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_support import browser as browser
from browser_support import (
    check_accessibility,
    continue_from_the_mail,
    latest_code,
    new_page,
    screenshot,
)
from browser_support import web_stack as web_stack

from resim.bootstrap import build_api_config
from resim.entrypoints.api.app import build_app
from resim.entrypoints.demo import DemoStack
from resim.entrypoints.serving import ServerThread
from resim.services.replacement import portal

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BUTTON = "form[action$='/demo/install'] button"
READY = "Your new eSIM is ready to install."
DONE = "Done: your new eSIM is active."


def offline_page(browser: Any) -> tuple[Any, list[str]]:
    """A page whose requests to any host but loopback fail (and are listed)."""
    page = new_page(browser)
    outside: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_loopback)
    return page, outside


def test_swagger_ui_and_redoc_work_with_no_internet(browser: Any, web_stack: DemoStack) -> None:
    page, outside = offline_page(browser)
    base = web_stack.api.url
    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/requests/{request_id}/verification" in p.replace("\u200b", "") for p in paths)
    assert len(paths) > 10
    page.locator(".opblock-summary").first.click()  # an operation opens, as a reader would
    page.wait_for_selector(".opblock-body")
    screenshot(page, "docs-swagger-offline")

    page.goto(f"{base}/redoc")
    page.wait_for_selector("[data-section-id^='operation/']", state="attached", timeout=30_000)
    assert "BSS integration API" in page.inner_text("body")
    assert page.locator("[data-section-id^='operation/']").count() > 10
    screenshot(page, "docs-redoc-offline")
    assert outside == []
    page.context.close()


def ready_request(page: Any, stack: DemoStack) -> str:
    """Through the portal as a customer until the eSIM is ready; the request id."""
    line = next(ln for ln in stack.data.lines[1:] if ln.pin is None)
    page.goto(f"{stack.api.url}/portal")
    page.fill("#msisdn", line.msisdn)
    page.locator("#msisdn").press("Enter")
    page.wait_for_selector("input[name=reason]")
    page.check("#reason-lost")
    page.locator("form[action='/portal/requests'] button[type=submit]").click()
    continue_from_the_mail(page, stack, line.email)
    page.fill("#f0-email_otp", latest_code(stack, line.email))
    if page.locator("#f0-fee").count():
        page.check("#f0-fee")
    page.locator("form[action$='/verify'] button[type=submit]").first.click()
    page.wait_for_selector(".qr img", timeout=45_000)
    assert page.text_content(".status-state") == READY
    return str(page.url.rstrip("/").split("/")[-1].split("?")[0])


def test_the_demo_portal_simulates_the_phone_and_production_never_shows_it(
    browser: Any, web_stack: DemoStack
) -> None:
    page = new_page(browser)
    rid = ready_request(page, web_stack)
    assert page.locator(BUTTON).is_visible()
    assert web_stack.ctx is not None
    check_accessibility(page, "portal-demo-phone-ready")
    screenshot(page, "portal-demo-phone-ready")

    # The same customer session (cookies go to every port of 127.0.0.1) on an app
    # built from production settings: the eSIM is there, the demo button is not.
    production = ServerThread(
        build_app(web_stack.ctx, build_api_config(web_stack.settings))
    ).start()
    try:
        other = page.context.new_page()
        other.goto(f"{production.url}/portal/requests/{rid}")
        other.wait_for_selector(".qr img")
        assert other.locator(BUTTON).count() == 0
        assert "Simulate" not in other.content()
        screenshot(other, "portal-production-no-demo-button")
        token = other.get_attribute("form[action$='/installed'] input[type=hidden]", "value")
        pressed = other.request.post(
            f"{production.url}/portal/requests/{rid}/demo/install",
            form={"csrf_token": token or ""},
        )
        assert pressed.status == 404
        other.close()
    finally:
        production.stop()

    # Another browser (no session of this request) cannot press it for the customer.
    stranger = new_page(browser)
    stranger.goto(f"{web_stack.api.url}/portal/requests/{rid}")
    assert stranger.locator(BUTTON).count() == 0
    stranger.goto(f"{web_stack.api.url}/portal")  # a valid CSRF token of its own
    token = stranger.get_attribute("input[name=csrf_token]", "value")
    refused = stranger.request.post(
        f"{web_stack.api.url}/portal/requests/{rid}/demo/install",
        form={"csrf_token": token or ""},
        max_redirects=0,
    )
    # Post/redirect/get (issue 12): without the session it is sent back to the status
    # page ("confirm who you are again; nothing was changed"), or refused outright.
    assert refused.status in (303, 400, 404)
    if refused.status == 303:
        assert refused.headers["location"].endswith(f"/portal/requests/{rid}")
    assert portal.portal_request(web_stack.ctx, rid).installed_at is None
    stranger.context.close()

    page.locator(BUTTON).click()
    page.wait_for_function(
        "text => document.querySelector('#status').innerText.includes(text)",
        arg=DONE,
        timeout=45_000,
    )
    assert page.locator(BUTTON).count() == 0
    screenshot(page, "portal-demo-phone-installed")
    page.context.close()
