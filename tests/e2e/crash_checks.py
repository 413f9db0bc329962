"""End-state checks of the crash test. Each returns plain-text problems (empty: fine).

They read resim's database, the built-in core network, the emulator's call
log and profile states, and the captured mailbox, and compare them with each
other, so a problem names what disagrees with what.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from crash_support import Stack

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.db import orm
from resim.domain.model import LineStatus, SimForm, SimState
from resim.domain.workflow import TERMINAL_STATES, State
from resim.emulator.model import ProfileState


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def _requests(engine: sa.Engine) -> list[sa.Row[Any]]:
    # Every column but the MatchingID (encrypted: these checks need no keys).
    t = orm.replacement_request
    with engine.connect() as conn:
        return list(conn.execute(sa.select(*(c for c in t.c if c.name != "matching_id"))))


def check_requests(stack: Stack, report: Report) -> None:
    rows = _requests(stack.engine)
    report.facts["requests"] = len(rows)
    report.facts["states"] = dict(Counter(State(r.state).value for r in rows))
    for r in rows:
        if State(r.state) not in TERMINAL_STATES:
            report.add(f"request {r.id} ({r.reason}) is still {State(r.state).value}")


def check_lines(stack: Stack, report: Report) -> None:
    """Exactly one SIM bound per line, and the core network agrees with resim."""
    core = BuiltinCoreNetwork(stack.engine)
    with stack.engine.connect() as conn:
        lines = list(conn.execute(sa.select(orm.line)))
        sims = {s.iccid: s for s in conn.execute(sa.select(orm.sim))}
        changes = Counter(
            conn.scalars(
                sa.select(orm.sim_change.c.request_id).where(
                    orm.sim_change.c.request_id.is_not(None)
                )
            )
        )
        # Issue 12: an open loss report keeps its SIM suspended whatever became of
        # the request that opened it (a cancel or an expiry never lifts it).
        held = {
            (r.open_line_id, r.iccid)
            for r in conn.execute(
                sa.select(orm.loss_report.c.open_line_id, orm.loss_report.c.iccid).where(
                    orm.loss_report.c.open_line_id.is_not(None)
                )
            )
        }
    by_line = {r.line_id: r for r in _requests(stack.engine)}
    bound: dict[str, list[Any]] = defaultdict(list)
    for s in sims.values():
        if s.state in (SimState.ACTIVE, SimState.SUSPENDED):
            bound[s.line_id].append(s)
    for line in lines:
        on_line = bound.get(line.id, [])
        if not on_line and line.awaiting_sim:
            continue  # a number without a SIM yet (issue 15.2): reserved or ported in
        if len(on_line) != 1:
            report.add(f"line {line.msisdn} has {len(on_line)} active/suspended SIMs")
            continue
        sim = on_line[0]
        req = by_line.get(line.id)
        state = State(req.state) if req is not None else None
        if req is not None:
            want = req.new_iccid if state == State.COMPLETED else req.old_iccid
            if sim.iccid != want:
                report.add(f"line {line.msisdn}: bound SIM {sim.iccid}, expected {want} ({state})")
            if changes[req.id] != (1 if state == State.COMPLETED else 0):
                report.add(f"request {req.id} ({state}) has {changes[req.id]} SIM change records")
            if state == State.COMPLETED and req.old_iccid:
                old = sims[req.old_iccid]
                sub = core.subscriber(imsi=old.imsi)
                if old.state != SimState.RETIRED or sub is None or not sub.retired or sub.msisdn:
                    report.add(
                        f"line {line.msisdn}: old SIM {old.iccid} not retired in resim and core"
                    )
        suspended_ok = (
            req is not None
            and state in (State.FAILED, State.EXPIRED, State.REJECTED)
            and req.reason in ("lost", "stolen")
        ) or (req is None and line.status == LineStatus.SUSPENDED)  # imported that way
        suspended_ok = suspended_ok or (line.id, sim.iccid) in held
        if sim.state == SimState.SUSPENDED and not suspended_ok:
            report.add(
                f"line {line.msisdn}: SIM {sim.iccid} left suspended "
                f"({state}, {req and req.reason})"
            )
        if core.imsi_of(msisdn=line.msisdn) != sim.imsi:
            report.add(
                f"line {line.msisdn}: core has {core.imsi_of(msisdn=line.msisdn)}, resim {sim.imsi}"
            )
        elif core.is_enabled(imsi=sim.imsi) != (sim.state == SimState.ACTIVE):
            report.add(
                f"line {line.msisdn}: core enabled={sim.state != SimState.ACTIVE}, "
                f"resim {sim.state}"
            )


# Retired in resim: withdrawn as unusable, or downloaded before the cancel won.
BURNED_OK = {
    ProfileState.UNAVAILABLE,
    ProfileState.DOWNLOADED,
    ProfileState.INSTALLED,
    ProfileState.ERROR,
}


def check_stock(stack: Stack, report: Report) -> None:
    """No profile is left reserved, and resim's stock agrees with the SM-DP+'s.

    The demo's base is imported: its lines' current eSIMs were never ordered
    through resim and are unknown to the emulator, and its blank physical cards
    are no profiles at all; neither is compared."""
    profiles = {p.iccid: p for p in stack.smdp.profiles()}
    with stack.engine.connect() as conn:
        sims = {
            s.iccid: s
            for s in conn.execute(
                sa.select(orm.sim).where(
                    orm.sim.c.profile_type.is_not(None), orm.sim.c.form == SimForm.ESIM
                )
            )
        }
    owner = {r.new_iccid: r for r in _requests(stack.engine) if r.new_iccid}
    report.facts["emulator_profiles"] = dict(Counter(p.state.value for p in profiles.values()))
    for iccid, sim in sims.items():
        if iccid not in profiles:
            if iccid in owner or sim.state in (SimState.RESERVED, SimState.IN_STOCK):
                report.add(f"SIM {iccid} ({sim.state}) is not a profile at the SM-DP+")
            continue
        emu = profiles[iccid].state
        req = owner.get(iccid)
        if sim.state == SimState.RESERVED:
            report.add(f"SIM {iccid} left reserved (request {req and req.id}, SM-DP+ {emu})")
        elif sim.state == SimState.IN_STOCK and emu is not ProfileState.AVAILABLE:
            report.add(f"SIM {iccid} in stock in resim but {emu} at the SM-DP+")
        elif sim.state == SimState.ACTIVE and emu is not ProfileState.INSTALLED:
            report.add(f"SIM {iccid} active in resim but {emu} at the SM-DP+")
        elif sim.state == SimState.RETIRED and emu not in BURNED_OK:
            report.add(f"SIM {iccid} burned in resim but {emu} at the SM-DP+")
    for iccid, p in profiles.items():
        if p.state is not ProfileState.AVAILABLE and iccid not in owner:
            report.add(f"profile {iccid} is {p.state} at the SM-DP+ but no request has it")


def check_installed(stack: Stack, report: Report) -> None:
    """Every profile installed at the SM-DP+ ended completed, its callback lost or not
    (issue 13 finding 6: the API was killed while phones installed)."""
    owner = {r.new_iccid: r for r in _requests(stack.engine) if r.new_iccid}
    installed = [p for p in stack.smdp.profiles() if p.state is ProfileState.INSTALLED]
    for p in installed:
        req = owner.get(p.iccid)
        if req is None or State(req.state) != State.COMPLETED:
            state = State(req.state).value if req is not None else "missing"
            report.add(f"profile {p.iccid} is installed at the SM-DP+ but its request is {state}")
    a = orm.audit_event
    with stack.engine.connect() as conn:
        reconciled = conn.scalar(
            sa.select(sa.func.count()).select_from(a).where(a.c.action == "esim.install_reconciled")
        )
    report.facts["profiles_installed"] = len(installed)
    report.facts["installs_reconciled_not_by_callback"] = int(reconciled or 0)


def check_orders(stack: Stack, report: Report) -> None:
    """Every ES2+ call had an attempt row first; no request ordered twice."""
    with stack.engine.connect() as conn:
        attempts = {c.id: c for c in conn.execute(sa.select(orm.external_call))}
    orders: Counter[str] = Counter()
    confirms: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for call in stack.smdp.calls():
        outcomes[f"{call.function}:{call.outcome}"] += 1
        row = attempts.get(call.call_id)
        if row is None:
            report.add(f"{call.function} {call.call_id} reached the SM-DP+ without an attempt row")
            continue
        if call.outcome == "Executed-Success" and call.function == "downloadOrder":
            orders[row.request_id] += 1
        if call.outcome == "Executed-Success" and call.function == "confirmOrder":
            confirms[row.request_id] += 1
    report.facts["es2_calls"] = dict(sorted(outcomes.items()))
    for r in _requests(stack.engine):
        expected = 1 if r.smdp_step in ("ordered", "confirmed") else orders[r.id]
        if orders[r.id] > 1 or orders[r.id] != expected:
            report.add(f"request {r.id}: {orders[r.id]} downloadOrders (step {r.smdp_step})")
        if confirms[r.id] > 1:
            report.add(f"request {r.id}: {confirms[r.id]} confirmOrders")
        if State(r.state) == State.COMPLETED and (orders[r.id], confirms[r.id]) != (1, 1):
            report.add(
                f"completed request {r.id}: {orders[r.id]} orders, {confirms[r.id]} confirms"
            )
    interrupted = Counter(c.target for c in attempts.values() if c.state == "started")
    report.facts["calls_interrupted_by_kills"] = dict(interrupted)


EXPECTED_MAIL = {
    State.COMPLETED: {
        "replacement_requested",
        "one_time_code",
        "esim_ready",
        "replacement_completed",
    },
    State.CANCELLED: {"replacement_requested", "one_time_code", "replacement_cancelled"},
}


def check_mail(stack: Stack, report: Report) -> None:
    """Every mail job sent, none lost; a re-send carries the job's Message-ID."""
    received = Counter(m.message_id for m in stack.mail.messages())
    j = orm.job
    with stack.engine.connect() as conn:
        jobs = list(
            conn.execute(
                sa.select(j.c.id, j.c.state, j.c.request_id, j.c.payload).where(
                    j.c.kind == "mail.send"
                )
            )
        )
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    resends = 0
    for job in jobs:
        count = received.pop(f"{job.id}@resim", 0)
        kinds[job.request_id][job.payload["kind"]] += 1
        if job.state != "done":
            report.add(f"mail job {job.id} ({job.payload['kind']}) is {job.state}")
        if count == 0:
            report.add(f"mail job {job.id} ({job.payload['kind']}) never reached the SMTP server")
        resends += max(0, count - 1)
    for message_id, count in received.items():
        report.add(f"{count} message(s) with Message-ID {message_id} that no mail job sent")
    for r in _requests(stack.engine):
        got = kinds[r.id]
        if any(n > 1 for n in got.values()):
            report.add(f"request {r.id}: a message enqueued twice: {dict(got)}")
        missing = EXPECTED_MAIL.get(State(r.state), set()) - set(got)
        if missing:
            report.add(f"request {r.id} ({State(r.state).value}): no {sorted(missing)} mail")
    report.facts["mail_jobs"] = len(jobs)
    report.facts["mail_raw_resends_same_message_id"] = resends


def check_jobs(stack: Stack, report: Report) -> None:
    j = orm.job
    with stack.engine.connect() as conn:
        jobs = list(
            conn.execute(sa.select(j.c.id, j.c.kind, j.c.state, j.c.attempts, j.c.last_error))
        )
    report.facts["jobs"] = dict(Counter(f"{x.kind}:{x.state}" for x in jobs))
    report.facts["job_attempts_beyond_first"] = sum(max(0, x.attempts - 1) for x in jobs)
    for x in jobs:
        if x.state == "dead":
            report.add(f"job {x.id} ({x.kind}) is dead: {x.last_error}")
        elif x.state == "running" or (
            x.state == "pending" and not x.kind.startswith("request.expire_")
        ):
            report.add(f"job {x.id} ({x.kind}) left {x.state}")


def worker_log_counts(log_dir: Path) -> dict[str, int]:
    """Events in every worker incarnation's JSON log (job.retry, job.crashed, ...)."""
    counts: Counter[str] = Counter()
    for path in sorted(log_dir.glob("worker-*.log")):
        for raw in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(raw).get("event", "?")
            except ValueError:
                event = "non-json"
            counts[event] += 1
    return dict(counts)
