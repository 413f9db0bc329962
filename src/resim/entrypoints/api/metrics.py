"""Prometheus metrics: HTTP traffic, plus the outbox and the requests read at scrape time.

The outbox gauges are what an operator alerts on: due jobs piling up means
workers are missing or a peer is down; any dead job needs a human.

``GET /metrics`` is for the scraper only: with ``RESIM_METRICS_TOKEN`` set it
needs ``Authorization: Bearer <token>`` (401 without, from anywhere); unset,
it answers callers on loopback only (403 to others). The counts carry no
personal data, but they tell an outsider how busy the operator's fraud
queue is and which routes fail.

An unacknowledged alert also needs a human
unacknowledged alert (``resim_alerts_unacknowledged``), e.g. ``peer_unavailable``
when a worker paused a peer that keeps failing.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resim.adapters.db import orm
from resim.entrypoints.api.access import declared
from resim.entrypoints.api.forwarded import is_loopback, source_address
from resim.entrypoints.api.schemas import Problem
from resim.errors import PermissionDenied, Unauthenticated
from resim.services.context import ServiceContext

log = structlog.get_logger()


class DatabaseCollector(Collector):
    """Counts jobs by kind and state, requests by state and unacknowledged alerts by
    kind, when scraped."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "resim_jobs", "Outbox jobs by kind and state", labels=["kind", "state"]
        )
        requests = GaugeMetricFamily(
            "resim_requests", "Replacement requests by state", labels=["state"]
        )
        alerts = GaugeMetricFamily(
            "resim_alerts_unacknowledged",
            "Alerts nobody has acknowledged yet, by kind",
            labels=["kind"],
        )
        j, r, a = orm.job, orm.replacement_request, orm.alert
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
                for kind, count in uow.session.execute(
                    sa.select(a.c.kind, sa.func.count())
                    .where(a.c.acknowledged_at.is_(None))
                    .group_by(a.c.kind)
                ):
                    alerts.add_metric([kind], count)
        except sa.exc.SQLAlchemyError:
            log.warning("metrics.database_unavailable")
            return
        yield jobs
        yield requests
        yield alerts


class MeasureMiddleware:
    """Counts and times every HTTP request by method, route template and status.

    A pure ASGI middleware: BaseHTTPMiddleware (``@app.middleware``) costs a
    task group and a response stream per request, more than a CAMARA check
    itself. The route template is read from the scope after the app ran
    (the router puts the matched route there).
    """

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        # The labelled children, looked up once per label set (``labels()`` builds
        # and checks its key under a lock on every call).
        self._counts: dict[tuple[str, str, str], Counter] = {}
        self._times: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            key = (method, name, str(status[0]))
            count = self._counts.get(key)
            if count is None:
                count = self._counts[key] = self.requests.labels(*key)
            timer = self._times.get(key[:2])
            if timer is None:
                timer = self._times[key[:2]] = self.latency.labels(method, name)
            count.inc()
            timer.observe(time.perf_counter() - start)


def check_scraper(request: Request, token: str) -> None:
    """The caller may read /metrics (see the module docstring), else 401/403."""
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            raise Unauthenticated("GET /metrics needs the scraper's bearer token")
        return
    if not is_loopback(source_address(request)):
        raise PermissionDenied(
            "/metrics answers loopback only; set RESIM_METRICS_TOKEN to scrape from elsewhere"
        )


def install_metrics(app: FastAPI, ctx: ServiceContext, *, token: str = "") -> None:
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

    app.add_middleware(MeasureMiddleware, requests=http_requests, latency=latency)

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        dependencies=[declared("metrics")],
        responses={status: {"model": Problem} for status in (401, 403)},
    )
    def metrics(request: Request) -> Response:
        """Prometheus metrics: with RESIM_METRICS_TOKEN, for its bearer only; without,
        for callers on loopback only."""
        check_scraper(request, token)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
