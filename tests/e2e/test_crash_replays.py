"""Deterministic replays of what the crash test (``test_crash.py``) found.

Each test kills a job at one chosen point and lets it resume, on SQLite and
PostgreSQL, in this process: a port (or the secret box, to die after a call
was recorded) raises :class:`Killed`, a BaseException the job runner does not
catch, so the job is left ``running`` with its lease, as after SIGKILL. Moving
the clock past the lease lets the next round of jobs claim it again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.mail.fake import FakeMailer
from resim.adapters.sms.fake import FakeSmsGateway
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.model import SimState
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.domain.workflow import State
from resim.emulator.core import SmdpCore
from resim.emulator.model import ProfileState
from resim.entrypoints.worker import Worker
from resim.services.context import FrozenClock, ServiceContext
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.provisioning import provisioning
from resim.services.replacement import cancel, requests
from resim.settings import Settings

pytestmark = pytest.mark.integration

OTP = "135790"
LEASE = dt.timedelta(seconds=61)  # jobs.run_due_jobs claims with a 60 s lease


class Killed(BaseException):
    """The worker process died here."""


@dataclass
class Rig:
    ctx: ServiceContext
    smdp: SmdpCore
    core: BuiltinCoreNetwork
    clock: FrozenClock
    engine: sa.Engine
    settings: Settings
    lines: int = 0

    def run_jobs(self) -> None:
        jobs.run_due_jobs(self.ctx)

    def die_in_jobs(self) -> None:
        with pytest.raises(Killed):
            jobs.run_due_jobs(self.ctx)

    def restart(self) -> None:
        """A new worker: the dead one's leases run out and its jobs run again."""
        self.clock.advance(LEASE)
        self.run_jobs()

    def add_line(self) -> tuple[str, str, str]:
        self.lines += 1
        n = self.lines
        msisdn, iccid, imsi = f"+45202{n:05d}", _iccid(100 + n), f"2380110{n:08d}"
        seed.add_line(
            self.ctx,
            seed.LineSpec("dk", msisdn, f"Kunde {n}", f"k{n}@example.dk", iccid, imsi),
        )
        return msisdn, iccid, imsi

    def verified(self, reason: str) -> tuple[str, str, str]:
        """A new line with an approved request; returns (request id, old ICCID, old IMSI)."""
        msisdn, iccid, imsi = self.add_line()
        opened = requests.open_request(self.ctx, msisdn=msisdn, reason=reason)
        requests.submit_verification(self.ctx, opened.id, otp=OTP)
        return opened.id, iccid, imsi

    def request(self, rid: str) -> Any:
        t = orm.replacement_request  # every column but the (encrypted) MatchingID
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(*(c for c in t.c if c.name != "matching_id")).where(t.c.id == rid)
            ).one()

    def sim_state(self, iccid: str) -> SimState:
        with self.engine.connect() as conn:
            state = conn.scalar(sa.select(orm.sim.c.state).where(orm.sim.c.iccid == iccid))
        assert state is not None, f"no SIM {iccid}"
        return SimState(state)

    def jobs_of(self, rid: str) -> list[tuple[str, str]]:
        j = orm.job
        with self.engine.connect() as conn:
            return [
                (r.kind, r.state)
                for r in conn.execute(sa.select(j.c.kind, j.c.state).where(j.c.request_id == rid))
            ]


def _iccid(n: int) -> str:
    return iccid_with_check_digit(f"894502{n:012d}")


@pytest.fixture
def rig(db_url: str, tmp_path: Path) -> Iterator[Rig]:
    upgrade(db_url)
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_keys=SecretStr("gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="),
    )
    engine = build_engine(settings, pool_size=10)
    clock = FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    smdp = SmdpCore(smdp_address="smdp.resim.test")
    core = BuiltinCoreNetwork(engine)
    ctx = build_context(
        settings,
        engine=engine,
        smdp=FakeSmdpClient(smdp),
        core=core,
        mailer=FakeMailer(),
        clock=clock,
        sms=FakeSmsGateway(),
    )
    ctx.otp_generator = lambda: OTP
    seed.upsert_brand(
        ctx,
        seed.BrandSpec(
            "dk",
            "Nordlys",
            "DK",
            "DKK",
            "da",
            "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone()),
        ),
    )
    stock = [(_iccid(n), f"23801200{n:07d}") for n in range(1, 5)]
    seed.add_stock(ctx, brand_id="dk", profile_type="default", profiles=stock)
    smdp.add_stock("default", [i for i, _ in stock])
    yield Rig(ctx, smdp, core, clock, engine, settings)
    engine.dispose()


class _Dying:
    """Wraps a port; the first call of ``method`` (for which ``when`` holds, if
    given) dies before or after doing its work."""

    def __init__(
        self, real: Any, method: str, *, after: bool, when: Callable[..., bool] | None = None
    ) -> None:
        self._real, self._method, self._after, self.fired = real, method, after, False
        self._when = when

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._real, name)
        if name != self._method or self.fired:
            return target

        def dying(*args: Any, **kwargs: Any) -> Any:
            if self._when is not None and not self._when(*args, **kwargs):
                return target(*args, **kwargs)
            self.fired = True
            if self._after:
                target(*args, **kwargs)
            raise Killed(name)

        return dying


def _downloads(rig: Rig) -> list[str]:
    return [c.outcome for c in rig.smdp.calls("downloadOrder")]


class TestTheOldSimOfACancelledLostRequest:
    """Issue 12: the loss report its verification opened keeps the SIM barred after the
    cancel, in resim and in the core network, whenever a worker dies."""

    def test_stays_barred_in_resim_and_in_the_core_network(self, rig: Rig) -> None:
        rid, old_iccid, old_imsi = rig.verified("lost")
        rig.run_jobs()
        assert rig.sim_state(old_iccid) == SimState.SUSPENDED
        cancel.cancel(rig.ctx, rid, actor="customer")
        rig.run_jobs()
        assert ("loss.suspend", "done") in rig.jobs_of(rid)
        assert "core.resume_old" not in {kind for kind, _ in rig.jobs_of(rid)}
        assert rig.sim_state(old_iccid) == SimState.SUSPENDED
        assert not rig.core.is_enabled(imsi=old_imsi)

    def test_is_barred_even_when_cancelled_before_the_suspension_ran(self, rig: Rig) -> None:
        rid, old_iccid, old_imsi = rig.verified("stolen")
        cancel.cancel(rig.ctx, rid, actor="customer")
        rig.run_jobs()
        assert rig.sim_state(old_iccid) == SimState.SUSPENDED
        assert not rig.core.is_enabled(imsi=old_imsi)

    def test_is_recorded_barred_when_a_killed_worker_had_suspended_it(self, rig: Rig) -> None:
        rid, old_iccid, old_imsi = rig.verified("lost")
        rig.ctx.core = _Dying(rig.core, "suspend_imsi", after=True)
        rig.die_in_jobs()
        assert not rig.core.is_enabled(imsi=old_imsi)  # barred, but resim never recorded it
        assert rig.sim_state(old_iccid) == SimState.ACTIVE
        cancel.cancel(rig.ctx, rid, actor="customer")
        rig.restart()
        assert rig.sim_state(old_iccid) == SimState.SUSPENDED
        assert not rig.core.is_enabled(imsi=old_imsi)


class TestAProvisioningKilledAndThenCancelled:
    def test_withdraws_an_order_placed_before_the_kill(self, rig: Rig) -> None:
        rid, _, _ = rig.verified("damaged")
        rig.ctx.smdp = _Dying(rig.ctx.smdp, "download_order", after=True)
        rig.die_in_jobs()
        new_iccid = rig.request(rid).new_iccid
        assert rig.smdp.profile(new_iccid).state is ProfileState.ALLOCATED
        cancel.cancel(rig.ctx, rid, actor="customer")
        rig.restart()
        assert rig.smdp.profile(new_iccid).state is ProfileState.AVAILABLE
        assert rig.sim_state(new_iccid) == SimState.IN_STOCK

    def test_gives_back_a_profile_whose_order_never_arrived(self, rig: Rig) -> None:
        rid, _, _ = rig.verified("damaged")
        rig.ctx.smdp = _Dying(rig.ctx.smdp, "download_order", after=False)
        rig.die_in_jobs()  # the attempt row says "started": resim cannot know
        cancel.cancel(rig.ctx, rid, actor="customer")
        rig.restart()
        new_iccid = rig.request(rid).new_iccid
        assert _downloads(rig) == []
        assert rig.smdp.profile(new_iccid).state is ProfileState.AVAILABLE
        assert rig.sim_state(new_iccid) == SimState.IN_STOCK

    def test_gives_back_a_profile_reserved_before_any_call_at_once(self, rig: Rig) -> None:
        rid, _, _ = rig.verified("damaged")
        jobs.claim(rig.ctx, worker_id="w1", limit=10, lease_seconds=60)
        assert provisioning._reserve(rig.ctx, rid)  # then the worker died
        cancel.cancel(rig.ctx, rid, actor="customer")
        rig.restart()
        new_iccid = rig.request(rid).new_iccid
        assert rig.sim_state(new_iccid) == SimState.IN_STOCK
        assert rig.smdp.calls() == []  # nothing to withdraw: the SM-DP+ is not asked


class TestAProvisioningThatResumes:
    def test_after_a_kill_between_confirm_and_ready_ends_ready(self, rig: Rig) -> None:
        rid, _, _ = rig.verified("damaged")
        real = rig.ctx.secrets
        # Dies sealing the activation code (the MatchingID, encrypted earlier, is not it).
        rig.ctx.secrets = _Dying(  # type: ignore[assignment]
            real, "encrypt", after=False, when=lambda text: text.startswith("1$")
        )
        rig.die_in_jobs()  # confirmOrder succeeded and was recorded; ready was not
        assert rig.request(rid).smdp_step == "ordered"
        rig.ctx.secrets = real
        rig.restart()
        assert State(rig.request(rid).state) == State.READY
        assert ("esim.provision", "done") in rig.jobs_of(rid)

    def test_by_a_second_run_does_not_withdraw_the_first_runs_order(self, rig: Rig) -> None:
        """A run whose lease ran out while it waited for the SM-DP+ finds its
        request already made ready by the run that took over; it leaves it."""
        rid, _, _ = rig.verified("damaged")
        claimed = jobs.claim(rig.ctx, worker_id="w1", limit=10, lease_seconds=60)
        job = next(j for j in claimed if j.kind == "esim.provision")
        real = rig.ctx.smdp

        class TakenOverDuringConfirm:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def confirm_order(self, **kwargs: Any) -> Any:
                rig.ctx.smdp = real  # the second run talks to the SM-DP+ directly
                provisioning.provision(rig.ctx, dataclasses.replace(job, attempts=2))
                return real.confirm_order(**kwargs)

        rig.ctx.smdp = TakenOverDuringConfirm()
        provisioning.provision(rig.ctx, job)
        req = rig.request(rid)
        assert State(req.state) == State.READY
        assert rig.smdp.profile(req.new_iccid).state is ProfileState.RELEASED
        assert not [k for k, _ in rig.jobs_of(rid) if k == "esim.cancel_order"]


class TestWithdrawnStock:
    def test_does_not_block_the_next_order(self, rig: Rig) -> None:
        first, _, _ = rig.verified("damaged")
        rig.run_jobs()
        cancel.cancel(rig.ctx, first, actor="customer")  # ready -> withdrawn, back to stock
        rig.run_jobs()
        assert rig.sim_state(rig.request(first).new_iccid) == SimState.IN_STOCK
        second, _, _ = rig.verified("damaged")
        rig.run_jobs()
        assert State(rig.request(second).state) == State.READY
        assert ("esim.provision", "done") in rig.jobs_of(second)


class SlowDownloads:
    """The SM-DP+ takes longer to answer downloadOrder than a job's lease lasts."""

    def __init__(self, real: Any, seconds: float) -> None:
        self._real, self._seconds = real, seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def download_order(self, **kwargs: Any) -> Any:
        time.sleep(self._seconds)
        return self._real.download_order(**kwargs)


class TestTheWorker:
    def test_renews_the_lease_of_a_job_that_outlives_it(self, rig: Rig) -> None:
        ctx = build_context(
            rig.settings,
            engine=rig.engine,
            smdp=SlowDownloads(FakeSmdpClient(rig.smdp), 1.5),
            core=rig.core,
            mailer=FakeMailer(),
            sms=FakeSmsGateway(),
        )  # the system clock: leases run out in real time
        ctx.otp_generator = lambda: OTP
        msisdn, _, _ = rig.add_line()
        opened = requests.open_request(ctx, msisdn=msisdn, reason="damaged")
        requests.submit_verification(ctx, opened.id, otp=OTP)
        worker = Worker(ctx, concurrency=4, lease_seconds=0.5, poll_seconds=0.02)
        thread = threading.Thread(target=worker.run, kwargs={"until_idle": True})
        thread.start()
        thread.join(30)
        assert not thread.is_alive()
        assert State(rig.request(opened.id).state) == State.READY
        assert _downloads(rig) == ["Executed-Success"]  # one run, not two at once
