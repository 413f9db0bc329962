"""SmdpCore: every transition of the table, every status code, the call log, the phone."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable

import pytest

from resim.domain.identifiers import normalize_iccid
from resim.emulator.core import SmdpCore
from resim.emulator.ids import make_iccids
from resim.emulator.model import (
    TRANSITIONS,
    PhoneRefusal,
    ProfileState,
    SmdpRefusal,
)
from resim.errors import InvalidInput

S = ProfileState
EID = "89049032123451234512345678901235"
OTHER_EID = "89049032123451234512345678909999"
ADDR = "smdp.resim.test"
T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
_ids = itertools.count()


class FrozenClock:
    def now(self) -> dt.datetime:
        return T0


def cid() -> str:
    return f"call-{next(_ids)}"


def new_core(**kwargs: object) -> SmdpCore:
    return SmdpCore(clock=FrozenClock(), iccid_prefix="8999001", **kwargs)  # type: ignore[arg-type]


def stocked(n: int = 1, profile_type: str = "std", **kwargs: object) -> tuple[SmdpCore, list[str]]:
    core = new_core(**kwargs)
    return core, core.add_generated_stock(profile_type, n)


def refusal(fn: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(SmdpRefusal) as info:
        fn()
    return info.value.subject_code, info.value.reason_code


def bring(core: SmdpCore, iccid: str, state: ProfileState) -> None:
    """Drive one Available profile into ``state`` through public calls only."""
    r = "resim"
    if state is S.AVAILABLE:
        return
    if state is S.LINKED:
        core.download_order(requester=r, call_id=cid(), iccid=iccid, eid=EID)
        return
    core.download_order(requester=r, call_id=cid(), iccid=iccid)
    if state is S.ALLOCATED:
        return
    if state is S.UNAVAILABLE:
        core.cancel_order(
            requester=r, call_id=cid(), iccid=iccid, final_profile_status="Unavailable"
        )
        return
    out = core.confirm_order(requester=r, call_id=cid(), iccid=iccid, release_flag=False)
    if state is S.CONFIRMED:
        return
    core.release_profile(requester=r, call_id=cid(), iccid=iccid)
    if state is S.RELEASED:
        return
    core.download(out.matching_id, ADDR)
    if state is S.DOWNLOADED:
        return
    core.install(iccid, fail=state is S.ERROR)


def _matching_id(core: SmdpCore, iccid: str) -> str:
    return core.profile(iccid).matching_id or "NO-CODE"


ACTIONS: dict[str, Callable[[SmdpCore, str], object]] = {
    "downloadOrder": lambda c, i: c.download_order(requester="resim", call_id=cid(), iccid=i),
    "downloadOrder+eid": lambda c, i: c.download_order(
        requester="resim", call_id=cid(), iccid=i, eid=EID
    ),
    "confirmOrder": lambda c, i: c.confirm_order(
        requester="resim", call_id=cid(), iccid=i, release_flag=False
    ),
    "confirmOrder+release": lambda c, i: c.confirm_order(
        requester="resim", call_id=cid(), iccid=i, release_flag=True
    ),
    "releaseProfile": lambda c, i: c.release_profile(requester="resim", call_id=cid(), iccid=i),
    "cancelOrder->Available": lambda c, i: c.cancel_order(
        requester="resim", call_id=cid(), iccid=i, final_profile_status="Available"
    ),
    "cancelOrder->Unavailable": lambda c, i: c.cancel_order(
        requester="resim", call_id=cid(), iccid=i, final_profile_status="Unavailable"
    ),
    "download": lambda c, i: c.download(_matching_id(c, i), ADDR),
    "install": lambda c, i: c.install(i),
    "install-fails": lambda c, i: c.install(i, fail=True),
}

_CANCELLABLE = (S.ALLOCATED, S.LINKED, S.CONFIRMED, S.RELEASED)
EXPECTED: dict[tuple[str, ProfileState], ProfileState] = {
    ("downloadOrder", S.AVAILABLE): S.ALLOCATED,
    ("downloadOrder+eid", S.AVAILABLE): S.LINKED,
    ("confirmOrder", S.ALLOCATED): S.CONFIRMED,
    ("confirmOrder", S.LINKED): S.CONFIRMED,
    ("confirmOrder+release", S.ALLOCATED): S.RELEASED,
    ("confirmOrder+release", S.LINKED): S.RELEASED,
    ("releaseProfile", S.CONFIRMED): S.RELEASED,
    **{("cancelOrder->Available", s): S.AVAILABLE for s in _CANCELLABLE},
    **{("cancelOrder->Unavailable", s): S.UNAVAILABLE for s in _CANCELLABLE},
    ("download", S.RELEASED): S.DOWNLOADED,
    ("install", S.DOWNLOADED): S.INSTALLED,
    ("install-fails", S.DOWNLOADED): S.ERROR,
}


class TestTransitionTable:
    def test_the_table_is_exactly_the_documented_lifecycle(self) -> None:
        event_of = {
            "downloadOrder+eid": "downloadOrder",
            "confirmOrder+release": "confirmOrder",
            "cancelOrder->Available": "cancelOrder",
            "cancelOrder->Unavailable": "cancelOrder",
            "install-fails": "installFailed",
        }
        documented = {(event_of.get(a, a), src, dst) for (a, src), dst in EXPECTED.items()}
        assert documented == set(TRANSITIONS)

    @pytest.mark.parametrize("state", list(S), ids=str)
    @pytest.mark.parametrize("action", list(ACTIONS))
    def test_every_action_from_every_state(self, action: str, state: ProfileState) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, state)
        assert core.profile(iccid).state is state
        expected = EXPECTED.get((action, state))
        if expected is not None:
            ACTIONS[action](core, iccid)
            assert core.profile(iccid).state is expected
            return
        if action in ("download", "install", "install-fails"):
            with pytest.raises(PhoneRefusal):
                ACTIONS[action](core, iccid)
        else:
            wanted = ("8.2.1", "3.3") if action.startswith("downloadOrder") else ("8.2.1", "3.5")
            assert refusal(lambda: ACTIONS[action](core, iccid)) == wanted
        assert core.profile(iccid).state is state


class TestDownloadOrder:
    def test_by_profile_type_picks_an_available_profile_and_returns_its_iccid(self) -> None:
        core, iccids = stocked(2)
        bring(core, iccids[0], S.ALLOCATED)
        got = core.download_order(requester="resim", call_id=cid(), profile_type="std")
        assert got == iccids[1]

    def test_unknown_profile_type_is_8_2_5_3_9(self) -> None:
        core, _ = stocked()
        assert refusal(
            lambda: core.download_order(requester="resim", call_id=cid(), profile_type="nope")
        ) == ("8.2.5", "3.9")

    def test_no_profile_left_is_8_2_5_3_7(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.ALLOCATED)
        assert refusal(
            lambda: core.download_order(requester="resim", call_id=cid(), profile_type="std")
        ) == ("8.2.5", "3.7")

    def test_neither_iccid_nor_type_is_1_6_2_2(self) -> None:
        core, _ = stocked()
        assert refusal(lambda: core.download_order(requester="resim", call_id=cid())) == (
            "1.6",
            "2.2",
        )

    def test_unknown_iccid_is_8_2_1_3_9(self) -> None:
        core, _ = stocked()
        other = make_iccids(1, prefix="8999777")[0]
        assert refusal(
            lambda: core.download_order(requester="resim", call_id=cid(), iccid=other)
        ) == ("8.2.1", "3.9")

    @pytest.mark.parametrize(
        "kwargs",
        [{"iccid": "12345"}, {"iccid": "8999001000000000001"}, {"profile_type": "std", "eid": "1"}],
        ids=["short-iccid", "bad-luhn", "bad-eid"],
    )
    def test_malformed_values_are_1_6_2_1(self, kwargs: dict[str, str]) -> None:
        core, _ = stocked()
        assert refusal(lambda: core.download_order(requester="resim", call_id=cid(), **kwargs)) == (
            "1.6",
            "2.1",
        )

    def test_profile_type_that_contradicts_the_iccid_is_1_6_2_1(self) -> None:
        core, [iccid] = stocked()
        assert refusal(
            lambda: core.download_order(
                requester="resim", call_id=cid(), iccid=iccid, profile_type="other"
            )
        ) == ("1.6", "2.1")

    def test_padded_iccid_and_empty_optionals_are_accepted(self) -> None:
        core, [iccid] = stocked()
        assert len(iccid) == 19
        got = core.download_order(
            requester="resim", call_id=cid(), iccid=iccid + "F", eid="", profile_type=""
        )
        assert got == iccid
        assert core.profile(iccid).state is S.ALLOCATED

    def test_unknown_requester_is_1_1_1_1_and_changes_nothing(self) -> None:
        core, [iccid] = stocked(allowed_requesters=["resim"])
        assert refusal(
            lambda: core.download_order(requester="intruder", call_id=cid(), iccid=iccid)
        ) == ("1.1", "1.1")
        assert core.profile(iccid).state is S.AVAILABLE

    def test_another_operators_profile_is_1_1_1_2_and_never_picked(self) -> None:
        core = new_core()
        [theirs] = core.add_generated_stock("std", 1, owner="other-op")
        assert refusal(
            lambda: core.download_order(requester="resim", call_id=cid(), iccid=theirs)
        ) == ("1.1", "1.2")
        assert refusal(
            lambda: core.download_order(requester="resim", call_id=cid(), profile_type="std")
        ) == ("8.2.5", "3.7")
        assert core.download_order(requester="other-op", call_id=cid(), iccid=theirs) == theirs


class TestConfirmOrder:
    def test_generates_a_qr_friendly_matching_id_and_returns_the_address(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.LINKED)
        out = core.confirm_order(requester="resim", call_id=cid(), iccid=iccid, release_flag=True)
        assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", out.matching_id)
        assert (out.smdp_address, out.eid) == (ADDR, EID)

    def test_keeps_a_matching_id_the_operator_chose(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.ALLOCATED)
        out = core.confirm_order(
            requester="resim", call_id=cid(), iccid=iccid, release_flag=False, matching_id="MY-ID-1"
        )
        assert out.matching_id == "MY-ID-1"

    def test_a_matching_id_is_never_reused_even_after_cancel(self) -> None:
        core, iccids = stocked(2)
        for i in iccids:
            bring(core, i, S.ALLOCATED)
        core.confirm_order(
            requester="resim", call_id=cid(), iccid=iccids[0], release_flag=False, matching_id="M1"
        )
        core.cancel_order(
            requester="resim", call_id=cid(), iccid=iccids[0], final_profile_status="Available"
        )
        assert refusal(
            lambda: core.confirm_order(
                requester="resim",
                call_id=cid(),
                iccid=iccids[1],
                release_flag=False,
                matching_id="M1",
            )
        ) == ("8.2.6", "3.3")

    def test_a_matching_id_with_a_dollar_is_1_6_2_1(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.ALLOCATED)
        assert refusal(
            lambda: core.confirm_order(
                requester="resim", call_id=cid(), iccid=iccid, release_flag=False, matching_id="A$B"
            )
        ) == ("1.6", "2.1")

    def test_a_different_eid_is_8_1_1_3_10(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.LINKED)
        assert refusal(
            lambda: core.confirm_order(
                requester="resim", call_id=cid(), iccid=iccid, release_flag=True, eid=OTHER_EID
            )
        ) == ("8.1.1", "3.10")

    def test_an_eid_binds_an_allocated_profile(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.ALLOCATED)
        out = core.confirm_order(
            requester="resim", call_id=cid(), iccid=iccid, release_flag=True, eid=EID
        )
        assert out.eid == EID == core.profile(iccid).eid

    def test_unreachable_smds_is_8_9_5_1(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.LINKED)
        assert refusal(
            lambda: core.confirm_order(
                requester="resim",
                call_id=cid(),
                iccid=iccid,
                release_flag=True,
                smds_address="lpa.ds.invalid",
            )
        ) == ("8.9", "5.1")
        assert core.profile(iccid).state is S.LINKED

    def test_the_confirmation_code_is_kept_only_as_a_hash(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.ALLOCATED)
        core.confirm_order(
            requester="resim",
            call_id=cid(),
            iccid=iccid,
            release_flag=True,
            confirmation_code="73519",
        )
        view = core.profile(iccid)
        assert view.confirmation_code_required
        assert "73519" not in repr(core.profiles()) + repr(core.calls())
        assert "73519" not in repr(vars(core))


class TestCancelOrder:
    def test_available_again_clears_the_order_and_kills_the_code(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.RELEASED)
        mid = _matching_id(core, iccid)
        core.cancel_order(
            requester="resim",
            call_id=cid(),
            iccid=iccid,
            final_profile_status="Available",
            matching_id=mid,
        )
        view = core.profile(iccid)
        assert (view.state, view.eid, view.matching_id) == (S.AVAILABLE, None, None)
        with pytest.raises(PhoneRefusal) as info:
            core.download(mid, ADDR)
        assert info.value.reason == "cancelled"

    def test_a_wrong_matching_id_is_8_2_6_3_8(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.CONFIRMED)
        assert refusal(
            lambda: core.cancel_order(
                requester="resim",
                call_id=cid(),
                iccid=iccid,
                final_profile_status="Available",
                matching_id="NOT-IT",
            )
        ) == ("8.2.6", "3.8")

    def test_a_different_eid_is_8_1_1_3_10(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.LINKED)
        assert refusal(
            lambda: core.cancel_order(
                requester="resim",
                call_id=cid(),
                iccid=iccid,
                final_profile_status="Available",
                eid=OTHER_EID,
            )
        ) == ("8.1.1", "3.10")

    def test_an_unknown_final_status_is_1_6_2_1(self) -> None:
        core, [iccid] = stocked()
        bring(core, iccid, S.ALLOCATED)
        assert refusal(
            lambda: core.cancel_order(
                requester="resim", call_id=cid(), iccid=iccid, final_profile_status="Gone"
            )
        ) == ("1.6", "2.1")


class TestCallLog:
    def test_every_call_is_logged_with_its_outcome(self) -> None:
        core, [iccid] = stocked()
        core.download_order(requester="resim", call_id="c-1", iccid=iccid)
        with pytest.raises(SmdpRefusal):
            core.release_profile(requester="resim", call_id="c-2", iccid=iccid)
        calls = core.calls()
        assert [(c.function, c.call_id, c.iccid, c.outcome) for c in calls] == [
            ("downloadOrder", "c-1", iccid, "Executed-Success"),
            ("releaseProfile", "c-2", iccid, "Failed"),
        ]
        assert (calls[1].subject_code, calls[1].reason_code, calls[1].at) == ("8.2.1", "3.5", T0)

    def test_a_repeated_call_id_is_replayed_not_executed_twice(self) -> None:
        core, _ = stocked(3)
        first = core.download_order(requester="resim", call_id="same", profile_type="std")
        again = core.download_order(requester="resim", call_id="same", profile_type="std")
        assert first == again
        executed = [c for c in core.calls("downloadOrder") if c.outcome == "Executed-Success"]
        assert len(executed) == 1
        assert core.calls()[-1].outcome == "replayed"

    def test_a_repeated_call_id_with_other_parameters_is_1_6_2_1(self) -> None:
        core, _ = stocked(3)
        core.download_order(requester="resim", call_id="same", profile_type="std")
        assert refusal(
            lambda: core.download_order(requester="resim", call_id="same", profile_type="x")
        ) == ("1.6", "2.1")

    def test_without_replay_a_repeated_call_orders_a_second_profile(self) -> None:
        core, _ = stocked(3, replay_duplicate_calls=False)
        first = core.download_order(requester="resim", call_id="same", profile_type="std")
        second = core.download_order(requester="resim", call_id="same", profile_type="std")
        assert first != second

    def test_a_refusal_is_replayed_too(self) -> None:
        core, [iccid] = stocked()
        assert refusal(lambda: core.release_profile(requester="resim", call_id="r", iccid=iccid))
        bring(core, iccid, S.CONFIRMED)
        assert refusal(
            lambda: core.release_profile(requester="resim", call_id="r", iccid=iccid)
        ) == ("8.2.1", "3.5")
        assert core.profile(iccid).state is S.CONFIRMED


class TestPhone:
    def _released(self, **confirm: str) -> tuple[SmdpCore, str, str]:
        core, [iccid] = stocked()
        bring(core, iccid, S.LINKED)
        out = core.confirm_order(
            requester="resim", call_id=cid(), iccid=iccid, release_flag=True, **confirm
        )  # type: ignore[arg-type]
        return core, iccid, out.matching_id

    def test_download_and_install_returns_points_3_and_4(self) -> None:
        core, iccid, mid = self._released()
        notes = core.download_and_install(mid, ADDR, eid=EID)
        assert [(n.notification_point_id, n.status) for n in notes] == [
            (3, "Executed-Success"),
            (4, "Executed-Success"),
        ]
        assert all(n.iccid == iccid and n.eid == EID and n.profile_type == "std" for n in notes)
        assert all(n.timestamp.tzinfo is not None and n.smdp_id == "smdp-emulator" for n in notes)
        assert len({n.call_id for n in notes}) == 2
        assert core.profile(iccid).state is S.INSTALLED

    def test_a_failed_install_reports_failed_with_a_reason(self) -> None:
        core, iccid, mid = self._released()
        notes = core.download_and_install(mid, ADDR, fail_install=True)
        assert (notes[1].status, notes[1].subject_code) == ("Failed", "8.1")
        assert core.profile(iccid).state is S.ERROR

    @pytest.mark.parametrize(
        ("kwargs", "reason"),
        [
            ({"smdp_address": "other.example"}, "wrong_smdp"),
            ({"matching_id": "UNKNOWN-CODE"}, "unknown_code"),
            ({"eid": OTHER_EID}, "eid_mismatch"),
            ({"eid": "123"}, "invalid_eid"),
        ],
    )
    def test_unusable_codes_are_refused_plainly(self, kwargs: dict[str, str], reason: str) -> None:
        core, _, mid = self._released()
        args = {"matching_id": mid, "smdp_address": ADDR, **kwargs}
        with pytest.raises(PhoneRefusal) as info:
            core.download_and_install(**args)  # type: ignore[arg-type]
        assert info.value.reason == reason

    def test_a_used_code_says_used(self) -> None:
        core, _, mid = self._released()
        core.download_and_install(mid, ADDR)
        with pytest.raises(PhoneRefusal, match="already used") as info:
            core.download_and_install(mid, ADDR)
        assert info.value.reason == "used"

    def test_a_confirmation_code_is_required_and_checked(self) -> None:
        core, iccid, mid = self._released(confirmation_code="4711")
        for given, reason in (
            (None, "confirmation_code_required"),
            ("0000", "confirmation_code_wrong"),
        ):
            with pytest.raises(PhoneRefusal) as info:
                core.download_and_install(mid, ADDR, confirmation_code=given)
            assert info.value.reason == reason
        core.download_and_install(mid, ADDR, confirmation_code="4711")
        assert core.profile(iccid).state is S.INSTALLED


class TestStock:
    def test_generated_iccids_are_valid_19_digits_and_unique(self) -> None:
        core = new_core()
        a = core.add_generated_stock("std", 5)
        b = core.add_generated_stock("plus", 5)
        assert len(set(a + b)) == 10
        assert all(len(i) == 19 and normalize_iccid(i) == i for i in a + b)

    def test_bad_or_duplicate_iccids_are_refused(self) -> None:
        core, [iccid] = stocked()
        with pytest.raises(InvalidInput):
            core.add_stock("std", [iccid])
        with pytest.raises(InvalidInput):
            core.add_stock("std", ["8912"])

    def test_make_iccids_checks_its_prefix(self) -> None:
        with pytest.raises(InvalidInput):
            make_iccids(1, prefix="12")


class TestConcurrency:
    def test_parallel_orders_never_hand_out_a_profile_twice(self) -> None:
        core, _ = stocked(200)
        got: list[str] = []
        lock = threading.Lock()

        def order(n: int) -> None:
            for k in range(10):
                iccid = core.download_order(
                    requester="resim", call_id=f"t{n}-{k}", profile_type="std"
                )
                with lock:
                    got.append(iccid)

        threads = [threading.Thread(target=order, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == len(set(got)) == 200
