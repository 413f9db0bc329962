"""The command line of ``python -m resim.bench`` (``make bench``)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from resim.bench.probe import machine_description
from resim.bench.report import render, summary, verdict
from resim.bench.run import Options, run_backend

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
QUICK_COUNT = 25


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m resim.bench",
        description="Bulk eSIM reissue, end to end on loopback, on SQLite and PostgreSQL.",
    )
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--count", type=int, default=2000, help="replacements (default 2000)")
    p.add_argument(
        "--concurrency", type=int, default=32, help="jobs in flight per worker (default 32)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default 1; more than one suits PostgreSQL)",
    )
    p.add_argument("--latency-ms", type=float, default=50.0, help="added per ES2+ call")
    p.add_argument(
        "--create-concurrency", type=int, default=16, help="requests the BSS opens at a time"
    )
    p.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} replacements (CI)")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("RESIM_BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server (a database on it is created and dropped)",
    )
    p.add_argument(
        "--timeout", type=float, default=None, help="give up after this many s (default: count s)"
    )
    p.add_argument("--log-level", default="INFO", help="of the API and worker processes")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, mail)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the API and workers with py-spy into DIR (py-spy must be on PATH)",
    )
    p.add_argument(
        "--profile-wall",
        action="store_true",
        help="with --profile: sample every thread, waiting ones too (where time is spent)",
    )
    p.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run the API, workers and emulator under cProfile (all threads; no py-spy"
        " needed) into DIR/<backend>/<role>.pstats; slows them, so CPU figures are not"
        " comparable",
    )
    p.add_argument("--json", type=Path, default=None, help="write the summaries here")
    args = p.parse_args(argv)
    if args.quick:
        args.count = QUICK_COUNT
    return args


def _pg_reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # any driver error means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["import"]:  # python -m resim.bench import [--lines N] ...
        from resim.bench.importbench import main as import_main

        import_main(given[1:])
        return
    if given[:1] == ["camara"]:  # python -m resim.bench camara [--lines N] ...
        from resim.bench.camarabench import main as camara_main

        camara_main(given[1:])
        return
    args = parse(argv)
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"machine      {machine_description()}")
    print(
        f"command      python -m resim.bench {shlex.join(sys.argv[1:] if argv is None else argv)}"
    )
    summaries: list[dict[str, Any]] = []
    failed = False
    for backend in backends:
        print()
        if backend == "postgresql" and (why := _pg_reachable(args.pg_url)):
            print(f"== postgresql: skipped, server not reachable ({why}) ==")
            failed = failed or args.db == "postgresql"
            continue
        opts = Options(
            backend=backend,
            count=args.count,
            concurrency=args.concurrency,
            workers=args.workers or 1,
            latency_ms=args.latency_ms,
            create_concurrency=args.create_concurrency,
            pg_admin_url=args.pg_url,
            timeout=args.timeout or max(300.0, float(args.count)),
            keep=args.keep,
            log_level=args.log_level,
            profile_dir=args.profile,
            profile_wall=args.profile_wall,
            cprofile_dir=args.cprofile,
        )
        outcome = run_backend(opts)
        for line in render(outcome):
            print(line)
        if args.keep:
            print(f"work dir     {outcome.workdir}")
        summaries.append(summary(outcome))
        # Any replacement lost or any HTTP 5xx fails the run (and `make bench`).
        failed = failed or bool(verdict(outcome))
        sys.stdout.flush()
    if args.json is not None:
        args.json.write_text(json.dumps(summaries, indent=2) + "\n")
    if failed:
        sys.exit(1)
