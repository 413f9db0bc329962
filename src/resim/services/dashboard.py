"""The agent console's dashboard: a few figures per day, computed from the database.

Definitions, for the ``days`` UTC calendar days ending with the day of ``now``
(a day runs 00:00 to 24:00 UTC; the caller's ``scope`` limits everything to its brand):

* **replacements**: requests completed that day (``completed_at``).
* **held**: requests the risk engine held for a reviewer that day (the
  ``request.held`` audit event; a request is counted once in the window, on
  its first hold in it).
* **rejected**: requests that became ``rejected`` that day, by the risk engine
  or a reviewer (``request.rejected`` audit events; at most once per request).
* **fraud_reports**: "this was not me" reports made that day (``fraud_reported_at``).
* **median_minutes_to_completion**: over the requests completed in the whole
  window, the median of ``completed_at - created_at`` in minutes (None when
  none completed). Per day as well, in ``Day.median_minutes``.

Read-only; one transaction; the audit events read are bounded by the window.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.errors import InvalidInput
from resim.services.context import ServiceContext
from resim.services.tenancy import UNRESTRICTED, Scope, requests_where

MAX_DAYS = 92


@dataclass
class Day:
    day: dt.date
    replacements: int = 0
    held: int = 0
    rejected: int = 0
    fraud_reports: int = 0
    median_minutes: float | None = None


@dataclass
class Dashboard:
    start: dt.datetime
    end: dt.datetime
    days: list[Day] = field(default_factory=list)
    median_minutes_to_completion: float | None = None

    @property
    def totals(self) -> Day:
        """The window's sums (``day`` is the window's first day)."""
        return Day(
            day=self.start.date(),
            replacements=sum(d.replacements for d in self.days),
            held=sum(d.held for d in self.days),
            rejected=sum(d.rejected for d in self.days),
            fraud_reports=sum(d.fraud_reports for d in self.days),
            median_minutes=self.median_minutes_to_completion,
        )


def figures(ctx: ServiceContext, *, days: int = 14, scope: Scope = UNRESTRICTED) -> Dashboard:
    """The dashboard for the ``days`` days up to today (UTC), newest day last."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be 1 to {MAX_DAYS}", code="INVALID_DAYS")
    today = ctx.now().astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=days)
    board = Dashboard(start=start, end=end)
    by_day = {first + dt.timedelta(days=i): Day(first + dt.timedelta(days=i)) for i in range(days)}
    r = orm.replacement_request
    a = orm.audit_event
    in_scope = [requests_where(scope)]
    durations: dict[dt.date, list[float]] = {d: [] for d in by_day}
    with ctx.uow() as uow:
        done = uow.session.execute(
            sa.select(r.c.created_at, r.c.completed_at).where(
                r.c.completed_at >= start, r.c.completed_at < end, *in_scope
            )
        ).all()
        for created_at, completed_at in done:
            day = _utc_day(completed_at)
            by_day[day].replacements += 1
            durations[day].append((completed_at - created_at).total_seconds() / 60)
        reported = uow.session.scalars(
            sa.select(r.c.fraud_reported_at).where(
                r.c.fraud_reported_at >= start, r.c.fraud_reported_at < end, *in_scope
            )
        ).all()
        for at in reported:
            by_day[_utc_day(at)].fraud_reports += 1
        for action, attr in (("request.held", "held"), ("request.rejected", "rejected")):
            stmt = (
                sa.select(a.c.object_id, a.c.at)
                .where(
                    a.c.action == action,
                    a.c.object_type == "request",
                    a.c.at >= start,
                    a.c.at < end,
                )
                .order_by(a.c.seq)
            )
            if not scope.unrestricted:
                stmt = stmt.where(a.c.object_id.in_(sa.select(r.c.id).where(*in_scope)))
            seen: set[str] = set()
            for object_id, at in uow.session.execute(stmt).all():
                if object_id in seen:  # held twice in the window: counted once, first day
                    continue
                seen.add(object_id)
                day_row = by_day[_utc_day(at)]
                setattr(day_row, attr, getattr(day_row, attr) + 1)
    for day, values in durations.items():
        by_day[day].median_minutes = _median(values)
    board.days = [by_day[d] for d in sorted(by_day)]
    board.median_minutes_to_completion = _median(v for vs in durations.values() for v in vs)
    return board


def _utc_day(at: dt.datetime) -> dt.date:
    if at.tzinfo is None:  # SQLite hands back naive UTC in some paths
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).date()


def _median(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(statistics.median(found), 1) if found else None
