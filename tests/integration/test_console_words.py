"""No console page shows a raw code or a staff id (issue 14.1), SQLite and PostgreSQL.

A seeded database with requests in many states, reasons and channels, two
brands, a named approval, a rejection with a note, a frozen account with one
unfreeze approval and an alert about an agent. Every role (brand staff and
operator-wide staff) crawls the console over HTTP from its home page and the
lines' pages, following every console link, in English and in Danish, and reads
each page's visible text: no text is a bare state, reason, channel, role or risk
outcome code, no risk rule's id appears, no "staff:<id>" either, and in Danish no
risk reason is left in English.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
from console_support import Person, held_request, text_nodes
from risk_support import update_subscriber
from tenancy_support import OTHER, OWN, add_brand_line, add_other_brand
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.domain.model import Channel, Reason, RiskOutcome
from resim.domain.risk import RULES
from resim.domain.workflow import State
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.console import alerts
from resim.services.replacement import queries, requests

pytestmark = pytest.mark.integration
RULE_IDS = {r.id for r in RULES} | {"agent_confirmation"}
RAW = (
    {s.value for s in State}
    | {r.value for r in Reason}
    | {c.value for c in Channel}
    | {o.value for o in RiskOutcome}
    | {"agent", "reviewer", "admin"}
    | RULE_IDS
)
RULE_TOKEN = re.compile(r"\b(" + "|".join(sorted(RULE_IDS)) + r")\b")
HREF = re.compile(r'href="(/console[^"#]*)"')
SKIP = ("/console/logout", "/console/dashboard.csv", "/screen")
PER_PATH = 3  # the dashboard links every bar: a few of each kind are enough


@pytest.fixture
def server(system: System) -> Iterator[str]:
    add_other_brand(system)
    running = ServerThread(build_app(system.ctx, ApiConfig())).start()
    yield running.url
    running.stop()


def seed_console(system: System, url: str) -> tuple[list[str], list[str]]:
    """Requests and accounts in the states the console shows: (numbers, request ids)."""
    rita = Person(system, url, "reviewer", "Rita Jensen")
    agent = Person(system, url, "agent", "Anna Holm", brand_id=OWN)
    waiting = held_request(system, OWN, reason="lost", channel="portal")
    named = held_request(system, OTHER, reason="damaged", channel="api", four_eyes=True)
    page = f"/console/requests/{named}"
    assert rita.post(f"{page}/review", page, decision="approve", note="ok").status_code == 303
    rejected = held_request(system, OWN, reason="profile_deleted", channel="portal")
    page = f"/console/requests/{rejected}"
    assert (
        rita.post(
            f"{page}/review", page, decision="reject", note="did not match", confirm="yes"
        ).status_code
        == 303
    )
    # Allowed by the fraud check, then provisioned (an eSIM, ready to install).
    msisdn, email = add_brand_line(system, OWN, 901)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
    system.run_jobs()
    requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    system.run_jobs()
    # An agent's request for a customer at the counter (held: a staff-made request).
    counter, _ = add_brand_line(system, OWN, 902)
    line_page = f"/console/lines?msisdn={quote(counter)}"
    checked = agent.post(
        f"/console/lines/{counter}/identity-check",
        line_page,
        document_type="passport",
        name="Customer dk 902",
        birth_date="1980-01-01",
        last_digits="2468",
    )
    assert checked.status_code == 303
    made = agent.post(
        f"/console/lines/{counter}/requests", line_page, reason="stolen", target_form="physical"
    )
    assert made.status_code == 303
    by_agent = made.headers["location"].rsplit("/", 1)[1]
    # A frozen account that one reviewer approved unfreezing.
    frozen, _ = add_brand_line(system, OWN, 903)
    now = system.clock.now()
    update_subscriber(
        system,
        frozen,
        replacements_frozen_at=now,
        frozen_reason="not_me",
        unfreeze_requested_by=rita.actor,
        unfreeze_requested_at=now,
    )
    with system.ctx.uow() as uow:
        alerts.raise_alert(
            uow,
            at=now,
            kind="agent_rate_limit",
            subject_type="staff",
            subject_id=agent.actor.removeprefix("staff:"),
        )
        uow.commit()
    return [msisdn, counter, frozen], [waiting, named, rejected, opened.id, by_agent]


def crawl(person: Person, starts: list[str], lang: str) -> dict[str, str]:
    """Every console page reachable from ``starts`` (GET), as ``person``: url -> html."""
    seen: dict[str, str] = {}
    per_path: Counter[tuple[str, str | None, str | None]] = Counter()
    queue = list(starts)
    while queue:
        url = queue.pop(0)
        if url in seen or any(s in url for s in SKIP) or "lang=" in url:
            continue
        parts = urlsplit(url)
        query = dict(p.partition("=")[::2] for p in parts.query.split("&") if p)
        kind = (parts.path, query.get("metric"), query.get("group"))
        if per_path[kind] >= PER_PATH and "/console/requests/" not in parts.path:
            continue
        per_path[kind] += 1
        sep = "&" if "?" in url else "?"
        page = person.get(f"{url}{sep}lang={lang}")
        assert page.status_code == 200, (url, page.status_code)
        seen[url] = page.text
        queue.extend(h.replace("&amp;", "&") for h in HREF.findall(page.text))
    return seen


def readable(person: Person, url: str) -> bool:
    """Whether ``person`` may open ``url`` (another brand's request is 404 to them)."""
    return person.get(url).status_code == 200


def problems(pages: dict[str, str], lang: str, english: set[str]) -> list[str]:
    """What is wrong on ``pages``; ``english``: the risk rules' own (English) reasons
    stored on the seeded requests, which a page in another language must not show."""
    found = []
    for url, page in pages.items():
        for node in text_nodes(page):
            bare = node.strip(" ()[]:;,.")
            if bare in RAW:
                found.append(f"{url}: raw code {node!r}")
            if "staff:" in node:
                found.append(f"{url}: staff id in {node!r}")
            if RULE_TOKEN.search(node):
                found.append(f"{url}: rule id in {node!r}")
            if lang != "en" and any(reason in node for reason in english):
                found.append(f"{url}: risk reason left in English: {node!r}")
    return found


@pytest.mark.parametrize("lang", ["en", "da"])
def test_no_console_page_shows_a_raw_code_or_a_staff_id(
    system: System, server: str, lang: str
) -> None:
    numbers, request_ids = seed_console(system, server)
    system.clock.advance(dt.timedelta(minutes=5))
    people = [
        Person(system, server, "agent", "Bo Agent", brand_id=OWN),
        Person(system, server, "reviewer", "Kim Local", brand_id=OWN),
        Person(system, server, "reviewer", "Omar Lund"),
        Person(system, server, "admin", "Mette Berg"),
        Person(system, server, "admin", "Sara Brand", brand_id=OWN),
    ]
    # The agent checks one customer's ID, so the unredacted line page is crawled too.
    counter = numbers[1]
    line_page = f"/console/lines?msisdn={quote(counter)}"
    checked = people[0].post(
        f"/console/lines/{counter}/identity-check",
        line_page,
        document_type="passport",
        name="Customer dk 902",
        birth_date="1980-01-01",
        last_digits="1357",
    )
    assert checked.status_code == 303
    english = {
        str(f["reason"])
        for r in request_ids
        for f in queries.get_request_view(system.ctx, r)["risk"]["reasons"]
    }
    assert english  # the seeded requests were held for reasons
    report: list[str] = []
    visited = 0
    for person in people:
        starts = ["/console", *(f"/console/requests/{r}" for r in request_ids)]
        if person.get("/console/queue").status_code == 200:
            starts += ["/console/queue?channel=api", "/console/queue?reason=lost"]
        if person.get("/console/lines").status_code == 200:
            starts += [f"/console/lines?msisdn={quote(n)}" for n in numbers]
        pages = crawl(person, [s for s in starts if readable(person, s)], lang)
        visited += len(pages)
        report += problems(pages, lang, english)
    assert visited > 30
    assert report == []
