"""SQLite writers queue at the write gate and are let in when the holder ends
(``adapters/db/write_gate.py``), without losing the busy error at the lock
timeout or waiting for themselves."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from resim.adapters.db import write_gate
from resim.adapters.db.engine import create_engine
from resim.adapters.db.transient import classify


def engine_on(path: Path, *, lock_timeout: float = 5.0) -> sa.Engine:
    """An engine as another process would have one: its own gate and lock file handle."""
    return create_engine(f"sqlite:///{path}", pool_size=2, lock_timeout=lock_timeout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "gate.db"
    engine = engine_on(path)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (who TEXT, at REAL)")
    engine.dispose()
    return path


def write(engine: sa.Engine, who: str, hold: float = 0.0) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (who, time.monotonic()))
        time.sleep(hold)


class TestWritersTakeTurnsAtTheGate:
    def test_a_second_writer_waits_for_the_first_and_goes_in_when_it_commits(
        self, db: Path
    ) -> None:
        first, second = engine_on(db), engine_on(db)
        holding = threading.Event()
        committed: list[float] = []

        def hold() -> None:
            with first.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES ('first', 0)")
                holding.set()
                time.sleep(0.3)
                committed.append(time.monotonic())  # just before its commit

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(5)
        write(second, "second")
        holder.join()
        with second.connect() as conn:
            rows = dict(conn.exec_driver_sql("SELECT who, at FROM t").all())
        assert set(rows) == {"first", "second"}
        assert rows["second"] >= committed[0]  # in after the first let go, not before
        assert Path(f"{db}-writer.lock").exists()
        first.dispose()
        second.dispose()

    def test_many_threads_of_two_engines_all_commit(self, db: Path) -> None:
        engines = [engine_on(db), engine_on(db)]
        threads = [
            threading.Thread(
                target=lambda e=engines[n % 2], n=n: [write(e, f"{n}:{i}") for i in range(20)]
            )
            for n in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with engines[0].connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 120
        for engine in engines:
            engine.dispose()

    def test_a_rolled_back_writer_lets_the_next_one_in(self, db: Path) -> None:
        first, second = engine_on(db, lock_timeout=1.0), engine_on(db, lock_timeout=1.0)
        with pytest.raises(RuntimeError), first.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES ('gone', 0)")
            raise RuntimeError("rolled back")
        write(second, "next")
        write(first, "again")
        with first.connect() as conn:
            assert sorted(r[0] for r in conn.exec_driver_sql("SELECT who FROM t")) == [
                "again",
                "next",
            ]


class TestWaitsStayBounded:
    def test_a_writer_held_up_past_the_lock_timeout_is_told_the_database_is_busy(
        self, db: Path
    ) -> None:
        holder, waiter = engine_on(db), engine_on(db, lock_timeout=0.3)
        holding, done = threading.Event(), threading.Event()

        def hold() -> None:
            with holder.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES ('holder', 0)")
                holding.set()
                done.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        assert holding.wait(5)
        started = time.monotonic()
        try:
            with pytest.raises(sa.exc.OperationalError) as caught:
                write(waiter, "late")
        finally:
            done.set()
            thread.join()
        assert time.monotonic() - started < 5
        kind = classify(caught.value)
        assert kind is not None and kind.reason == "busy"
        write(waiter, "after")  # the gate is free again for the one that gave up

    def test_a_write_opened_inside_another_on_the_same_thread_fails_busy_not_hangs(
        self, db: Path
    ) -> None:
        outer, inner = engine_on(db), engine_on(db, lock_timeout=0.3)
        with outer.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES ('outer', 0)")
            with pytest.raises(sa.exc.OperationalError):
                write(inner, "inner")
        write(inner, "inner")


def test_an_in_memory_database_has_no_lock_file() -> None:
    assert write_gate.lock_path(":memory:") is None
    assert write_gate.lock_path("") is None
    assert write_gate.lock_path(None) is None
    assert write_gate.lock_path("/data/resim.db") == "/data/resim.db-writer.lock"
