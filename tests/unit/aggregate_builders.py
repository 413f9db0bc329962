"""Builders of replacement requests for the aggregate's unit tests (no database)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from resim.domain.model import Channel, DeliveryMode, Reason, ReplacementRequest
from resim.domain.workflow import OPEN_STATES, State

AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


def opened(**overrides: Any) -> ReplacementRequest:
    """A request just opened through the factory (its Opened event recorded)."""
    args: dict[str, Any] = {
        "id": "r1",
        "line_id": "l1",
        "brand_id": "b1",
        "subscriber_id": "s1",
        "msisdn": "+4520123456",
        "reason": Reason.LOST,
        "channel": Channel.PORTAL,
        "actor": "customer",
        "at": AT,
        "old_iccid": "89450000000000000001",
        "delivery_mode": DeliveryMode.ESIM,
        "verify_by": AT + dt.timedelta(hours=24),
    }
    args.update(overrides)
    return ReplacementRequest.open(**args)


def request_in(state: State, **fields: Any) -> ReplacementRequest:
    """A request placed in ``state`` with ``fields`` set (test set-up only), no events."""
    req = opened()
    req.take_events()
    req.state = state
    req.open_line_id = req.line_id if state in OPEN_STATES else None
    for name, value in fields.items():
        assert hasattr(req, name), name
        setattr(req, name, value)
    return req
