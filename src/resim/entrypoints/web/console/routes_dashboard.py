"""The dashboard pages: figures with charts, the requests behind a figure, CSV export.

For reviewers and admins. A brand's staff see their brand, in their brand's
time zone; operator-wide staff see every brand (in UTC) or pick one (then in
its zone). Query parameters are checked here, and a bad one gives the
console's error page (400), never a framework error. Thin: parse, call
:mod:`resim.services.console.dashboard`, render.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from babel.dates import format_skeleton
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from resim.domain.identifiers import mask_msisdn
from resim.entrypoints.web.common import locale_of
from resim.entrypoints.web.console.charts import Bar, bar_chart
from resim.entrypoints.web.console.pages import (
    DOMAIN,
    Caller,
    ConsolePageError,
    ctx_of,
    from_service,
    page,
    staff_page,
)
from resim.entrypoints.web.i18n import translations
from resim.errors import InvalidInput, ResimError
from resim.services.access.tenancy import Scope
from resim.services.console import dashboard

router = APIRouter(prefix="/console", include_in_schema=False)
Overseers = Annotated[Caller, staff_page("reviewer", "admin")]
CHANNELS = ("portal", "agent", "api", dashboard.IMPORTED)
DAY_CHOICES = (7, 14, 30, 92)


def N_(message: str) -> str:
    return message


METRIC_WORDS = {
    "sim_changes": N_("SIM changes"),
    "imported": N_("Imported SIM changes"),
    "replacements": N_("Replacements"),
    "held": N_("Held for review"),
    "rejected": N_("Rejected"),
    "fraud_reports": N_('"Not me" reports'),
}
CHANNEL_WORDS = {
    "portal": N_("Portal"),
    "agent": N_("Store or hotline agent"),
    "api": N_("Operator's app (API)"),
    dashboard.IMPORTED: N_("Imported history"),
}
DRILL = "/console/dashboard/requests"
CHARTED = ("replacements", "held", "rejected", "fraud_reports", "sim_changes")


@dataclass(frozen=True)
class Query:
    days: int
    brand: str | None
    channel: str | None
    scope: Scope
    zone: str

    def link(self, path: str, **more: str) -> str:
        values = {"days": str(self.days), "brand": self.brand or "", "channel": self.channel or ""}
        values.update(more)
        return f"{path}?{urlencode({k: v for k, v in values.items() if v})}"


def _bad(what: str) -> ConsolePageError:
    return ConsolePageError(400, "DASHBOARD_QUERY", what)


def _query(request: Request, caller: Caller, names: dashboard.Names) -> Query:
    params = request.query_params
    raw_days = params.get("days", "14")
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= dashboard.MAX_DAYS:
        raise _bad("days")
    brand = params.get("brand") or None
    if brand is not None and brand not in names.brands:
        raise _bad("brand")  # another brand's id reads as unknown
    channel = params.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise _bad("channel")
    scope = caller.principal.scope
    if brand is not None and scope.brand_id is None:
        scope = Scope.of_brand(brand)
    return Query(int(raw_days), brand, channel, scope, names.zone_of(scope.brand_id))


async def _names(request: Request, caller: Caller) -> dashboard.Names:
    return await run_in_threadpool(dashboard.names, ctx_of(request), scope=caller.principal.scope)


async def _board(
    request: Request, caller: Caller
) -> tuple[dashboard.Names, Query, dashboard.Dashboard]:
    """The names, the checked query and the figures it asks for."""
    names = await _names(request, caller)
    q = _query(request, caller, names)
    try:
        board = await run_in_threadpool(
            dashboard.figures,
            ctx_of(request),
            days=q.days,
            scope=q.scope,
            zone=q.zone,
            channel=q.channel,
        )
    except InvalidInput as exc:
        raise _bad(exc.code or "") from None
    except ResimError as exc:
        raise from_service(exc) from None
    return names, q, board


@router.get("/dashboard")
async def show_dashboard(request: Request, caller: Overseers) -> Response:
    names, q, board = await _board(request, caller)
    locale = locale_of(request)
    words = translations(DOMAIN, locale)
    charts = {
        metric: bar_chart(
            [
                Bar(
                    label=format_skeleton("MMMd", d.day, locale=locale),
                    value=d.get(metric),
                    href=q.link(
                        "/console/dashboard/requests", metric=metric, day=d.day.isoformat()
                    ),
                    spoken=f"{words.gettext(METRIC_WORDS[metric])}, "
                    f"{format_skeleton('yMMMd', d.day, locale=locale)}: {d.get(metric)}",
                )
                for d in board.days
            ],
            chart_id=f"chart-{metric}",
            title=words.gettext(METRIC_WORDS[metric]),
        )
        for metric in CHARTED
    }
    context = {
        "board": board,
        "q": q,
        "names": names,
        "charts": charts,
        "charted": CHARTED,
        "metric_words": METRIC_WORDS,
        "channel_words": CHANNEL_WORDS,
        "channels": CHANNELS,
        "day_choices": DAY_CHOICES,
        "operator_wide": caller.principal.scope.brand_id is None,
        "now": ctx_of(request).now(),
    }
    return page(request, caller, "dashboard.html.j2", context)


@router.get("/dashboard/requests")
async def drill_down(request: Request, caller: Overseers) -> Response:
    names = await _names(request, caller)
    q = _query(request, caller, names)
    params = request.query_params
    metric = params.get("metric", "")
    if metric not in METRIC_WORDS:
        raise _bad("metric")
    day: dt.date | None = None
    if params.get("day"):
        try:
            day = dt.date.fromisoformat(params["day"])
        except ValueError:
            raise _bad("day") from None
    grouping = params.get("group") or None
    if grouping is not None and grouping not in dashboard.GROUPINGS:
        raise _bad("group")
    try:
        facts = await run_in_threadpool(
            dashboard.drill_down,
            ctx_of(request),
            metric=metric,
            day=day,
            days=q.days,
            scope=q.scope,
            zone=q.zone,
            channel=q.channel,
            grouping=grouping,
            key=params.get("key") or None,
        )
    except InvalidInput as exc:
        raise _bad(exc.code or "") from None
    except ResimError as exc:
        raise from_service(exc) from None
    rows = [
        {
            "at": f.at,
            "request_id": f.request_id,
            "msisdn": mask_msisdn(f.msisdn),
            "brand": names.brand(f.brand_id),
            "channel": f.channel,
            "agent": names.staff.get(f.actor or "", "") if f.channel == "agent" else "",
        }
        for f in facts
    ]
    context = {
        "q": q,
        "metric": metric,
        "day": day,
        "rows": rows,
        "metric_words": METRIC_WORDS,
        "channel_words": CHANNEL_WORDS,
        "back": q.link("/console/dashboard"),
    }
    return page(request, caller, "dashboard_requests.html.j2", context)


@router.get("/dashboard.csv")
async def export_csv(request: Request, caller: Overseers) -> Response:
    """Per day, then per brand, channel and agent: one table, a ``section`` column."""
    names, _query_used, board = await _board(request, caller)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", *dashboard.METRICS, "median_minutes", "p90_minutes"])
    for d in board.days:
        counts = [d.get(m) for m in dashboard.METRICS]
        writer.writerow(
            ["day", d.day.isoformat(), *counts, _num(d.median_minutes), _num(d.p90_minutes)]
        )
    for grouping, groups in board.groups.items():
        for g in groups:
            label = _label(names, grouping, g.key)
            counts = [g.get(m) for m in dashboard.METRICS]
            writer.writerow([grouping, _cell(label), *counts, "", ""])
    stamp = ctx_of(request).now().date().isoformat()
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="resim-dashboard-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _label(names: dashboard.Names, grouping: str, key: str) -> str:
    if grouping == "brand":
        return names.brand(key)
    if grouping == "agent":
        return names.staff.get(key, key)
    return key


def _num(value: float | None) -> str:
    return "" if value is None else f"{value}"


def _cell(text: str) -> str:
    """A spreadsheet must not run a name as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
