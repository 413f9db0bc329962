"""The world the stateful workflow test drives, and the invariants it checks.

``DatabaseFactory`` migrates one template database per test and hands each
Hypothesis example a fresh copy (SQLite: the file copied with the backup API;
PostgreSQL: ``CREATE DATABASE ... TEMPLATE``), so examples never share state
and no example pays for a migration.

``check_invariants`` is the DESIGN.md list, read from the database, the core
network fake and the request views after every step:

1. a line has at most one bound SIM, and the core network serves that SIM's
   IMSI for the line's number (in service exactly while the SIM is active);
2. at most one open request per line;
3. no request got past verification without ``verified_at`` and a risk
   outcome, and none went on after a "review" outcome without a reviewer who
   is not its creator;
5. replaying each request's audit events (the table ``AUDIT_STATE`` below)
   walks only edges of the transition table and ends in its current state;
6. no secret the test saw (one-time codes, "not me" tokens, activation codes,
   matching IDs) appears in an audit detail or a request view;

and the loss-report invariants (issue 12, ``resim.domain.loss``), read from
the ``loss_report`` table, the SIMs and the core network:

L1. a reported-lost SIM is never active again unless its report was lifted
    with strong verification (evidence of strength >= 2) or voided by the
    rejection of the very request whose verification opened it; an open
    report whose SIM was barred keeps it barred in resim and in the core;
    a report resolved by a cut-over names a retired SIM;
L2. a suspended SIM is held by an open loss report (no request's cancel,
    expiry or "not me" gives it back);
L3. at most one open report per line, and none opened by a request that was
    never verified.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from resim.adapters.corenet.fake import FakeCoreNetwork
from resim.adapters.crypto import bind_secrets
from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.mail.fake import FakeMailer
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.model import BOUND_SIM_STATES, RiskOutcome, SimState
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.domain.workflow import OPEN_STATES, TRANSITIONS, State
from resim.emulator.core import SmdpCore
from resim.services.context import FrozenClock, ServiceContext
from resim.services.onboarding import seed
from resim.services.replacement import queries
from resim.settings import Settings

PG_ADMIN_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
PIN = "2468"  # every line's account PIN (loss reports: "Block my SIM now", "I found my phone")

# Audit actions on a request that record a state change, and the state they
# record. "risk.assessed" records the engine's decision: "review" and "deny"
# move the request (verified -> in_review / rejected) with no other event.
AUDIT_STATE: dict[str, State] = {
    "request.created": State.REQUESTED,
    "request.verified": State.VERIFIED,
    "request.approved": State.APPROVED,
    "request.rejected": State.REJECTED,
    "request.held": State.IN_REVIEW,
    "request.cancelled": State.CANCELLED,
    "request.expired": State.EXPIRED,
    "request.provisioning": State.PROVISIONING,
    "request.reissued": State.PROVISIONING,
    "request.ready": State.READY,
    "request.completed": State.COMPLETED,
    "request.failed": State.FAILED,
}
RISK_STATE = {RiskOutcome.REVIEW.value: State.IN_REVIEW, RiskOutcome.DENY.value: State.REJECTED}
# Two wrong answers reject a request, so the machine reaches that edge often.
POLICY = BrandPolicy(otp_max_attempts=2, verification=email_code_alone())
PAST_VERIFICATION = frozenset(
    {State.IN_REVIEW, State.APPROVED, State.PROVISIONING, State.READY, State.COMPLETED}
)


class DatabaseFactory:
    """One migrated template per test; a fresh copy of it per example."""

    def __init__(self, template_url: str, workdir: Path, pg_admin_url: str) -> None:
        upgrade(template_url)
        self.template_url = template_url
        self.workdir = workdir
        self.pg_admin_url = pg_admin_url
        self.sqlite = template_url.startswith("sqlite")

    def new(self) -> str:
        name = f"ex_{uuid.uuid4().hex[:12]}"
        if self.sqlite:
            target = self.workdir / f"{name}.db"
            src = sqlite3.connect(self._sqlite_path(self.template_url))
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            return f"sqlite:///{target}"
        template = sa.make_url(self.template_url).database
        admin = sa.create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "resim_t_{name}" TEMPLATE "{template}"'))
        finally:
            admin.dispose()
        return (
            sa.make_url(self.template_url)
            .set(database=f"resim_t_{name}")
            .render_as_string(hide_password=False)
        )

    def drop(self, url: str) -> None:
        if self.sqlite:
            path = Path(self._sqlite_path(url))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        name = sa.make_url(url).database
        admin = sa.create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()

    @staticmethod
    def _sqlite_path(url: str) -> str:
        return url.removeprefix("sqlite:///")


@dataclass(frozen=True)
class LineInfo:
    id: str
    msisdn: str
    email: str


@dataclass
class World:
    url: str
    ctx: ServiceContext
    engine: sa.Engine
    clock: FrozenClock
    smdp_core: SmdpCore
    smdp: FakeSmdpClient
    core: FakeCoreNetwork
    mail: FakeMailer
    lines: list[LineInfo]
    profiles: int

    def close(self) -> None:
        self.engine.dispose()


def build_world(url: str, data_dir: Path, *, profiles: int = 6) -> World:
    """Brand "dk", three lines (the third's e-mail changed just now) and eSIM stock."""
    settings = Settings(database_url=url, data_dir=data_dir, secret_keys=SECRET_KEY)
    engine = build_engine(settings, pool_size=5)
    clock = FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    smdp_core = SmdpCore(smdp_address="smdp.resim.test")
    smdp = FakeSmdpClient(smdp_core)
    core = FakeCoreNetwork(clock.now)
    mail = FakeMailer()
    ctx = build_context(settings, engine=engine, smdp=smdp, core=core, mailer=mail, clock=clock)
    seed.upsert_brand(
        ctx,
        seed.BrandSpec("dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen", POLICY),
    )
    stock = [
        (iccid_with_check_digit(f"8945019{n:011d}"), f"238019{n:09d}")
        for n in range(1, profiles + 1)
    ]
    seed.add_stock(ctx, brand_id="dk", profile_type="default", profiles=stock)
    smdp_core.add_stock("default", [i for i, _ in stock])
    lines = []
    for n in range(1, 4):
        msisdn, email = f"+452010000{n}", f"kunde{n}@example.dk"
        line_id = seed.add_line(
            ctx,
            seed.LineSpec(
                brand_id="dk",
                msisdn=msisdn,
                name=f"Kunde {n}",
                email=email,
                iccid=iccid_with_check_digit(f"8945018{n:011d}"),
                imsi=f"238018{n:09d}",
                email_changed_at=clock.now() if n == 3 else None,
                pin=PIN,
            ),
        )
        lines.append(LineInfo(line_id, msisdn, email))
    return World(url, ctx, engine, clock, smdp_core, smdp, core, mail, lines, profiles)


@dataclass
class Secrets:
    """Every secret the test has seen; none may surface in audit details or views."""

    codes: set[str] = field(default_factory=set)  # six digits: matched as a whole number
    strings: set[str] = field(default_factory=set)  # tokens, activation codes, matching IDs

    def found_in(self, text: str) -> list[str]:
        hits = [s for s in self.strings if s in text]
        hits += [c for c in self.codes if re.search(rf"(?<!\d){c}(?!\d)", text)]
        return hits


NOT_ME = re.compile(r"/not-me/([A-Za-z0-9_-]{16,})")


def not_me_tokens(mail: FakeMailer) -> list[str]:
    """The "this was not me" tokens in every mail sent so far, oldest first."""
    found: list[str] = []
    for message in mail.sent:
        for token in NOT_ME.findall(message.text):
            if token not in found:
                found.append(token)
    return found


def check_invariants(world: World, secrets: Secrets) -> dict[str, State]:
    """Assert the invariants (module docstring); return every request's state."""
    with world.engine.connect() as conn:
        sims = conn.execute(
            sa.select(orm.sim.c.iccid, orm.sim.c.imsi, orm.sim.c.state, orm.sim.c.bound_line_id)
        ).all()
        with bind_secrets(world.ctx.secrets):  # the MatchingID is an encrypted column
            requests = conn.execute(sa.select(orm.replacement_request)).mappings().all()
        events = conn.execute(
            sa.select(
                orm.audit_event.c.object_id,
                orm.audit_event.c.action,
                orm.audit_event.c.detail,
            )
            .where(orm.audit_event.c.object_type == "request")
            .order_by(orm.audit_event.c.seq)
        ).all()
        details = conn.execute(sa.select(orm.audit_event.c.detail)).scalars().all()
        waiting = set(
            conn.execute(
                sa.select(orm.job.c.kind).where(orm.job.c.state.in_(["pending", "running"]))
            ).scalars()
        )
    _check_sims(world, sims)
    _check_requests(requests)
    with world.engine.connect() as conn:
        reports = conn.execute(sa.select(orm.loss_report)).mappings().all()
    _check_loss_reports(world, sims, requests, reports)
    if not waiting & {"core.suspend_old", "core.resume_old", "loss.suspend", "loss.resume"}:
        _check_suspensions(sims, requests, reports)
    # esim.reconcile only asks peers and records an install: it leaks no profile
    if not {k for k in waiting if k.startswith("esim.") and k != "esim.reconcile"}:
        _check_no_leaked_profile(sims, requests)
    states = {r["id"]: State(r["state"]) for r in requests}
    _check_audit_replay(states, events)
    for row in requests:
        if row["state"] == State.READY and row["activation_code_enc"]:
            code = queries.activation_view(world.ctx, row["id"], reader="test", via="test")
            secrets.strings.update({code["activation_code"], code["matching_id"]})
        if row["matching_id"]:
            secrets.strings.add(row["matching_id"])
    secrets.strings.update(not_me_tokens(world.mail))
    _check_no_secrets(world, secrets, [json.dumps(d, default=str) for d in details], states)
    return states


def _check_sims(world: World, sims: Iterable[sa.Row[tuple[str, str, str, str | None]]]) -> None:
    bound: dict[str, list[tuple[str, str]]] = {}
    for iccid, imsi, state, line_id in sims:
        if SimState(state) in BOUND_SIM_STATES:
            assert line_id is not None, f"SIM {iccid} is {state} but bound to no line"
            bound.setdefault(line_id, []).append((imsi, state))
        else:
            assert line_id is None, f"SIM {iccid} is {state} but still bound to a line"
    for line in world.lines:
        mine = bound.get(line.id, [])
        assert len(mine) == 1, f"line {line.msisdn} has {len(mine)} bound SIMs: {mine}"
        imsi, state = mine[0]
        served = world.core.imsi_of(msisdn=line.msisdn)
        assert served == imsi, f"{line.msisdn}: resim binds {imsi}, the core serves {served}"
        enabled = world.core.is_enabled(imsi=imsi)
        assert enabled == (state == SimState.ACTIVE), (
            f"{line.msisdn}: SIM {imsi} is {state} in resim, in service={enabled} in the core"
        )


def _check_suspensions(
    sims: Iterable[sa.Row[tuple[str, str, str, str | None]]],
    requests: Iterable[sa.RowMapping],
    reports: Iterable[sa.RowMapping],
) -> None:
    """L2: every suspended SIM is held by an open loss report (or, for a line
    separation, by the open request that barred it); nothing else bars a SIM."""
    held = {r["iccid"] for r in reports if r["state"] == "open"}
    held |= {
        r["old_iccid"]
        for r in requests
        if r["old_sim_suspended"]
        and State(r["state"]) in OPEN_STATES
        and r["kind"] != "replacement"
    }
    for iccid, _, state, _ in sims:
        if state == SimState.SUSPENDED:
            assert iccid in held, f"SIM {iccid} is suspended and no open loss report holds it"


def _check_loss_reports(
    world: World,
    sims: Iterable[sa.Row[tuple[str, str, str, str | None]]],
    requests: Iterable[sa.RowMapping],
    reports: Iterable[sa.RowMapping],
) -> None:
    """L1 and L3 (module docstring)."""
    sim_of = {iccid: (imsi, SimState(state)) for iccid, imsi, state, _ in sims}
    by_id = {r["id"]: r for r in requests}
    open_lines: dict[str, int] = {}
    newest: dict[str, sa.RowMapping] = {}
    for rep in sorted(reports, key=lambda r: (str(r["opened_at"]), r["id"])):
        newest[rep["iccid"]] = rep
        imsi, state = sim_of[rep["iccid"]]
        name = f"loss report {rep['id']} ({rep['state']}) on SIM {rep['iccid']}"
        if rep["channel"] == "replacement":
            opener = by_id.get(rep["request_id"])
            assert opener is not None and opener["verified_at"] is not None, (
                f"{name} was opened by a request that was never verified"
            )
        if rep["state"] == "open":
            open_lines[rep["line_id"]] = open_lines.get(rep["line_id"], 0) + 1
            if rep["suspended_at"] is not None:
                assert state in (SimState.SUSPENDED, SimState.RETIRED), f"{name}: SIM is {state}"
                assert not world.core.is_enabled(imsi=imsi), f"{name}: the core serves the SIM"
        elif rep["state"] == "lifted":
            strength = sum(int(e.get("strength", 0)) for e in rep["close_evidence"] or [])
            assert strength >= 2, f"{name} was lifted with strength {strength}"
        elif rep["state"] == "resolved":
            assert state == SimState.RETIRED, f"{name}: resolved but the SIM is {state}"
        elif rep["state"] == "voided":
            rejected = by_id.get(rep["closing_request_id"])
            assert (
                rep["channel"] == "replacement" and rep["closing_request_id"] == rep["request_id"]
            ), f"{name}: voided by another request than the one that opened it"
            assert rejected is not None and rejected["state"] == State.REJECTED, (
                f"{name}: voided though its request is not rejected"
            )
    for iccid, rep in newest.items():
        _, state = sim_of[iccid]
        if state == SimState.ACTIVE and rep["suspended_at"] is not None:
            assert rep["state"] in ("lifted", "voided"), (
                f"SIM {iccid} was reported lost, barred, and is active again though its "
                f"report is {rep['state']} (only a strong lift or a void of its own "
                "rejected request may give it back)"
            )
    crowded = {line: n for line, n in open_lines.items() if n > 1}
    assert not crowded, f"lines with more than one open loss report: {crowded}"


def _check_no_leaked_profile(
    sims: Iterable[sa.Row[tuple[str, str, str, str | None]]], requests: Iterable[sa.RowMapping]
) -> None:
    held = {r["new_iccid"] for r in requests if State(r["state"]) in OPEN_STATES}
    leaked = [
        iccid for iccid, _, state, _ in sims if state == SimState.RESERVED and iccid not in held
    ]
    assert not leaked, f"reserved eSIM profiles no open request holds: {leaked}"


def _check_requests(requests: Iterable[sa.RowMapping]) -> None:
    open_per_line: dict[str, int] = {}
    for r in requests:
        state = State(r["state"])
        if state in OPEN_STATES:
            open_per_line[r["line_id"]] = open_per_line.get(r["line_id"], 0) + 1
        if state in PAST_VERIFICATION:
            assert r["verified_at"] is not None, f"request {r['id']} is {state} but never verified"
            assert r["risk_outcome"] is not None, f"request {r['id']} is {state} with no risk check"
        if state in PAST_VERIFICATION - {State.IN_REVIEW}:
            assert r["risk_outcome"] != RiskOutcome.DENY, f"request {r['id']} went on after deny"
            if r["risk_outcome"] == RiskOutcome.REVIEW:
                assert r["reviewed_by"] not in (None, r["actor"]), (
                    f"request {r['id']} held for review went on, reviewed by {r['reviewed_by']}"
                )
    crowded = {line: n for line, n in open_per_line.items() if n > 1}
    assert not crowded, f"lines with more than one open request: {crowded}"


def _check_audit_replay(
    states: dict[str, State], events: Iterable[sa.Row[tuple[str, str, object]]]
) -> None:
    replayed: dict[str, State] = {}
    for request_id, action, detail in events:
        target = AUDIT_STATE.get(action)
        if action == "risk.assessed" and isinstance(detail, dict):
            target = RISK_STATE.get(str(detail.get("outcome")))
        if target is None:
            continue
        now = replayed.get(request_id)
        if now is None:
            assert action == "request.created", f"{request_id}: first state event is {action}"
        elif target != now:
            assert (now, target) in TRANSITIONS, (
                f"{request_id}: audit log records {now.value} -> {target.value} ({action}), "
                "an edge the workflow does not have"
            )
        replayed[request_id] = target
    for request_id, state in states.items():
        assert replayed.get(request_id) == state, (
            f"request {request_id} is {state.value} but its audit log ends in "
            f"{replayed.get(request_id)}"
        )


def _check_no_secrets(
    world: World, secrets: Secrets, details: list[str], states: dict[str, State]
) -> None:
    for text in details:
        assert not secrets.found_in(text), f"a secret in an audit detail: {text}"
    for request_id in states:
        view = json.dumps(queries.get_request_view(world.ctx, request_id))
        assert not secrets.found_in(view), f"a secret in the view of request {request_id}"
    listed = json.dumps(queries.list_requests(world.ctx, limit=500))
    assert not secrets.found_in(listed), "a secret in the request list"
