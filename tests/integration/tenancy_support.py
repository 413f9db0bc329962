"""Two brands, each with lines and requests in several states, and each brand's
staff and API clients: for the tenancy tests (DESIGN.md, "Tenancy"; issue 13,
finding 1).

Built on the ``system`` fixture of test_replacement_flow (brand "dk"), through
the real services, so the objects are what production makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from identity_support import bearer, client_key, signed_in
from test_replacement_flow import System, iccid, imsi

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.domain.workflow import State
from resim.entrypoints.api.access import SCOPES, Principal
from resim.services.onboarding import seed
from resim.services.replacement import requests

OWN, OTHER = "dk", "no"
_PREFIX = {OWN: "+45301", OTHER: "+47401"}  # apart from add_line's +45201 numbers


def add_other_brand(system: System) -> None:
    """A second brand, "no" (Norway), with eSIM stock at the same SM-DP+."""
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            OTHER,
            "Fjordlinje",
            "NO",
            "NOK",
            "nb",
            "Europe/Oslo",
            BrandPolicy(verification=email_code_alone()),
        ),
    )
    stock = [(iccid(), imsi()) for _ in range(5)]
    seed.add_stock(system.ctx, brand_id=OTHER, profile_type="default", profiles=stock)
    system.smdp.add_stock("default", [i for i, _ in stock])


def add_brand_line(system: System, brand_id: str, n: int, **kw: Any) -> tuple[str, str]:
    """A line of ``brand_id`` with an active eSIM: (msisdn, e-mail on file)."""
    msisdn = f"{_PREFIX[brand_id]}{n:05d}"
    email = f"{brand_id}-{n}@example.test"
    seed.add_line(
        system.ctx,
        seed.LineSpec(
            brand_id=brand_id,
            msisdn=msisdn,
            name=f"Customer {brand_id} {n}",
            email=email,
            iccid=iccid(),
            imsi=imsi(),
            **kw,
        ),
    )
    return msisdn, email


def open_request(system: System, msisdn: str, email: str, *, verify: bool = True) -> str:
    """A request on the line, verified with the e-mailed code unless ``verify`` is False."""
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    system.run_jobs()
    if verify:
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
    return opened.id


@dataclass(frozen=True)
class BrandObjects:
    """One brand's lines and requests, each request in a known state."""

    brand_id: str
    msisdn: str  # a line with an open, unverified request (``requested``)
    requested: str
    held: str  # in_review: held for a reviewer (recent e-mail change)
    held_msisdn: str
    ready: str  # ready: its activation code can be read and installed
    ready_msisdn: str
    completed: str  # completed: a SIM change record exists
    completed_msisdn: str

    @property
    def request_ids(self) -> set[str]:
        return {self.requested, self.held, self.ready, self.completed}


def brand_objects(system: System, brand_id: str, first: int) -> BrandObjects:
    """Lines ``first`` .. ``first + 3`` of the brand, with a request in each state."""
    msisdn, email = add_brand_line(system, brand_id, first)
    requested = open_request(system, msisdn, email, verify=False)
    held_msisdn, held_email = add_brand_line(
        system, brand_id, first + 1, email_changed_at=system.clock.now()
    )
    held = open_request(system, held_msisdn, held_email)
    ready_msisdn, ready_email = add_brand_line(system, brand_id, first + 2)
    ready = open_request(system, ready_msisdn, ready_email)
    done_msisdn, done_email = add_brand_line(system, brand_id, first + 3)
    completed = open_request(system, done_msisdn, done_email)
    system.install(completed)
    system.run_jobs()
    made = BrandObjects(
        brand_id,
        msisdn,
        requested,
        held,
        held_msisdn,
        ready,
        ready_msisdn,
        completed,
        done_msisdn,
    )
    states = request_states(system, made.request_ids)
    assert states == {
        requested: State.REQUESTED,
        held: State.IN_REVIEW,
        ready: State.READY,
        completed: State.COMPLETED,
    }, states
    return made


def request_states(system: System, ids: set[str]) -> dict[str, State]:
    r = orm.replacement_request
    with system.engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.id, r.c.state).where(r.c.id.in_(ids))).all()
    return {rid: State(state) for rid, state in rows}


Callers = dict[str, tuple[Principal, dict[str, str]]]


def brand_callers(system: System, brand_id: str | None) -> Callers:
    """Every staff role and one API client per scope, limited to ``brand_id``
    (None: operator-wide), keyed "agent", "reviewer", "admin", "client:<scope>"."""
    callers: Callers = {}
    for role in ("agent", "reviewer", "admin"):
        token, staff_id = signed_in(system.ctx, role, brand_id=brand_id)
        principal = Principal(kind="staff", id=staff_id, role=role, brand_id=brand_id)
        callers[role] = (principal, bearer(token))
    for scope in SCOPES:
        key = client_key(system.ctx, scope, brand_id=brand_id)
        principal = Principal(kind="client", scopes=frozenset({scope}), brand_id=brand_id)
        callers[f"client:{scope}"] = (principal, bearer(key))
    return callers


def snapshot(system: System) -> dict[str, Any]:
    """What a caller acting on someone else's objects could change: requests, lines,
    identity checks, SIM changes, customer sessions, jobs, the core network's bindings."""
    r, line, sc = orm.replacement_request, orm.line, orm.sim_change

    def rows(conn: sa.Connection, stmt: Any) -> list[tuple[Any, ...]]:
        return sorted((tuple(row) for row in conn.execute(stmt)), key=repr)

    def count(conn: sa.Connection, table: sa.Table) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    with system.engine.connect() as conn:
        return {
            "requests": rows(
                conn,
                sa.select(
                    r.c.id,
                    r.c.line_id,
                    r.c.state,
                    r.c.updated_at,
                    r.c.approvals,
                    r.c.reviewed_by,
                    r.c.new_iccid,
                    r.c.otp_hash,
                    r.c.otp_attempts,
                ),
            ),
            "lines": rows(
                conn,
                sa.select(
                    line.c.id,
                    line.c.subscriber_id,
                    line.c.sim_change_locked,
                    line.c.unlock_effective_at,
                    line.c.unlock_otp_hash,
                ),
            ),
            "sim_changes": rows(conn, sa.select(sc.c.line_id, sc.c.new_iccid)),
            "identity_checks": count(conn, orm.identity_check),
            "sessions": count(conn, orm.auth_session),
            "jobs": count(conn, orm.job),
            "core": rows(
                conn,
                sa.select(orm.sim.c.iccid, orm.sim.c.state, orm.sim.c.bound_line_id),
            ),
        }
