"""Facts for the risk rules (SEC-07), and where a request came from.

Everything here runs inside the caller's unit of work and only reads, except
:func:`remember_origin`, which a completed replacement calls so the device and
country it came from count as known the next time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from resim.domain.model import Channel, Line, ReplacementRequest, Subscriber
from resim.domain.policy import BrandPolicy
from resim.domain.risk import RiskFacts, rule_config
from resim.errors import InvalidInput
from resim.services.unit_of_work import UnitOfWork

_COUNTRY = re.compile(r"^[A-Z]{2}$")


def hash_device(raw: str | None) -> str | None:
    """SHA-256 hex of a device identifier; resim never stores the identifier itself."""
    if raw is None:
        return None
    value = raw.strip()
    if not value or len(value) > 256:
        raise InvalidInput("device_id must be 1 to 256 characters", code="INVALID_DEVICE_ID")
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_country(raw: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code in upper case ("dk" -> "DK")."""
    if raw is None:
        return None
    value = raw.strip().upper()
    if not _COUNTRY.match(value):
        raise InvalidInput(
            "country must be a two-letter ISO 3166-1 code such as DK", code="INVALID_COUNTRY"
        )
    return value


def is_self_service(channel: Channel | str, actor: str) -> bool:
    """Whether a request came from the customer side: the portal, or an API caller
    without credentials (actor "customer" or "anonymous"). Staff ("staff:<id>"),
    API clients ("client:<id>") and resim's own callers are trusted callers."""
    return channel == Channel.PORTAL or actor in ("customer", "anonymous")


def staff_id_of(actor: str) -> str | None:
    """The staff id in an actor "staff:<id>", else None (machine clients, customers)."""
    if actor.startswith("staff:") and len(actor) > len("staff:"):
        return actor.removeprefix("staff:")
    return None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def gather(
    uow: UnitOfWork,
    *,
    request: ReplacementRequest,
    line: Line,
    subscriber: Subscriber,
    policy: BrandPolicy,
    now: dt.datetime,
) -> RiskFacts:
    """Read what every rule needs for ``request`` (caller holds the request's row lock)."""
    last_change = uow.sim_changes.last_replacement_at(line.id)
    agent = request.actor if staff_id_of(request.actor) else None
    flagged = opened = 0
    window = rule_config(policy, "agent_history").days
    if agent is not None and window:
        since = now - dt.timedelta(days=window)
        flagged = uow.requests.opened_by(
            actor=agent, since=since, excluding=request.id, refused_only=True
        )
        opened = uow.requests.opened_by(actor=agent, since=since, excluding=request.id)
    return RiskFacts(
        now=now,
        line_locked=line.is_locked(now),
        last_replacement_at=_aware(last_change),
        email_changed_at=_aware(subscriber.email_changed_at),
        password_changed_at=_aware(subscriber.password_changed_at),
        address_changed_at=_aware(subscriber.address_changed_at),
        lock_changed_at=_aware(line.lock_changed_at),
        ported_in_at=_aware(line.ported_in_at),
        lock_override=bool(request.lock_override),
        device_id=request.device_id,
        known_devices=tuple(subscriber.known_devices or ()),
        country=request.country,
        known_countries=tuple(subscriber.known_countries or ()),
        agent=agent,
        agent_flagged_requests=flagged,
        agent_opened_requests=opened,
        fraud_flags=subscriber.fraud_flags or 0,
        self_service=is_self_service(request.channel, request.actor),
    )


def remember_origin(subscriber: Subscriber, request: ReplacementRequest) -> None:
    """A completed replacement makes its device and country known for the subscriber.

    The lists are JSON columns: assign new lists so the change is seen and written.
    """
    if request.device_id and request.device_id not in (subscriber.known_devices or []):
        subscriber.known_devices = [*(subscriber.known_devices or []), request.device_id]
    if request.country and request.country not in (subscriber.known_countries or []):
        subscriber.known_countries = [*(subscriber.known_countries or []), request.country]
