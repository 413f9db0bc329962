"""A fresh, migrated and seeded database per back end (not timed).

SQLite: a file in the run's temporary directory. PostgreSQL: a database named
``resim_bench_<hex>`` created on the server behind ``admin_url`` and dropped
(``WITH (FORCE)``) when the block ends, also after a failure.

Seeding writes the state that :func:`resim.services.onboarding.seed.add_line` and
:func:`~resim.services.onboarding.seed.add_stock` leave (subscriber, line, its active
eSIM, the core network record holding the number; eSIM profiles in stock) in
one transaction of bulk inserts: 2,000 lines take about a second this way,
against minutes through one transaction per line.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from resim.adapters.corenet.schema import corenet_subscriber
from resim.adapters.db.migrate import upgrade
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit, normalize_msisdn
from resim.domain.model import Line, Sim, SimForm, SimState, Subscriber
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.entrypoints.api.access import SCOPES
from resim.services.access import api_clients
from resim.services.onboarding import seed
from resim.services.unit_of_work import new_id
from resim.settings import Settings

BRAND = seed.BrandSpec(
    id="bench-dk",
    name="Bench Mobil",
    country="DK",
    currency="DKK",
    language="en",
    timezone="Europe/Copenhagen",
    # no PIN, no fee: an operator-initiated reissue; the e-mail code alone verifies
    policy=BrandPolicy(verification=email_code_alone()),
)
PROFILE_TYPE = BRAND.policy.profile_type
_ISSUER = "894599"  # 89 + Denmark + issuer digits, as in the demo data
_MCC_MNC = "23899"  # a test network code


@dataclass(frozen=True)
class SeededLine:
    msisdn: str
    email: str


@dataclass(frozen=True)
class Seeded:
    lines: list[SeededLine]
    stock_iccids: list[str]
    api_key: str = ""  # the bench BSS's key (requests:write): it opens the requests


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'resim.db'}"


@contextmanager
def fresh_database(backend: str, directory: Path, admin_url: str) -> Iterator[str]:
    """Yield the URL of an empty database of ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        yield sqlite_url(directory)
        return
    name = f"resim_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def msisdn_for(n: int) -> str:
    """The n-th bench number: Danish mobile numbers +4526000000, +4526000001, ..."""
    return normalize_msisdn(f"+45{26_000_000 + n}")


def migrate_and_seed(settings: Settings, count: int) -> Seeded:
    """Migrate to head, then add the brand, ``count`` lines and ``count`` profiles in stock."""
    upgrade(settings.effective_database_url)
    engine = build_engine(settings, pool_size=2)
    ctx = build_context(settings, engine=engine)
    seed.upsert_brand(ctx, BRAND)
    now = ctx.now()
    lines: list[SeededLine] = []
    subscribers: list[Subscriber] = []
    line_rows: list[Line] = []
    active: list[Sim] = []
    stock: list[Sim] = []
    core_rows: list[dict[str, object]] = []
    for n in range(count):
        msisdn = msisdn_for(n)
        email = f"customer{n}@bench.example"
        sub_id, line_id = new_id(), new_id()
        imsi = f"{_MCC_MNC}1{n:09d}"
        subscribers.append(
            Subscriber(
                id=sub_id,
                brand_id=BRAND.id,
                name=f"Customer {n}",
                email=email,
                language=BRAND.language,
                created_at=now,
            )
        )
        line_rows.append(
            Line(id=line_id, msisdn=msisdn, subscriber_id=sub_id, brand_id=BRAND.id, created_at=now)
        )
        active.append(
            Sim(
                iccid=iccid_with_check_digit(f"{_ISSUER}10{n:011d}"),
                imsi=imsi,
                form=SimForm.ESIM,
                state=SimState.ACTIVE,
                brand_id=BRAND.id,
                line_id=line_id,
            )
        )
        stock.append(
            Sim(
                iccid=iccid_with_check_digit(f"{_ISSUER}20{n:011d}"),
                imsi=f"{_MCC_MNC}2{n:09d}",
                form=SimForm.ESIM,
                state=SimState.IN_STOCK,
                brand_id=BRAND.id,
                profile_type=PROFILE_TYPE,
            )
        )
        core_rows.append(_core_row(imsi, msisdn, now))
        lines.append(SeededLine(msisdn, email))
    with ctx.uow() as uow:
        # No ORM relationships: flush parents before children.
        for batch in (subscribers, line_rows, active + stock):
            uow.session.add_all(batch)
            uow.flush()
        uow.session.execute(sa.insert(corenet_subscriber), core_rows)
        uow.commit()
    # The BSS opens requests with its key: an anonymous caller is told nothing,
    # not even the request's id (issue 13, finding 15).
    bss = api_clients.create_client(
        ctx, name="bench BSS", scopes=("requests:write",), known_scopes=SCOPES
    )
    engine.dispose()
    return Seeded(lines=lines, stock_iccids=[s.iccid for s in stock], api_key=bss.key)


def _core_row(imsi: str, msisdn: str, now: dt.datetime) -> dict[str, object]:
    # What BuiltinCoreNetwork.provision_imsi + move_msisdn leave for a bound line.
    return {"imsi": imsi, "msisdn": msisdn, "enabled": True, "retired": False, "updated_at": now}
