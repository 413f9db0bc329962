"""A :class:`~resim.services.access.tenancy.Scope` as SQL conditions (see that module).

A list is filtered in the query (never after a LIMIT), so it counts only what
the caller may see.
"""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.services.access.tenancy import Scope

Condition = sa.ColumnElement[bool]


def _all_of(clauses: list[Condition]) -> Condition:
    return sa.and_(sa.true(), *clauses)


def requests_where(scope: Scope, *, bound: bool = False) -> Condition:
    """The SQL condition on ``replacement_request`` rows ``scope`` may see.

    With ``bound``, the scope's values are the parameters ``scope_brand`` and
    ``scope_request`` (:func:`requests_params`), so a statement built once per
    :func:`requests_shape` serves every scope of that shape.
    """
    t = orm.replacement_request
    clauses: list[Condition] = []
    if scope.brand_id is not None:
        brand = sa.bindparam("scope_brand") if bound else scope.brand_id
        clauses.append(t.c.brand_id == brand)
    if scope.customer:
        if scope.request_id:
            own = sa.bindparam("scope_request") if bound else scope.request_id
            clauses.append(t.c.id == own)
        else:
            clauses.append(sa.false())
    return _all_of(clauses)


def requests_shape(scope: Scope) -> tuple[bool, bool, bool]:
    """What decides the form of ``requests_where(scope, bound=True)``."""
    return (scope.brand_id is not None, scope.customer, bool(scope.request_id))


def requests_params(scope: Scope) -> dict[str, str]:
    """The values of ``requests_where(scope, bound=True)``'s parameters."""
    params: dict[str, str] = {}
    if scope.brand_id is not None:
        params["scope_brand"] = scope.brand_id
    if scope.customer and scope.request_id:
        params["scope_request"] = scope.request_id
    return params


def lines_where(scope: Scope) -> Condition:
    """The SQL condition on ``line`` rows ``scope`` may see."""
    t = orm.line
    clauses: list[Condition] = []
    if scope.brand_id is not None:
        clauses.append(t.c.brand_id == scope.brand_id)
    if scope.customer:
        clauses.append(t.c.id == scope.line_id if scope.line_id else sa.false())
    return _all_of(clauses)


def sim_changes_where(scope: Scope) -> Condition:
    """The SQL condition on ``sim_change`` rows ``scope`` may see (by their line)."""
    if scope.unrestricted:
        return sa.true()
    visible_lines = sa.select(orm.line.c.id).where(lines_where(scope))
    return orm.sim_change.c.line_id.in_(visible_lines)


def alerts_where(scope: Scope) -> Condition:
    """The SQL condition on ``alert`` rows ``scope`` may see.

    Alerts name their subject, not a brand: a subscriber's, a request's and a
    staff member's alerts belong to that object's brand; alerts about a source
    address or a peer concern the whole installation and are for operator-wide
    staff only. A customer sees none.
    """
    a = orm.alert
    if scope.customer:
        return sa.false()
    if scope.brand_id is None:
        return sa.true()
    brand = scope.brand_id
    subscribers = sa.select(orm.subscriber.c.id).where(orm.subscriber.c.brand_id == brand)
    staff = sa.select(orm.staff_user.c.id).where(orm.staff_user.c.brand_id == brand)
    requests = sa.select(orm.replacement_request.c.id).where(
        orm.replacement_request.c.brand_id == brand
    )
    return sa.or_(
        sa.and_(a.c.subject_type == "subscriber", a.c.subject_id.in_(subscribers)),
        sa.and_(a.c.subject_type == "request", a.c.subject_id.in_(requests)),
        sa.and_(a.c.subject_type == "staff", a.c.subject_id.in_(staff)),
    )
