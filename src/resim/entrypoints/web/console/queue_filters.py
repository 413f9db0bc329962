"""The review queue's filters (issue 14.3): brand (operator-wide reviewers only),
channel and reason, read from the query string or carried in the decision form so
that "approve and next" stays in the same filtered queue.

A filter that is not one of the known values is the console's error page (400),
never a framework error; a brand the caller may not see reads as unknown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from resim.domain.model import Channel, Reason
from resim.entrypoints.web.console.pages import Caller, ConsolePageError
from resim.services.access.tenancy import Scope

CHANNELS = tuple(c.value for c in Channel)
REASONS = tuple(r.value for r in Reason)


@dataclass(frozen=True)
class QueueFilters:
    brand: str | None = None
    channel: str | None = None
    reason: str | None = None

    def scope(self, caller: Caller) -> Scope:
        """The caller's scope, narrowed to the chosen brand for operator-wide staff."""
        scope = caller.principal.scope
        if self.brand is not None and scope.brand_id is None:
            return Scope.of_brand(self.brand)
        return scope

    def items(self) -> dict[str, str]:
        chosen = {"brand": self.brand, "channel": self.channel, "reason": self.reason}
        return {k: v for k, v in chosen.items() if v}

    def link(self, path: str, **more: str) -> str:
        values = {**self.items(), **more}
        return f"{path}?{urlencode(values)}" if values else path

    @property
    def any(self) -> bool:
        return bool(self.items())


def queue_filters(
    values: Mapping[str, Any], *, caller: Caller | None = None, strict: bool = True
) -> QueueFilters:
    """The filters in ``values`` (query string or form). ``strict``: a bad value is
    400 (the queue page); otherwise it is dropped (a request page's back link)."""
    chosen: dict[str, str | None] = {}
    allowed: dict[str, tuple[str, ...] | None] = {
        "brand": None,
        "channel": CHANNELS,
        "reason": REASONS,
    }
    for key, known in allowed.items():
        value = str(values.get(key) or "").strip() or None
        if value is not None and key == "brand":
            names = caller.names if caller is not None else None
            brands = names.brands if names is not None else {}
            operator_wide = caller is None or caller.principal.scope.brand_id is None
            if caller is not None and (not operator_wide or value not in brands):
                _refuse(strict)
                value = None
        elif value is not None and known is not None and value not in known:
            _refuse(strict)
            value = None
        chosen[key] = value
    return QueueFilters(**chosen)


def _refuse(strict: bool) -> None:
    if strict:
        raise ConsolePageError(400, "QUEUE_FILTER")


def waited_minutes(item: Mapping[str, Any], now: dt.datetime) -> int:
    """How long a held request has waited: since it was verified (when the fraud
    check held it), else since it was opened."""
    since = item.get("verified_at") or item.get("created_at")
    if not since:
        return 0
    at = dt.datetime.fromisoformat(str(since))
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return max(0, int((now - at).total_seconds() // 60))
