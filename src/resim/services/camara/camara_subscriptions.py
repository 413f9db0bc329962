"""CAMARA SIM Swap subscriptions 0.3.0: create, list, read, delete.

Who sees what: a subscription belongs to the relying party (``client_id``)
whose token created it; every other client gets ``NOT_FOUND`` for it, never its
sink or credential. A 3-legged token (bound to one number) sees only its own
client's subscriptions on that number, and views omit ``phoneNumber``.

Creation is synchronous: the subscription is ``ACTIVE`` when the 201 is sent,
with a durable ``camara.subscription_end`` job due at its expire time or before
its sink's token expires. Its events and its ends (deleted here, max events,
expired, token about to expire) are ``services.camara.subscription_events``;
subscription rows are locked (FOR UPDATE on PostgreSQL) while an event is added
or the subscription ends, so a deletion racing a cut-over either sees the
swapped event counted or stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resim.domain.camara_events import (
    SubscriptionStatus,
    TerminationReason,
    rfc3339,
)
from resim.domain.camara_subscription_request import (
    V0_3,
    SubscriptionDialect,
    parse_subscription_request,
)
from resim.domain.model import LineStatus
from resim.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from resim.services.camara.sink_guard import check_new_sink
from resim.services.camara.subscription_events import end, end_due
from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork, new_id

SERVICE_NOT_APPLICABLE = "The service is not available for the provided identifier."
UNSUPPORTED_IDENTIFIER = "The identifier provided is not supported."


@dataclass(frozen=True)
class Caller:
    """The relying party behind a CAMARA call, as its access token says.

    ``phone_number`` is set only for a 3-legged token (the number it is bound to).
    """

    client_id: str
    phone_number: str | None = None
    # the API version called (0.3.0, or 0.4.0-rc in RESIM_CAMARA_VERSION=2.2)
    dialect: SubscriptionDialect = V0_3

    @property
    def three_legged(self) -> bool:
        return self.phone_number is not None


def create_subscription(ctx: ServiceContext, *, caller: Caller, body: Any) -> dict[str, Any]:
    """Create an ACTIVE subscription from a request body; return its view.

    Raises InvalidInput with the spec's code: the 400 codes of
    ``parse_subscription_request``, INVALID_SINK for a sink whose host is or
    resolves to an address that is not public (``sink_guard.check_new_sink``;
    the name is resolved here, before any transaction), OUT_OF_RANGE for a
    sink token that expires within ``ctx.camara_token_notice``, or MISSING_IDENTIFIER /
    UNNECESSARY_IDENTIFIER / SERVICE_NOT_APPLICABLE (422); Conflict
    ALREADY_EXISTS (409) when the caller already has an active subscription
    for the same number, sink and types.
    """
    now = ctx.now()
    spec = parse_subscription_request(
        body,
        now=now,
        allow_http_loopback=ctx.camara_sink_allow_http_loopback,
        dialect=caller.dialect,
    )
    check_new_sink(ctx, spec.sink)  # SSRF: public addresses only (services.sink_guard)
    if caller.three_legged and spec.phone_number is not None:
        raise InvalidInput(
            "The device is already identified by the access token.",
            code="UNNECESSARY_IDENTIFIER",
        )
    if spec.token_expires_at is not None and spec.token_expires_at - ctx.camara_token_notice <= now:
        # The subscription would end (ACCESS_TOKEN_EXPIRED) the moment it starts.
        notice = int(ctx.camara_token_notice.total_seconds())
        raise InvalidInput(
            f"sinkCredential.accessTokenExpiresUtc must be more than {notice} s in the future",
            code="OUT_OF_RANGE",
        )
    phone = spec.phone_number or caller.phone_number
    if phone is None:
        raise InvalidInput("The device cannot be identified.", code="MISSING_IDENTIFIER")
    sub_id = new_id()
    with ctx.uow() as uow:
        status = uow.camara.line_status(phone)
        if status is None and caller.dialect.unsupported_identifier:
            # 0.4: a number this operator does not serve (test plan creation_100)
            raise InvalidInput(UNSUPPORTED_IDENTIFIER, code="UNSUPPORTED_IDENTIFIER")
        if status is None or status == LineStatus.CEASED:
            raise InvalidInput(SERVICE_NOT_APPLICABLE, code="SERVICE_NOT_APPLICABLE")
        duplicate = uow.camara.active_types(
            client_id=caller.client_id, phone_number=phone, sink=spec.sink
        )
        if any(types == list(spec.types) for types in duplicate):
            raise Conflict(
                "An active subscription for this number, sink and event type exists.",
                code="ALREADY_EXISTS",
            )
        uow.camara.add(
            id=sub_id,
            client_id=caller.client_id,
            phone_number=phone,
            three_legged=caller.three_legged,
            protocol=spec.protocol,
            sink=spec.sink,
            sink_credential_type=spec.credential_type,
            sink_access_token=spec.access_token,
            sink_token_expires_at=spec.token_expires_at,
            types=list(spec.types),
            expire_time=spec.expire_time,
            max_events=spec.max_events,
            status=SubscriptionStatus.ACTIVE.value,
            events_sent=0,
            event_seq=0,
            created_at=now,
            starts_at=now,
            expires_at=spec.expire_time,
        )
        due = end_due(ctx, spec.expire_time, spec.token_expires_at)
        if due is not None:
            uow.enqueue(
                "camara.subscription_end",
                at=now,
                run_after=max(due[0], now),
                payload={"subscription_id": sub_id},
            )
        uow.audit(
            at=now,
            actor=f"camara:{caller.client_id}"[:120],
            action="camara.subscription.created",
            object_type="camara_subscription",
            object_id=sub_id,
            detail={"types": list(spec.types), "three_legged": caller.three_legged},
        )
        uow.commit()
        row = _get(uow, sub_id)
    return render(row, caller=caller)


def list_subscriptions(ctx: ServiceContext, *, caller: Caller) -> list[dict[str, Any]]:
    """The caller's subscriptions (not deleted), oldest first; a 3-legged caller's
    only for its number (the spec's implicit filtering)."""
    with ctx.uow() as uow:
        rows = uow.camara.of_client(caller.client_id, caller.phone_number)
    return [render(r, caller=caller) for r in rows]


def list_page(
    ctx: ServiceContext, *, caller: Caller, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """One page (1-indexed) of :func:`list_subscriptions`, and the total count."""
    every = list_subscriptions(ctx, caller=caller)
    start = (page - 1) * per_page
    return every[start : start + per_page], len(every)


def get_subscription(
    ctx: ServiceContext, *, caller: Caller, subscription_id: str
) -> dict[str, Any]:
    """One of the caller's subscriptions; NotFound (NOT_FOUND) for anything else."""
    with ctx.uow() as uow:
        row = _visible(uow, caller, subscription_id, lock=False)
    return render(row, caller=caller)


def delete_subscription(ctx: ServiceContext, *, caller: Caller, subscription_id: str) -> None:
    """Delete one of the caller's subscriptions (synchronously: the 204 case).

    An active one ends with a SUBSCRIPTION_DELETED event; one that had ended
    already is only marked DELETED. Deleted subscriptions are NOT_FOUND after.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        row = _visible(uow, caller, subscription_id, lock=True)
        if row.status == SubscriptionStatus.ACTIVE.value:
            end(ctx, uow, row, TerminationReason.SUBSCRIPTION_DELETED, at=now)
        else:
            uow.camara.set_status(
                row.id, SubscriptionStatus.DELETED.value, ended_at=row.ended_at or now
            )
        uow.audit(
            at=now,
            actor=f"camara:{caller.client_id}"[:120],
            action="camara.subscription.deleted",
            object_type="camara_subscription",
            object_id=row.id,
        )
        uow.commit()


def render(row: Any, *, caller: Caller) -> dict[str, Any]:
    """The spec's ``Subscription`` for ``row`` as ``caller`` may see it (no credential)."""
    detail = {} if caller.three_legged else {"phoneNumber": row.phone_number}
    config: dict[str, Any] = {"subscriptionDetail": detail}
    if row.expire_time is not None:
        config["subscriptionExpireTime"] = rfc3339(row.expire_time)
    if row.max_events is not None:
        config["subscriptionMaxEvents"] = row.max_events
    view: dict[str, Any] = {
        "protocol": row.protocol,
        "sink": row.sink,
        "types": list(row.types),
        "config": config,
        "id": row.id,
        "startsAt": rfc3339(row.starts_at),
        "status": row.status,
    }
    if row.expires_at is not None:
        view["expiresAt"] = rfc3339(row.expires_at)
    return view


# ---------------------------------------------------------------- helpers


def _get(uow: UnitOfWork, sub_id: str, *, lock: bool = False) -> Any:
    return uow.camara.get(sub_id, lock=lock)


def _visible(uow: UnitOfWork, caller: Caller, sub_id: str, *, lock: bool) -> Any:
    row = _get(uow, sub_id, lock=lock) if len(sub_id) <= 64 else None
    if (
        row is None
        or row.client_id != caller.client_id
        or row.status == SubscriptionStatus.DELETED.value
    ):
        raise NotFound("The specified resource is not found.", code="NOT_FOUND")
    if caller.phone_number is not None and row.phone_number != caller.phone_number:
        if caller.dialect.token_context:
            # 0.4 (Generic403): the client's own subscription, but the 3-legged
            # token is for another number. Another client's is NOT_FOUND above.
            raise PermissionDenied(
                "Request is not consistent with access token.", code="INVALID_TOKEN_CONTEXT"
            )
        raise NotFound("The specified resource is not found.", code="NOT_FOUND")
    return row
