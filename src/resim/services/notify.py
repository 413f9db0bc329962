"""Enqueue customer messages as ``mail.send`` jobs in the caller's transaction.

The job carries everything needed to render the message later. Values that
are secrets (a one-time code, the "this was not me" link) travel encrypted in
``secret_context`` so the jobs table never holds them in clear.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from resim.domain.identifiers import mask_msisdn
from resim.domain.model import Brand, ReplacementRequest, Subscriber
from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork


def request_ref(request_id: str) -> str:
    """The short reference customers and agents read aloud."""
    return request_id[:8].upper()


def enqueue_mail(
    ctx: ServiceContext,
    uow: UnitOfWork,
    *,
    kind: str,
    request: ReplacementRequest,
    subscriber: Subscriber | None = None,
    brand: Brand | None = None,
    context: dict[str, Any] | None = None,
    secret_context: dict[str, Any] | None = None,
) -> str:
    """Enqueue one customer message; subscriber and brand are loaded when not given."""
    now = ctx.now()
    subscriber = subscriber or uow.session.get(Subscriber, request.subscriber_id)
    brand = brand or uow.session.get(Brand, request.brand_id)
    assert subscriber is not None and brand is not None  # foreign keys guarantee both
    base: dict[str, Any] = {
        "customer_name": subscriber.name,
        "brand_name": brand.name,
        "msisdn_masked": mask_msisdn(request.msisdn),
        "request_ref": request_ref(request.id),
        "reason": request.reason.value,  # a code: the mail templates translate it
        "status_url": f"{ctx.public_base_url}/status/{request.id}",
        "timezone": brand.timezone,
    }
    base.update(context or {})
    payload: dict[str, Any] = {
        "kind": kind,
        "to": subscriber.email,
        "language": subscriber.language or brand.language,
        "context": {k: _jsonable(v) for k, v in base.items()},
    }
    if secret_context:
        payload["secret_context"] = ctx.secrets.encrypt(json.dumps(secret_context))
    return uow.enqueue("mail.send", at=now, request_id=request.id, payload=payload)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    return value


def decode_context(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"$dt"}:
            out[key] = dt.datetime.fromisoformat(value["$dt"])
        else:
            out[key] = value
    return out
