"""The SQL stores as attributes of the SQLAlchemy unit of work, each built on first use.

A unit of work that never touches ``uow.staff`` never builds a staff store.
"""

from __future__ import annotations

from functools import cached_property
from typing import cast

from resim.adapters.db.stores import SessionHolder
from resim.adapters.db.stores.access import (
    SqlApiClientStore,
    SqlAuthSessionStore,
    SqlStaffStore,
)
from resim.adapters.db.stores.alerts import SqlAlertStore
from resim.adapters.db.stores.audit import SqlAuditLogStore
from resim.adapters.db.stores.camara import SqlCamaraStore
from resim.adapters.db.stores.counters import SqlAttemptCounterStore
from resim.adapters.db.stores.dashboard import SqlDashboardQueries
from resim.adapters.db.stores.export import SqlExportQueries
from resim.adapters.db.stores.lookups import SqlLookupQueries
from resim.adapters.db.stores.reports import SqlReportQueries
from resim.adapters.db.stores.sealed import SqlSealedValueStore
from resim.services.stores.access import ApiClientStore, AuthSessionStore, StaffStore
from resim.services.stores.alerts import AlertStore
from resim.services.stores.audit import AuditLogStore
from resim.services.stores.camara import CamaraStore
from resim.services.stores.counters import AttemptCounterStore
from resim.services.stores.dashboard import DashboardQueries
from resim.services.stores.export import ExportQueries
from resim.services.stores.lookups import LookupQueries
from resim.services.stores.reports import ReportQueries
from resim.services.stores.sealed import SealedValueStore


class SqlStores:
    """Mixed into the SQLAlchemy unit of work (which provides ``session``)."""

    def _holder(self) -> SessionHolder:
        return cast(SessionHolder, self)

    @cached_property
    def staff(self) -> StaffStore:
        return SqlStaffStore(self._holder())

    @cached_property
    def api_clients(self) -> ApiClientStore:
        return SqlApiClientStore(self._holder())

    @cached_property
    def auth_sessions(self) -> AuthSessionStore:
        return SqlAuthSessionStore(self._holder())

    @cached_property
    def attempts(self) -> AttemptCounterStore:
        return SqlAttemptCounterStore(self._holder())

    @cached_property
    def alerts(self) -> AlertStore:
        return SqlAlertStore(self._holder())

    @cached_property
    def audit_log(self) -> AuditLogStore:
        return SqlAuditLogStore(self._holder())

    @cached_property
    def lookups(self) -> LookupQueries:
        return SqlLookupQueries(self._holder())

    @cached_property
    def dashboard(self) -> DashboardQueries:
        return SqlDashboardQueries(self._holder())

    @cached_property
    def camara(self) -> CamaraStore:
        return SqlCamaraStore(self._holder())

    @cached_property
    def sealed(self) -> SealedValueStore:
        return SqlSealedValueStore(self._holder())

    @cached_property
    def export(self) -> ExportQueries:
        return SqlExportQueries(self._holder())

    @cached_property
    def reports(self) -> ReportQueries:
        return SqlReportQueries(self._holder())
