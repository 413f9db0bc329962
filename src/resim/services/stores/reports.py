"""What the regulator's report reads (``uow.reports``), behind
:mod:`resim.services.audit.audit_report`.

SQL only (:mod:`resim.adapters.db.stores.reports`): requests read in keyset
batches by id, and the audit facts about them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol


class RequestFacts(NamedTuple):
    id: str
    brand_id: str
    state: Any  # State
    created_at: dt.datetime
    completed_at: dt.datetime | None
    risk_outcome: Any  # RiskOutcome | None
    step_up_methods: Any
    fraud_reported_at: dt.datetime | None


class ReportQueries(Protocol):
    def requests_in_window(
        self, start: dt.datetime, end: dt.datetime, *, after_id: str, limit: int
    ) -> Sequence[RequestFacts]:
        """Requests created or completed in ``[start, end)`` with an id above
        ``after_id``, by id, at most ``limit``."""
        ...

    def request_audit_events(self, request_ids: Sequence[str]) -> Sequence[tuple[str, str, Any]]:
        """(request id, action, detail) of the requests' ``request.cancelled`` and
        ``request.reported_not_me`` events."""
        ...
