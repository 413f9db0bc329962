"""What an agent does for the customer in front of them (issue 12, point 4).

* :func:`take_over`: a customer stuck with a pending request (waiting for
  the e-mail code, or for a stronger method) walks into a store. The agent,
  holding a live ID-document check on the line, takes the request over: it
  moves to the agent channel, the customer's one-time code stops working, the
  agent's check becomes its verification evidence, and the customer is told
  (notice ``request_taken_over``). Staff-made rules then apply as to any
  request an agent opened (``domain.agent_channel``: a second person confirms).
* :func:`cancel_for_customer`: the same agent cancels it instead.
* :func:`handover_screen`: the eSIM of a request an agent opened or took
  over, for the screen the agent turns to the customer: only in the console
  session that opened it, only while that agent's check is live, only when the
  brand's ``agent_esim_handoff`` is ``screen``. Each read is an audited
  ``activation.read`` (``via`` ``console.screen``).
* :func:`offers`: which of these the request page offers.

Every function takes the agent's ``scope``: another brand's request is
NotFound and nothing changes.
"""

from __future__ import annotations

from typing import Any

from resim.domain.model import Channel, SimForm
from resim.domain.workflow import State
from resim.errors import Conflict, PermissionDenied, Refused
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.console.console import live_check
from resim.services.context import ServiceContext
from resim.services.notifications.notify import notify_customer
from resim.services.replacement import cancel, queries
from resim.services.verification import verify_request
from resim.services.verification.verification import Evidence, channel_combos

ID_CHECK = "id_document"


def _check_required() -> PermissionDenied:
    return PermissionDenied(
        "check the customer's ID document for this line first", code="IDENTITY_CHECK_REQUIRED"
    )


def id_check_suffices(combos: list[list[str]]) -> bool:
    """Whether an agent's ID-document check alone completes one of ``combos``."""
    return any(set(combo) <= {ID_CHECK} for combo in combos if combo)


def take_over(
    ctx: ServiceContext,
    *,
    staff_id: str,
    request_id: str,
    session_id: str | None = None,
    scope: Scope = UNRESTRICTED,
    source_ip: str | None = None,
) -> State:
    """Move a pending request to the agent channel, verified by this agent's live check.

    Pending: ``requested`` (not yet verified) or ``verified`` and waiting for a
    stronger method that an ID check satisfies. Refused (ID_CHECK_NOT_ENOUGH)
    when the brand's agent channel does not accept an ID check alone; Conflict
    (NOT_PENDING) otherwise; PermissionDenied (IDENTITY_CHECK_REQUIRED) without
    a live check. In each case nothing is written.

    Two transactions, as :func:`resim.services.console.console_requests.create_on_behalf`:
    the take-over (audited ``request.taken_over``, customer notified), then the
    verification or step-up with the check, which runs the risk check.
    """
    now = ctx.now()
    actor = f"staff:{staff_id}"
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True, scope=scope)
        check = live_check(uow, staff_id=staff_id, line_id=request.line_id, now=now)
        if check is None:
            raise _check_required()
        policy = repo.get_brand(uow, request.brand_id).policy
        unverified = request.state == State.REQUESTED
        stepping_up = request.state == State.VERIFIED and bool(request.step_up_methods)
        if not (unverified or stepping_up):
            raise Conflict(
                f"the request is {request.state.value}: only a request waiting for the "
                "customer's verification can be taken over",
                code="NOT_PENDING",
            )
        enough = (
            id_check_suffices(channel_combos(policy, Channel.AGENT.value))
            if unverified
            else ID_CHECK in (request.step_up_methods or [])
        )
        if not enough:
            raise Refused(
                "the brand does not accept an ID-document check alone for this request",
                code="ID_CHECK_NOT_ENOUGH",
            )
        # the customer's code no longer verifies it; audited as request.taken_over
        request.take_over(session_id=session_id, check_id=check.id, actor=actor, at=now)
        notify_customer(ctx, uow, kind="request_taken_over", request=request)
        uow.commit()
    evidence = Evidence(staff_id=staff_id)
    if unverified:
        return verify_request.submit_verification(
            ctx, request_id, evidence=evidence, actor=actor, source_ip=source_ip, scope=scope
        )
    return verify_request.submit_step_up(
        ctx, request_id, evidence=evidence, actor=actor, source_ip=source_ip, scope=scope
    )


def cancel_for_customer(
    ctx: ServiceContext,
    *,
    staff_id: str,
    request_id: str,
    note: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> State:
    """Cancel the request for the customer; needs this agent's live check on its line."""
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, scope=scope)
        if live_check(uow, staff_id=staff_id, line_id=request.line_id, now=now) is None:
            raise _check_required()
    return cancel.cancel(
        ctx,
        request_id,
        actor=f"staff:{staff_id}",
        note=note or "cancelled by an agent for the customer",
        scope=scope,
    )


def offers(
    ctx: ServiceContext,
    *,
    staff_id: str,
    session_id: str | None,
    request_id: str,
    scope: Scope = UNRESTRICTED,
) -> dict[str, Any]:
    """What the request page offers this agent (so nothing is offered that would be refused).

    ``checked``: the agent holds a live ID check on the line; ``take_over`` and
    ``cancel``: those actions would be accepted now; ``handoff``: None (not an
    agent's eSIM request), "screen" or "email" (the brand's policy); ``screen``:
    this session may open the hand-over screen now. NotFound out of ``scope``.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, scope=scope)
        policy = repo.get_brand(uow, request.brand_id).policy
        checked = live_check(uow, staff_id=staff_id, line_id=request.line_id, now=now) is not None
        if request.state == State.REQUESTED:
            takeable = id_check_suffices(channel_combos(policy, Channel.AGENT.value))
        elif request.state == State.VERIFIED and request.step_up_methods:
            takeable = ID_CHECK in request.step_up_methods
        else:
            takeable = False
        esim_by_agent = request.channel == Channel.AGENT and request.target_form == SimForm.ESIM
        handoff = policy.agent_esim_handoff if esim_by_agent else None
        ready = request.state == State.READY and request.installed_at is None
        return {
            "checked": checked,
            "take_over": checked and takeable,
            "takeable": takeable,
            "cancel": checked and request.is_open and request.installed_at is None,
            "handoff": handoff,
            "screen": handoff == "screen"
            and ready
            and checked
            and session_id is not None
            and request.agent_session_id == session_id,
            "line_msisdn": request.msisdn,
        }


def handover_screen(
    ctx: ServiceContext,
    *,
    staff_id: str,
    session_id: str | None,
    request_id: str,
    scope: Scope = UNRESTRICTED,
    source: str | None = None,
) -> dict[str, Any]:
    """The activation (QR payload, SM-DP+ address, activation code) for the customer's eyes.

    Conflict (NO_HANDOVER_SCREEN) unless an agent opened or took over this
    eSIM request; PermissionDenied (NOT_YOUR_SCREEN) unless ``session_id`` is the console
    session that opened or took over the request, (IDENTITY_CHECK_REQUIRED)
    unless the agent's check is still live; Refused (HANDOFF_BY_EMAIL) when the
    brand sends the link by e-mail instead; Conflict (ACTIVATION_NOT_AVAILABLE)
    unless the eSIM is ready. The read is audited in the transaction that
    reads the code (:func:`resim.services.replacement.queries.activation_view`).
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, scope=scope)
        if request.channel != Channel.AGENT or request.target_form != SimForm.ESIM:
            raise Conflict(
                "only an eSIM request an agent opened or took over has a hand-over screen",
                code="NO_HANDOVER_SCREEN",
            )
        if session_id is None or request.agent_session_id != session_id:
            raise PermissionDenied(
                "only the console session that opened this request shows its eSIM",
                code="NOT_YOUR_SCREEN",
            )
        if live_check(uow, staff_id=staff_id, line_id=request.line_id, now=now) is None:
            raise _check_required()
        if repo.get_brand(uow, request.brand_id).policy.agent_esim_handoff != "screen":
            raise Refused(
                "this brand sends the eSIM link to the customer's e-mail",
                code="HANDOFF_BY_EMAIL",
            )
    return queries.activation_view(
        ctx,
        request_id,
        reader=f"staff:{staff_id}",
        via="console.screen",
        source=source,
        scope=scope,
    )
