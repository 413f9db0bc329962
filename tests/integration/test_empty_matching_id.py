"""Issue 15, item 6: an empty MatchingID from the SM-DP+ is valid, and sealed at rest.

SGP.22 4.1 allows an Activation Code without a MatchingID
(``1$SMDP.GSMA.COM$$1.3.6.1.4.1.31746``; the SM-DP+ finds an EID-bound order
by the EID). An SM-DP+ that answers confirmOrder with ``matchingId: ""`` is
one resim must work with: the request becomes ready with the code
``1$<address>$``, the column still holds a Fernet token (an empty value is
sealed like any other), and withdrawing the order names no MatchingID.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from test_matching_id_at_rest import raw_matching_ids
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.es2.fake import FakeSmdpClient
from resim.domain.workflow import State
from resim.services.ports import ConfirmOrderResult
from resim.services.replacement import queries, requests
from resim.services.replacement.cancel import cancel

pytestmark = pytest.mark.integration


class EidBoundSmdp(FakeSmdpClient):
    """An SM-DP+ that confirms the order and announces an empty MatchingID;
    it records what resim sends in cancelOrder."""

    def __init__(self, inner: FakeSmdpClient) -> None:
        super().__init__(inner.core)
        self.cancelled_with: list[str | None] = []

    def confirm_order(self, **kwargs: Any) -> ConfirmOrderResult:
        out = super().confirm_order(**kwargs)
        return ConfirmOrderResult(matching_id="", smdp_address=out.smdp_address, eid=out.eid)

    def cancel_order(self, **kwargs: Any) -> None:
        self.cancelled_with.append(kwargs.get("matching_id"))
        super().cancel_order(**kwargs)


def ready_with_an_empty_matching_id(system: System) -> tuple[str, EidBoundSmdp]:
    smdp = EidBoundSmdp(system.ctx.smdp)  # type: ignore[arg-type]
    system.ctx.smdp = smdp
    msisdn, email, _, _ = add_line(system, 1)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
    system.run_jobs()
    requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    system.run_jobs()
    return opened.id, smdp


def test_the_request_becomes_ready_with_the_smdps_empty_matching_id(system: System) -> None:
    rid, _ = ready_with_an_empty_matching_id(system)
    view = queries.activation_view(system.ctx, rid, reader="test", via="test")
    assert view["activation_code"] == "1$smdp.resim.test$"
    assert view["qr_payload"] == "LPA:1$smdp.resim.test$"
    assert (view["smdp_address"], view["matching_id"]) == ("smdp.resim.test", "")
    assert queries.get_request_view(system.ctx, rid)["state"] == State.READY.value
    # Sealed at rest even though empty: the column holds a token, not "".
    (stored,) = raw_matching_ids(system.engine)
    assert stored.startswith("gAAAAA")
    with system.engine.connect() as conn:
        actions = conn.execute(
            sa.text("SELECT action FROM audit_event WHERE object_id = :id"), {"id": rid}
        ).scalars()
        assert "esim.matching_id_from_smdp" in set(actions)


def test_withdrawing_the_order_names_no_matching_id(system: System) -> None:
    rid, smdp = ready_with_an_empty_matching_id(system)
    iccid = queries.get_request_view(system.ctx, rid)["new_iccid"]
    assert cancel(system.ctx, rid, actor="agent-1") == State.CANCELLED
    system.run_jobs()
    assert smdp.cancelled_with == [None]  # not "": an empty matchingId is no MatchingID
    assert system.smdp.profile(iccid).state.value == "Available"
