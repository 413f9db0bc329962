"""Tables, and the imperative mapping of the domain classes onto them.

Invariants enforced by the database as well as by the services:
1. ``sim.bound_line_id`` is UNIQUE: a line has at most one bound (active or
   suspended) SIM; the domain keeps the column equal to ``line_id`` while bound
   and NULL otherwise.
2. ``replacement_request.open_line_id`` is UNIQUE: at most one open request per
   line; NULL once the request reaches a terminal state. Two concurrent
   requests for one line: the second INSERT fails, whatever the isolation level.

The tables live in :mod:`.domain` (what the domain classes map onto) and
:mod:`.machinery` (audit chain, access, counters, outbox, CAMARA); every one
is importable from here.
"""

from __future__ import annotations

from resim.adapters.db.orm.base import enum_column, mapper_registry, metadata
from resim.adapters.db.orm.domain import (
    SIM_IN_STOCK,
    audit_event,
    brand,
    line,
    loss_report,
    replacement_request,
    sim,
    sim_change,
    subscriber,
)
from resim.adapters.db.orm.machinery import (
    alert,
    api_client,
    attempt_counter,
    audit_chain_head,
    auth_session,
    camara_event,
    camara_rate_bucket,
    camara_subscription,
    external_call,
    identity_check,
    job,
    staff_user,
)
from resim.domain import loss, model, security

__all__ = [
    "SIM_IN_STOCK",
    "alert",
    "api_client",
    "attempt_counter",
    "audit_chain_head",
    "audit_event",
    "auth_session",
    "brand",
    "camara_event",
    "camara_rate_bucket",
    "camara_subscription",
    "enum_column",
    "external_call",
    "identity_check",
    "job",
    "line",
    "loss_report",
    "mapper_registry",
    "metadata",
    "replacement_request",
    "sim",
    "sim_change",
    "staff_user",
    "start_mappers",
    "subscriber",
]


def _map() -> None:
    mapper_registry.map_imperatively(model.Brand, brand)
    mapper_registry.map_imperatively(model.Subscriber, subscriber)
    mapper_registry.map_imperatively(model.Line, line)
    mapper_registry.map_imperatively(model.Sim, sim)
    mapper_registry.map_imperatively(model.ReplacementRequest, replacement_request)
    mapper_registry.map_imperatively(model.SimChange, sim_change)
    mapper_registry.map_imperatively(loss.LossReport, loss_report)
    mapper_registry.map_imperatively(security.StaffUser, staff_user)
    mapper_registry.map_imperatively(security.ApiClient, api_client)
    mapper_registry.map_imperatively(security.AuthSession, auth_session)
    mapper_registry.map_imperatively(security.IdentityCheck, identity_check)
    mapper_registry.map_imperatively(security.Alert, alert)
    mapper_registry.map_imperatively(
        model.AuditEvent,
        audit_event,
        exclude_properties=["seq"],
        primary_key=[audit_event.c.id],
    )


def start_mappers() -> None:
    """Map the domain classes once per process (idempotent)."""
    if not getattr(start_mappers, "_done", False):
        _map()
        start_mappers._done = True  # type: ignore[attr-defined]
