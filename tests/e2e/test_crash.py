"""The crash test: hundreds of replacements while the worker and the API are SIGKILLed.

Invariant 4 of DESIGN.md ("a worker killed at any point resumes without
duplicating or losing an external effect") proven against the real pieces: two
``resim worker`` subprocesses side by side, each SIGKILLed at random moments
and restarted, talking ES2+ over HTTP to the SM-DP+ emulator (with latency and
injected faults), SMTP to a MailCapture and SQL to the built-in core network,
on SQLite and on PostgreSQL. The customers (open, verify, cancel) and the phones (install
through the emulator, whose callbacks reach the API) run in this process and
are never killed. The API (``resim serve``) is SIGKILLed for 10 s while phones
install, twice when the run still has installs after the first outage (issue 13
finding 6): the emulator gives up on the callbacks it could not deliver, and the
reconcile job (asking the emulator, as RESIM_SMDP_STATUS_QUERY=emulator allows)
must complete those requests.

At the end, after one last worker ran undisturbed until nothing was left to do:
every request is terminal; every line has exactly one bound SIM and the core
network agrees; no profile is left reserved or allocated without an owner;
every ES2+ call had its attempt row first and no request was ordered twice;
every profile installed at the SM-DP+ belongs to a completed request;
every mail job reached the SMTP server. SMTP has no idempotency key, so a kill
between the server's "250" and the worker's commit makes the next worker send
the message again: such re-sends carry the job's Message-ID (a receiver drops
the duplicate) and are counted in the summary, not hidden.

Knobs (environment): RESIM_CRASH_LINES_PER_BRAND (60: 240 replacements),
RESIM_CRASH_SECONDS (the kill phase lasts at least this long, 60, and
then until 20 kills, at most twice as long), RESIM_CRASH_SEED (random).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from crash_api import ApiKiller
from crash_checks import (
    Report,
    check_installed,
    check_jobs,
    check_lines,
    check_mail,
    check_orders,
    check_requests,
    check_stock,
    worker_log_counts,
)
from crash_support import (
    START_TIMEOUT_S,
    Customers,
    Killer,
    KillStats,
    Phones,
    Stack,
    make_plans,
    open_work,
    start_stack,
)

from resim.adapters.db import orm
from resim.domain.workflow import State

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LINES_PER_BRAND = int(os.environ.get("RESIM_CRASH_LINES_PER_BRAND", "60"))
KILL_SECONDS = float(os.environ.get("RESIM_CRASH_SECONDS", "60"))
SETTLE_SECONDS = 120.0
WORKER_SLOTS = 2  # workers killed and restarted side by side (claims must not collide)
TARGET_KILLS = 20  # the kill phase runs on (up to 2 x) until this many
MIN_KILLS = 10  # fewer kills of a running worker fails the test: it proved too little
API_OUTAGES = 2  # the API is SIGKILLed this often while phones install ...
API_OUTAGE_SECONDS = 10.0  # ... and comes back after this long (issue 13 finding 6)


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("RESIM_CRASH_SEED") or random.randrange(1_000_000))
    print(f"\ncrash test seed {value} (RESIM_CRASH_SEED={value} repeats the plan)")
    return value


@pytest.fixture
def stack(db_url: str, tmp_path: Path, seed: int) -> Iterator[Stack]:
    started = start_stack(db_url, tmp_path, lines_per_brand=LINES_PER_BRAND, seed=seed)
    yield started
    started.stop()


@pytest.mark.timeout(600)
def test_killed_workers_lose_and_duplicate_nothing(stack: Stack, seed: int) -> None:
    rng = random.Random(seed)
    plans = make_plans(stack.data, rng)
    t0 = time.monotonic()
    customers = Customers(stack, plans, spread_s=KILL_SECONDS * 0.7)
    stats = KillStats()
    killers = [
        Killer(
            stack,
            random.Random(seed + slot),
            stats,
            min_until=t0 + KILL_SECONDS,
            target_kills=TARGET_KILLS,
            stop_at=t0 + KILL_SECONDS * 2,
            on_kill=lambda: _cancel_after_crash(stats, customers, rng),
        )
        for slot in range(1, WORKER_SLOTS + 1)
    ]
    phones = Phones(stack, plans, customers)
    api_killer = ApiKiller(
        stack.api,
        # An outage starts once phones have installed a few profiles while more
        # are surely coming: customers are still opening requests, or three are
        # on their way. (It used to wait for ten on their way at once, then three;
        # since issue 16 made the worker faster, CI runs kept that backlog under
        # the mark for the whole kill phase and never started an outage. The
        # outage lasts until a callback is really lost, asserted below.)
        busy=lambda: (
            phones.installed >= 5 and (customers.to_open() > 0 or installs_coming(stack) >= 3)
        ),
        outages=API_OUTAGES,
        outage_s=API_OUTAGE_SECONDS,
        give_up_at=t0 + KILL_SECONDS * 2,
        lost=lambda: phones.undelivered,
    )
    final = None
    try:
        for thread in (customers, *killers, phones, api_killer):
            thread.start()
        customers.join(KILL_SECONDS * 3)
        for killer in killers:
            killer.join(KILL_SECONDS * 3)
            assert killer.error is None, repr(killer.error)
        assert customers.error is None, repr(customers.error)
        api_killer.join(KILL_SECONDS * 3)
        assert api_killer.error is None, repr(api_killer.error)
        kill_phase = time.monotonic() - t0

        final = killers[0].spawn()  # the last worker runs undisturbed until all settles
        assert final.wait_started(START_TIMEOUT_S), (
            f"final worker did not start; see {final.log_path}"
        )
        deadline = time.monotonic() + SETTLE_SECONDS
        while (work := open_work(stack.engine)) != (0, 0) and time.monotonic() < deadline:
            assert phones.error is None, repr(phones.error)
            time.sleep(0.25)
        settle = time.monotonic() - t0 - kill_phase
        final.signal(signal.SIGTERM)
        exit_code = final.wait(30)
        final = None
    finally:
        phones.halt()
        api_killer.halt()
        for killer in killers:
            killer.halt()
        if final is not None:
            final.signal(signal.SIGKILL)
            final.wait(10)
    phones.join(30)
    assert phones.error is None, repr(phones.error)

    report = Report()
    checks = (check_requests, check_lines, check_stock, check_installed, check_orders)
    for check in (*checks, check_mail, check_jobs):
        check(stack, report)
    logs = worker_log_counts(stack.log_dir)
    summary = {
        "seed": seed,
        "replacements": len(plans),
        "kill_phase_s": round(kill_phase, 1),
        "settle_s": round(settle, 1),
        "open_work_at_end (requests, jobs)": work,
        "worker_slots": WORKER_SLOTS,
        "kills": stats.kills,
        "kills_during_startup": stats.kills_before_start,
        "worker_incarnations": stats.incarnations,
        "kill_exit_codes": dict(stats.exit_codes),
        "final_worker_exit_code": exit_code,
        "cancelled_from": dict(customers.cancelled_from),
        "crash_cancels": stats.crash_cancels,
        "phone_installs": phones.installed,
        "phone_refusals": dict(phones.refused),
        "callbacks_undelivered": phones.undelivered,
        "api_outages_s": api_killer.down_s,
        "es2_requests_cut_off_by_kills": stack.dropped_clients.count,
        "worker_log_events": {k: v for k, v in logs.items() if k.startswith(("job.", "worker."))},
        **report.facts,
    }
    print("\ncrash test summary")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    for problem in report.problems[:50]:
        print(f"  PROBLEM {problem}")

    assert report.problems == [], f"{len(report.problems)} problems, first: {report.problems[:5]}"
    assert stats.kills_while_running >= MIN_KILLS, f"only {stats.kills_while_running} kills"
    assert exit_code == 0, "the final worker did not stop cleanly on SIGTERM"
    # The API outages lost callbacks for good (else this proved nothing about them);
    # check_installed found every installed profile's request completed all the same.
    # The second outage is best effort: when the first had to last long to lose a
    # callback, the run may have no installs left to interrupt.
    assert 1 <= len(api_killer.down_s) <= API_OUTAGES, (
        f"API outages {api_killer.down_s}; phones installed {phones.installed}, "
        f"kill phase {kill_phase:.0f} s, customers left to open {customers.to_open()}"
    )
    assert phones.undelivered > 0, "no install callback was lost during the API outages"
    assert phones.refused.total() == 0, dict(phones.refused)


def installs_coming(stack: Stack) -> int:
    """Requests the phones will install within seconds: approved, provisioning, or ready."""
    t = orm.replacement_request
    with stack.engine.connect() as conn:
        return int(
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(t)
                .where(
                    sa.or_(
                        t.c.state.in_([State.APPROVED, State.PROVISIONING]),
                        sa.and_(t.c.state == State.READY, t.c.installed_at.is_(None)),
                    )
                )
            )
            or 0
        )


def _cancel_after_crash(stats: KillStats, customers: Customers, rng: random.Random) -> None:
    with stats.lock:  # one killer at a time: they share ``rng``
        stats.crash_cancels += customers.cancel_after_crash(rng)
