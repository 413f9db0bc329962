"""The processes of a bench run: ``python -m resim.bench.roles api|worker|emulator``.

``api`` and ``worker`` are what ``resim serve`` and ``resim worker`` run, built
the same way from ``RESIM_*`` settings (``build_context``, ``build_app``,
``Worker``), plus counters on the database engine: commits, rollbacks and
statements, written as JSON to ``--stats`` when the process is stopped with
SIGTERM; with ``--cprofile FILE`` (any role), a cProfile of all its threads
too (:class:`~resim.bench.profiling.ThreadProfiles`). ``emulator`` serves the
SM-DP+ emulator with ``--latency-ms`` per ES2+ call and without access logs
(it stands in for a peer on another machine, so it should spend as little of
this machine as it can).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from resim.bench.profiling import ThreadProfiles
from resim.bootstrap import build_api_config, build_context, build_engine, load_secrets
from resim.entrypoints.logs import configure_logging
from resim.pools import worker_pool
from resim.settings import Settings


class EngineCounters:
    """Counts what one engine does; the listeners run on the calling thread."""

    def __init__(self, engine: sa.Engine) -> None:
        self.commits = 0
        self.rollbacks = 0
        self.statements = 0
        self._lock = threading.Lock()
        event.listen(engine, "commit", self._on_commit)
        event.listen(engine, "rollback", self._on_rollback)
        event.listen(engine, "before_cursor_execute", self._on_statement)

    def _on_commit(self, _conn: Any) -> None:
        with self._lock:
            self.commits += 1

    def _on_rollback(self, _conn: Any) -> None:
        with self._lock:
            self.rollbacks += 1

    def _on_statement(self, *_args: Any) -> None:
        with self._lock:
            self.statements += 1

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {
                "commits": self.commits,
                "rollbacks": self.rollbacks,
                "statements": self.statements,
            }


def _write_stats(path: Path | None, counters: EngineCounters, **extra: Any) -> None:
    if path is not None:
        path.write_text(json.dumps({**counters.as_dict(), **extra}))


def run_api(port: int, stats: Path | None) -> None:
    import uvicorn

    from resim.entrypoints.api.app import build_app

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    engine = build_engine(settings)
    counters = EngineCounters(engine)
    ctx = build_context(settings, engine=engine)
    app = build_app(ctx, build_api_config(settings, clock=ctx.clock))
    # uvicorn re-raises the SIGTERM it caught once it has shut down; with a
    # handler of ours in place that returns here, so the counters get written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,  # RESIM_TRUSTED_PROXIES decides (entrypoints/api/forwarded.py)
    )
    _write_stats(stats, counters)


def run_worker(concurrency: int, stats: Path | None) -> None:
    from resim.entrypoints.worker import Worker

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    engine = build_engine(settings, pool=worker_pool(settings, concurrency))
    counters = EngineCounters(engine)
    ctx = build_context(settings, engine=engine)
    worker = Worker(
        ctx,
        concurrency=concurrency,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()
    _write_stats(stats, counters, jobs=worker.counts)


def run_emulator(port: int, latency_ms: float) -> None:
    import uvicorn

    from resim.emulator.app import EmulatorConfig, build_emulator_app
    from resim.emulator.server import build_core

    settings = Settings()
    configure_logging(fmt=settings.log_format, level="WARNING")
    config = EmulatorConfig(
        smdp_address=settings.smdp_address,
        allowed_requesters=(settings.smdp_requester_id,),
        callback_url=settings.public_base_url,
        callback_token=load_secrets(settings).callback_token,
        requester_id=settings.smdp_id,
        latency_ms=latency_ms,
    )
    # As for the API: return from uvicorn.run after SIGTERM (a --cprofile is written).
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        build_emulator_app(build_core(config), config),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m resim.bench.roles")
    parser.add_argument("role", choices=["api", "worker", "emulator"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--stats", type=Path, default=None)
    parser.add_argument(
        "--cprofile", type=Path, default=None, help="write a pstats file of every thread here"
    )
    args = parser.parse_args(argv)
    profiles = ThreadProfiles() if args.cprofile else None
    if profiles is not None:
        profiles.start()
    try:
        if args.role == "api":
            run_api(args.port, args.stats)
        elif args.role == "worker":
            run_worker(args.concurrency, args.stats)
        else:
            run_emulator(args.port, args.latency_ms)
    finally:
        if profiles is not None:
            profiles.dump(args.cprofile)


if __name__ == "__main__":
    main()
