"""The CoreNetwork contract, run against every adapter.

``CoreNetworkContract`` holds the tests; each ``Test...`` subclass supplies an
``env`` for one adapter: the in-memory fake, the built-in tables on SQLite and
on PostgreSQL (through the ``db_url`` fixture), and a real osmo-hlr started on
loopback (skipped when the binary is absent, a failure under CI=true).

Every test makes its own IMSIs and MSISDNs, so adapters whose state outlives a
test (one osmo-hlr per module) need no cleaning.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from gsup_support import FakeVlr, LocationUpdateRefused
from resim.adapters.corenet import rules
from resim.adapters.corenet.builtin import CORENET_METADATA, BuiltinCoreNetwork
from resim.adapters.corenet.fake import FakeCoreNetwork
from resim.adapters.corenet.osmo_hlr import OsmoHlrCoreNetwork
from resim.adapters.corenet.osmo_hlr_runner import OsmoHlrEndpoint, OsmoHlrProcess
from resim.errors import ExternalError, InvalidInput
from tools import osmo_hlr_binary

# A random start: a real HLR/HSS named by the environment (RESIM_TEST_PYHSS_URL)
# keeps its records between runs, and each run must make IMSIs and numbers of its own.
_serial = itertools.count(1 + random.randrange(50_000_000))


def new_imsi() -> str:
    return f"00101{next(_serial):010d}"  # MCC 001 / MNC 01: the test network


def new_msisdn() -> str:
    return f"+4591{next(_serial):08d}"


def outcome(call: Callable[[], object], *, retries: int = 0) -> str | None:
    """None when the call succeeds, else the ExternalError's code.

    With ``retries``, a retryable error is retried after a short pause, as the
    job runner would do.
    """
    for attempt in range(retries + 1):
        try:
            call()
        except ExternalError as exc:
            if not (exc.retryable and attempt < retries):
                return exc.code
            time.sleep(0.01 * (attempt + 1))
        else:
            return None
    raise AssertionError("unreachable")


def expect(code: str, call: Callable[[], object]) -> ExternalError:
    with pytest.raises(ExternalError) as info:
        call()
    assert info.value.code == code, info.value.message
    assert info.value.retryable is False
    return info.value


@dataclass
class Env:
    cn: Any
    peer: Callable[[], Any]  # another client of the same core network
    provision: Callable[[str], None]  # what stock intake does for a new SIM
    examples: int = 25
    has_holds: bool = True
    attach: Callable[[str], None] | None = None  # the network side: a phone registers
    # The network side: was it told to drop this IMSI (issue 12.7, rules.detaches)?
    detached: Callable[[str], bool] | None = None
    # Stock intake before a record is made (PyHSS needs the SIM's keys first).
    intake: Callable[[str], None] = lambda _imsi: None
    # Whether the network side of this set-up refuses a barred IMSI's registration.
    refuses_barred_attach: bool = True


# ------------------------------------------------------------------ the contract


class CoreNetworkContract:
    def bound(self, env: Env) -> tuple[str, str]:
        """A fresh IMSI holding a fresh MSISDN."""
        imsi, msisdn = new_imsi(), new_msisdn()
        env.provision(imsi)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=imsi, old_imsi=None)
        return imsi, msisdn

    def fresh(self, env: Env, n: int = 1) -> list[str]:
        imsis = [new_imsi() for _ in range(n)]
        for imsi in imsis:
            env.provision(imsi)
        return imsis

    # -------------------------------------------------------------- provision

    def test_a_provisioned_imsi_is_enabled_and_has_no_msisdn(self, env: Env) -> None:
        imsi = new_imsi()
        env.intake(imsi)
        env.cn.provision_imsi(imsi=imsi)
        assert env.cn.is_enabled(imsi=imsi) is True
        assert env.cn.msisdn_of(imsi=imsi) is None

    def test_provisioning_again_keeps_the_record_and_its_number(self, env: Env) -> None:
        imsi, msisdn = self.bound(env)
        env.cn.suspend_imsi(imsi=imsi)
        env.cn.provision_imsi(imsi=imsi)
        assert env.cn.msisdn_of(imsi=imsi) == msisdn
        assert env.cn.is_enabled(imsi=imsi) is False

    def test_provisioning_a_retired_imsi_does_not_bring_it_back(self, env: Env) -> None:
        (imsi,) = self.fresh(env)
        env.cn.retire_imsi(imsi=imsi)
        env.cn.provision_imsi(imsi=imsi)
        assert env.cn.is_enabled(imsi=imsi) is False
        expect("CORE_IMSI_RETIRED", lambda: env.cn.resume_imsi(imsi=imsi))

    # -------------------------------------------------------------- binding and moving

    def test_a_first_binding_puts_the_number_on_the_imsi(self, env: Env) -> None:
        (imsi,) = self.fresh(env)
        msisdn = new_msisdn()
        assert env.cn.imsi_of(msisdn=msisdn) is None
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=imsi, old_imsi=None)
        assert env.cn.msisdn_of(imsi=imsi) == msisdn
        assert env.cn.imsi_of(msisdn=msisdn) == imsi

    def test_a_move_takes_the_number_off_the_old_imsi_onto_the_new(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert env.cn.imsi_of(msisdn=msisdn) == new
        assert env.cn.msisdn_of(imsi=new) == msisdn
        assert env.cn.msisdn_of(imsi=old) is None
        assert env.cn.is_enabled(imsi=old) is True  # killing the old SIM is a separate step

    def test_a_number_can_move_back_and_forth(self, env: Env) -> None:
        a, msisdn = self.bound(env)
        (b,) = self.fresh(env)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=b, old_imsi=a)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=a, old_imsi=b)
        assert env.cn.imsi_of(msisdn=msisdn) == a
        assert env.cn.msisdn_of(imsi=b) is None

    def test_a_free_number_binds_even_when_an_old_imsi_is_named(self, env: Env) -> None:
        # How an interrupted move (old cleared, new not yet set) completes on retry.
        old, new = self.fresh(env, 2)
        msisdn = new_msisdn()
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert env.cn.imsi_of(msisdn=msisdn) == new
        assert env.cn.msisdn_of(imsi=old) is None

    def test_a_number_on_a_third_imsi_is_a_conflict_and_nothing_changes(self, env: Env) -> None:
        holder, msisdn = self.bound(env)
        old, new = self.fresh(env, 2)
        err = expect(
            "CORE_MSISDN_CONFLICT",
            lambda: env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old),
        )
        assert holder in err.message
        assert env.cn.imsi_of(msisdn=msisdn) == holder
        assert env.cn.msisdn_of(imsi=new) is None

    def test_a_first_binding_of_a_number_someone_holds_is_a_conflict(self, env: Env) -> None:
        holder, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        expect(
            "CORE_MSISDN_CONFLICT",
            lambda: env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=None),
        )
        assert env.cn.imsi_of(msisdn=msisdn) == holder

    def test_moving_onto_a_retired_imsi_is_refused(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        (dead,) = self.fresh(env)
        env.cn.retire_imsi(imsi=dead)
        expect(
            "CORE_IMSI_RETIRED",
            lambda: env.cn.move_msisdn(msisdn=msisdn, new_imsi=dead, old_imsi=old),
        )
        assert env.cn.imsi_of(msisdn=msisdn) == old

    def test_moving_onto_an_imsi_that_holds_another_number_is_refused(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        other, other_msisdn = self.bound(env)
        expect(
            "CORE_IMSI_HAS_OTHER_MSISDN",
            lambda: env.cn.move_msisdn(msisdn=msisdn, new_imsi=other, old_imsi=old),
        )
        assert env.cn.imsi_of(msisdn=msisdn) == old
        assert env.cn.imsi_of(msisdn=other_msisdn) == other

    def test_a_suspended_imsi_can_receive_the_number_and_stays_suspended(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        env.cn.suspend_imsi(imsi=new)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert env.cn.imsi_of(msisdn=msisdn) == new
        assert env.cn.is_enabled(imsi=new) is False

    # -------------------------------------------------------------- idempotent repeats

    def test_repeating_a_move_changes_nothing(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        for _ in range(3):
            env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert env.cn.imsi_of(msisdn=msisdn) == new
        assert env.cn.msisdn_of(imsi=old) is None

    def test_repeating_a_first_binding_changes_nothing(self, env: Env) -> None:
        imsi, msisdn = self.bound(env)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=imsi, old_imsi=None)
        assert env.cn.imsi_of(msisdn=msisdn) == imsi

    def test_a_move_retried_after_the_old_sim_was_retired_still_succeeds(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        env.cn.retire_imsi(imsi=old)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert env.cn.imsi_of(msisdn=msisdn) == new

    @pytest.mark.parametrize("op", ["provision_imsi", "suspend_imsi", "retire_imsi"])
    def test_repeating_an_imsi_operation_changes_nothing(self, env: Env, op: str) -> None:
        (imsi,) = self.fresh(env)
        getattr(env.cn, op)(imsi=imsi)
        before = (env.cn.is_enabled(imsi=imsi), env.cn.msisdn_of(imsi=imsi))
        getattr(env.cn, op)(imsi=imsi)
        assert (env.cn.is_enabled(imsi=imsi), env.cn.msisdn_of(imsi=imsi)) == before

    def test_repeating_resume_changes_nothing(self, env: Env) -> None:
        imsi, msisdn = self.bound(env)
        env.cn.suspend_imsi(imsi=imsi)
        env.cn.resume_imsi(imsi=imsi)
        env.cn.resume_imsi(imsi=imsi)
        assert env.cn.is_enabled(imsi=imsi) is True
        assert env.cn.msisdn_of(imsi=imsi) == msisdn

    # -------------------------------------------------------------- suspend, resume, retire

    def test_suspend_bars_the_imsi_and_keeps_its_number(self, env: Env) -> None:
        imsi, msisdn = self.bound(env)
        env.cn.suspend_imsi(imsi=imsi)
        assert env.cn.is_enabled(imsi=imsi) is False
        assert env.cn.imsi_of(msisdn=msisdn) == imsi
        env.cn.resume_imsi(imsi=imsi)
        assert env.cn.is_enabled(imsi=imsi) is True

    def test_retiring_the_old_imsi_after_a_move_disables_it(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        env.cn.retire_imsi(imsi=old)
        assert env.cn.is_enabled(imsi=old) is False
        assert env.cn.msisdn_of(imsi=old) is None
        assert env.cn.imsi_of(msisdn=msisdn) == new
        assert env.cn.is_enabled(imsi=new) is True

    def test_retiring_the_imsi_that_holds_the_live_number_is_refused(self, env: Env) -> None:
        imsi, msisdn = self.bound(env)
        expect("CORE_MSISDN_STILL_BOUND", lambda: env.cn.retire_imsi(imsi=imsi))
        assert env.cn.is_enabled(imsi=imsi) is True
        assert env.cn.imsi_of(msisdn=msisdn) == imsi

    def test_a_suspended_imsi_can_be_retired_and_suspend_after_that_is_a_no_op(
        self, env: Env
    ) -> None:
        (imsi,) = self.fresh(env)
        env.cn.suspend_imsi(imsi=imsi)
        env.cn.retire_imsi(imsi=imsi)
        env.cn.suspend_imsi(imsi=imsi)
        assert env.cn.is_enabled(imsi=imsi) is False
        expect("CORE_IMSI_RETIRED", lambda: env.cn.resume_imsi(imsi=imsi))

    # -------------------------------------------------------------- unknown and malformed

    @pytest.mark.parametrize(
        "call",
        [
            "suspend_imsi",
            "resume_imsi",
            "retire_imsi",
            "msisdn_of",
            "is_enabled",
            "move_new",
            "move_old",
        ],
    )
    def test_an_unknown_imsi_is_refused(self, env: Env, call: str) -> None:
        (known,) = self.fresh(env)
        ghost, msisdn = new_imsi(), new_msisdn()
        calls: dict[str, Callable[[], object]] = {
            "move_new": lambda: env.cn.move_msisdn(msisdn=msisdn, new_imsi=ghost, old_imsi=None),
            "move_old": lambda: env.cn.move_msisdn(msisdn=msisdn, new_imsi=known, old_imsi=ghost),
        }
        err = expect(
            "CORE_UNKNOWN_IMSI", calls.get(call) or (lambda: getattr(env.cn, call)(imsi=ghost))
        )
        assert ghost in err.message
        assert env.cn.msisdn_of(imsi=known) is None

    def test_an_unbound_number_has_no_imsi(self, env: Env) -> None:
        assert env.cn.imsi_of(msisdn=new_msisdn()) is None

    @pytest.mark.parametrize("bad", ["", "12345", "0010100000000001", "00101abc0000001"])
    def test_a_malformed_imsi_is_invalid_input(self, env: Env, bad: str) -> None:
        with pytest.raises(InvalidInput):
            env.cn.provision_imsi(imsi=bad)

    @pytest.mark.parametrize(
        "bad", ["4520123456", "+0520123456", "+45 2012 3456", "+1234567890123456"]
    )
    def test_a_number_not_in_e164_form_is_invalid_input(self, env: Env, bad: str) -> None:
        (imsi,) = self.fresh(env)
        with pytest.raises(InvalidInput):
            env.cn.move_msisdn(msisdn=bad, new_imsi=imsi, old_imsi=None)
        assert env.cn.msisdn_of(imsi=imsi) is None

    # -------------------------------------------------------------- post-swap holds

    def test_holds_are_set_repeated_and_cleared(self, env: Env) -> None:
        if not env.has_holds:
            pytest.skip("this adapter has no post-swap holds")
        imsi, _ = self.bound(env)
        until = dt.datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
        local = until.astimezone(dt.timezone(dt.timedelta(hours=2)))
        env.cn.apply_post_swap_holds(imsi=imsi, sms_hold_until=local, port_out_block_until=until)
        env.cn.apply_post_swap_holds(imsi=imsi, sms_hold_until=until, port_out_block_until=until)
        sub = env.cn.subscriber(imsi=imsi)
        assert (sub.sms_hold_until, sub.port_out_block_until) == (until, until)
        assert sub.sms_hold_until.utcoffset() == dt.timedelta(0)
        env.cn.apply_post_swap_holds(imsi=imsi, sms_hold_until=None, port_out_block_until=until)
        sub = env.cn.subscriber(imsi=imsi)
        assert (sub.sms_hold_until, sub.port_out_block_until) == (None, until)
        with pytest.raises(InvalidInput):
            env.cn.apply_post_swap_holds(
                imsi=imsi, sms_hold_until=until.replace(tzinfo=None), port_out_block_until=None
            )
        (dead,) = self.fresh(env)
        env.cn.retire_imsi(imsi=dead)
        expect(
            "CORE_IMSI_RETIRED",
            lambda: env.cn.apply_post_swap_holds(
                imsi=dead, sms_hold_until=until, port_out_block_until=None
            ),
        )

    # -------------------------------------------------------------- attachment (issue 13.6)

    def test_an_imsi_has_attached_only_after_a_phone_registered(self, env: Env) -> None:
        assert env.attach is not None
        imsi, other = self.fresh(env, 2)
        assert env.cn.attached(imsi=imsi) is False
        assert env.cn.attached(imsi=new_imsi()) is False  # no record: never attached
        env.attach(imsi)
        assert env.cn.attached(imsi=imsi) is True
        assert env.cn.attached(imsi=other) is False
        env.attach(imsi)  # again: still attached
        assert env.cn.attached(imsi=imsi) is True

    def test_a_number_moved_onto_an_attached_imsi_leaves_it_attached(self, env: Env) -> None:
        assert env.attach is not None
        (imsi,) = self.fresh(env)
        env.attach(imsi)
        env.cn.move_msisdn(msisdn=new_msisdn(), new_imsi=imsi, old_imsi=None)
        assert env.cn.attached(imsi=imsi) is True

    def test_attached_checks_the_imsi(self, env: Env) -> None:
        with pytest.raises(InvalidInput):
            env.cn.attached(imsi="12345")

    # -------------------------------------------------------------- detach (issue 12.7)

    def network_side(self, env: Env) -> tuple[Callable[[str], None], Callable[[str], bool]]:
        if env.attach is None or env.detached is None:
            pytest.skip("this set-up cannot make a phone register or see it dropped")
        return env.attach, env.detached

    def test_suspending_an_attached_imsi_drops_it_from_the_network(self, env: Env) -> None:
        attach, detached = self.network_side(env)
        (imsi, _), (other, _) = self.bound(env), self.bound(env)
        attach(imsi)
        attach(other)
        env.cn.suspend_imsi(imsi=imsi)
        assert detached(imsi) is True
        assert detached(other) is False

    def test_retiring_an_attached_old_imsi_drops_it_and_moving_alone_does_not(
        self, env: Env
    ) -> None:
        attach, detached = self.network_side(env)
        old, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        attach(old)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert detached(old) is False  # device change: it works until the cut-over
        env.cn.retire_imsi(imsi=old)
        assert detached(old) is True

    def test_an_imsi_that_never_registered_has_nothing_to_drop(self, env: Env) -> None:
        _, detached = self.network_side(env)
        imsi, _ = self.bound(env)
        env.cn.suspend_imsi(imsi=imsi)
        assert detached(imsi) is False

    def test_a_barred_imsi_cannot_register_until_resumed(self, env: Env) -> None:
        attach, _ = self.network_side(env)
        if not env.refuses_barred_attach:
            pytest.skip("this set-up's network side does not check access")
        imsi, _ = self.bound(env)
        env.cn.suspend_imsi(imsi=imsi)
        with pytest.raises((ExternalError, LocationUpdateRefused)):
            attach(imsi)
        env.cn.resume_imsi(imsi=imsi)
        attach(imsi)
        assert env.cn.attached(imsi=imsi) is True

    # -------------------------------------------------------------- refresh (issue 15.9)

    def refresh(self, env: Env, imsi: str) -> bool:
        try:
            return bool(env.cn.cancel_location(imsi=imsi))
        except ExternalError as exc:
            if exc.code == "CORE_REFRESH_UNSUPPORTED":
                assert exc.retryable is False
                pytest.skip("this core network cannot send a Cancel-Location on request")
            raise

    def test_a_refresh_drops_an_attached_imsi_and_keeps_its_access(self, env: Env) -> None:
        attach, detached = self.network_side(env)
        imsi, msisdn = self.bound(env)
        attach(imsi)
        assert self.refresh(env, imsi) is True
        assert detached(imsi) is True
        assert env.cn.is_enabled(imsi=imsi) is True
        assert env.cn.imsi_of(msisdn=msisdn) == imsi
        attach(imsi)  # the phone registers afresh

    def test_a_refresh_of_an_imsi_nobody_serves_tells_nobody(self, env: Env) -> None:
        imsi, _ = self.bound(env)
        assert self.refresh(env, imsi) is False
        if env.detached is not None:
            assert env.detached(imsi) is False

    def test_a_refresh_of_an_unknown_imsi_is_refused(self, env: Env) -> None:
        ghost = new_imsi()
        try:
            env.cn.cancel_location(imsi=ghost)
        except ExternalError as exc:
            if exc.code == "CORE_REFRESH_UNSUPPORTED":
                pytest.skip("this core network cannot send a Cancel-Location on request")
            assert (exc.code, exc.retryable) == ("CORE_UNKNOWN_IMSI", False)
        else:
            raise AssertionError("an unknown IMSI was refreshed")

    # -------------------------------------------------------------- the invariant, at random

    def test_random_operation_sequences_agree_with_a_simple_model(self, env: Env) -> None:
        run_state_machine_as_test(
            lambda: ModelMachine(env),
            settings=settings(
                max_examples=env.examples,
                stateful_step_count=20,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )

    # -------------------------------------------------------------- concurrency

    def test_concurrent_moves_of_one_number_have_exactly_one_winner(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        targets = self.fresh(env, 6)
        jobs = [
            lambda cn, t=t: cn.move_msisdn(msisdn=msisdn, new_imsi=t, old_imsi=old) for t in targets
        ]
        results = run_threads(env, jobs)
        winners = [t for t, r in zip(targets, results, strict=True) if r is None]
        assert len(winners) == 1, results
        assert sorted(r for r in results if r) == ["CORE_MSISDN_CONFLICT"] * 5
        assert env.cn.imsi_of(msisdn=msisdn) == winners[0]
        assert env.cn.msisdn_of(imsi=old) is None
        assert [env.cn.msisdn_of(imsi=t) for t in targets].count(msisdn) == 1

    def test_concurrent_identical_moves_all_succeed(self, env: Env) -> None:
        old, msisdn = self.bound(env)
        (new,) = self.fresh(env)
        move = lambda cn: cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)  # noqa: E731
        assert run_threads(env, [move] * 6) == [None] * 6
        assert env.cn.imsi_of(msisdn=msisdn) == new
        assert env.cn.msisdn_of(imsi=old) is None

    def test_concurrent_random_moves_keep_exactly_one_holder(self, env: Env) -> None:
        first, msisdn = self.bound(env)
        pool = [first, *self.fresh(env, 3)]

        def shuffle(cn: Any, seed: int) -> None:
            for step in range(15):
                holder = cn.imsi_of(msisdn=msisdn)
                target = pool[(seed + step) % len(pool)]
                move = partial(cn.move_msisdn, msisdn=msisdn, new_imsi=target, old_imsi=holder)
                code = outcome(move, retries=20)
                assert code in (None, "CORE_MSISDN_CONFLICT"), code

        results = run_threads(env, [lambda cn, s=s: shuffle(cn, s) for s in range(4)])
        assert results == [None] * 4
        holders = [i for i in pool if env.cn.msisdn_of(imsi=i) == msisdn]
        assert holders == [env.cn.imsi_of(msisdn=msisdn)]


def run_threads(env: Env, jobs: list[Callable[[Any], object]]) -> list[str | None]:
    """Run each job on its own client, all started together; each result is outcome().

    Retryable errors (CORE_BUSY: lock contention, or on osmo-hlr a number seen
    moving) are retried as the job runner would; what is left is the answer.
    """
    barrier = threading.Barrier(len(jobs))
    results: list[str | None] = [None] * len(jobs)
    failures: list[BaseException] = []

    def run(i: int, job: Callable[[Any], object]) -> None:
        cn = env.peer()
        try:
            barrier.wait(timeout=10)
            results[i] = outcome(lambda: job(cn), retries=20)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if failures:
        raise failures[0]
    return results


# ------------------------------------------------------------------ the model


class ModelMachine(RuleBasedStateMachine):
    """Random operations on a few IMSIs and numbers, checked against plain dicts."""

    def __init__(self, env: Env) -> None:
        super().__init__()
        self.env = env
        self.imsis = [new_imsi() for _ in range(4)]
        self.msisdns = [new_msisdn() for _ in range(2)]
        self.subs: dict[str, dict[str, Any]] = {}

    def holder(self, msisdn: str) -> str | None:
        return next((i for i, s in self.subs.items() if s["msisdn"] == msisdn), None)

    def expected_move(self, msisdn: str, new: str, old: str | None) -> str | None:
        if new not in self.subs or (old is not None and old not in self.subs):
            return "CORE_UNKNOWN_IMSI"
        holder = self.holder(msisdn)
        if holder == new:
            return None
        if self.subs[new]["retired"]:
            return "CORE_IMSI_RETIRED"
        if holder is not None and holder != old:
            return "CORE_MSISDN_CONFLICT"
        if self.subs[new]["msisdn"] is not None:
            return "CORE_IMSI_HAS_OTHER_MSISDN"
        if holder is not None:
            self.subs[holder]["msisdn"] = None
        self.subs[new]["msisdn"] = msisdn
        return None

    @rule(i=st.integers(0, 3))
    def provision(self, i: int) -> None:
        imsi = self.imsis[i]
        self.env.provision(imsi)
        self.subs.setdefault(imsi, {"msisdn": None, "enabled": True, "retired": False})

    @rule(m=st.integers(0, 1), new=st.integers(0, 3), old=st.none() | st.integers(0, 3))
    def move(self, m: int, new: int, old: int | None) -> None:
        msisdn, new_imsi = self.msisdns[m], self.imsis[new]
        old_imsi = None if old is None else self.imsis[old]
        expected = self.expected_move(msisdn, new_imsi, old_imsi)
        actual = outcome(
            lambda: self.env.cn.move_msisdn(msisdn=msisdn, new_imsi=new_imsi, old_imsi=old_imsi)
        )
        assert actual == expected

    @rule(i=st.integers(0, 3), op=st.sampled_from(["suspend", "resume", "retire"]))
    def access(self, i: int, op: str) -> None:
        imsi = self.imsis[i]
        sub = self.subs.get(imsi)
        expected: str | None = None
        if sub is None:
            expected = "CORE_UNKNOWN_IMSI"
        elif op == "suspend":
            sub["enabled"] = False
        elif op == "resume" and sub["retired"]:
            expected = "CORE_IMSI_RETIRED"
        elif op == "resume":
            sub["enabled"] = True
        elif not sub["retired"] and sub["msisdn"] is not None:
            expected = "CORE_MSISDN_STILL_BOUND"
        else:
            sub["enabled"], sub["retired"] = False, True
        actual = outcome(lambda: getattr(self.env.cn, f"{op}_imsi")(imsi=imsi))
        assert actual == expected

    @invariant()
    def agrees_with_the_model(self) -> None:
        cn = self.env.cn
        for msisdn in self.msisdns:
            holder = cn.imsi_of(msisdn=msisdn)
            assert holder == self.holder(msisdn)
            # At most one IMSI claims the number, and the one that does agrees.
            claims = [i for i in self.subs if cn.msisdn_of(imsi=i) == msisdn]
            assert claims == ([] if holder is None else [holder])
        for imsi, sub in self.subs.items():
            assert cn.is_enabled(imsi=imsi) is (sub["enabled"] and not sub["retired"])
            assert not (sub["retired"] and cn.msisdn_of(imsi=imsi) is not None)


# ------------------------------------------------------------------ the adapters


class TestFakeCoreNetwork(CoreNetworkContract):
    @pytest.fixture
    def env(self) -> Env:
        cn = FakeCoreNetwork()
        provision = lambda i: cn.provision_imsi(imsi=i)  # noqa: E731
        attach = lambda i: cn.record_attach(imsi=i)  # noqa: E731
        return Env(
            cn=cn,
            peer=lambda: cn,
            provision=provision,
            examples=100,
            attach=attach,
            detached=lambda i: detach_events(cn, i),
        )


class TestBuiltinCoreNetwork(CoreNetworkContract):
    @pytest.fixture
    def env(self, db_url: str) -> Iterator[Env]:
        engine = sa.create_engine(db_url)
        CORENET_METADATA.create_all(engine)
        cn = BuiltinCoreNetwork(engine)
        yield Env(
            cn=cn,
            peer=lambda: BuiltinCoreNetwork(engine),
            provision=lambda i: cn.provision_imsi(imsi=i),
            attach=lambda i: cn.record_attach(imsi=i),
            detached=lambda i: detach_events(cn, i),
        )
        engine.dispose()


def detach_events(cn: FakeCoreNetwork | BuiltinCoreNetwork, imsi: str) -> bool:
    """What the built-in and fake cores tell the network: an ``imsi.detached`` event
    (access taken away) or ``imsi.refreshed`` (a Cancel-Location on request)."""
    drops = (rules.EV_DETACHED, rules.EV_REFRESHED)
    return any(e.operation in drops for e in cn.events(imsi=imsi))


@pytest.fixture(scope="module")
def osmo_hlr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OsmoHlrEndpoint]:
    binary = osmo_hlr_binary()
    workdir: Path = tmp_path_factory.mktemp("osmo-hlr")
    with OsmoHlrProcess(workdir, binary=binary) as endpoint:
        yield endpoint


class TestOsmoHlrCoreNetwork(CoreNetworkContract):
    @pytest.fixture
    def env(self, osmo_hlr: OsmoHlrEndpoint) -> Iterator[Env]:
        clients: list[OsmoHlrCoreNetwork] = []

        def client() -> OsmoHlrCoreNetwork:
            clients.append(
                OsmoHlrCoreNetwork(osmo_hlr.host, osmo_hlr.ctrl_port, vty_port=osmo_hlr.vty_port)
            )
            return clients[-1]

        cn = client()

        def provision(imsi: str) -> None:
            # Stock intake: a new record gets its SIM's keys (the HLR reads a
            # record without keys and without access as retired).
            created = cn.subscriber(imsi=imsi) is None
            cn.provision_imsi(imsi=imsi)
            if created:
                cn.set_milenage_keys(imsi=imsi, k="00" * 16, opc="11" * 16)

        # A serving MSC/VLR over GSUP: its UpdateLocation registers a phone, and it
        # records the Delete-Subscriber-Data osmo-hlr sends when access goes away.
        vlr = FakeVlr(osmo_hlr.host, osmo_hlr.gsup_port).start()

        def detached(imsi: str) -> bool:
            flush = new_imsi()  # answered after anything queued before it
            provision(flush)
            vlr.attach(flush)
            return bool(vlr.deletes_for(imsi))

        yield Env(
            cn=cn,
            peer=client,
            provision=provision,
            has_holds=False,
            attach=vlr.attach,
            detached=detached,
        )
        vlr.stop()
        for c in clients:
            c.close()
