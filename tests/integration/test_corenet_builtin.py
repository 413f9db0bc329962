"""The built-in core network on real SQLite and PostgreSQL databases.

The contract suite covers the port; here: history and clock, the database's own
guards, atomicity of a move that fails half-way, engines configured like
resim's own, and an unreachable database.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from resim.adapters.corenet import rules
from resim.adapters.corenet.builtin import CORENET_METADATA, BuiltinCoreNetwork
from resim.adapters.corenet.schema import corenet_subscriber
from resim.errors import ExternalError

pytestmark = pytest.mark.integration

OLD, NEW, OTHER = "001010000000001", "001010000000002", "001010000000003"
M = "+4520123456"


class FrozenClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(db_url)
    CORENET_METADATA.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def cn(engine: sa.Engine, clock: FrozenClock) -> BuiltinCoreNetwork:
    cn = BuiltinCoreNetwork(engine, clock)
    cn.provision_imsi(imsi=OLD)
    cn.move_msisdn(msisdn=M, new_imsi=OLD, old_imsi=None)
    cn.provision_imsi(imsi=NEW)
    return cn


class TestHistory:
    def test_a_swap_is_recorded_with_the_clocks_times(
        self, cn: BuiltinCoreNetwork, clock: FrozenClock
    ) -> None:
        t0 = clock.now
        t1 = clock.tick()
        cn.move_msisdn(msisdn=M, new_imsi=NEW, old_imsi=OLD)
        t2 = clock.tick()
        cn.retire_imsi(imsi=OLD)
        assert [(e.imsi, e.msisdn, e.operation, e.at) for e in cn.events()] == [
            (OLD, None, "imsi.provisioned", t0),
            (OLD, M, "msisdn.bound", t0),
            (NEW, None, "imsi.provisioned", t0),
            (OLD, M, "msisdn.unbound", t1),
            (NEW, M, "msisdn.bound", t1),
            (OLD, None, "imsi.retired", t2),
        ]
        assert [e.operation for e in cn.events(imsi=NEW, msisdn=M)] == ["msisdn.bound"]

    def test_repeats_leave_no_trace_and_keep_updated_at(
        self, cn: BuiltinCoreNetwork, clock: FrozenClock
    ) -> None:
        cn.move_msisdn(msisdn=M, new_imsi=NEW, old_imsi=OLD)
        cn.retire_imsi(imsi=OLD)
        events, record = cn.events(), cn.subscriber(imsi=NEW)
        clock.tick()
        cn.provision_imsi(imsi=NEW)
        cn.move_msisdn(msisdn=M, new_imsi=NEW, old_imsi=OLD)
        cn.retire_imsi(imsi=OLD)
        cn.suspend_imsi(imsi=OLD)
        cn.resume_imsi(imsi=NEW)
        assert cn.events() == events
        assert cn.subscriber(imsi=NEW) == record

    def test_holds_and_times_round_trip_as_utc(
        self, cn: BuiltinCoreNetwork, clock: FrozenClock
    ) -> None:
        until = dt.datetime(2030, 5, 2, 14, 0, 0, 654321, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        stamp = clock.tick()
        cn.apply_post_swap_holds(imsi=NEW, sms_hold_until=until, port_out_block_until=None)
        record = cn.subscriber(imsi=NEW)
        assert record is not None
        assert record.sms_hold_until == until
        assert record.sms_hold_until is not None and record.sms_hold_until.tzinfo is dt.UTC
        assert record.port_out_block_until is None
        assert record.updated_at == stamp


class TestDatabaseGuards:
    def test_the_database_refuses_a_second_imsi_for_a_number(self, engine: sa.Engine) -> None:
        now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        row = {"enabled": True, "retired": False, "updated_at": now, "msisdn": M}
        with engine.begin() as conn:
            conn.execute(corenet_subscriber.insert().values(imsi=OLD, **row))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(corenet_subscriber.insert().values(imsi=NEW, **row))

    def test_the_database_refuses_a_retired_imsi_with_a_number(self, engine: sa.Engine) -> None:
        now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                corenet_subscriber.insert().values(
                    imsi=OLD, msisdn=M, enabled=False, retired=True, updated_at=now
                )
            )

    def test_many_imsis_may_have_no_number(self, cn: BuiltinCoreNetwork) -> None:
        cn.provision_imsi(imsi=OTHER)
        assert cn.msisdn_of(imsi=NEW) is None and cn.msisdn_of(imsi=OTHER) is None


def _refuse_binding_on(engine: sa.Engine, imsi: str) -> None:
    """Make the database fail any UPDATE that puts a number on ``imsi``."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON corenet_subscriber "
                f"WHEN NEW.imsi = '{imsi}' AND NEW.msisdn IS NOT NULL "
                "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'refused by test'; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON corenet_subscriber FOR EACH ROW "
                f"WHEN (NEW.imsi = '{imsi}' AND NEW.msisdn IS NOT NULL) "
                "EXECUTE FUNCTION refuse()"
            )


class TestAtomicity:
    def test_a_move_that_fails_after_clearing_the_old_imsi_leaves_the_old_binding(
        self, engine: sa.Engine, cn: BuiltinCoreNetwork
    ) -> None:
        _refuse_binding_on(engine, NEW)
        events = cn.events()
        quick = BuiltinCoreNetwork(engine, max_attempts=2)
        with pytest.raises(ExternalError) as info:
            quick.move_msisdn(msisdn=M, new_imsi=NEW, old_imsi=OLD)
        assert info.value.retryable is True
        assert cn.imsi_of(msisdn=M) == OLD
        assert cn.msisdn_of(imsi=NEW) is None
        assert cn.events() == events

    def test_a_group_made_atomically_takes_effect_whole(self, cn: BuiltinCoreNetwork) -> None:
        until = dt.datetime(2030, 5, 2, tzinfo=dt.UTC)
        before = len(cn.events())
        cn.atomically(
            [
                lambda: cn.provision_imsi(imsi=OTHER),
                lambda: cn.apply_post_swap_holds(
                    imsi=OTHER, sms_hold_until=until, port_out_block_until=None
                ),
                lambda: cn.move_msisdn(msisdn=M, new_imsi=OTHER, old_imsi=OLD),
                lambda: cn.retire_imsi(imsi=OLD),
            ]
        )
        after = cn.subscriber(imsi=OTHER)
        assert after is not None and after.msisdn == M and after.sms_hold_until == until
        old = cn.subscriber(imsi=OLD)
        assert old is not None and old.retired and old.msisdn is None
        # its history rows, written together at the end, in the order of the calls
        history = [(e.operation, e.imsi, e.msisdn) for e in cn.events()[before:]]
        assert [op for op, _imsi, _msisdn in history] == [
            rules.EV_PROVISIONED,
            rules.EV_HOLDS,
            rules.EV_UNBOUND,
            rules.EV_BOUND,
            rules.EV_RETIRED,
        ]
        assert history[3] == (rules.EV_BOUND, OTHER, M)

    def test_a_group_that_fails_half_way_takes_no_effect(self, cn: BuiltinCoreNetwork) -> None:
        events = cn.events()
        with pytest.raises(ExternalError) as info:
            cn.atomically(
                [
                    lambda: cn.provision_imsi(imsi=OTHER),
                    lambda: cn.retire_imsi(imsi=OLD),  # refused: it still holds M
                    lambda: cn.move_msisdn(msisdn=M, new_imsi=OTHER, old_imsi=OLD),
                ]
            )
        assert info.value.retryable is False
        assert cn.subscriber(imsi=OTHER) is None  # the provision before it rolled back
        assert cn.imsi_of(msisdn=M) == OLD
        assert cn.events() == events


class TestLocking:
    def test_concurrent_moves_queue_on_locks_instead_of_failing(self, engine: sa.Engine) -> None:
        # One attempt only: the losers must see the winner's commit (a conflict),
        # not fail on a lock (SQLite without BEGIN IMMEDIATE) or on the UNIQUE
        # index (PostgreSQL without FOR UPDATE), which would be CORE_BUSY.
        cn = BuiltinCoreNetwork(engine, max_attempts=1)
        imsis = [f"0010100000002{i:02d}" for i in range(7)]
        for imsi in imsis:
            cn.provision_imsi(imsi=imsi)
        cn.move_msisdn(msisdn=M, new_imsi=imsis[0], old_imsi=None)
        codes = _race(
            [
                lambda t=t: BuiltinCoreNetwork(engine, max_attempts=1).move_msisdn(
                    msisdn=M, new_imsi=t, old_imsi=imsis[0]
                )
                for t in imsis[1:]
            ]
        )
        assert sorted(codes, key=str) == ["CORE_MSISDN_CONFLICT"] * 5 + [None]
        assert [cn.msisdn_of(imsi=i) for i in imsis].count(M) == 1


def _race(calls: list[Any]) -> list[str | None]:
    codes: list[str | None] = []
    barrier = threading.Barrier(len(calls))

    def run(call: Any) -> None:
        barrier.wait(timeout=10)
        try:
            call()
            codes.append(None)
        except ExternalError as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(codes) == len(calls), "a thread failed or hung"
    return codes


class TestEngines:
    def test_an_engine_that_begins_immediate_itself_works_under_concurrency(
        self, db_url: str
    ) -> None:
        if not db_url.startswith("sqlite"):
            pytest.skip("SQLite engine configuration")
        engine = sa.create_engine(db_url, connect_args={"timeout": 30})

        # Configured as resim's engine does: SQLAlchemy controls transactions.
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        CORENET_METADATA.create_all(engine)
        cn = BuiltinCoreNetwork(engine)
        imsis = [f"0010100000001{i:02d}" for i in range(6)]
        for imsi in imsis:
            cn.provision_imsi(imsi=imsi)
        cn.move_msisdn(msisdn=M, new_imsi=imsis[0], old_imsi=None)
        codes = _race(
            [lambda t=t: cn.move_msisdn(msisdn=M, new_imsi=t, old_imsi=imsis[0]) for t in imsis[1:]]
        )
        assert sorted(codes, key=str) == ["CORE_MSISDN_CONFLICT"] * 4 + [None]
        assert [cn.msisdn_of(imsi=i) for i in imsis].count(M) == 1
        engine.dispose()

    def test_an_unreachable_database_is_a_retryable_error(self, db_url: str) -> None:
        if db_url.startswith("sqlite"):
            url = "sqlite:////nonexistent-dir-for-resim-tests/corenet.db"
        else:
            url = sa.make_url(db_url).set(port=1).render_as_string(hide_password=False)
        engine = sa.create_engine(url)
        cn = BuiltinCoreNetwork(engine, max_attempts=2)
        for call in (
            lambda: cn.provision_imsi(imsi=OLD),
            lambda: cn.imsi_of(msisdn=M),
        ):
            with pytest.raises(ExternalError) as info:
                call()
            assert (info.value.code, info.value.retryable) == ("CORE_UNAVAILABLE", True)
        engine.dispose()


class TestBindMany:
    """Onboarding's bulk binding: a batch of new IMSIs goes in without look-ups
    (PostgreSQL), a batch with IMSIs already there is decided row by row."""

    A, B, C = "001010000000011", "001010000000012", "001010000000013"
    MA, MB, MC = "+4520123411", "+4520123412", "+4520123413"

    def test_a_fresh_batch_then_its_rerun_with_more(
        self, cn: BuiltinCoreNetwork, clock: FrozenClock
    ) -> None:
        t0 = clock.now
        cn.bind_many([(self.A, self.MA, True), (self.B, self.MB, False)])
        before = cn.events()
        clock.tick()
        cn.bind_many([(self.A, self.MA, True), (self.B, self.MB, False), (self.C, self.MC, True)])
        t1 = clock.now
        added = cn.events()[len(before) :]
        assert [(e.imsi, e.msisdn, e.operation, e.at) for e in before[-3:]] == [
            (self.A, self.MA, "msisdn.bound", t0),
            (self.B, self.MB, "msisdn.bound", t0),
            (self.B, self.MB, "imsi.suspended", t0),
        ]
        assert [(e.imsi, e.msisdn, e.operation, e.at) for e in added] == [
            (self.C, self.MC, "msisdn.bound", t1)
        ]
        assert (cn.msisdn_of(imsi=self.B), cn.is_enabled(imsi=self.B)) == (self.MB, False)
        assert (cn.msisdn_of(imsi=self.C), cn.is_enabled(imsi=self.C)) == (self.MC, True)

    def test_a_number_held_by_another_imsi_fails_the_whole_batch(
        self, cn: BuiltinCoreNetwork
    ) -> None:
        events = cn.events()
        with pytest.raises(ExternalError) as exc:
            cn.bind_many([(self.A, self.MA, True), (self.C, M, True)])
        assert exc.value.code == rules.MSISDN_CONFLICT
        assert cn.events() == events
        assert cn.subscriber(imsi=self.A) is None
        assert cn.imsi_of(msisdn=M) == OLD
