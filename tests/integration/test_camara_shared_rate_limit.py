"""The CAMARA rate limit holds across API processes (issue 15 item 4).

Each API process used to keep its own token buckets, so N processes allowed a
client N times the rate. The buckets now live in the database
(``camara_rate_bucket``, one atomic upsert per take). Proved on SQLite and
PostgreSQL with two app instances, each with its own engine and pool, serving
one database over real HTTP; with threads racing on both; and with the
in-process fallback when the database cannot answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from camara_support import Camara, camara_settings, serve_camara
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db.rate_buckets import DatabaseRateLimiter, create_bucket_engine
from resim.entrypoints.camara.ratelimit import RateLimiter, SharedRateLimiter

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, at: float = 1_800_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def engines(system: System, db_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two engines (two pools), as two API processes would have; ``system`` migrates."""
    one, two = create_bucket_engine(db_url, pool_size=8), create_bucket_engine(db_url, pool_size=8)
    yield one, two
    one.dispose()
    two.dispose()


class TestBucketsInTheDatabase:
    def test_two_processes_share_one_bucket(self, engines: tuple[sa.Engine, sa.Engine]) -> None:
        clock = Clock()
        a, b = (DatabaseRateLimiter(e, rate=1.0, burst=3, clock=clock) for e in engines)
        taken = [lim.take("bank-1") for lim in (a, b, a, b, a, b)]
        assert taken[:3] == [None, None, None]  # the burst, once for both
        assert all(wait is not None and 0 < wait <= 1.0 for wait in taken[3:])
        clock.at += 2.0  # two tokens back
        assert [b.take("bank-1"), a.take("bank-1"), b.take("bank-1")][:2] == [None, None]
        assert a.take("bank-1") is not None

    def test_clients_have_their_own_buckets(self, engines: tuple[sa.Engine, sa.Engine]) -> None:
        clock = Clock()
        a, b = (DatabaseRateLimiter(e, rate=1.0, burst=1, clock=clock) for e in engines)
        assert a.take("bank-1") is None
        assert b.take("bank-2") is None
        assert a.take("bank-2") is not None and b.take("bank-1") is not None
        assert a.take("x" * 500) is None  # stored by its digest
        assert b.take("x" * 500) is not None

    def test_a_clock_behind_never_drains_the_bucket(
        self, engines: tuple[sa.Engine, sa.Engine]
    ) -> None:
        ahead, behind = Clock(), Clock(1_800_000_000.0 - 30)
        a = DatabaseRateLimiter(engines[0], rate=1.0, burst=2, clock=ahead)
        b = DatabaseRateLimiter(engines[1], rate=1.0, burst=2, clock=behind)
        assert a.take("bank-1") is None
        assert b.take("bank-1") is None  # no negative refill: one token was left
        assert a.take("bank-1") is not None

    def test_racing_threads_of_two_processes_take_exactly_the_burst(
        self, engines: tuple[sa.Engine, sa.Engine]
    ) -> None:
        clock = Clock()  # frozen: no refill, so exactly ``burst`` takes may succeed
        limiters = [DatabaseRateLimiter(e, rate=0.001, burst=25, clock=clock) for e in engines]
        granted: list[bool] = []
        lock = threading.Lock()
        start = threading.Barrier(8)

        def hammer(limiter: DatabaseRateLimiter) -> None:
            start.wait()
            for _ in range(10):
                ok = limiter.take("bank-1") is None
                with lock:
                    granted.append(ok)

        threads = [threading.Thread(target=hammer, args=(limiters[i % 2],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(granted) == 80
        assert sum(granted) == 25


class TestFallback:
    def test_an_unreachable_database_falls_back_to_the_process_bucket(self) -> None:
        broken = DatabaseRateLimiter(
            sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"), rate=1.0, burst=2
        )
        limiter = SharedRateLimiter(broken, RateLimiter(rate=1.0, burst=2, monotonic=lambda: 0.0))
        assert [limiter.take("bank-1") is None for _ in range(3)] == [True, True, False]


def _served(
    ctx_system: System, db_url: str, data_dir: Path, **overrides: object
) -> Iterator[Camara]:
    settings = camara_settings(db_url, data_dir, **overrides)
    yield from serve_camara(ctx_system.ctx, settings)


class TestTwoApiInstances:
    """Two apps (each its own engines, limiter and server thread) on one database."""

    def _calls(self, system: System, db_url: str, tmp_path: Path, *, shared: bool) -> list[int]:
        msisdn, _, _, _ = add_line(system, 11)
        limits = {
            "camara_rate_per_second": 0.01,
            "camara_burst": 4,
            "camara_rate_limit_shared": shared,
        }
        first = _served(system, db_url, tmp_path, **limits)
        second = _served(system, db_url, tmp_path, **limits)
        one, two = next(first), next(second)
        try:
            token = one.token("sim-swap:check", client="bank-1")
            body = {"phoneNumber": msisdn}
            return [api.post("/check", body, token).status_code for api in (one, two) * 5]
        finally:
            first.close()
            second.close()

    def test_together_they_allow_the_rate_once(
        self, system: System, db_url: str, tmp_path: Path
    ) -> None:
        statuses = self._calls(system, db_url, tmp_path, shared=True)
        assert statuses.count(200) == 4  # the burst, once
        assert statuses[4:] == [429] * 6

    def test_per_process_buckets_would_allow_it_twice(
        self, system: System, db_url: str, tmp_path: Path
    ) -> None:
        """What RESIM_CAMARA_RATE_LIMIT_SHARED=false still does (and all of resim did)."""
        statuses = self._calls(system, db_url, tmp_path, shared=False)
        assert statuses.count(200) == 8

    def test_a_refusal_says_when_to_come_back(
        self, system: System, db_url: str, tmp_path: Path
    ) -> None:
        msisdn, _, _, _ = add_line(system, 12)
        served = _served(system, db_url, tmp_path, camara_rate_per_second=0.5, camara_burst=1)
        api = next(served)
        try:
            token = api.token("sim-swap:check", client="bank-9")
            assert api.post("/check", {"phoneNumber": msisdn}, token).status_code == 200
            refused = api.post("/check", {"phoneNumber": msisdn}, token)
            assert (refused.status_code, refused.json()["code"]) == (429, "TOO_MANY_REQUESTS")
            assert 1 <= int(refused.headers["retry-after"]) <= 2
        finally:
            served.close()
