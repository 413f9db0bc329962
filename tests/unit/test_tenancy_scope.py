"""Which objects each kind of caller reaches (DESIGN.md, "Tenancy"): the Scope a
Principal hands the services, and the SQL conditions it becomes."""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.scoping import lines_where, requests_where, sim_changes_where
from resim.entrypoints.api.access import Principal
from resim.services.access.tenancy import UNRESTRICTED, Scope


def sql(condition: sa.ColumnElement[bool]) -> str:
    return str(condition.compile(compile_kwargs={"literal_binds": True}))


class TestThePrincipalsScope:
    def test_staff_and_clients_of_a_brand_reach_that_brand(self) -> None:
        staff = Principal(kind="staff", id="s", role="reviewer", brand_id="dk")
        client = Principal(
            kind="client", id="c", scopes=frozenset({"activation:read"}), brand_id="no"
        )
        assert staff.scope == Scope.of_brand("dk")
        assert client.scope == Scope.of_brand("no")

    def test_operator_wide_staff_and_clients_and_anonymous_callers_are_unrestricted(
        self,
    ) -> None:
        assert Principal(kind="staff", id="s", role="admin").scope.unrestricted
        assert Principal(kind="client", id="c").scope.unrestricted
        assert Principal(kind="anonymous").scope == UNRESTRICTED

    def test_a_customer_reaches_its_own_line_and_request(self) -> None:
        customer = Principal(kind="customer", id="x", line_id="L", request_id="R")
        assert customer.scope == Scope.of_customer(line_id="L", request_id="R")
        assert not customer.scope.unrestricted


class TestTheConditions:
    def test_a_brand_filters_requests_lines_and_sim_changes_by_brand(self) -> None:
        scope = Scope.of_brand("dk")
        assert sql(requests_where(scope)) == "replacement_request.brand_id = 'dk'"
        assert sql(lines_where(scope)) == "line.brand_id = 'dk'"
        assert "line.brand_id = 'dk'" in sql(sim_changes_where(scope))

    def test_a_customer_session_missing_its_line_or_request_reaches_nothing(self) -> None:
        scope = Scope.of_customer(line_id=None, request_id=None)
        assert sql(requests_where(scope)) == "false"
        assert sql(lines_where(scope)) == "false"

    def test_unrestricted_adds_no_condition(self) -> None:
        for where in (requests_where, lines_where, sim_changes_where):
            assert sql(where(UNRESTRICTED)) == "true"
        t = orm.replacement_request
        stmt = sa.select(t.c.id).where(t.c.id == "r", requests_where(UNRESTRICTED))
        assert "brand_id" not in str(stmt)
