"""Loading aggregates inside a unit of work, or NotFound: the use cases' shorthand.

Each function asks one repository of the unit of work
(:mod:`resim.services.repositories`) and turns a missing object into the
NotFound the use case answers with. ``lock=True`` holds the row until the
transaction ends (SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions are
already exclusive); callers re-check the state after locking.
"""

from __future__ import annotations

from resim.domain.model import Brand, Line, ReplacementRequest, Sim, Subscriber
from resim.errors import NotFound
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.repositories import SealedActivation
from resim.services.unit_of_work import UnitOfWork


def get_request(
    uow: UnitOfWork, request_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
) -> ReplacementRequest:
    """The request, or NotFound; also NotFound when ``scope`` may not see it (another
    brand's request, or not the customer session's own), so existence is not revealed."""
    found = uow.requests.get(request_id, lock=lock, scope=scope)
    if found is None:
        raise NotFound("no replacement request with that id", code="REQUEST_NOT_FOUND")
    return found


def get_sealed_activation(
    uow: UnitOfWork, request_id: str, *, scope: Scope = UNRESTRICTED
) -> SealedActivation:
    """What reading the request's activation code needs, or NotFound as :func:`get_request`."""
    found = uow.requests.sealed_activation(request_id, scope=scope)
    if found is None:
        raise NotFound("no replacement request with that id", code="REQUEST_NOT_FOUND")
    return found


def find_request_by_new_iccid(
    uow: UnitOfWork, iccid: str, *, lock: bool = False
) -> ReplacementRequest | None:
    """The request that holds the profile now: the newest one naming it."""
    return uow.requests.by_new_iccid(iccid, lock=lock)


def get_line_by_msisdn(
    uow: UnitOfWork, msisdn: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
) -> Line:
    """The line, or NotFound; also NotFound when ``scope`` may not see it."""
    found = uow.lines.by_msisdn(msisdn, lock=lock, scope=scope)
    if found is None:
        raise NotFound("no line with that phone number", code="LINE_NOT_FOUND")
    return found


def get_line(
    uow: UnitOfWork, line_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
) -> Line:
    found = uow.lines.get(line_id, lock=lock, scope=scope)
    if found is None:
        raise NotFound("no such line", code="LINE_NOT_FOUND")
    return found


def get_subscriber(uow: UnitOfWork, subscriber_id: str, *, lock: bool = False) -> Subscriber:
    found = uow.subscribers.get(subscriber_id, lock=lock)
    if found is None:
        raise NotFound("no such subscriber", code="SUBSCRIBER_NOT_FOUND")
    return found


def get_brand(uow: UnitOfWork, brand_id: str) -> Brand:
    found = uow.brands.get(brand_id)
    if found is None:
        raise NotFound("no such brand", code="BRAND_NOT_FOUND")
    return found


def get_sim(uow: UnitOfWork, iccid: str, *, lock: bool = False) -> Sim:
    found = uow.sims.get(iccid, lock=lock)
    if found is None:
        raise NotFound("no SIM with that ICCID", code="SIM_NOT_FOUND")
    return found


def bound_sim(uow: UnitOfWork, line_id: str) -> Sim | None:
    """The SIM currently bound to the line (active or suspended), if any."""
    return uow.sims.bound_to(line_id)


def open_request_for_line(uow: UnitOfWork, line_id: str) -> ReplacementRequest | None:
    return uow.requests.open_for_line(line_id)
