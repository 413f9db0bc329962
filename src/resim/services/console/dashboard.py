"""The agent console's dashboard: figures per day and per brand, channel and agent.

Definitions, for the ``days`` calendar days ending with today, where a day runs
from midnight to midnight in ``zone`` (the brand's time zone in the console;
the caller's ``scope`` limits everything to its brand):

* **sim_changes**: SIM changes recorded that day (``sim_change.changed_at``),
  whether resim made them or they were imported from the operator's history;
  **imported** counts those without a resim request behind them.
* **replacements**: requests completed that day (``completed_at``).
* **held**: requests the risk engine held for a reviewer that day (the
  ``request.held`` audit event; counted once in the window, on its first hold).
* **rejected**: requests that became ``rejected`` that day (``request.rejected``
  audit events; at most once per request).
* **fraud_reports**: "this was not me" reports made that day (``fraud_reported_at``).
* **median / p90 minutes to completion**: over the requests completed in the
  window (and per day), ``completed_at - created_at`` in minutes; None when none.
* **queue**: requests waiting for a reviewer now (state ``in_review``) and
  since when the oldest has waited (its ``updated_at``: the time it was held).

The same facts are also summed per brand, per channel and per agent (the staff
member who opened an agent-channel request). Every fact keeps the request it
came from, so a figure can be drilled down (:func:`drill_down`). Read-only; one
transaction; the audit events read are bounded by the window.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from resim.errors import InvalidInput
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.stores.dashboard import RequestAt
from resim.services.unit_of_work import UnitOfWork

MAX_DAYS = 92
METRICS = ("sim_changes", "imported", "replacements", "held", "rejected", "fraud_reports")
GROUPINGS = ("brand", "channel", "agent")
IMPORTED = "imported"  # the channel of a SIM change that no resim request made


@dataclass(frozen=True)
class Fact:
    """One counted event: ``metric`` happened at ``at`` (local ``day``)."""

    metric: str
    at: dt.datetime
    day: dt.date
    brand_id: str
    channel: str
    actor: str | None
    request_id: str | None
    msisdn: str
    sim_change_id: str | None = None
    minutes: float | None = None  # replacements: time to completion


@dataclass
class Counts:
    sim_changes: int = 0
    imported: int = 0
    replacements: int = 0
    held: int = 0
    rejected: int = 0
    fraud_reports: int = 0

    def add(self, metric: str) -> None:
        setattr(self, metric, getattr(self, metric) + 1)
        if metric == IMPORTED:
            self.sim_changes += 1

    def get(self, metric: str) -> int:
        value: int = getattr(self, metric)
        return value


@dataclass
class Day(Counts):
    day: dt.date = dt.date.min
    median_minutes: float | None = None
    p90_minutes: float | None = None


@dataclass
class Group(Counts):
    key: str = ""


@dataclass(frozen=True)
class Queue:
    waiting: int
    oldest_since: dt.datetime | None


@dataclass
class Dashboard:
    start: dt.datetime
    end: dt.datetime
    zone: str
    days: list[Day] = field(default_factory=list)
    median_minutes_to_completion: float | None = None
    p90_minutes_to_completion: float | None = None
    queue: Queue = Queue(0, None)
    groups: dict[str, list[Group]] = field(default_factory=dict)

    @property
    def totals(self) -> Day:
        """The window's sums (``day`` is the window's first day)."""
        total = Day(day=self.days[0].day if self.days else self.start.date())
        for d in self.days:
            for metric in METRICS:
                setattr(total, metric, total.get(metric) + d.get(metric))
        total.median_minutes = self.median_minutes_to_completion
        total.p90_minutes = self.p90_minutes_to_completion
        return total


def window(
    ctx: ServiceContext, days: int, zone: str
) -> tuple[ZoneInfo, dt.date, dt.datetime, dt.datetime]:
    """The zone, the first local day, and the window's start and end instants."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be 1 to {MAX_DAYS}", code="INVALID_DAYS")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("unknown time zone", code="INVALID_ZONE") from None
    today = ctx.now().astimezone(tz).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return tz, first, start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def figures(
    ctx: ServiceContext,
    *,
    days: int = 14,
    scope: Scope = UNRESTRICTED,
    zone: str = "UTC",
    channel: str | None = None,
) -> Dashboard:
    """The dashboard for the ``days`` days up to today in ``zone``, newest day last."""
    tz, first, start, end = window(ctx, days, zone)
    with ctx.uow() as uow:
        found = [f for f in _facts(uow, tz, start, end, scope) if _keep(f, channel)]
        queue = _queue(uow, scope)
    board = Dashboard(start=start, end=end, zone=tz.key, queue=queue)
    by_day = {
        first + dt.timedelta(days=i): Day(day=first + dt.timedelta(days=i)) for i in range(days)
    }
    durations: dict[dt.date, list[float]] = {d: [] for d in by_day}
    groups: dict[str, dict[str, Group]] = {g: {} for g in GROUPINGS}
    for fact in found:
        if fact.day not in by_day:  # a local day outside the window's edges
            continue
        by_day[fact.day].add(fact.metric)
        if fact.minutes is not None:
            durations[fact.day].append(fact.minutes)
        for grouping, key in (
            ("brand", fact.brand_id),
            ("channel", fact.channel),
            ("agent", fact.actor if fact.channel == "agent" else None),
        ):
            if key is not None:
                groups[grouping].setdefault(key, Group(key=key)).add(fact.metric)
    for day, values in durations.items():
        by_day[day].median_minutes = _median(values)
        by_day[day].p90_minutes = _p90(values)
    board.days = [by_day[d] for d in sorted(by_day)]
    every = [v for vs in durations.values() for v in vs]
    board.median_minutes_to_completion = _median(every)
    board.p90_minutes_to_completion = _p90(every)
    board.groups = {g: sorted(v.values(), key=lambda x: x.key) for g, v in groups.items()}
    return board


def drill_down(
    ctx: ServiceContext,
    *,
    metric: str,
    day: dt.date | None = None,
    days: int = 14,
    scope: Scope = UNRESTRICTED,
    zone: str = "UTC",
    channel: str | None = None,
    grouping: str | None = None,
    key: str | None = None,
) -> list[Fact]:
    """The facts behind one figure (a bar): ``metric`` on ``day`` (or the whole
    window), optionally only those of one brand, channel or agent. Newest first."""
    if metric not in METRICS:
        raise InvalidInput("unknown figure", code="INVALID_METRIC")
    if grouping is not None and grouping not in GROUPINGS:
        raise InvalidInput("unknown grouping", code="INVALID_GROUPING")
    tz, _first, start, end = window(ctx, days, zone)
    with ctx.uow() as uow:
        found = _facts(uow, tz, start, end, scope)
    wanted = {metric} | ({IMPORTED} if metric == "sim_changes" else set())
    chosen = [
        f
        for f in found
        if f.metric in wanted
        and _keep(f, channel)
        and (day is None or f.day == day)
        and (grouping is None or _key(f, grouping) == key)
    ]
    return sorted(chosen, key=lambda f: f.at, reverse=True)


# ---------------------------------------------------------------- queries


def _facts(
    uow: UnitOfWork, tz: ZoneInfo, start: dt.datetime, end: dt.datetime, scope: Scope
) -> list[Fact]:
    board = uow.dashboard
    out: list[Fact] = []

    def fact(metric: str, row: RequestAt, minutes: float | None = None) -> None:
        at = _aware(row.at)
        out.append(
            Fact(
                metric=metric,
                at=at,
                day=at.astimezone(tz).date(),
                brand_id=str(row.brand_id),
                channel=row.channel,
                actor=str(row.actor) if row.actor else None,
                request_id=str(row.id),
                msisdn=str(row.msisdn),
                minutes=minutes,
            )
        )

    for row in board.completed(start, end, scope):
        minutes = (_aware(row.at) - _aware(row.created_at)).total_seconds() / 60
        fact("replacements", row, minutes=minutes)
    for row in board.fraud_reported(start, end, scope):
        fact("fraud_reports", row)
    for action, metric in (("request.held", "held"), ("request.rejected", "rejected")):
        seen: set[str] = set()
        for row in board.request_events(action, start, end, scope):
            if row.id not in seen:  # held twice in the window: counted once, first time
                seen.add(row.id)
                fact(metric, row)
    for change in board.sim_changes(start, end, scope):
        at = _aware(change.at)
        out.append(
            Fact(
                metric="sim_changes" if change.request_id else IMPORTED,
                at=at,
                day=at.astimezone(tz).date(),
                brand_id=str(change.brand_id),
                channel=change.channel or IMPORTED,
                actor=None,
                request_id=change.request_id,
                msisdn=str(change.msisdn),
                sim_change_id=change.id,
            )
        )
    return out


@dataclass(frozen=True)
class Names:
    """Words for the keys the figures use: brands (name, time zone) and staff."""

    brands: dict[str, tuple[str, str]]
    staff: dict[str, str]  # "staff:<id>" -> display name

    def brand(self, brand_id: str) -> str:
        return self.brands.get(brand_id, (brand_id, "UTC"))[0]

    def zone_of(self, brand_id: str | None) -> str:
        return self.brands.get(brand_id or "", ("", "UTC"))[1]


def names(ctx: ServiceContext, *, scope: Scope = UNRESTRICTED) -> Names:
    """The brands ``scope`` may see and the staff of those brands (and operator-wide)."""
    with ctx.uow() as uow:
        brands = uow.dashboard.brand_names(scope)
        staff = uow.dashboard.staff_names(scope)
    return Names(brands=brands, staff={f"staff:{k}": v for k, v in staff.items()})


def _queue(uow: UnitOfWork, scope: Scope) -> Queue:
    waiting, oldest = uow.dashboard.queue(scope)
    return Queue(waiting, _aware(oldest) if oldest else None)


def _keep(f: Fact, channel: str | None) -> bool:
    return channel is None or f.channel == channel


def _key(f: Fact, grouping: str) -> str | None:
    if grouping == "brand":
        return f.brand_id
    if grouping == "channel":
        return f.channel
    return f.actor if f.channel == "agent" else None


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:  # SQLite hands back naive UTC in some paths
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC)


def _median(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(statistics.median(found), 1) if found else None


def _p90(values: Iterable[float]) -> float | None:
    """The 90th percentile by the nearest-rank method (an observed value)."""
    found = sorted(values)
    if not found:
        return None
    return round(found[math.ceil(0.9 * len(found)) - 1], 1)
