"""Prometheus metrics: HTTP traffic, plus the outbox and the requests read at scrape time.

The outbox gauges are what an operator alerts on: due jobs piling up means
workers are missing or a peer is down; any dead job needs a human.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from resim.adapters.db import orm
from resim.entrypoints.api.access import allow
from resim.services.context import ServiceContext

log = structlog.get_logger()


class DatabaseCollector(Collector):
    """Counts jobs by kind and state, and requests by state, when scraped."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "resim_jobs", "Outbox jobs by kind and state", labels=["kind", "state"]
        )
        requests = GaugeMetricFamily(
            "resim_requests", "Replacement requests by state", labels=["state"]
        )
        j, r = orm.job, orm.replacement_request
        try:
            with self.ctx.uow() as uow:
                for kind, state, count in uow.session.execute(
                    sa.select(j.c.kind, j.c.state, sa.func.count()).group_by(j.c.kind, j.c.state)
                ):
                    jobs.add_metric([kind, state], count)
                for state, count in uow.session.execute(
                    sa.select(r.c.state, sa.func.count()).group_by(r.c.state)
                ):
                    requests.add_metric([getattr(state, "value", str(state))], count)
        except sa.exc.SQLAlchemyError:
            log.warning("metrics.database_unavailable")
            return
        yield jobs
        yield requests


def install_metrics(app: FastAPI, ctx: ServiceContext) -> None:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(ctx))
    http_requests = Counter(
        "resim_http_requests_total",
        "HTTP requests",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "resim_http_request_seconds",
        "HTTP request latency",
        ["method", "route"],
        registry=registry,
    )
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        http_requests.labels(request.method, name, str(response.status_code)).inc()
        latency.labels(request.method, name).observe(time.perf_counter() - start)
        return response

    # Counts by state and kind only, no personal data: open to the scraper, like
    # /health (restrict it at the network edge if the counts are sensitive).
    @app.get("/metrics", tags=["ops"], response_class=Response, dependencies=[allow("anyone")])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
