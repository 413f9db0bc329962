"""The rig of the unit-of-work and repository contract (``test_repositories*_contract.py``).

``rig`` (exported to the tests by this folder's conftest.py) gives each case a
unit of work on one back end: in memory, SQLite or PostgreSQL; the builders
make domain objects with the defaults the cases share.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

import tools
from resim.adapters.crypto import SecretBox
from resim.adapters.db import orm
from resim.adapters.db.engine import create_engine
from resim.adapters.db.unit_of_work import sql_uow_factory
from resim.adapters.memory import MemoryCall, MemoryStore, memory_uow_factory
from resim.domain.loss import LossReport
from resim.domain.model import (
    Brand,
    Channel,
    Line,
    Reason,
    ReplacementRequest,
    Sim,
    SimChange,
    SimForm,
    SimState,
    Subscriber,
)
from resim.domain.security import IdentityCheck
from resim.domain.workflow import State
from resim.services.unit_of_work import UnitOfWork, new_id
from testdb import PgPool, SqliteTemplate

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Rig:
    uow: Callable[[], UnitOfWork]
    # A peer call's attempt record, as resim.services.outbox.external writes it.
    record_call: Callable[[str, str, str, bool | None], None]
    # How many jobs and audit events are stored, committed.
    jobs: Callable[[], int]


def _backends() -> list[str]:
    chosen = os.environ.get("RESIM_TEST_DB", "sqlite,postgresql")
    return ["memory", *(b.strip() for b in chosen.split(",") if b.strip())]


@pytest.fixture(params=_backends())
def rig(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_skip_reason: str | None,
    sqlite_template: SqliteTemplate,
    pg_pool: PgPool,
) -> Iterator[Rig]:
    if request.param == "memory":
        store = MemoryStore()

        def remember(request_id: str, target: str, state: str, retryable: bool | None) -> None:
            store.calls.append(MemoryCall(new_id(), request_id, target, state, retryable))

        yield Rig(memory_uow_factory(store), remember, lambda: len(store.jobs))
        return
    if request.param == "sqlite":
        url = sqlite_template.copy_to(tmp_path / "resim.db")
    else:
        if pg_skip_reason:
            tools.missing(tools.POSTGRESQL, pg_skip_reason)
        url = pg_pool.take()
    engine = create_engine(url)
    make = sql_uow_factory(
        sessionmaker(engine, expire_on_commit=False), SecretBox([SecretBox.generate_key()])
    )

    def record(request_id: str, target: str, state: str, retryable: bool | None) -> None:
        with make() as uow:
            job = uow.jobs.add("test.call", at=T0, request_id=request_id)
            uow.session.execute(
                sa.insert(orm.external_call).values(
                    id=new_id(),
                    job_id=job,
                    request_id=request_id,
                    target=target,
                    state=state,
                    started_at=T0,
                    retryable=retryable,
                )
            )
            uow.commit()

    def jobs() -> int:
        with engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(orm.job)) or 0)

    try:
        yield Rig(make, record, jobs)
    finally:
        engine.dispose()
        if request.param != "sqlite":
            pg_pool.give_back(url)


# ------------------------------------------------------------------ builders


def brand(id: str = "nordlys") -> Brand:
    return Brand(
        id=id,
        name=id.title(),
        country="DK",
        currency="DKK",
        language="da",
        timezone="Europe/Copenhagen",
        policy={"otp_ttl_minutes": 7},
    )


def subscriber(id: str = "sub-1", brand_id: str = "nordlys") -> Subscriber:
    return Subscriber(
        id=id, brand_id=brand_id, name="Ada", email="ada@example.test", language="da", created_at=T0
    )


def line(id: str = "line-1", msisdn: str = "+4520000001", brand_id: str = "nordlys") -> Line:
    return Line(id=id, msisdn=msisdn, subscriber_id="sub-1", brand_id=brand_id, created_at=T0)


def sim(
    iccid: str,
    *,
    state: SimState = SimState.IN_STOCK,
    line_id: str | None = None,
    form: SimForm = SimForm.ESIM,
    brand_id: str = "nordlys",
    profile_type: str | None = "standard",
) -> Sim:
    return Sim(
        iccid=iccid,
        imsi="2380100" + iccid[-8:],
        form=form,
        state=state,
        brand_id=brand_id,
        line_id=line_id,
        profile_type=profile_type,
    )


def request_(
    id: str = "req-1",
    *,
    line_id: str = "line-1",
    brand_id: str = "nordlys",
    at: dt.datetime = T0,
    actor: str = "bss",
    old_iccid: str | None = "89450000000000000001",
) -> ReplacementRequest:
    return ReplacementRequest(
        id=id,
        line_id=line_id,
        brand_id=brand_id,
        subscriber_id="sub-1",
        msisdn="+4520000001",
        reason=Reason.LOST,
        channel=Channel.API,
        actor=actor,
        created_at=at,
        old_iccid=old_iccid,
    )


def close(req: ReplacementRequest, state: State = State.CANCELLED) -> None:
    req.state = state
    req.open_line_id = None


def seeded(rig: Rig, *extra: object) -> None:
    """A brand, a subscriber, line-1 with its active SIM, and ``extra``."""
    with rig.uow() as uow:
        uow.brands.add(brand())
        uow.flush()
        uow.subscribers.add(subscriber())
        uow.flush()
        uow.lines.add(line())
        uow.flush()
        uow.sims.add(sim("89450000000000000001", state=SimState.ACTIVE, line_id="line-1"))
        uow.flush()
        for obj in extra:
            _add(uow, obj)
            uow.flush()
        uow.commit()


def _add(uow: UnitOfWork, obj: object) -> None:
    adders: dict[type, Callable[[object], None]] = {
        Brand: uow.brands.add,  # type: ignore[dict-item]
        Subscriber: uow.subscribers.add,  # type: ignore[dict-item]
        Line: uow.lines.add,  # type: ignore[dict-item]
        Sim: uow.sims.add,  # type: ignore[dict-item]
        ReplacementRequest: uow.requests.add,  # type: ignore[dict-item]
        SimChange: uow.sim_changes.add,  # type: ignore[dict-item]
        LossReport: uow.loss_reports.add,  # type: ignore[dict-item]
        IdentityCheck: uow.identity_checks.add,  # type: ignore[dict-item]
    }
    adders[type(obj)](obj)
