"""Per-agent rate limit on opening requests (SEC-08): an insider selling swaps opens many.

:func:`check_agent_rate` runs inside ``open_request``'s unit of work, before the
request is written. Over the limit it raises the ``agent_rate_limit`` alert
(at most one per agent per hour, so a loop of refusals does not flood the
reviewers), COMMITS that alert, and raises TooManyAttempts with the seconds
until the oldest counted request leaves the window. Nothing else is written.
"""

from __future__ import annotations

import datetime as dt

from resim.errors import TooManyAttempts
from resim.services.console.alerts import raise_alert
from resim.services.risk.risk_facts import staff_id_of
from resim.services.unit_of_work import UnitOfWork

WINDOW = dt.timedelta(hours=1)


def check_agent_rate(uow: UnitOfWork, *, actor: str, limit: int, now: dt.datetime) -> None:
    """Refuse a staff actor who opened ``limit`` requests in the last hour (any brand).

    Machine clients and customers are not counted here (their limits are the
    attempt counters of SEC-03). Two concurrent opens by one agent may both
    pass at the limit's edge; the limit is a tripwire for reviewers, not a
    lock, so that race is accepted.
    """
    staff_id = staff_id_of(actor)
    if staff_id is None:
        return
    since = now - WINDOW
    count, oldest = uow.lookups.requests_opened(actor, since)
    if count < limit:
        return
    already = uow.alerts.raised_since(
        kind="agent_rate_limit", subject_type="staff", subject_id=staff_id, since=since
    )
    if not already:
        raise_alert(
            uow,
            at=now,
            kind="agent_rate_limit",
            subject_type="staff",
            subject_id=staff_id,
            detail={"requests_last_hour": count, "limit": limit},
        )
        uow.commit()
    retry = (oldest + WINDOW - now).total_seconds() if oldest is not None else WINDOW.seconds
    raise TooManyAttempts(
        f"this agent opened {count} requests in the last hour; the limit is {limit}",
        code="AGENT_RATE_LIMIT",
        retry_after=max(1.0, retry),
    )
