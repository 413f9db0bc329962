"""Database connection pools are sized by their own settings and checked at start-up
(issue 13, finding 12).

With the old defaults one API process could open 112 PostgreSQL connections
(a pool sized from the *worker's* concurrency, 36 + 36 overflow, plus a CAMARA
read engine of 20 + 20), above PostgreSQL's default max_connections of 100:
under load clients got 500s ("too many clients"). Now each process's pools come
from their own settings (docs/operations.md, "Database connections") and
``resim serve``, ``resim worker`` and ``resim demo`` refuse to start when the
sum for that process exceeds what the server allows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from resim.adapters.db.engine import connection_limit
from resim.bootstrap import build_engine
from resim.entrypoints.cli import app
from resim.entrypoints.demo import start_demo
from resim.errors import ConfigurationError
from resim.pools import api_pool, check_connection_budget, connection_pools, read_pool, worker_pool
from resim.settings import Settings

pytestmark = pytest.mark.integration
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="


def total(settings: Settings, process: str) -> int:
    return sum(p.most for p in connection_pools(settings, process))  # type: ignore[arg-type]


class TestEachProcessSizesItsPoolsFromItsOwnSettings:
    def test_the_defaults_fit_postgresqls_default_limit_with_room_to_spare(self) -> None:
        settings = Settings()
        assert total(settings, "api") == 20 + 10
        assert total(settings, "worker") == 32 + 4
        assert total(settings, "demo") == 36 + 10
        assert max(total(settings, p) for p in ("api", "worker", "demo")) < 100 - 3

    def test_the_api_pool_no_longer_follows_the_workers_concurrency(self) -> None:
        busy = Settings(worker_concurrency=500)
        assert connection_pools(busy, "api") == connection_pools(Settings(), "api")
        assert worker_pool(busy).most == 504

    def test_the_engines_hold_what_the_settings_say(self, tmp_path: Path) -> None:
        settings = Settings(
            data_dir=tmp_path,
            db_pool_size=3,
            db_max_overflow=2,
            worker_db_pool_size=7,
            worker_db_max_overflow=1,
        )
        api = build_engine(settings, pool=api_pool(settings))
        worker = build_engine(settings, pool=worker_pool(settings))
        try:
            assert (api.pool.size(), api.pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]
            assert (worker.pool.size(), worker.pool._max_overflow) == (7, 1)  # type: ignore[attr-defined]
        finally:
            api.dispose()
            worker.dispose()
        assert read_pool(settings).most == 10


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("max_connections is a PostgreSQL setting; SQLite has no server limit")
    return db_url


def env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "RESIM_DATABASE_URL": db_url,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": KEY,
        "RESIM_LOG_LEVEL": "WARNING",
        **extra,
    }


class TestStartUpRefusesPoolsAboveMaxConnections:
    def test_the_check_reads_the_servers_limit(self, pg_url: str) -> None:
        engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
        try:
            limit = connection_limit(engine)
            assert limit is not None
            most, reserved = limit
            settings = Settings(database_url=pg_url)
            pools = connection_pools(settings, "api")
            assert check_connection_budget(engine, pools, process="API") == 30
            assert most - reserved > 30  # the local server: 100 less 3
            big = Settings(database_url=pg_url, db_pool_size=most, db_max_overflow=0)
            with pytest.raises(ConfigurationError) as refused:
                check_connection_budget(engine, connection_pools(big, "api"), process="API")
            assert refused.value.code == "TOO_MANY_DB_CONNECTIONS"
            assert f"max_connections {most}" in refused.value.message
            assert "RESIM_DB_POOL_SIZE" in refused.value.message
        finally:
            engine.dispose()

    def test_sqlite_has_no_limit_to_check(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, db_pool_size=900)
        engine = build_engine(settings)
        try:
            assert connection_limit(engine) is None
            assert check_connection_budget(engine, connection_pools(settings, "api"), process="API")
        finally:
            engine.dispose()

    def test_resim_serve_refuses_to_start(self, pg_url: str, tmp_path: Path) -> None:
        result = CliRunner().invoke(
            app, ["serve"], env=env(pg_url, tmp_path, RESIM_DB_POOL_SIZE="120")
        )
        assert result.exit_code == 2, result.output
        assert "TOO_MANY_DB_CONNECTIONS" in result.stderr
        assert "max_connections" in result.stderr

    def test_resim_worker_refuses_a_concurrency_the_server_cannot_serve(
        self, pg_url: str, tmp_path: Path
    ) -> None:
        result = CliRunner().invoke(
            app, ["worker"], env=env(pg_url, tmp_path, RESIM_WORKER_CONCURRENCY="200")
        )
        assert result.exit_code == 2, result.output
        assert "this worker process may open 204 database connections" in result.stderr

    def test_the_demo_refuses_too(self, pg_url: str, tmp_path: Path) -> None:
        # ``resim demo`` runs on SQLite; start_demo takes another database by URL.
        settings = Settings(data_dir=tmp_path, secret_keys=KEY, read_db_pool_size=200)
        with pytest.raises(ConfigurationError, match="this demo process may open"):
            start_demo(
                settings,
                api_port=0,
                smdp_port=0,
                smtp_port=0,
                sms_port=0,
                database_url=pg_url,
                say=lambda _line: None,
            )
