"""One measured run on one back end: set up, start, drive, stop, read back, tear down."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from resim.adapters.crypto import SecretBox
from resim.adapters.db.engine import create_admin_engine
from resim.bench.analysis import DbReport, read_db_report
from resim.bench.database import PROFILE_TYPE, fresh_database, migrate_and_seed
from resim.bench.driver import Driver, DriverResult
from resim.bench.probe import CpuProbe, CpuUse, cpu_between, pids_named
from resim.bench.profiling import Profilers
from resim.bench.sinks import MailSink, SmsSink
from resim.bench.stack import Stack, free_port, role_env
from resim.entrypoints.event_loop import new_event_loop
from resim.settings import Settings

ES2_CALLS_PER_REPLACEMENT = 2  # downloadOrder + confirmOrder


@dataclass(frozen=True)
class Options:
    backend: str  # "sqlite" or "postgresql"
    count: int
    concurrency: int  # jobs in flight per worker process
    workers: int  # worker processes
    latency_ms: float
    create_concurrency: int  # POST /v1/requests in flight from the BSS
    pg_admin_url: str
    timeout: float
    keep: bool = False
    log_level: str = "INFO"
    profile_dir: Path | None = None
    profile_wall: bool = False
    cprofile_dir: Path | None = None

    @property
    def limit(self) -> float:
        """Replacements/s the emulator's latency and the worker's concurrency allow."""
        per = ES2_CALLS_PER_REPLACEMENT * self.latency_ms / 1000.0
        return self.workers * self.concurrency / per if per else float("inf")


@dataclass
class Outcome:
    options: Options
    driver: DriverResult
    db: DbReport
    cpu: CpuUse
    counters: dict[str, dict[str, object]]
    offset: float  # wall clock - monotonic clock, for DB times
    workdir: Path
    profiles: dict[str, Path] = field(default_factory=dict)
    cprofiles: dict[str, Path] = field(default_factory=dict)
    load_before: str = ""
    http_5xx: dict[str, int] = field(default_factory=dict)  # "POST /v1/requests" -> count
    texts: int = 0  # stored by the SMS sink

    @property
    def lost(self) -> int:
        """Replacements that did not complete (the run exits non-zero for any)."""
        return self.options.count - self.finished

    @property
    def finished(self) -> int:
        return sum(1 for tl in self.driver.timelines if tl.finished and tl.error is None)

    @property
    def elapsed(self) -> float:
        return self.driver.ended - self.driver.started

    @property
    def throughput(self) -> float:
        return self.finished / self.elapsed if self.elapsed > 0 else 0.0


def _wait_for_workers(stack: Stack, workdir: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    logs = [workdir / f"worker{n + 1}.log" for n in range(len(stack.pids("worker")))]
    while time.monotonic() < deadline:
        stack.check_alive()
        if all(p.exists() and b"worker.started" in p.read_bytes() for p in logs):
            return
        time.sleep(0.05)
    raise RuntimeError("the worker(s) did not start")


def run_backend(opts: Options) -> Outcome:
    workdir = Path(tempfile.mkdtemp(prefix=f"resim-bench-{opts.backend}-"))
    try:
        with fresh_database(opts.backend, workdir, opts.pg_admin_url) as url:
            return _run(opts, workdir, url)
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(opts: Options, workdir: Path, url: str) -> Outcome:
    key = SecretBox.generate_key()
    base = Settings(
        data_dir=workdir,
        database_url=url,
        secret_keys=SecretStr(key),
        worker_concurrency=opts.concurrency,
    )
    seeded = migrate_and_seed(base, opts.count)
    api_port, emulator_port = free_port(), free_port()
    driver = Driver(
        api_url=f"http://127.0.0.1:{api_port}",
        emulator_url=f"http://127.0.0.1:{emulator_port}",
        msisdns=[line.msisdn for line in seeded.lines],
        create_concurrency=opts.create_concurrency,
        api_key=seeded.api_key,
    )
    sink = MailSink(workdir / "mail", driver.on_mail)
    sink.start()
    sms = SmsSink(workdir / "sms")
    sms.start()
    env = role_env(
        {
            "RESIM_DATA_DIR": str(workdir),
            "RESIM_DATABASE_URL": url,
            "RESIM_SECRET_KEYS": key,
            "RESIM_SMDP_CALLBACK_TOKEN": SecretBox.generate_key(),
            "RESIM_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "RESIM_SMDP_URL": f"http://127.0.0.1:{emulator_port}",
            "RESIM_SMTP_HOST": "127.0.0.1",
            "RESIM_SMTP_PORT": str(sink.port),
            "RESIM_SMS_GATEWAY_URL": sms.url,
            "RESIM_WORKER_CONCURRENCY": str(opts.concurrency),
            "RESIM_LOG_FORMAT": "json",
            "RESIM_LOG_LEVEL": opts.log_level,
        }
    )
    stack = Stack(
        workdir=workdir,
        env=env,
        api_port=api_port,
        emulator_port=emulator_port,
        workers=opts.workers,
        concurrency=opts.concurrency,
        latency_ms=opts.latency_ms,
        cprofile_dir=opts.cprofile_dir / opts.backend if opts.cprofile_dir else None,
    )
    groups = {
        "api": lambda: stack.pids("api"),
        "worker": lambda: stack.pids("worker"),
        "emulator": lambda: stack.pids("emulator"),
        "bench (driver, mail + SMS sinks)": lambda: [_self_pid()],
    }
    pg_admin: sa.Engine | None = None
    if opts.backend == "postgresql":
        # Only the server processes of this run's database count as resim's: other
        # databases on the same server (another bench, a test suite) are not this run.
        pg_admin = sa.create_engine(opts.pg_admin_url, poolclass=sa.pool.NullPool)
        database = sa.make_url(url).database or ""
        engine = pg_admin
        groups["postgresql"] = lambda: pg_backend_pids(engine, database)
        groups["pg-shared processes (all databases)"] = lambda: pg_shared_pids(engine)
    probe = CpuProbe(groups)
    http_5xx: dict[str, int] = {}
    profilers = (
        Profilers(opts.profile_dir / opts.backend, wall=opts.profile_wall)
        if opts.profile_dir
        else None
    )
    try:
        stack.start()
        httpx.post(
            f"{stack.emulator_url}/emulator/stock",
            json={"profile_type": PROFILE_TYPE, "iccids": seeded.stock_iccids},
            timeout=60,
        ).raise_for_status()
        _wait_for_workers(stack, workdir)
        if profilers is not None:
            for role in stack.roles:
                profilers.start(role.name, role.process.pid)
            profilers.start("bench", os.getpid())  # driver and sinks
        load_before = _loadavg()
        offset = time.time() - time.monotonic()
        before = probe.snapshot()
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            result = runner.run(driver.run(timeout=opts.timeout))
        after = probe.snapshot()
        stack.check_alive()
        http_5xx = server_errors(stack.api_url)
    finally:
        profiles = {p.stem: p for p in profilers.stop()} if profilers is not None else {}
        stack.stop()
        sink.stop()
        sms.stop()
        if pg_admin is not None:
            pg_admin.dispose()
    engine = create_admin_engine(url)
    try:
        db = read_db_report(engine, until=dt.datetime.now(dt.UTC))
    finally:
        engine.dispose()
    return Outcome(
        options=opts,
        driver=result,
        db=db,
        cpu=cpu_between(before, after),
        counters=stack.stats,
        offset=offset,
        workdir=workdir,
        profiles=profiles,
        cprofiles=_cprofiles(opts),
        load_before=load_before,
        http_5xx=http_5xx,
        texts=sms.stored,
    )


def server_errors(api_url: str) -> dict[str, int]:
    """HTTP 5xx answers of the API so far, by method and route, from its /metrics
    (every caller: the BSS, customers, phones and the SM-DP+'s callbacks)."""
    text = httpx.get(f"{api_url}/metrics", timeout=30).text
    found: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != "resim_http_requests_total":
                continue
            if sample.labels.get("status", "").startswith("5") and sample.value:
                route = f"{sample.labels.get('method')} {sample.labels.get('route')}"
                found[route] = found.get(route, 0) + int(sample.value)
    return found


def _cprofiles(opts: Options) -> dict[str, Path]:
    if opts.cprofile_dir is None:
        return {}
    folder = opts.cprofile_dir / opts.backend
    return {p.stem: p for p in sorted(folder.glob("*.pstats"))}


def pg_backend_pids(admin: sa.Engine, database: str) -> list[int]:
    """PostgreSQL server processes serving connections to ``database``."""
    with admin.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database}
        )
        return [int(pid) for (pid,) in rows]


def pg_shared_pids(admin: sa.Engine) -> list[int]:
    """PostgreSQL's background processes (WAL writer, checkpointer, ...), shared by
    every database on the server; pids_named finds them when the server is local."""
    with admin.connect() as conn:
        rows = conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname IS NULL"))
        background = {int(pid) for (pid,) in rows}
    return [pid for pid in pids_named("postgres") if pid in background]


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _self_pid() -> int:
    return os.getpid()
