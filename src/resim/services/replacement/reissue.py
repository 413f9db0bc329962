"""Reissue: the download failed on the device, so order a fresh profile.

Standard ES2+ cannot make a downloaded ICCID downloadable again (SGP.22; see
shared/reference/es2plus.md), so the old order is withdrawn with
finalProfileStatusIndicator=Unavailable (the profile is burned) and the request
goes back to provisioning for a new profile and a new activation code.
"""

from __future__ import annotations

import json

from resim.domain.workflow import State
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext


def reissue(
    ctx: ServiceContext, request_id: str, *, actor: str, scope: Scope = UNRESTRICTED
) -> State:
    """ready -> provisioning with a new profile; refused once the eSIM is installed.
    A request out of the caller's ``scope`` is NotFound."""
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True, scope=scope)
        old_matching_id = req.matching_id
        # Refused (Conflict) once installed or unless ready; Reissued is audited
        # (request.reissued) and enqueues the new esim.provision.
        old_iccid = req.reissue(actor=actor, at=now)
        uow.flush()  # release the UNIQUE new_iccid before the job names it again
        if old_iccid is not None:
            uow.enqueue(
                "esim.cancel_order",
                at=now,
                request_id=req.id,
                payload={
                    "iccid": old_iccid,
                    "final": "Unavailable",
                    # The old MatchingID still opens the old order until the
                    # SM-DP+ withdraws it: never in clear in the jobs table.
                    "secret_context": ctx.secrets.encrypt(
                        json.dumps({"matching_id": old_matching_id})
                    ),
                },
            )
        uow.commit()
        return req.state
