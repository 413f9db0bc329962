"""A Hypothesis state machine over the replacement use cases (the service layer).

Each example gets a fresh database (a copy of one migrated template), a
FrozenClock, the SM-DP+ emulator core behind FakeSmdpClient, FakeCoreNetwork
and FakeMailer, three lines and six eSIM profiles. Rules open, verify (right,
stale and wrong codes), resend, review (also by the request's creator, which
must be refused), cancel, follow "this was not me" links, advance the clock,
run due jobs, play the device installing or failing to install (and repeat the
SM-DP+ callbacks), reissue, make the SM-DP+ fail its next call, lock lines
once ``resim.services.locks.locks`` exists, and block a lost phone's SIM ("Block my
SIM now": PIN, e-mail code or a wrong PIN) and lift the block ("I found my
phone": code and PIN, one factor, a wrong PIN). With the existing cancel and
install (cut-over) rules that drives every way a loss report may end. After
every step ``check_invariants`` (stateful_support.py) checks DESIGN.md
invariants 1, 2, 3, 5 and 6 and the loss-report invariants L1-L3.

Profiles (chosen to run in well under a minute on a 2-core machine):
- SQLite: 25 examples of up to 30 steps; PostgreSQL: 6 examples of up to 20.
- ``derandomize=True``: the same examples every run, so the suite cannot flake;
  no shrinking (a failure prints its full list of steps, which reproduces it).
  To hunt for new bugs, set RESIM_PROPS_EXAMPLES=<n> for n random examples,
  shrunk to the shortest failing steps (run it outside pytest-timeout's 300 s,
  e.g. with ``--timeout 0``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from stateful_support import (
    PG_ADMIN_URL_DEFAULT,
    PIN,
    DatabaseFactory,
    Secrets,
    World,
    build_world,
    not_me_tokens,
)
from stateful_support import check_invariants as check_all

from resim.adapters.es2.errors import Es2StatusError
from resim.domain.activation import parse_activation_code
from resim.domain.loss import LossChannel
from resim.domain.model import Reason
from resim.domain.workflow import OPEN_STATES, State
from resim.emulator.model import PhoneRefusal
from resim.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Refused,
    TooManyAttempts,
    VerificationFailed,
)
from resim.services import repo
from resim.services.cutover.cutover import handle_download_progress
from resim.services.locks import loss
from resim.services.outbox import jobs
from resim.services.ports import DownloadProgress
from resim.services.replacement import cancel, queries, requests
from resim.services.replacement.reissue import reissue
from resim.services.risk import review
from resim.services.verification.verification import Evidence

pytestmark = pytest.mark.integration

LOCKS = "resim.services.locks.locks"
CREATORS = ("agent-1", "agent-2", "bss")
REVIEWERS = ("rev-1", "rev-2")
CLOCK_STEPS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=11),  # one-time codes expire after 10 minutes
    dt.timedelta(hours=2),
    dt.timedelta(hours=25),  # unverified requests expire after 24 hours
    dt.timedelta(hours=73),  # activation codes expire after 72 hours
)


class WorkflowMachine(RuleBasedStateMachine):
    factory: DatabaseFactory
    workdir: Path

    def __init__(self) -> None:
        super().__init__()
        self.url = self.factory.new()
        self.world: World = build_world(self.url, self.workdir)
        self.secrets = Secrets()
        self.codes: dict[str, list[str]] = {}  # request id -> codes sent, newest last
        self.creator: dict[str, str] = {}
        self.opened: list[str] = []
        self.states: dict[str, State] = {}
        self.callbacks: list[DownloadProgress] = []
        self._serial = 0
        self._next_code = ""
        self.world.ctx.otp_generator = lambda: self._next_code

    def teardown(self) -> None:
        self.world.close()
        self.factory.drop(self.url)

    # ------------------------------------------------------------ helpers

    def _fresh_code(self) -> str:
        self._serial += 1
        code = f"{(self._serial * 390_625 + 271_828) % 900_000 + 100_000:06d}"
        self._next_code = code
        self.secrets.codes.add(code)
        return code

    def _pick(self, index: int, prefer: frozenset[State] = OPEN_STATES) -> str:
        """A request, mostly one in a ``prefer`` state (one in five from all of them)."""
        # In the order they were opened (ids are random): a replay picks the same one.
        ids = [r for r in self.opened if self.states[r] in prefer]
        if not ids or index % 5 == 0:
            ids = self.opened
        return ids[index % len(ids)]

    def _then(self, run_jobs: bool) -> None:
        """Half the time a worker runs the due jobs right after the step."""
        if run_jobs:
            jobs.run_due_jobs(self.world.ctx)

    def _has(self, *states: State) -> bool:
        return any(s in states for s in self.states.values())

    def _request(self, request_id: str) -> Any:
        with self.world.ctx.uow() as uow:
            req = repo.get_request(uow, request_id)
            uow.session.expunge(req)
            return req

    def _state(self, request_id: str) -> State:
        return State(self._request(request_id).state)

    def _frozen(self, subscriber_id: str) -> bool:
        with self.world.ctx.uow() as uow:
            return repo.get_subscriber(uow, subscriber_id).replacements_frozen_at is not None

    # ------------------------------------------------------------ rules

    @rule(
        line=st.integers(0, 2),
        reason=st.sampled_from(list(Reason)),
        actor=st.sampled_from(CREATORS),
        run_jobs=st.booleans(),
    )
    def open_request(self, line: int, reason: Reason, actor: str, run_jobs: bool) -> None:
        info = self.world.lines[line]
        had_open = any(
            self._request(r).line_id == info.id for r, s in self.states.items() if s in OPEN_STATES
        )
        code = self._fresh_code()
        try:
            opened = requests.open_request(
                self.world.ctx, msisdn=info.msisdn, reason=reason.value, actor=actor
            )
        except Conflict as exc:
            assert had_open, f"open refused with {exc.code} though the line had no open request"
            return
        except (Refused, TooManyAttempts):
            return  # a lock, a frozen account or a rate limit (issue 3 controls)
        assert not had_open, "a second open request was accepted for one line"
        assert opened.state == State.REQUESTED
        self.codes[opened.id] = [code]
        self.creator[opened.id] = actor
        self.opened.append(opened.id)
        self._then(run_jobs)

    @precondition(lambda self: bool(self.opened))
    @rule(
        index=st.integers(0, 50),
        which=st.sampled_from(["right", "right", "right", "stale", "wrong"]),
        run_jobs=st.booleans(),
    )
    def submit_code(self, index: int, which: str, run_jobs: bool) -> None:
        request_id = self._pick(index, frozenset({State.REQUESTED}))
        before = self._request(request_id)
        sent = self.codes.get(request_id, [])
        code = {"right": sent[-1:], "stale": sent[-2:-1]}.get(which) or ["999999"]
        current = bool(sent) and code[0] == sent[-1]
        try:
            state = requests.submit_verification(self.world.ctx, request_id, otp=code[0])
        except Conflict:
            assert before.state != State.REQUESTED
            return
        except TooManyAttempts:
            return
        except Refused as refused:
            # a "not me" report on another request of the account froze it
            assert refused.code == "ACCOUNT_FROZEN", refused.code
            assert self._frozen(before.subscriber_id), "refused but the account is not frozen"
            return
        except VerificationFailed:
            expired = before.otp_expires_at is None or self.world.clock.now() >= _aware(
                before.otp_expires_at
            )
            assert not current or expired, "the current, unexpired code was refused"
            return
        assert current, f"a {which} code verified request {request_id}"
        assert state in (State.VERIFIED, State.APPROVED, State.IN_REVIEW, State.REJECTED)
        self._then(run_jobs)

    @precondition(lambda self: bool(self.opened))
    @rule(index=st.integers(0, 50))
    def resend_code(self, index: int) -> None:
        request_id = self._pick(index, frozenset({State.REQUESTED}))
        before = self._state(request_id)
        code = self._fresh_code()
        try:
            requests.resend_code(self.world.ctx, request_id)
        except Conflict:
            assert before != State.REQUESTED
            return
        except TooManyAttempts:
            return
        assert before == State.REQUESTED
        self.codes[request_id].append(code)

    @precondition(lambda self: bool(self.opened))
    @rule(
        index=st.integers(0, 50),
        approve=st.booleans(),
        reviewer=st.sampled_from((*REVIEWERS, "creator")),
        run_jobs=st.booleans(),
    )
    def review_request(self, index: int, approve: bool, reviewer: str, run_jobs: bool) -> None:
        request_id = self._pick(index, frozenset({State.IN_REVIEW}))
        before = self._state(request_id)
        who = self.creator[request_id] if reviewer == "creator" else reviewer
        try:
            state = review.review(self.world.ctx, request_id, reviewer=who, approve_it=approve)
        except Refused:
            assert reviewer == "creator" or before != State.IN_REVIEW
            assert self._state(request_id) == before, "a refused review changed the request"
            return
        except Conflict:
            assert before != State.IN_REVIEW
            return
        assert reviewer != "creator", "the creator of a request decided it"
        assert before == State.IN_REVIEW
        wanted = State.APPROVED if approve else State.REJECTED
        assert state in (wanted, State.IN_REVIEW)  # IN_REVIEW: a second approver is due
        self._then(run_jobs)

    @precondition(lambda self: bool(self.opened))
    @rule(
        index=st.integers(0, 50),
        how=st.sampled_from(["cancel", "not_me"]),
        actor=st.sampled_from(CREATORS),
    )
    def stop_request(self, index: int, how: str, actor: str) -> None:
        """The creator cancels, or the account holder follows a "this was not me" link."""
        if how == "not_me":
            self._not_me(index)
            return
        request_id = self._pick(index)
        before = self._request(request_id)
        try:
            state = cancel.cancel(self.world.ctx, request_id, actor=actor)
        except Conflict:
            assert before.state not in OPEN_STATES or before.installed_at is not None
            return
        assert before.state in OPEN_STATES and before.installed_at is None
        assert state == State.CANCELLED

    def _not_me(self, index: int) -> None:
        tokens = not_me_tokens(self.world.mail)
        if not tokens:
            return
        token = tokens[index % len(tokens)]
        try:
            request_id = cancel.cancel_by_token(self.world.ctx, token)
        except NotFound:
            return
        except Conflict as exc:
            assert exc.code == "ALREADY_INSTALLED", exc.code
            return
        assert self._state(request_id) not in OPEN_STATES, "'not me' left the request open"

    @rule(step=st.sampled_from(CLOCK_STEPS), run_jobs=st.booleans())
    def advance_clock(self, step: dt.timedelta, run_jobs: bool) -> None:
        self.world.clock.advance(step)
        self._then(run_jobs)

    @rule(smdp=st.sampled_from(["answers"] * 4 + ["busy", "refuses"]))
    def run_due_jobs(self, smdp: str) -> None:
        """A worker runs the due jobs; sometimes the SM-DP+ fails the eSIM order's first call."""
        if smdp != "answers" and self._has(State.APPROVED, State.PROVISIONING):
            subject, reason = ("1.2", "4.4") if smdp == "busy" else ("1.1", "1.2")
            self.world.smdp.fail_next(
                Es2StatusError(
                    function="any", status="Failed", subject_code=subject, reason_code=reason
                )
            )
        jobs.run_due_jobs(self.world.ctx)

    @precondition(lambda self: self._has(State.READY))
    @rule(index=st.integers(0, 50), fail=st.booleans(), run_jobs=st.booleans())
    def install(self, index: int, fail: bool, run_jobs: bool) -> None:
        """Play the device: download and install (or fail to) with the activation code."""
        request_id = self._pick(index, frozenset({State.READY}))
        before = self._request(request_id)
        if before.state != State.READY:
            return
        code = parse_activation_code(
            queries.activation_view(self.world.ctx, request_id, reader="test", via="test")[
                "activation_code"
            ]
        )
        try:
            notes = self.world.smdp_core.download_and_install(
                code.matching_id, code.smdp_address, fail_install=fail
            )
        except PhoneRefusal:
            return  # e.g. the profile was already downloaded once: only a reissue helps
        for note in notes:
            handle_download_progress(self.world.ctx, note)
            self.callbacks.append(note)
        after = self._request(request_id)
        assert (after.installed_at is None) == fail
        self._then(run_jobs)

    @precondition(lambda self: bool(self.callbacks))
    @rule(index=st.integers(0, 50))
    def repeat_callback(self, index: int) -> None:
        """The SM-DP+ may send a notification again; nothing may happen twice."""
        note = self.callbacks[index % len(self.callbacks)]
        # NotFound: a reissue withdrew that profile, so its ICCID names no request now.
        with contextlib.suppress(NotFound):
            handle_download_progress(self.world.ctx, note)

    @precondition(lambda self: self._has(State.READY))
    @rule(index=st.integers(0, 50), run_jobs=st.booleans())
    def reissue_profile(self, index: int, run_jobs: bool) -> None:
        request_id = self._pick(index, frozenset({State.READY}))
        before = self._request(request_id)
        try:
            state = reissue(self.world.ctx, request_id, actor="agent-3")
        except Conflict:
            assert before.state != State.READY or before.installed_at is not None
            return
        assert state == State.PROVISIONING
        self._then(run_jobs)

    @rule(
        line=st.integers(0, 2),
        how=st.sampled_from(["pin", "email", "email", "wrong"]),
        reason=st.sampled_from(["lost", "stolen"]),
        run_jobs=st.booleans(),
    )
    def report_loss(self, line: int, how: str, reason: str, run_jobs: bool) -> None:
        """ "Block my SIM now" in the portal: the PIN, the e-mailed code, or a wrong PIN."""
        info = self.world.lines[line]
        was = loss.status(self.world.ctx, msisdn=info.msisdn)
        evidence = Evidence(pin=PIN if how == "pin" else "0000")
        if how == "email":
            code = self._fresh_code()
            if not loss.send_code(self.world.ctx, msisdn=info.msisdn):
                return  # one code per 30 seconds
            evidence = Evidence(otp=code)
        try:
            status, opened = loss.report(
                self.world.ctx,
                msisdn=info.msisdn,
                reason=reason,
                channel=LossChannel.PORTAL,
                actor="customer",
                evidence=evidence,
            )
        except TooManyAttempts:
            return  # backing off after earlier wrong answers
        except VerificationFailed:
            assert how == "wrong", f"the right {how} was refused"
            return
        except Conflict as exc:
            assert exc.code == "NO_SIM", exc.code
            return
        assert how != "wrong" or was.blocked, "a wrong PIN blocked a SIM"
        assert status.blocked and opened != was.blocked
        self._then(run_jobs)

    @rule(
        line=st.integers(0, 2),
        how=st.sampled_from(["strong", "strong", "weak", "wrong"]),
        run_jobs=st.booleans(),
    )
    def lift_loss(self, line: int, how: str, run_jobs: bool) -> None:
        """ "I found my phone": the e-mailed code and the PIN; one factor must not do."""
        info = self.world.lines[line]
        was = loss.status(self.world.ctx, msisdn=info.msisdn)
        evidence = Evidence(pin=PIN)
        if how != "weak":
            code = self._fresh_code()
            if not loss.send_code(self.world.ctx, msisdn=info.msisdn):
                return
            evidence = Evidence(otp=code, pin=PIN if how == "strong" else "0000")
        try:
            status = loss.lift(
                self.world.ctx, msisdn=info.msisdn, actor="customer", evidence=evidence
            )
        except Conflict as exc:
            assert exc.code == "NOT_BLOCKED" and not was.blocked, exc.code
            return
        except TooManyAttempts:
            return  # backing off after earlier wrong answers
        except InvalidInput as exc:
            assert how == "weak" and exc.code == "VERIFICATION_INCOMPLETE", (how, exc.code)
            return
        except VerificationFailed:
            assert how == "wrong", "the right code and PIN were refused"
            return
        assert how == "strong", f"a {how} answer lifted a loss report"
        assert was.blocked and not status.blocked
        self._then(run_jobs)

    @precondition(lambda self: importlib.util.find_spec(LOCKS) is not None)
    @rule(line=st.integers(0, 2))
    def lock_line(self, line: int) -> None:
        lock: Callable[..., Any] = importlib.import_module(LOCKS).lock_line
        lock(self.world.ctx, self.world.lines[line].msisdn, actor="customer")

    # ------------------------------------------------------------ invariants

    @invariant()
    def design_invariants_hold(self) -> None:
        self.states = check_all(self.world, self.secrets)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _profile(backend: str) -> settings:
    wanted = os.environ.get("RESIM_PROPS_EXAMPLES")
    examples, steps = (25, 30) if backend == "sqlite" else (6, 20)
    return settings(
        max_examples=int(wanted) if wanted else examples,
        stateful_step_count=steps,
        derandomize=not wanted,
        # Shrinking replays many whole examples; in the suite a failure is reported
        # unshrunk (the full step list still reproduces it) so it stays under a minute.
        phases=list(Phase) if wanted else [p for p in Phase if p != Phase.shrink],
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        print_blob=True,
    )


def test_the_workflow_keeps_the_design_invariants_in_every_reachable_state(
    db_url: str, tmp_path: Path
) -> None:
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    admin = os.environ.get("RESIM_TEST_PG_URL", PG_ADMIN_URL_DEFAULT)
    machine = type(
        "Workflow",
        (WorkflowMachine,),
        {"factory": DatabaseFactory(db_url, tmp_path, admin), "workdir": tmp_path},
    )
    run_state_machine_as_test(machine, settings=_profile(backend))
