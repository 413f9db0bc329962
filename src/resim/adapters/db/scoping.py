"""A :class:`~resim.services.tenancy.Scope` as SQL conditions (see that module).

A list is filtered in the query (never after a LIMIT), so it counts only what
the caller may see.
"""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.services.tenancy import Scope

Condition = sa.ColumnElement[bool]


def _all_of(clauses: list[Condition]) -> Condition:
    return sa.and_(sa.true(), *clauses)


def requests_where(scope: Scope) -> Condition:
    """The SQL condition on ``replacement_request`` rows ``scope`` may see."""
    t = orm.replacement_request
    clauses: list[Condition] = []
    if scope.brand_id is not None:
        clauses.append(t.c.brand_id == scope.brand_id)
    if scope.customer:
        clauses.append(t.c.id == scope.request_id if scope.request_id else sa.false())
    return _all_of(clauses)


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
