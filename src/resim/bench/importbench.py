"""``python -m resim.bench import``: onboarding N lines on SQLite and PostgreSQL.

Generates the data with ``resim demo-data``'s generator
(``demo/demo_generator.py``: the demo's four brands, numbers valid for
each brand's country, ICCIDs with their Luhn digit, SIM-change chains, locks
and eSIM stock), N lines and ``changes`` SIM-change records, then imports it
kind by kind in a fresh database, in a child process per back end so that its
peak memory (``ru_maxrss``) is the importer's alone.

A plain import runs on two processes (the importer writes, a forked child
checks the next batch: ``services/onboarding/pipeline.py``), so the CPU
figures add the children's CPU (``RUSAGE_CHILDREN``) to the importer's, and
the peak memory is reported for the importer and for its largest child.

Subscribers carry a ``pin_hash`` (the generator hashes one PIN and reuses it:
hashing a million clear PINs would take hours by design).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from resim.demo.demo_generator import generate
from resim.services.onboarding import formats

KINDS = formats.TABULAR_KINDS


def child(url: str, directory: str) -> None:
    """Run inside the child process: import every kind, print JSON timings."""
    from resim.adapters.db.migrate import upgrade
    from resim.bootstrap import build_context
    from resim.services.onboarding import import_file
    from resim.settings import Settings

    upgrade(url)
    settings = Settings(database_url=url, data_dir=Path(directory))
    ctx = build_context(settings)
    import_file(ctx, "brands", Path(directory) / "brands.toml")
    out: dict[str, Any] = {"kinds": {}}
    t_all = time.perf_counter()
    for kind in KINDS:
        t0, cpu0 = time.perf_counter(), _cpu()
        report = import_file(ctx, kind, Path(directory) / f"{kind}.csv")
        seconds = time.perf_counter() - t0
        out["kinds"][kind] = {
            "rows": report.read,
            "written": report.written,
            "bad": report.bad,
            "seconds": round(seconds, 2),
            "cpu_seconds": round(_cpu() - cpu0, 2),
            "rows_per_s": round(report.read / seconds),
        }
    out["total_seconds"] = round(time.perf_counter() - t_all, 2)
    out["cpu_seconds"] = round(_cpu(), 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["child_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
    )
    print(json.dumps(out))


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (the checkers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _database(backend: str, pg_url: str, work: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{work / 'bench.db'}", None
    name = f"resim_import_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False), name


def _drop(pg_url: str, name: str) -> None:
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m resim.bench import")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--changes", type=int, default=None, help="default: 30%% of --lines")
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--data", type=Path, default=None,
                   help="keep the generated files in DATA and reuse them when they are there "
                        "(same --lines and --changes)")  # fmt: skip
    p.add_argument("--pg-url", default=os.environ.get(
        "RESIM_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    args = p.parse_args(argv)
    changes = args.changes if args.changes is not None else int(args.lines * 0.3)
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="resim-import-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        marker = f"{args.lines} {changes}"
        data: Path = args.data or work
        if args.data is None or _read(data / "generated.txt") != marker:
            data.mkdir(parents=True, exist_ok=True)
            generate(data, lines=args.lines, sim_changes=changes)
            (data / "generated.txt").write_text(marker)
            print(f"generated {args.lines} lines, {changes} SIM changes in "
                  f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        else:
            print(f"reusing {args.lines} lines, {changes} SIM changes in {data}")
        for backend in backends:
            url, name = _database(backend, args.pg_url, work)
            env = {**os.environ, "RESIM_SECRET_KEYS": "", "RESIM_LOG_LEVEL": "WARNING"}
            try:
                run = subprocess.run(
                    [sys.executable, "-c",
                     "import sys; from resim.bench.importbench import child; child(*sys.argv[1:])",
                     url, str(data)],
                    env=env, capture_output=True, text=True, check=False,
                )  # fmt: skip
            finally:
                if name is not None:
                    _drop(args.pg_url, name)
                (work / "bench.db").unlink(missing_ok=True)
            if run.returncode != 0:
                print(f"== {backend}: failed ==\n{run.stderr[-3000:]}")
                continue
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"== {backend}: {args.lines} lines ==")
            for kind, k in result["kinds"].items():
                print(f"  {kind:<12} {k['rows']:>9} rows {k['seconds']:>8.1f} s "
                      f"{k['rows_per_s']:>8} rows/s  cpu {k['cpu_seconds']:>7.1f} s  "
                      f"bad {k['bad']}")  # fmt: skip
            print(f"  total        {result['total_seconds']:.1f} s, "
                  f"peak memory {result['peak_rss_mb']} MB (checker "
                  f"{result['child_peak_rss_mb']} MB), CPU (importer and checkers) "
                  f"{result['cpu_seconds']:.1f} s")  # fmt: skip
            print(f"  machine      {os.cpu_count()} CPUs, load average at the end "
                  f"{os.getloadavg()[0]:.1f}")  # fmt: skip
