"""``python -m resim.bench import``: onboarding N lines on SQLite and PostgreSQL.

Generates, streaming, N subscribers, N SIMs, N lines (Norwegian mobile
numbers, ICCIDs with their Luhn digit) and ``changes`` SIM-change records,
then imports them kind by kind in a fresh database, in a child process per
back end so that its peak memory (``ru_maxrss``) is the importer's alone.

Subscribers carry a ``pin_hash``: one argon2id hash computed once and reused
for every row (hashing a million clear PINs would take hours by design).
This generator stands in until ``resim demo-data`` is on this branch.
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

from resim.domain.identifiers import iccid_with_check_digit

KINDS = ("subscribers", "sims", "lines", "sim_changes")
BRANDS = """[[brand]]
id = "bench-no"
name = "Bench Mobil"
country = "NO"
currency = "NOK"
language = "nb"
timezone = "Europe/Oslo"
"""


def generate(directory: Path, lines: int, changes: int) -> None:
    """Write brands.toml and the four CSV files for ``lines`` lines (streamed)."""
    from resim.adapters.crypto import hash_secret

    pin_hash = hash_secret("2468")
    (directory / "brands.toml").write_text(BRANDS)

    def iccid(i: int) -> str:
        return iccid_with_check_digit(f"8947995{i:011d}")

    with (directory / "subscribers.csv").open("w") as fh:
        fh.write("subscriber_id,brand_id,name,email,language,pin_hash,created_at\n")
        for i in range(lines):
            fh.write(f'B{i},bench-no,Kunde {i},k{i}@bench.example,nb,"{pin_hash}",'
                     "2020-01-01T00:00:00+01:00\n")  # fmt: skip
    with (directory / "sims.csv").open("w") as fh:
        fh.write("iccid,imsi,form,state,brand_id\n")
        for i in range(lines + changes):
            form = "esim" if i % 3 else "physical"
            state = "active" if i < lines else "retired"
            fh.write(f"{iccid(i)},24299{i:010d},{form},{state},bench-no\n")
    with (directory / "lines.csv").open("w") as fh:
        fh.write("msisdn,subscriber_id,brand_id,status,iccid,created_at\n")
        for i in range(lines):
            status = "suspended" if i % 50 == 0 else "active"
            fh.write(f"+47{40000000 + i},B{i},bench-no,{status},{iccid(i)},"
                     "2020-01-01T00:00:00+01:00\n")  # fmt: skip
    with (directory / "sim_changes.csv").open("w") as fh:
        fh.write("msisdn,changed_at,old_iccid,new_iccid\n")
        for j in range(changes):
            i = (j * 7919) % lines  # spread over the lines
            day = 1 + j % 28
            fh.write(f"+47{40000000 + i},2024-03-{day:02d}T10:{j % 60:02d}:00+01:00,"
                     f"{iccid(lines + j)},{iccid(i)}\n")  # fmt: skip


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
        t0 = time.perf_counter()
        report = import_file(ctx, kind, Path(directory) / f"{kind}.csv")
        seconds = time.perf_counter() - t0
        out["kinds"][kind] = {
            "rows": report.read,
            "written": report.written,
            "bad": report.bad,
            "seconds": round(seconds, 2),
            "rows_per_s": round(report.read / seconds),
        }
    out["total_seconds"] = round(time.perf_counter() - t_all, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


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
    p.add_argument("--pg-url", default=os.environ.get(
        "RESIM_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    args = p.parse_args(argv)
    changes = args.changes if args.changes is not None else int(args.lines * 0.3)
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="resim-import-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        generate(work, args.lines, changes)
        print(f"generated {args.lines} lines, {changes} SIM changes in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        for backend in backends:
            url, name = _database(backend, args.pg_url, work)
            env = {**os.environ, "RESIM_SECRET_KEYS": "", "RESIM_LOG_LEVEL": "WARNING"}
            try:
                run = subprocess.run(
                    [sys.executable, "-c",
                     "import sys; from resim.bench.importbench import child; child(*sys.argv[1:])",
                     url, str(work)],
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
                      f"{k['rows_per_s']:>8} rows/s  bad {k['bad']}")  # fmt: skip
            print(f"  total        {result['total_seconds']:.1f} s, "
                  f"peak memory {result['peak_rss_mb']} MB")  # fmt: skip
