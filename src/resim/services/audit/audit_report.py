"""``resim audit report``: swaps, fraud-flagged swaps and reversals per brand (SEC-09).

Definitions, for a window ``[start, end)``:

* **replacements**: requests completed in the window (``completed_at``).
* **fraud_flagged**: requests opened in the window that a control flagged: a
  risk outcome of review, deny or step-up (or step-up methods demanded), a
  "this was not me" report, or a rejection.
* **reversals**: requests opened in the window that were completed and then
  reported "not me", or cancelled after approval (the ``request.cancelled``
  audit event records the state it left). A "not me" report is
  ``fraud_reported_at`` or a ``request.reported_not_me`` audit event.
* **requested**: every request opened in the window, for scale.

Requests are streamed in batches; memory grows with the number of brands only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork

FLAG_OUTCOMES = frozenset({"review", "deny", "step_up"})
APPROVED_STATES = frozenset({"approved", "provisioning", "ready"})
BATCH = 1000


@dataclass
class BrandCounts:
    brand_id: str
    requested: int = 0
    replacements: int = 0
    fraud_flagged: int = 0
    reversals: int = 0


def _requests(ctx: ServiceContext, start: dt.datetime, end: dt.datetime) -> Iterator[Any]:
    last = ""
    while True:
        with ctx.uow() as uow:
            chunk = uow.reports.requests_in_window(start, end, after_id=last, limit=BATCH)
            facts = _audit_facts(uow, [row.id for row in chunk])
        if not chunk:
            return
        for row in chunk:
            yield row, facts.get(row.id, {})
        last = chunk[-1].id


def _audit_facts(uow: UnitOfWork, ids: list[str]) -> dict[str, dict[str, str]]:
    """Per request: the state a cancel left ("cancelled_from") and a "not me" report."""
    facts: dict[str, dict[str, str]] = {}
    for oid, action, detail in uow.reports.request_audit_events(ids):
        if action == "request.cancelled":
            facts.setdefault(oid, {})["cancelled_from"] = str((detail or {}).get("from", ""))
        else:
            facts.setdefault(oid, {})["not_me"] = "yes"
    return facts


def _value(x: Any) -> str | None:
    return None if x is None else str(getattr(x, "value", x))


def build_report(ctx: ServiceContext, *, start: dt.datetime, end: dt.datetime) -> list[BrandCounts]:
    """Counts per brand (sorted by brand id) for ``[start, end)``."""
    counts: dict[str, BrandCounts] = {}
    for row, facts in _requests(ctx, start, end):
        c = counts.setdefault(row.brand_id, BrandCounts(row.brand_id))
        opened = start <= row.created_at < end
        if row.completed_at is not None and start <= row.completed_at < end:
            c.replacements += 1
        if not opened:
            continue
        c.requested += 1
        state = _value(row.state)
        not_me = row.fraud_reported_at is not None or "not_me" in facts
        flagged = (
            _value(row.risk_outcome) in FLAG_OUTCOMES
            or row.step_up_methods is not None
            or not_me
            or state == "rejected"
        )
        c.fraud_flagged += int(flagged)
        reversed_ = (row.completed_at is not None and not_me) or (
            state == "cancelled" and facts.get("cancelled_from") in APPROVED_STATES
        )
        c.reversals += int(reversed_)
    return [counts[k] for k in sorted(counts)]


def as_json(report: list[BrandCounts], start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "brands": [asdict(c) for c in report],
    }


def as_table(report: list[BrandCounts]) -> str:
    header = f"{'brand':<20} {'requested':>9} {'swaps':>7} {'flagged':>8} {'reversals':>9}"
    lines = [header, "-" * len(header)]
    for c in report:
        lines.append(
            f"{c.brand_id:<20} {c.requested:>9} {c.replacements:>7} "
            f"{c.fraud_flagged:>8} {c.reversals:>9}"
        )
    total = BrandCounts("total")
    for c in report:
        total.requested += c.requested
        total.replacements += c.replacements
        total.fraud_flagged += c.fraud_flagged
        total.reversals += c.reversals
    lines.append(
        f"{'total':<20} {total.requested:>9} {total.replacements:>7} "
        f"{total.fraud_flagged:>8} {total.reversals:>9}"
    )
    return "\n".join(lines)
