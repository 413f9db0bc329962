"""A real browser against the real stack: fixtures for Playwright tests of the pages.

* ``web_stack``: the demo stack on free loopback ports (API server, worker,
  built-in SM-DP+ emulator, SMTP and SMS capture) on a fresh database, once
  on SQLite and once on PostgreSQL (``RESIM_TEST_DB`` narrows it).
* ``browser``: Debian's Chromium (``/usr/bin/chromium``, package ``chromium``;
  ``playwright install`` cannot download here), headless, one per test module.
  Missing Chromium: the tests are skipped with the reason, except under
  CI=true, where it is a failure (.ci/run installs the package).
* ``new_page(browser, ...)``: a fresh context (cookies) with a locale and a
  viewport; ``PHONE`` is a phone-sized viewport.
* ``screenshot(page, name)``: a full-page PNG under ``test-output/screenshots/``.
* ``check_accessibility(page, name)``: axe-core (bundled by the PyPI package
  ``axe-playwright-python``) run in the page; fails on any violation (labels,
  contrast, landmarks, ARIA, ...), listing rule, impact and the first nodes.
* ``latest_code(stack, email)``: the newest one-time code mailed to ``email``.
* ``continue_from_the_mail(page, stack, email)``: from "check your e-mail" to
  the verify page through the link in the code mail.
* ``install_esim(stack, qr_payload)``: the emulator's phone installs the
  profile, so the SM-DP+ calls the install callback (as in test_api_e2e.py).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tools
from resim.adapters.mail.capture import read_mailbox
from resim.entrypoints.demo import DemoStack, start_demo
from resim.settings import Settings
from testdb import drop_pg_database, make_pg_database

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# The request's link in a code mail: the signed continue link (or an older status link).
LINK = re.compile(r"https?://\S+/(?:status|c)/[0-9a-f][0-9A-Za-z._-]+")
SECRET_KEYS = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="


def require_chromium() -> None:
    tools.require_chromium(CHROMIUM)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev extras not installed
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # root in a container has no user namespaces for Chromium's sandbox
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


def _backends() -> list[str]:
    chosen = os.environ.get("RESIM_TEST_DB", "sqlite,postgresql")
    return [b.strip() for b in chosen.split(",") if b.strip()]


@pytest.fixture(params=_backends())
def web_stack(
    request: pytest.FixtureRequest, tmp_path: Path, pg_skip_reason: str | None
) -> Iterator[DemoStack]:
    """The demo stack on a fresh database: once on SQLite, once on PostgreSQL
    (an empty database made for the test, migrated by the demo, then dropped)."""
    database_url, pg_name = "", ""
    if request.param == "postgresql":
        if pg_skip_reason:
            tools.missing(tools.POSTGRESQL, pg_skip_reason)
        database_url, pg_name = make_pg_database()
    settings = Settings(data_dir=tmp_path, secret_keys=SECRET_KEYS)  # type: ignore[arg-type]
    try:
        started = start_demo(
            settings,
            api_port=0,
            smdp_port=0,
            smtp_port=0,
            sms_port=0,
            lines_per_brand=4,
            database_url=database_url,
            say=lambda _line: None,
        )
        try:
            yield started
        finally:
            started.stop()
    finally:
        if pg_name:
            drop_pg_database(pg_name)


def new_page(browser: Any, *, locale: str = "en-GB", viewport: dict[str, int] | None = None) -> Any:
    """A page in a fresh browser context (its own cookies) with ``Accept-Language``."""
    context = browser.new_context(
        locale=locale, viewport=viewport or DESKTOP, extra_http_headers={}
    )
    context.set_default_timeout(15_000)
    return context.new_page()


def screenshot(page: Any, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_accessibility(page: Any, name: str) -> None:
    """Run axe-core in the page; fail on any violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = results.response.get("violations", [])
    if violations:
        lines = [f"axe found {len(violations)} violation(s) on {name} ({page.url}):"]
        for v in violations:
            targets = [n.get("target") for n in v.get("nodes", [])[:3]]
            lines.append(f"- {v['id']} ({v.get('impact')}): {v['help']} at {targets}")
        raise AssertionError("\n".join(lines))


def latest_code(stack: DemoStack, email: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in reversed(read_mailbox(stack.mail_dir)):
            if (
                email in mail.to
                and mail.kind == "one_time_code"
                and (m := re.search(r"^\s+(\d{6})\s*$", mail.text, re.M))
            ):
                return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no one-time code mailed to {email}")


def request_link(stack: DemoStack, email: str, timeout: float = 20) -> str:
    """The request's page linked from the newest code mail to ``email``: after the
    number form the portal says only "check your e-mail" (issue 13, finding 15)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in reversed(read_mailbox(stack.mail_dir)):
            if email in mail.to and mail.kind == "one_time_code" and (m := LINK.search(mail.text)):
                return m.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no one-time code mail with a link to {email}")


def continue_from_the_mail(page: Any, stack: DemoStack, email: str) -> None:
    """On "check your e-mail": open the mail's link (to the verify page)."""
    page.wait_for_url("**/portal/sent*")
    page.goto(request_link(stack, email))
    if not page.url.endswith("/verify"):  # an older mail's status link: "Enter the code"
        page.locator("a[href$='/verify']").first.click()
    page.wait_for_url("**/verify")


def install_esim(stack: DemoStack, qr_payload: str) -> None:
    """The emulator's phone downloads and installs the profile (install callback follows)."""
    done = httpx.post(
        f"{stack.emulator.url}/emulator/phone/install",
        json={"activation_code": qr_payload},
        timeout=20,
    )
    assert done.status_code == 200, done.text
