"""What the database says about a finished run: outcomes, jobs and peer calls.

Read after the run from resim's own tables: ``replacement_request`` (state,
verified and completed times), ``audit_event`` (when each request became
ready), ``job`` (the outbox: when each job was due and when it finished) and
``external_call`` (every call to a peer, with its start and end).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class RequestTimes:
    """Wall-clock seconds (epoch) of a request's steps as the engine recorded them."""

    created: float
    verified: float | None
    ready: float | None
    installed: float | None
    completed: float | None


@dataclass(frozen=True)
class JobKindStats:
    kind: str
    done: int
    not_done: int  # still pending (due), running or dead
    wait_p50: float  # due -> first peer call started (queueing + handler start)
    wait_p95: float
    peer_mean: float  # time inside peer calls per job
    total_p50: float  # due -> finished
    total_p95: float


@dataclass(frozen=True)
class PeerStats:
    target: str
    calls: int
    failed: int
    mean: float
    p95: float


@dataclass(frozen=True)
class DbReport:
    states: dict[str, int]
    requests: dict[str, RequestTimes]
    jobs: list[JobKindStats]
    peers: list[PeerStats]
    dead_jobs: list[str]


def _ts(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def read_db_report(engine: sa.Engine, *, until: dt.datetime) -> DbReport:
    """Everything about the run from the database; jobs due after ``until`` are left out."""
    r, a, j, c = orm.replacement_request, orm.audit_event, orm.job, orm.external_call
    with engine.connect() as conn:
        states = {
            str(s): int(n)
            for s, n in conn.execute(sa.select(r.c.state, sa.func.count()).group_by(r.c.state))
        }
        ready = dict(
            conn.execute(
                sa.select(a.c.object_id, a.c.at).where(a.c.action == "request.ready")
            ).all()
        )
        requests = {
            row.id: RequestTimes(
                created=row.created_at.timestamp(),
                verified=_ts(row.verified_at),
                ready=_ts(ready.get(row.id)),
                installed=_ts(row.installed_at),
                completed=_ts(row.completed_at),
            )
            for row in conn.execute(
                sa.select(
                    r.c.id, r.c.created_at, r.c.verified_at, r.c.installed_at, r.c.completed_at
                )
            )
        }
        jobs = conn.execute(
            sa.select(
                j.c.id, j.c.kind, j.c.state, j.c.run_after, j.c.finished_at, j.c.last_error
            ).where(j.c.run_after <= until)
        ).all()
        calls = conn.execute(
            sa.select(c.c.job_id, c.c.target, c.c.state, c.c.started_at, c.c.finished_at)
        ).all()
    first_call: dict[str, float] = {}
    in_peer: dict[str, float] = defaultdict(float)
    by_target: dict[str, list[float]] = defaultdict(list)
    failed: dict[str, int] = defaultdict(int)
    for call in calls:
        start = call.started_at.timestamp()
        first_call[call.job_id] = min(first_call.get(call.job_id, start), start)
        if call.finished_at is not None:
            took = call.finished_at.timestamp() - start
            in_peer[call.job_id] += took
            by_target[call.target].append(took)
        if call.state != "succeeded":
            failed[call.target] += 1
    kinds: dict[str, list[Any]] = defaultdict(list)
    for job in jobs:
        kinds[job.kind].append(job)
    job_stats = []
    for kind, rows in sorted(kinds.items()):
        done = [row for row in rows if row.state == "done"]
        waits = [
            first_call[row.id] - row.run_after.timestamp() for row in done if row.id in first_call
        ]
        totals = [row.finished_at.timestamp() - row.run_after.timestamp() for row in done]
        job_stats.append(
            JobKindStats(
                kind=kind,
                done=len(done),
                not_done=len(rows) - len(done),
                wait_p50=percentile(waits, 0.5),
                wait_p95=percentile(waits, 0.95),
                peer_mean=statistics.fmean([in_peer[row.id] for row in done]) if done else 0.0,
                total_p50=percentile(totals, 0.5),
                total_p95=percentile(totals, 0.95),
            )
        )
    peers = [
        PeerStats(t, len(v), failed[t], statistics.fmean(v), percentile(v, 0.95))
        for t, v in sorted(by_target.items())
    ]
    dead = [f"{job.kind}: {job.last_error}" for job in jobs if job.state == "dead"]
    return DbReport(states, requests, job_stats, peers, dead)


def pg_transactions(engine: sa.Engine) -> int:
    """Committed plus rolled-back transactions of the current PostgreSQL database so far."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        row = conn.execute(
            sa.text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
    return int(row[0])
