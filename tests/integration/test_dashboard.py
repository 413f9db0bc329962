"""The dashboard (issue 14.5) on SQLite and PostgreSQL: figures against a seeded
history with known counts, local days, drill-down, CSV export, bad parameters.

The clock of ``system`` stands at 2026-03-01 09:00 UTC, 10:00 in Copenhagen
(brand ``dk``), so "today" is 1 March in both.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid

import pytest
import sqlalchemy as sa
from identity_support import enrol
from risk_support import new_line, update_subscriber, verify
from test_console_pages import Staff, signed_in, text_of
from test_console_pages import server as server
from test_console_services import _complete
from test_replacement_flow import System, iccid
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.domain.workflow import State
from resim.errors import InvalidInput
from resim.services.access.tenancy import Scope
from resim.services.console import dashboard
from resim.services.onboarding import seed
from resim.services.replacement import requests
from resim.services.risk import review

pytestmark = pytest.mark.integration
UTC = dt.UTC


class BrandStaff(Staff):
    """A staff member of one brand (the console's Staff is operator-wide)."""

    def __init__(self, system: System, url: str, role: str, *, brand_id: str) -> None:
        super().__init__(system, url, role)
        self.username, self.seed = enrol(system.ctx, role, brand_id=brand_id)


def imported_change(system: System, msisdn: str, at: dt.datetime) -> None:
    """A SIM change from the operator's history: no resim request behind it."""
    with system.ctx.uow() as uow:
        line_id = uow.session.scalar(sa.select(orm.line.c.id).where(orm.line.c.msisdn == msisdn))
        uow.session.execute(
            sa.insert(orm.sim_change).values(
                id=str(uuid.uuid4()),
                msisdn=msisdn,
                line_id=line_id,
                changed_at=at,
                new_iccid=iccid(),
                old_iccid=None,
                request_id=None,
            )
        )
        uow.commit()


def held_request(system: System, n: int) -> str:
    msisdn, email = new_line(system, n)
    update_subscriber(system, msisdn, address_changed_at=system.clock.now())
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
    assert verify(system, opened.id, email) == State.IN_REVIEW
    return opened.id


@pytest.fixture
def history(system: System) -> dict[str, str]:
    """Known counts, all in brand dk, inside a 7-day window ending 1 March (local):

    * imported SIM changes: 2 on 27 Feb, 1 on 1 March at 00:30 Copenhagen time
      (28 Feb 23:30 UTC: a UTC dashboard would put it on 28 Feb), 1 long before;
    * 1 replacement completed on 1 March (also a SIM change made by resim);
    * 1 request held and then rejected, 1 held and still waiting.
    """
    old_msisdn, _ = new_line(system, 1200)
    imported_change(system, old_msisdn, dt.datetime(2026, 2, 27, 8, 0, tzinfo=UTC))
    imported_change(system, old_msisdn, dt.datetime(2026, 2, 27, 15, 0, tzinfo=UTC))
    imported_change(system, old_msisdn, dt.datetime(2026, 2, 28, 23, 30, tzinfo=UTC))
    imported_change(system, old_msisdn, dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC))
    completed = _complete(system, 1201)
    rejected = held_request(system, 1202)
    review.review(system.ctx, rejected, reviewer="staff:r1", approve_it=False)
    waiting = held_request(system, 1203)
    return {"completed": completed, "rejected": rejected, "waiting": waiting}


class TestFigures:
    def test_known_history_in_the_brands_days(
        self, system: System, history: dict[str, str]
    ) -> None:
        board = dashboard.figures(system.ctx, days=7, zone="Europe/Copenhagen")
        by_day = {d.day.isoformat(): d for d in board.days}
        assert sorted(by_day) == [f"2026-02-{d}" for d in range(23, 29)] + ["2026-03-01"]
        assert (by_day["2026-02-27"].sim_changes, by_day["2026-02-27"].imported) == (2, 2)
        assert by_day["2026-02-28"].sim_changes == 0
        today = by_day["2026-03-01"]
        # 00:30 local imported change + resim's own change at the cut-over
        assert (today.sim_changes, today.imported, today.replacements) == (2, 1, 1)
        assert (today.held, today.rejected) == (2, 1)
        totals = board.totals
        assert (totals.sim_changes, totals.imported, totals.replacements) == (4, 3, 1)
        assert board.queue.waiting == 1 and board.queue.oldest_since is not None
        assert board.median_minutes_to_completion == 0.0
        assert board.p90_minutes_to_completion == 0.0

    def test_a_utc_dashboard_puts_the_late_change_on_the_day_before(
        self, system: System, history: dict[str, str]
    ) -> None:
        board = dashboard.figures(system.ctx, days=7, zone="UTC")
        by_day = {d.day.isoformat(): d for d in board.days}
        assert by_day["2026-02-28"].imported == 1
        assert by_day["2026-03-01"].imported == 0

    def test_groups_by_brand_and_channel(self, system: System, history: dict[str, str]) -> None:
        board = dashboard.figures(system.ctx, days=7, zone="Europe/Copenhagen")
        (dk,) = board.groups["brand"]
        assert (dk.key, dk.sim_changes, dk.replacements, dk.held) == ("dk", 4, 1, 2)
        channels = {g.key: g for g in board.groups["channel"]}
        assert channels[dashboard.IMPORTED].imported == 3
        assert sum(g.replacements for g in channels.values()) == 1

    def test_another_brand_sees_none_of_it(self, system: System, history: dict[str, str]) -> None:
        board = dashboard.figures(system.ctx, days=7, scope=Scope.of_brand("other"))
        assert board.totals.sim_changes == 0 and board.queue.waiting == 0
        assert board.groups["brand"] == []

    def test_drill_down_names_the_requests_behind_a_bar(
        self, system: System, history: dict[str, str]
    ) -> None:
        zone = "Europe/Copenhagen"
        today = dt.date(2026, 3, 1)
        held = dashboard.drill_down(system.ctx, metric="held", day=today, days=7, zone=zone)
        assert {f.request_id for f in held} == {history["rejected"], history["waiting"]}
        changes = dashboard.drill_down(system.ctx, metric="sim_changes", days=7, zone=zone)
        assert len(changes) == 4
        assert sum(1 for f in changes if f.request_id is None) == 3
        with pytest.raises(InvalidInput):
            dashboard.drill_down(system.ctx, metric="everything", days=7)

    def test_p90_is_an_observed_time(self) -> None:
        assert dashboard._p90([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0]) == 9.0
        assert dashboard._p90([5.0]) == 5.0
        assert dashboard._p90([]) is None


class TestPages:
    def test_charts_summary_and_a_bar_that_leads_to_its_requests(
        self, system: System, server: str, history: dict[str, str]
    ) -> None:
        admin = signed_in(system, server, "admin")
        page = admin.http.get("/console/dashboard?days=7")
        assert page.status_code == 200
        assert page.text.count('<svg class="chart"') == 5
        shown = re.search(r'id="total-sim-changes">(\d+)', page.text)
        assert shown and shown.group(1) == "4"
        assert re.search(r'id="queue">1', page.text)
        today = r'<a href="(/console/dashboard/requests\?[^"]*metric=held&amp;day=2026-03-01)"'
        bar = re.search(today, page.text)
        assert bar
        drilled = admin.http.get(bar.group(1).replace("&amp;", "&"))
        assert drilled.status_code == 200
        text = text_of(drilled)
        assert "+4520101202" not in text  # numbers are masked
        for request_id in (history["rejected"], history["waiting"]):
            assert f"/console/requests/{request_id}" in drilled.text

    def test_csv_export_matches_the_figures(
        self, system: System, server: str, history: dict[str, str]
    ) -> None:
        reviewer = signed_in(system, server, "reviewer")
        got = reviewer.http.get("/console/dashboard.csv?days=7")
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("text/csv")
        assert "attachment" in got.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(got.text)))
        days = [r for r in rows if r["section"] == "day"]
        assert len(days) == 7
        assert sum(int(r["sim_changes"]) for r in days) == 4
        assert sum(int(r["imported"]) for r in days) == 3
        assert [r["key"] for r in rows if r["section"] == "brand"] == ["Nordlys Mobil"]

    @pytest.mark.parametrize(
        "path",
        [
            "/console/dashboard?days=abc",
            "/console/dashboard?days=0",
            "/console/dashboard?days=93",
            "/console/dashboard?brand=nowhere",
            "/console/dashboard?channel=fax",
            "/console/dashboard/requests?metric=everything",
            "/console/dashboard/requests?metric=held&day=yesterday",
            "/console/dashboard/requests?metric=held&group=planet&key=x",
            "/console/dashboard.csv?days=-1",
        ],
    )
    def test_a_bad_parameter_gives_the_consoles_error_page(
        self, system: System, server: str, path: str
    ) -> None:
        admin = signed_in(system, server, "admin")
        got = admin.http.get(path)
        assert got.status_code == 400
        assert got.headers["content-type"].startswith("text/html")
        assert "The dashboard cannot show this" in text_of(got)

    def test_a_brand_reviewer_sees_its_brand_only(
        self, system: System, server: str, history: dict[str, str]
    ) -> None:
        seed.upsert_brand(
            system.ctx,
            seed.BrandSpec("no", "Fjord Tele", "NO", "NOK", "nb", "Europe/Oslo", BrandPolicy()),
        )
        other = BrandStaff(system, server, "reviewer", brand_id="no")
        assert other.sign_in().status_code == 303
        page = other.http.get("/console/dashboard?days=7")
        assert page.status_code == 200
        assert re.search(r'id="total-sim-changes">0', page.text)
        assert 'name="brand"' not in page.text  # no brand choice for one brand's staff
        assert other.http.get("/console/dashboard?brand=dk").status_code == 400
        drilled = other.http.get("/console/dashboard/requests?metric=held&days=7")
        assert history["waiting"] not in drilled.text

    def test_signed_out_and_agents_are_refused(self, system: System, server: str) -> None:
        agent = signed_in(system, server, "agent")
        assert agent.http.get("/console/dashboard.csv").status_code == 403
        anonymous = signed_in(system, server, "agent")
        anonymous.http.cookies.clear()
        assert anonymous.http.get("/console/dashboard/requests?metric=held").status_code == 401
