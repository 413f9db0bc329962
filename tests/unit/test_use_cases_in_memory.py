"""Use cases on the in-memory unit of work (resim.adapters.memory): no database.

The use cases here read and write only through the repositories, so they run
on a MemoryStore in microseconds; the same cases run on SQLite and PostgreSQL
in the integration tests.
"""

from __future__ import annotations

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
from resim.domain.policy import BrandPolicy
from resim.errors import Conflict, NotFound
from resim.services.access.tenancy import Scope
from resim.services.context import FrozenClock, ServiceContext
from resim.services.locks import locks
from resim.services.onboarding import seed
from resim.services.replacement import queries

NUMBER = "+4520123401"


def memory_context(store: MemoryStore) -> ServiceContext:
    clock = FrozenClock()
    return ServiceContext(
        uow_factory=memory_uow_factory(store),
        clock=clock,
        secrets=SecretBox([SecretBox.generate_key()]),
        otp_pepper=b"pepper",
        smdp=FakeSmdpClient(),
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
