"""SEC-06 holds: how long they last, and an HLR without them refuses instead of ignoring."""

from __future__ import annotations

import datetime as dt

import pytest

from resim.adapters.corenet.osmo_hlr import OsmoHlrCoreNetwork
from resim.domain.policy import BrandPolicy
from resim.errors import ExternalError, InvalidInput
from resim.services.cutover.cutover import post_swap_holds

AT = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def test_holds_run_from_the_swap_for_the_configured_time() -> None:
    sms, port = post_swap_holds(BrandPolicy(sms_hold_hours=24, port_out_block_days=7), AT)
    assert (sms, port) == (AT + dt.timedelta(hours=24), AT + dt.timedelta(days=7))


def test_zero_asks_for_no_hold() -> None:
    assert post_swap_holds(BrandPolicy(sms_hold_hours=0, port_out_block_days=0), AT) == (None, None)


def test_osmo_hlr_refuses_holds_for_good_with_a_clear_reason() -> None:
    hlr = OsmoHlrCoreNetwork("127.0.0.1", 9)  # never contacted: the refusal comes first
    with pytest.raises(ExternalError) as err:
        hlr.apply_post_swap_holds(
            imsi="238010000000001", sms_hold_until=AT, port_out_block_until=None
        )
    assert err.value.retryable is False
    assert err.value.code == "CORE_HOLDS_UNSUPPORTED"
    assert "osmo-hlr cannot hold SMS or block port-out" in err.value.message
    hlr.apply_post_swap_holds(
        imsi="238010000000001", sms_hold_until=None, port_out_block_until=None
    )
    with pytest.raises(InvalidInput):
        hlr.apply_post_swap_holds(imsi="238", sms_hold_until=None, port_out_block_until=None)
