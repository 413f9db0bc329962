"""What the in-memory core network offers beyond the contract: history and clock."""

from __future__ import annotations

import datetime as dt

import pytest

from resim.adapters.corenet.fake import FakeCoreNetwork
from resim.adapters.corenet.rules import CoreEvent

OLD, NEW = "001010000000001", "001010000000002"
M = "+4520123456"


class FrozenClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


def swapped(clock: FrozenClock) -> FakeCoreNetwork:
    cn = FakeCoreNetwork(clock)
    cn.provision_imsi(imsi=OLD)
    cn.move_msisdn(msisdn=M, new_imsi=OLD, old_imsi=None)
    clock.tick()
    cn.provision_imsi(imsi=NEW)
    clock.tick()
    cn.move_msisdn(msisdn=M, new_imsi=NEW, old_imsi=OLD)
    clock.tick()
    cn.retire_imsi(imsi=OLD)
    return cn


class TestHistory:
    def test_a_swap_is_recorded_step_by_step_with_the_clocks_times(self) -> None:
        clock = FrozenClock()
        t0 = clock.now
        cn = swapped(clock)
        minute = dt.timedelta(minutes=1)
        assert cn.events() == [
            CoreEvent(OLD, None, "imsi.provisioned", t0),
            CoreEvent(OLD, M, "msisdn.bound", t0),
            CoreEvent(NEW, None, "imsi.provisioned", t0 + minute),
            CoreEvent(OLD, M, "msisdn.unbound", t0 + 2 * minute),
            CoreEvent(NEW, M, "msisdn.bound", t0 + 2 * minute),
            CoreEvent(OLD, None, "imsi.retired", t0 + 3 * minute),
        ]

    def test_repeats_leave_no_trace(self) -> None:
        clock = FrozenClock()
        cn = swapped(clock)
        before = cn.events()
        cn.provision_imsi(imsi=NEW)
        cn.move_msisdn(msisdn=M, new_imsi=NEW, old_imsi=OLD)
        cn.retire_imsi(imsi=OLD)
        cn.suspend_imsi(imsi=OLD)
        cn.resume_imsi(imsi=NEW)
        assert cn.events() == before

    def test_history_can_be_filtered_by_imsi_and_number(self) -> None:
        cn = swapped(FrozenClock())
        assert [e.operation for e in cn.events(imsi=NEW)] == ["imsi.provisioned", "msisdn.bound"]
        assert [e.operation for e in cn.events(msisdn=M)] == [
            "msisdn.bound",
            "msisdn.unbound",
            "msisdn.bound",
        ]
        assert cn.events(imsi=NEW, msisdn=M) == [cn.events()[4]]

    def test_suspend_resume_and_holds_are_recorded_with_the_number(self) -> None:
        clock = FrozenClock()
        cn = swapped(clock)
        cn.suspend_imsi(imsi=NEW)
        cn.resume_imsi(imsi=NEW)
        until = clock.now + dt.timedelta(hours=24)
        cn.apply_post_swap_holds(imsi=NEW, sms_hold_until=until, port_out_block_until=None)
        assert [(e.operation, e.msisdn) for e in cn.events()[-3:]] == [
            ("imsi.suspended", M),
            ("imsi.resumed", M),
            ("imsi.holds_applied", M),
        ]


class TestRecords:
    def test_the_record_shows_flags_holds_and_last_change(self) -> None:
        clock = FrozenClock()
        cn = swapped(clock)
        until = clock.now + dt.timedelta(hours=24)
        stamp = clock.tick()
        cn.apply_post_swap_holds(imsi=NEW, sms_hold_until=until, port_out_block_until=until)
        new, old = cn.subscriber(imsi=NEW), cn.subscriber(imsi=OLD)
        assert new is not None and old is not None
        assert (new.msisdn, new.enabled, new.retired) == (M, True, False)
        assert (new.sms_hold_until, new.port_out_block_until, new.updated_at) == (
            until,
            until,
            stamp,
        )
        assert (old.msisdn, old.enabled, old.retired) == (None, False, True)
        assert cn.subscriber(imsi="001010000000009") is None

    def test_a_naive_clock_is_refused(self) -> None:
        cn = FakeCoreNetwork(lambda: dt.datetime(2030, 1, 1))
        with pytest.raises(ValueError, match="timezone-aware"):
            cn.provision_imsi(imsi=OLD)
        assert cn.subscriber(imsi=OLD) is None
