"""The crash test's harness: the system on loopback, a worker we can SIGKILL, a load.

In the test process: the database (migrated and seeded with the demo brands),
the SM-DP+ emulator (its :class:`SmdpCore` kept, so the test reads the call
log and the profile states) and a MailCapture, each in a thread. The resim API
(it receives the emulator's handleDownloadProgressInfo callbacks) is a
``resim serve`` process (:mod:`crash_api`), killed for a while during installs.
The worker is a separate process (``resim worker``) started, killed with
SIGKILL and restarted by :class:`Killer`. :class:`Customers` opens, verifies
and sometimes cancels replacements; :class:`Phones` installs every ready eSIM
through the emulator (as a phone scanning the QR code would).

The checks of the end state live in :mod:`tests.e2e.crash_checks`.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import sqlalchemy as sa
from crash_api import ApiProcess
from pydantic import SecretStr
from starlette.requests import ClientDisconnect

from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.mail.capture import MailCapture
from resim.adapters.sms.capture import SmsCapture
from resim.bootstrap import build_context, build_engine, load_secrets
from resim.demo.demo_data import DemoData, DemoLine
from resim.demo.demo_seed import seed_demo
from resim.domain.workflow import State
from resim.emulator.app import EmulatorConfig, build_emulator_app
from resim.emulator.core import SmdpCore
from resim.entrypoints.demo import free_port
from resim.entrypoints.serving import ServerThread
from resim.errors import ResimError
from resim.services.context import ServiceContext
from resim.services.replacement import cancel, queries, requests
from resim.services.risk import review
from resim.settings import Settings

SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
OTP = "246810"  # every one-time code (ctx.otp_generator); the mail still carries it
REASONS = ("lost", "stolen", "damaged", "device_change")
# A worker (or the API) takes ~4 s of CPU to start; on a loaded 2-core machine
# (load 12 seen) that is 15-20 s of wall time, so 30 s was too tight.
START_TIMEOUT_S = 90.0


class DroppedClients(logging.Filter):
    """Counts, and keeps out of the output, requests whose client was killed mid-way.

    The emulator reads a request's body after its injected latency; by then a
    SIGKILLed worker may have gone, and uvicorn logs the ClientDisconnect.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ClientDisconnect):
            self.count += 1
            return False
        return True


@dataclass
class Stack:
    settings: Settings
    ctx: ServiceContext
    engine: sa.Engine
    data: DemoData
    smdp: SmdpCore
    emulator: ServerThread
    api: ApiProcess
    mail: MailCapture
    worker_env: dict[str, str]
    log_dir: Path
    dropped_clients: DroppedClients
    sms: SmsCapture | None = None

    def stop(self) -> None:
        self.api.stop()
        self.emulator.stop()
        self.mail.stop()
        if self.sms is not None:
            self.sms.stop()
        self.engine.dispose()
        logging.getLogger("uvicorn.error").removeFilter(self.dropped_clients)


def start_stack(db_url: str, tmp_path: Path, *, lines_per_brand: int, seed: int) -> Stack:
    """Migrate and seed ``db_url``; start emulator, API and mail capture on loopback."""
    upgrade(db_url)
    mail = MailCapture(tmp_path / "mail")
    mail.start()
    sms = SmsCapture(tmp_path / "sms").start()
    api_port, smdp_port = free_port(), free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        secret_keys=SecretStr(SECRET_KEY),
        public_base_url=f"http://127.0.0.1:{api_port}",
        smdp_url=f"http://127.0.0.1:{smdp_port}",
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        sms_gateway_url=sms.url,
    )
    engine = build_engine(settings, pool_size=16)
    ctx = build_context(settings, engine=engine)
    ctx.otp_generator = lambda: OTP
    data = seed_demo(ctx, lines_per_brand=lines_per_brand)
    secrets = load_secrets(settings)
    smdp = SmdpCore(
        smdp_address=settings.smdp_address,
        smdp_id=settings.smdp_id,
        allowed_requesters=[settings.smdp_requester_id],
    )
    for iccids in data.stock.values():
        smdp.add_stock("default", iccids)
    # Slow enough that a kill often lands during an ES2+ call; a few busy
    # answers, HTTP 500s and held answers (executed, answered after the
    # client's timeout: the caller cannot know the outcome) force retries.
    emu_config = EmulatorConfig(
        smdp_address=settings.smdp_address,
        allowed_requesters=(settings.smdp_requester_id,),
        callback_url=settings.public_base_url,
        callback_token=secrets.callback_token,
        requester_id=settings.smdp_id,
        latency_ms=35,
        jitter_ms=25,
        error_rate=0.03,
        http5xx_rate=0.02,
        timeout_rate=0.01,
        timeout_hold_s=1.5,
        seed=seed,
        callback_attempts=5,
        callback_timeout_s=10,
    )
    emulator = ServerThread(build_emulator_app(smdp, emu_config), port=smdp_port).start()
    worker_env = {
        **os.environ,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_DATABASE_URL": db_url,
        "RESIM_SECRET_KEYS": SECRET_KEY,
        "RESIM_PUBLIC_BASE_URL": settings.public_base_url,
        "RESIM_SMDP_URL": settings.smdp_url,
        "RESIM_SMDP_REQUESTER_ID": settings.smdp_requester_id,
        "RESIM_SMDP_TIMEOUT_SECONDS": "1.0",
        "RESIM_SMTP_HOST": "127.0.0.1",
        "RESIM_SMTP_PORT": str(mail.port),
        "RESIM_SMS_GATEWAY_URL": sms.url,
        "RESIM_WORKER_CONCURRENCY": "16",
        "RESIM_WORKER_POLL_SECONDS": "0.05",
        "RESIM_JOB_LEASE_SECONDS": "3",
        "RESIM_JOB_BACKOFF_BASE_SECONDS": "0.05",
        "RESIM_JOB_BACKOFF_CAP_SECONDS": "1",
        "RESIM_LOG_FORMAT": "json",
        "RESIM_LOG_LEVEL": "INFO",
        # Lost install callbacks (the API is killed during installs): the worker
        # asks the emulator a few seconds after a request became ready.
        "RESIM_RECONCILE_AFTER_SECONDS": "3",
        "RESIM_RECONCILE_MAX_INTERVAL_SECONDS": "6",
        "RESIM_SMDP_STATUS_QUERY": "emulator",
        "RESIM_API_PORT": str(api_port),
    }
    log_dir = tmp_path / "worker-logs"
    log_dir.mkdir()
    # The API receives the emulator's callbacks; a process, so it can be SIGKILLed.
    api = ApiProcess(worker_env, api_port, log_dir)
    api.start()
    dropped = DroppedClients()
    logging.getLogger("uvicorn.error").addFilter(dropped)
    return Stack(
        settings, ctx, engine, data, smdp, emulator, api, mail, worker_env, log_dir, dropped, sms
    )


def worker_command() -> list[str]:
    """``resim worker`` from this interpreter's environment."""
    script = shutil.which("resim", path=str(Path(sys.executable).parent))
    if script:
        return [script, "worker"]
    return [sys.executable, "-c", "from resim.entrypoints.cli import main; main()", "worker"]


class WorkerProcess:
    """One incarnation of ``resim worker``; its log goes to its own file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            worker_command(), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def started(self) -> bool:
        return b'"worker.started"' in self.log_path.read_bytes()

    def wait_started(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.started():
                return True
            time.sleep(0.02)
        return False

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._log.close()
        return code


@dataclass
class KillStats:
    """Shared by the killers (under ``lock``)."""

    kills: int = 0
    kills_before_start: int = 0
    incarnations: int = 0
    crash_cancels: int = 0
    exit_codes: Counter[int | None] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def kills_while_running(self) -> int:
        return self.kills - self.kills_before_start


class Killer(threading.Thread):
    """One worker slot: start a worker, let it run a random while, SIGKILL it; again.

    Most kills land 0-1.6 s after the worker said it started (it is busy
    then: the load keeps jobs coming); one in eight lands during start-up.
    After each kill ``on_kill`` runs (the customers cancel some requests whose
    jobs the dead worker held). Several killers (slots) share ``stats``; each
    stops once ``min_until`` has passed and ``target_kills`` workers were
    killed after starting, or at ``stop_at``: a loaded machine starts Python
    slowly, and time alone would give few kills.
    """

    def __init__(
        self,
        stack: Stack,
        rng: random.Random,
        stats: KillStats,
        *,
        min_until: float,
        target_kills: int,
        stop_at: float,
        on_kill: Any,
    ) -> None:
        super().__init__(name="crash-killer", daemon=True)
        self.stack, self.rng, self.stats, self.on_kill = stack, rng, stats, on_kill
        self.min_until, self.target_kills, self.stop_at = min_until, target_kills, stop_at
        self.current: WorkerProcess | None = None
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def spawn(self) -> WorkerProcess:
        with self.stats.lock:
            self.stats.incarnations += 1
            path = self.stack.log_dir / f"worker-{self.stats.incarnations:03d}.log"
        self.current = WorkerProcess(self.stack.worker_env, path)
        return self.current

    def halt(self) -> None:
        self._halt.set()

    def _done(self) -> bool:
        now = time.monotonic()
        return now >= self.stop_at or (
            now >= self.min_until and self.stats.kills_while_running >= self.target_kills
        )

    def run(self) -> None:
        try:
            while not self._halt.is_set() and not self._done():
                worker = self.spawn()
                early = self.rng.random() < 0.125
                if early:
                    self._halt.wait(self.rng.uniform(0.2, 1.2))
                else:
                    if not worker.wait_started(START_TIMEOUT_S):
                        raise RuntimeError(f"worker did not start; see {worker.log_path}")
                    self._halt.wait(self.rng.uniform(0.0, 1.6))
                before_start = not worker.started()
                worker.signal(signal.SIGKILL)
                code = worker.wait(10)
                self.current = None
                with self.stats.lock:
                    self.stats.exit_codes[code] += 1
                    self.stats.kills += 1
                    self.stats.kills_before_start += before_start
                self.on_kill()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            if self.current is not None:
                self.current.signal(signal.SIGKILL)
                self.current.wait(10)
                self.current = None


@dataclass
class Plan:
    line: DemoLine
    reason: str
    action: str  # "install" | "cancel_verified" | "cancel_ready"
    request_id: str | None = None
    outcome: str | None = None


class Customers(threading.Thread):
    """Open and verify one replacement per line, spread over ``spread_s`` seconds."""

    def __init__(self, stack: Stack, plans: list[Plan], *, spread_s: float) -> None:
        super().__init__(name="crash-customers", daemon=True)
        self.stack, self.plans, self.spread_s = stack, plans, spread_s
        self.error: BaseException | None = None
        self.cancelled_from: Counter[str] = Counter()
        self._lock = threading.Lock()

    def run(self) -> None:
        ctx = self.stack.ctx
        start = time.monotonic()
        try:
            for n, plan in enumerate(self.plans):
                due = start + self.spread_s * n / len(self.plans)
                time.sleep(max(0.0, due - time.monotonic()))
                opened = requests.open_request(
                    ctx, msisdn=plan.line.msisdn, reason=plan.reason, actor="crash-bss"
                )
                plan.request_id = opened.id
                state = requests.submit_verification(
                    ctx, opened.id, otp=OTP, pin=plan.line.pin, actor="customer"
                )
                if state == State.IN_REVIEW:
                    review.review(ctx, opened.id, reviewer="crash-reviewer", approve_it=True)
                if plan.action == "cancel_verified":
                    self.cancel(opened.id, "customer changed their mind")
        except BaseException as exc:
            self.error = exc

    def to_open(self) -> int:
        """Plans whose request is not opened yet."""
        return sum(plan.request_id is None for plan in self.plans)

    def cancel(self, request_id: str, note: str) -> bool:
        """Cancel if still cancellable; count the state it was cancelled from."""
        ctx = self.stack.ctx
        was = queries.get_request_view(ctx, request_id)["state"]
        try:
            cancel.cancel(ctx, request_id, actor="customer", note=note)
        except ResimError:
            return False  # it moved on meanwhile (installed, or already closed)
        with self._lock:
            self.cancelled_from[was] += 1
        return True

    def cancel_after_crash(self, rng: random.Random, *, max_count: int = 2) -> int:
        """Cancel requests the killed worker was provisioning (their jobs are orphaned)."""
        t, j = orm.replacement_request, orm.job
        with self.stack.engine.connect() as conn:
            ids = list(
                conn.scalars(
                    sa.select(t.c.id)
                    .join(j, j.c.request_id == t.c.id)
                    .where(
                        t.c.state.in_([State.APPROVED, State.PROVISIONING]),
                        j.c.kind == "esim.provision",
                        j.c.state == "running",
                    )
                )
            )
        done = 0
        for rid in rng.sample(ids, min(max_count, len(ids))):
            done += self.cancel(rid, "cancelled while the worker was down")
        return done


class Phones(threading.Thread):
    """Install each ready eSIM through the emulator; cancel those planned to be cancelled."""

    def __init__(self, stack: Stack, plans: list[Plan], customers: Customers) -> None:
        super().__init__(name="crash-phones", daemon=True)
        self.stack, self.customers = stack, customers
        self.by_id = plans
        self.error: BaseException | None = None
        self.installed = 0
        self.refused: Counter[str] = Counter()
        self.undelivered = 0
        self._seen: set[str] = set()
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()

    def run(self) -> None:
        t = orm.replacement_request
        actions = {}
        try:
            with httpx.Client(base_url=self.stack.emulator.url, timeout=60) as http:
                while not self._halt.is_set():
                    actions.update({p.request_id: p.action for p in self.by_id if p.request_id})
                    with self.stack.engine.connect() as conn:
                        ready = list(
                            conn.scalars(
                                sa.select(t.c.id).where(
                                    t.c.state == State.READY, t.c.installed_at.is_(None)
                                )
                            )
                        )
                    for rid in ready:
                        if rid in self._seen or self._halt.is_set():
                            continue
                        self._seen.add(rid)
                        if actions.get(rid) == "cancel_ready":
                            self.customers.cancel(rid, "no longer needed")
                        else:
                            self.install(http, rid)
                    self._halt.wait(0.1)
        except BaseException as exc:
            self.error = exc

    def install(self, http: httpx.Client, request_id: str) -> None:
        try:
            code = queries.activation_view(self.stack.ctx, request_id, reader="test", via="test")[
                "qr_payload"
            ]
        except ResimError:
            return  # cancelled between the query and now
        answer = http.post("/emulator/phone/install", json={"activation_code": code})
        if answer.status_code != 200:
            self.refused[answer.json().get("refused", str(answer.status_code))] += 1
            return
        self.installed += 1
        self.undelivered += sum(not c["delivered"] for c in answer.json()["callbacks"])


def make_plans(data: DemoData, rng: random.Random) -> list[Plan]:
    plans = []
    for line in data.lines:
        draw = rng.random()
        action = "cancel_verified" if draw < 0.05 else "cancel_ready" if draw < 0.10 else "install"
        plans.append(Plan(line, rng.choice(REASONS), action))
    rng.shuffle(plans)
    return plans


def open_work(engine: sa.Engine) -> tuple[int, int]:
    """(open requests, jobs due or running): both 0 when the system has settled."""
    t, j = orm.replacement_request, orm.job
    with engine.connect() as conn:
        open_requests = conn.scalar(
            sa.select(sa.func.count()).select_from(t).where(t.c.open_line_id.is_not(None))
        )
        jobs = conn.scalar(
            sa.select(sa.func.count())
            .select_from(j)
            .where(j.c.state.in_(["pending", "running"]), ~j.c.kind.like("request.expire_%"))
        )
    return int(open_requests or 0), int(jobs or 0)
