"""Console test helpers (issue 14): named staff members with their own cookie jar,
held requests of several brands, channels and reasons, and the visible text of a
page (what a person reads: no tags, no attributes, no scripts)."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
from html.parser import HTMLParser

import httpx
import pyotp
from identity_support import PASSWORD
from risk_support import update_subscriber
from tenancy_support import add_brand_line
from test_replacement_flow import System

from resim.services.access import staff
from resim.services.replacement import requests

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_numbers = itertools.count(1)


def token_of(page: httpx.Response) -> str:
    found = TOKEN.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


class _Text(HTMLParser):
    """The text nodes of a page's body, one string each (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.nodes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.nodes.append(" ".join(data.split()))


def text_nodes(page: str) -> list[str]:
    parser = _Text()
    parser.feed(page)
    return parser.nodes


def text_of(page: httpx.Response) -> str:
    return html.unescape(" ".join(text_nodes(page.text)))


class Person:
    """A staff member with a display name, signed in through the form like a browser."""

    def __init__(
        self, system: System, url: str, role: str, name: str, *, brand_id: str | None = None
    ) -> None:
        self.system = system
        self.name = name
        self.username = f"{role}-{name.split()[0].lower()}-{next(_numbers)}"
        self.seed = pyotp.random_base32()
        made = staff.create_staff(
            system.ctx,
            username=self.username,
            role=role,
            display_name=name,
            password=PASSWORD,
            brand_id=brand_id,
            totp_secret=self.seed,
        )
        self.actor = f"staff:{made.staff_id}"
        self.http = httpx.Client(base_url=url, timeout=20, follow_redirects=False)
        form = self.http.get("/console/login")
        signed = self.http.post(
            "/console/login",
            data={
                "csrf_token": token_of(form),
                "username": self.username,
                "password": PASSWORD,
                "totp": pyotp.TOTP(self.seed).at(system.clock.now()),
            },
        )
        assert signed.status_code == 303, signed.text[:300]

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(self, path: str, page: str, **data: str) -> httpx.Response:
        shown = self.http.get(page)
        assert shown.status_code == 200, shown.text[:300]
        return self.http.post(path, data={"csrf_token": token_of(shown), **data})


def held_request(
    system: System,
    brand_id: str,
    *,
    reason: str = "lost",
    channel: str = "portal",
    four_eyes: bool = False,
) -> str:
    """A request held for review on a new line of ``brand_id``: the e-mail changed
    yesterday (recent_email_change: one approval) or, with ``four_eyes``, a prior
    fraud flag (two approvals)."""
    msisdn, email = add_brand_line(system, brand_id, 500 + next(_numbers))
    if four_eyes:
        update_subscriber(system, msisdn, fraud_flags=1)
    else:
        yesterday = system.clock.now() - dt.timedelta(days=1)
        update_subscriber(system, msisdn, email_changed_at=yesterday)
    actor = "customer" if channel == "portal" else "bss"
    opened = requests.open_request(
        system.ctx, msisdn=msisdn, reason=reason, channel=channel, actor=actor
    )
    system.run_jobs()
    state = requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    assert state == "in_review", state
    return opened.id
