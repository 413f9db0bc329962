"""Use cases on the in-memory unit of work (resim.adapters.memory): no database.

The use cases here read and write only through the repositories, so they run
on a MemoryStore in microseconds; the same cases run on SQLite and PostgreSQL
in the integration tests.
"""

from __future__ import annotations

import re
import time

import pytest

from resim.adapters.corenet.fake import FakeCoreNetwork
from resim.adapters.courier.fake import FakeCourier
from resim.adapters.crypto import SecretBox
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.events.fake import FakeEventSink
from resim.adapters.events.resolver import FakeResolver
from resim.adapters.mail.fake import FakeMailer
from resim.adapters.memory import MemoryStore, memory_uow_factory
from resim.adapters.sms.fake import FakeSmsGateway
from resim.domain.activation import parse_activation_code
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.domain.workflow import State
from resim.emulator.core import SmdpCore
from resim.errors import Conflict, NotFound
from resim.services.access.tenancy import Scope
from resim.services.context import FrozenClock, ServiceContext
from resim.services.cutover.cutover import handle_download_progress
from resim.services.locks import locks
from resim.services.onboarding import seed
from resim.services.outbox import batch_runner
from resim.services.replacement import queries, requests

NUMBER = "+4520123401"


def memory_context(store: MemoryStore, smdp: SmdpCore | None = None) -> ServiceContext:
    clock = FrozenClock()
    return ServiceContext(
        uow_factory=memory_uow_factory(store),
        clock=clock,
        secrets=SecretBox([SecretBox.generate_key()]),
        otp_pepper=b"pepper-for-memory-tests",
        smdp=FakeSmdpClient(smdp),
        core=FakeCoreNetwork(clock.now),
        mailer=FakeMailer(),
        sms=FakeSmsGateway(),
        courier=FakeCourier(),
        event_sink=FakeEventSink(),
        sink_resolver=FakeResolver(),
        public_base_url="https://resim.test",
        smdp_address="smdp.resim.test",
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def ctx(store: MemoryStore) -> ServiceContext:
    context = memory_context(store)
    seed.upsert_brand(
        context,
        seed.BrandSpec(
            id="nordlys",
            name="Nordlys",
            country="DK",
            currency="DKK",
            language="da",
            timezone="Europe/Copenhagen",
            policy=BrandPolicy(),
        ),
    )
    seed.add_line(
        context,
        seed.LineSpec(
            brand_id="nordlys",
            msisdn=NUMBER,
            name="Ada Lovelace",
            email="ada@example.test",
            iccid="8945010000000000014",
            imsi="238010000000001",
        ),
    )
    return context


class TestSeedingWithoutADatabase:
    def test_a_line_gets_its_active_sim_and_the_core_knows_it(
        self, ctx: ServiceContext, store: MemoryStore
    ) -> None:
        assert queries.list_requests(ctx) == []
        with ctx.uow() as uow:
            line = uow.lines.by_msisdn(NUMBER)
            assert line is not None
            bound = uow.sims.bound_to(line.id)
            assert bound is not None and bound.imsi == "238010000000001"

    def test_the_same_sim_twice_is_a_conflict_and_changes_nothing(
        self, ctx: ServiceContext
    ) -> None:
        with pytest.raises(Conflict):
            seed.add_line(
                ctx,
                seed.LineSpec(
                    brand_id="nordlys",
                    msisdn="+4520123402",
                    name="Bob",
                    email="bob@example.test",
                    iccid="8945010000000000014",
                    imsi="238010000000002",
                ),
            )
        with ctx.uow() as uow:
            assert uow.lines.by_msisdn("+4520123402") is None

    def test_a_number_without_a_sim_is_audited(
        self, ctx: ServiceContext, store: MemoryStore
    ) -> None:
        with ctx.uow() as uow:
            line = uow.lines.by_msisdn(NUMBER)
            assert line is not None
            subscriber_id = line.subscriber_id
        seed.add_number_without_sim(
            ctx, brand_id="nordlys", subscriber_id=subscriber_id, msisdn="+4520123403"
        )
        assert [e.action for e in store.audit] == ["line.reserved"]
        with pytest.raises(Conflict):
            seed.add_number_without_sim(
                ctx, brand_id="nordlys", subscriber_id=subscriber_id, msisdn="+4520123403"
            )


class TestTheSimChangeLock:
    def test_locking_is_audited_once_and_queues_the_notice(
        self, ctx: ServiceContext, store: MemoryStore
    ) -> None:
        status = locks.lock_line(ctx, NUMBER, actor="customer")
        assert status.locked
        locks.lock_line(ctx, NUMBER, actor="customer")  # idempotent
        assert [e.action for e in store.audit] == ["line.locked"]
        assert [j.kind for j in store.jobs.values()] != []
        assert locks.lock_status(ctx, NUMBER).locked

    def test_another_brand_cannot_see_the_line(self, ctx: ServiceContext) -> None:
        with pytest.raises(NotFound):
            locks.lock_line(ctx, NUMBER, actor="staff", scope=Scope.of_brand("other"))


def test_a_use_case_on_the_memory_store_takes_at_most_milliseconds(
    ctx: ServiceContext,
) -> None:
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        locks.lock_status(ctx, NUMBER)
    per_run = (time.perf_counter() - started) / runs
    assert per_run < 0.005, f"{per_run * 1000:.2f} ms per use case"


class TestAWholeReplacementWithoutADatabase:
    """A lost phone's eSIM replacement from request to cut-over, every job run by the
    worker's batched runner (resim.services.outbox.batch_runner), on a MemoryStore:
    the outbox (resim.adapters.memory.outbox) and the CAMARA store in memory too."""

    def test_a_lost_phone_gets_its_number_on_a_new_esim(self) -> None:
        store, smdp = MemoryStore(), SmdpCore(smdp_address="smdp.resim.test")
        ctx = memory_context(store, smdp)
        policy = BrandPolicy(verification=email_code_alone())
        seed.upsert_brand(
            ctx, seed.BrandSpec("dk", "Nordlys", "DK", "DKK", "da", "Europe/Copenhagen", policy)
        )
        stock = [(iccid_with_check_digit(f"894501{n:012d}"), f"23801{n:010d}") for n in (7, 8)]
        seed.add_stock(ctx, brand_id="dk", profile_type="default", profiles=stock)
        smdp.add_stock("default", [iccid for iccid, _imsi in stock])
        old_iccid = iccid_with_check_digit("894501000000000001")
        seed.add_line(
            ctx,
            seed.LineSpec(
                brand_id="dk",
                msisdn=NUMBER,
                name="Kunde",
                email="kunde@example.dk",
                iccid=old_iccid,
                imsi="238010000000001",
            ),
        )
        mailer = ctx.mailer
        assert isinstance(mailer, FakeMailer)

        opened = requests.open_request(ctx, msisdn=NUMBER, reason="lost")
        assert batch_runner.run_due_jobs(ctx) >= 2  # the code mail, the notice, a text
        codes = [m for m in mailer.sent if m.headers.get("X-Resim-Kind") == "one_time_code"]
        found = re.search(r"^\s+(\d{6})\s*$", codes[-1].text, re.M)
        assert found is not None
        assert requests.submit_verification(ctx, opened.id, otp=found.group(1)) == State.APPROVED
        batch_runner.run_due_jobs(ctx)  # order the profile, suspend the old SIM, tell
        view = queries.get_request_view(ctx, opened.id)
        assert (view["state"], view["old_sim_suspended"]) == ("ready", True)

        activation = queries.activation_view(ctx, opened.id, reader="test", via="test")
        code = parse_activation_code(activation["activation_code"])
        for note in smdp.download_and_install(code.matching_id, code.smdp_address):
            handle_download_progress(ctx, note)
        batch_runner.run_due_jobs(ctx)  # the cut-over and the last notice

        assert queries.get_request_view(ctx, opened.id)["state"] == "completed"
        with ctx.uow() as uow:
            line = uow.lines.by_msisdn(NUMBER)
            assert line is not None
            bound = uow.sims.bound_to(line.id)
            assert bound is not None and bound.iccid in {iccid for iccid, _imsi in stock}
            old = uow.sims.get(old_iccid)
            assert old is not None and old.bound_line_id is None
        due = [j for j in store.jobs.values() if j.run_after <= ctx.now()]
        assert {j.kind for j in due} >= {"esim.provision", "core.cutover", "mail.send"}
        assert all(j.state == "done" for j in due)
        later = {j.kind for j in store.jobs.values() if j.run_after > ctx.now()}
        timers = {"esim.reconcile", "request.expire_activation", "request.expire_unverified"}
        assert later <= timers  # each a no-op once the request is completed
        # every peer call has its attempt row, and each one succeeded
        assert {c.target for c in store.calls} >= {
            "es2.downloadOrder",
            "es2.confirmOrder",
            "core.suspend",
            "core.provision",
            "core.move_msisdn",
            "core.retire",
            "mail.send",
        }
        assert {c.state for c in store.calls} == {"succeeded"}
        kinds = sorted(m.headers["X-Resim-Kind"] for m in mailer.sent)
        assert kinds == [
            "esim_ready",
            "one_time_code",
            "replacement_approved",
            "replacement_completed",
            "replacement_requested",
        ]
        assert [e.action for e in store.audit].count("request.completed") == 1
