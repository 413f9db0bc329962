"""The database stops answering mid-test (issue 13, finding 13), over real HTTP.

Before: a plain-text "Internal Server Error" (500) that clients could not tell
from a bug. Now: 503 with ``Retry-After`` and a JSON body, in CAMARA's format
on the CAMARA paths. PostgreSQL: the test's database is dropped WITH (FORCE)
(its connections are killed, new ones are refused). SQLite: the file is
moved away and a directory put in its place, and the pools drop their
connections (as after any restart of the process's view of the file).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db.engine import create_read_engine
from resim.bootstrap import build_camara
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.api.errors import DB_RETRY_AFTER_SECONDS
from resim.entrypoints.serving import ServerThread
from resim.settings import Settings
from testdb import drop_pg_database

pytestmark = pytest.mark.integration
__all__ = ["system"]


@dataclass
class Running:
    http: httpx.Client
    read_engine: sa.Engine
    camara_token: str


@pytest.fixture
def running(system: System, db_url: str, tmp_path: Path) -> Iterator[Running]:
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
        public_base_url="https://api.resim.test",
    )
    read_engine = create_read_engine(settings.effective_database_url, pool_size=2)
    runtime = build_camara(settings, clock=system.clock, read_engine=read_engine)
    assert runtime.issuer is not None
    token = runtime.issuer.issue(
        scopes=("sim-swap",), client_id="bank-1", now=system.clock.now(), ttl_seconds=3600
    )
    server = ServerThread(build_app(system.ctx, ApiConfig(camara=runtime))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Running(http, read_engine, token)
    finally:
        server.stop()
        read_engine.dispose()


def stop_the_database(db_url: str, *engines: sa.Engine) -> None:
    url = sa.make_url(db_url)
    if url.get_backend_name() == "postgresql":
        assert url.database is not None
        drop_pg_database(url.database)
        return
    assert url.database is not None
    path = Path(url.database)
    for suffix in ("", "-wal", "-shm"):
        moved = Path(str(path) + suffix)
        if moved.exists():
            shutil.move(moved, str(moved) + ".gone")
    path.mkdir()  # "unable to open database file"
    for engine in engines:
        engine.dispose()


class TestADatabaseOutageIsA503WithRetryAfter:
    def test_api_camara_and_pages_answer_503_json_while_the_database_is_gone(
        self, system: System, running: Running, db_url: str
    ) -> None:
        msisdn, _, _, _ = add_line(system, 1)
        http = running.http
        key = bearer(client_key(system.ctx, "requests:read"))
        camara = {"Authorization": f"Bearer {running.camara_token}"}
        check = {"phoneNumber": msisdn, "maxAge": 240}
        assert http.get("/v1/requests", headers=key).status_code == 200
        assert http.post("/sim-swap/v2/check", json=check, headers=camara).status_code == 200

        stop_the_database(db_url, system.engine, running.read_engine)

        listed = http.get("/v1/requests", headers=key)
        assert listed.status_code == 503, listed.text
        assert listed.headers["retry-after"] == str(DB_RETRY_AFTER_SECONDS)
        assert listed.headers["content-type"].startswith("application/json")
        assert listed.json() == {
            "code": "DATABASE_UNAVAILABLE",
            "message": "the database is not answering; try again shortly",
        }
        opened = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"})
        assert opened.status_code == 503 and opened.json()["code"] == "DATABASE_UNAVAILABLE"

        asked = http.post("/sim-swap/v2/check", json=check, headers=camara)
        assert asked.status_code == 503, asked.text
        assert asked.headers["retry-after"] == str(DB_RETRY_AFTER_SECONDS)
        assert asked.headers.get("x-correlator")
        body = asked.json()
        assert (body["status"], body["code"]) == (503, "UNAVAILABLE")
        assert "database" in body["message"]

        page = http.get("/portal/requests/00000000-0000-0000-0000-000000000000")
        assert page.status_code == 503 and page.headers["retry-after"]
        assert http.get("/ready").status_code == 503
        assert http.get("/health").status_code == 200  # the process itself is alive

    def test_camara_reads_come_back_with_the_database(
        self, system: System, running: Running, db_url: str
    ) -> None:
        url = sa.make_url(db_url)
        if url.get_backend_name() != "postgresql":
            pytest.skip("a server that drops connections and comes back: PostgreSQL only")
        msisdn, _, _, _ = add_line(system, 2)
        camara = {"Authorization": f"Bearer {running.camara_token}"}
        check = {"phoneNumber": msisdn, "maxAge": 240}
        assert (
            running.http.post("/sim-swap/v2/check", json=check, headers=camara).status_code == 200
        )
        admin = sa.create_engine(
            url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )
        with admin.connect() as conn:  # a restart, as the pooled connections see it
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": url.database},
            )
        admin.dispose()
        lost = running.http.post("/sim-swap/v2/check", json=check, headers=camara)
        assert lost.status_code == 503 and lost.json()["code"] == "UNAVAILABLE"
        # The dead connection was dropped from the pool, not handed out again.
        again = running.http.post("/sim-swap/v2/check", json=check, headers=camara)
        assert again.status_code == 200, again.text
