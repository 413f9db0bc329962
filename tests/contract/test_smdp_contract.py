"""The SmdpClient contract: FakeSmdpClient and HttpEs2Client (real HTTP on loopback to the
emulator served by uvicorn) must behave identically, on success and on every error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from async_bridge import Blocking

from resim.adapters.es2.client import HttpEs2Client
from resim.adapters.es2.errors import Es2StatusError
from resim.adapters.es2.fake import FakeAsyncSmdpClient, FakeSmdpClient
from resim.emulator.app import EmulatorConfig
from resim.emulator.core import SmdpCore
from resim.emulator.ids import make_iccids
from resim.emulator.model import ProfileState
from resim.emulator.server import EmulatorThread
from resim.errors import InvalidInput
from resim.services.ports import SmdpClient

EID = "89049032123451234512345678901235"
OTHER_EID = "89049032123451234512345678909999"
ADDRESS = "smdp.resim.test"
UNKNOWN_ICCID = make_iccids(1, prefix="8999888")[0]


@dataclass
class Env:
    """One SmdpClient under test, the core behind it and a factory for other requesters."""

    client: SmdpClient
    core: SmdpCore
    client_as: Callable[[str], SmdpClient]
    _opened: list[HttpEs2Client] = field(default_factory=list)

    def stock(self, n: int = 1, *, owner: str | None = None) -> tuple[str, list[str]]:
        """A fresh profile type (isolates tests sharing one server) with ``n`` profiles."""
        profile_type = f"pt-{uuid.uuid4().hex[:8]}"
        return profile_type, self.core.add_generated_stock(profile_type, n, owner=owner)


def cid() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    config = EmulatorConfig(allowed_requesters=("resim", "other-op"))
    with EmulatorThread(config) as server:
        yield server


@pytest.fixture(params=["fake", "http", "fake-async", "http-async"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    bridges: list[Blocking] = []
    if request.param.startswith("fake"):
        core = SmdpCore(allowed_requesters=["resim", "other-op"])

        def fake_as(requester_id: str) -> SmdpClient:
            fake = FakeSmdpClient(core, requester_id=requester_id)
            if request.param == "fake":
                return fake
            bridge = Blocking(FakeAsyncSmdpClient(fake))
            bridges.append(bridge)
            return bridge  # type: ignore[return-value]

        yield Env(fake_as("resim"), core, fake_as)
        for bridge in bridges:
            bridge.close()
        return
    server: EmulatorThread = request.getfixturevalue("emulator")
    opened: list[HttpEs2Client] = []

    def client_as(requester_id: str) -> SmdpClient:
        client = HttpEs2Client(server.url, requester_id, timeout=5.0)
        opened.append(client)
        if request.param == "http":
            return client
        twin = client.asynchronous()
        assert twin is not None
        bridge = Blocking(twin)
        bridges.append(bridge)
        return bridge  # type: ignore[return-value]

    main = client_as("resim")
    try:
        yield Env(main, server.core, client_as)
    finally:
        for bridge in bridges:
            bridge.close()
        for client in opened:
            client.close()


def es2_error(fn: Callable[[], object]) -> Es2StatusError:
    with pytest.raises(Es2StatusError) as info:
        fn()
    return info.value


class TestSuccessPaths:
    def test_order_by_iccid_confirm_release_and_the_core_follows(self, env: Env) -> None:
        _, [iccid] = env.stock()
        assert env.client.download_order(call_id=cid(), iccid=iccid).iccid == iccid
        out = env.client.confirm_order(call_id=cid(), iccid=iccid, release_flag=False)
        assert out.smdp_address == ADDRESS and out.eid is None
        assert env.core.profile(iccid).state is ProfileState.CONFIRMED
        env.client.release_profile(call_id=cid(), iccid=iccid)
        view = env.core.profile(iccid)
        assert (view.state, view.matching_id) == (ProfileState.RELEASED, out.matching_id)

    def test_order_by_type_with_eid_and_release_flag(self, env: Env) -> None:
        profile_type, iccids = env.stock(2)
        got = env.client.download_order(call_id=cid(), profile_type=profile_type, eid=EID)
        assert got.iccid in iccids
        out = env.client.confirm_order(
            call_id=cid(), iccid=got.iccid, release_flag=True, confirmation_code="2468"
        )
        assert out.eid == EID
        view = env.core.profile(got.iccid)
        assert (view.state, view.confirmation_code_required) == (ProfileState.RELEASED, True)

    def test_the_operator_may_choose_the_matching_id(self, env: Env) -> None:
        _, [iccid] = env.stock()
        env.client.download_order(call_id=cid(), iccid=iccid)
        mid = f"OP-{uuid.uuid4().hex[:10].upper()}"
        out = env.client.confirm_order(
            call_id=cid(), iccid=iccid, release_flag=True, matching_id=mid
        )
        assert out.matching_id == mid

    @pytest.mark.parametrize("final", ["Available", "Unavailable"])
    def test_cancel_before_download(self, env: Env, final: str) -> None:
        _, [iccid] = env.stock()
        env.client.download_order(call_id=cid(), iccid=iccid, eid=EID)
        out = env.client.confirm_order(call_id=cid(), iccid=iccid, release_flag=True)
        env.client.cancel_order(
            call_id=cid(),
            iccid=iccid,
            final_profile_status=final,  # type: ignore[arg-type]
            matching_id=out.matching_id,
            eid=EID,
        )
        assert env.core.profile(iccid).state is ProfileState(final)

    def test_a_retry_with_the_same_call_id_returns_the_same_profile(self, env: Env) -> None:
        profile_type, _ = env.stock(3)
        call = cid()
        first = env.client.download_order(call_id=call, profile_type=profile_type)
        again = env.client.download_order(call_id=call, profile_type=profile_type)
        assert first == again
        outcomes = [c.outcome for c in env.core.calls("downloadOrder") if c.call_id == call]
        assert outcomes == ["Executed-Success", "replayed"]


class TestErrors:
    def test_unknown_iccid(self, env: Env) -> None:
        err = es2_error(lambda: env.client.release_profile(call_id=cid(), iccid=UNKNOWN_ICCID))
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_ICCID_UNKNOWN",
            "8.2.1",
            "3.9",
        )
        assert not err.retryable

    def test_profile_not_available(self, env: Env) -> None:
        _, [iccid] = env.stock()
        env.client.download_order(call_id=cid(), iccid=iccid)
        err = es2_error(lambda: env.client.download_order(call_id=cid(), iccid=iccid))
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_PROFILE_NOT_AVAILABLE",
            "8.2.1",
            "3.3",
        )

    def test_wrong_state(self, env: Env) -> None:
        _, [iccid] = env.stock()
        err = es2_error(lambda: env.client.release_profile(call_id=cid(), iccid=iccid))
        assert (err.code, err.subject_code, err.reason_code) == ("ES2_WRONG_STATE", "8.2.1", "3.5")
        assert "Available" in err.message

    def test_eid_mismatch(self, env: Env) -> None:
        _, [iccid] = env.stock()
        env.client.download_order(call_id=cid(), iccid=iccid, eid=EID)
        err = es2_error(
            lambda: env.client.confirm_order(
                call_id=cid(), iccid=iccid, release_flag=True, eid=OTHER_EID
            )
        )
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_EID_MISMATCH",
            "8.1.1",
            "3.10",
        )

    def test_profile_type_unknown_and_exhausted(self, env: Env) -> None:
        err = es2_error(lambda: env.client.download_order(call_id=cid(), profile_type="no-such"))
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_PROFILE_TYPE_UNKNOWN",
            "8.2.5",
            "3.9",
        )
        profile_type, _ = env.stock(1)
        env.client.download_order(call_id=cid(), profile_type=profile_type)
        err = es2_error(lambda: env.client.download_order(call_id=cid(), profile_type=profile_type))
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_PROFILE_TYPE_EXHAUSTED",
            "8.2.5",
            "3.7",
        )

    def test_matching_id_used_and_refused(self, env: Env) -> None:
        _, iccids = env.stock(2)
        for iccid in iccids:
            env.client.download_order(call_id=cid(), iccid=iccid)
        out = env.client.confirm_order(call_id=cid(), iccid=iccids[0], release_flag=True)
        err = es2_error(
            lambda: env.client.confirm_order(
                call_id=cid(), iccid=iccids[1], release_flag=True, matching_id=out.matching_id
            )
        )
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_MATCHING_ID_USED",
            "8.2.6",
            "3.3",
        )
        assert out.matching_id not in str(err)
        err = es2_error(
            lambda: env.client.cancel_order(
                call_id=cid(),
                iccid=iccids[0],
                final_profile_status="Available",
                matching_id="NOT-THE-ONE",
            )
        )
        assert (err.code, err.reason_code) == ("ES2_MATCHING_ID_REFUSED", "3.8")

    def test_smds_unreachable(self, env: Env) -> None:
        _, [iccid] = env.stock()
        env.client.download_order(call_id=cid(), iccid=iccid, eid=EID)
        err = es2_error(
            lambda: env.client.confirm_order(
                call_id=cid(), iccid=iccid, release_flag=True, smds_address="ds.invalid"
            )
        )
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_SMDS_UNREACHABLE",
            "8.9",
            "5.1",
        )

    def test_invalid_parameter(self, env: Env) -> None:
        _, [iccid] = env.stock()
        env.client.download_order(call_id=cid(), iccid=iccid)
        err = es2_error(
            lambda: env.client.confirm_order(
                call_id=cid(), iccid=iccid, release_flag=True, matching_id="A$B"
            )
        )
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_INVALID_PARAMETER",
            "1.6",
            "2.1",
        )

    def test_unknown_requester(self, env: Env) -> None:
        _, [iccid] = env.stock()
        intruder = env.client_as("intruder")
        err = es2_error(lambda: intruder.download_order(call_id=cid(), iccid=iccid))
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_REQUESTER_UNKNOWN",
            "1.1",
            "1.1",
        )
        assert env.core.profile(iccid).state is ProfileState.AVAILABLE

    def test_another_operators_profile(self, env: Env) -> None:
        _, [iccid] = env.stock(owner="other-op")
        err = es2_error(lambda: env.client.download_order(call_id=cid(), iccid=iccid))
        assert (err.code, err.subject_code, err.reason_code) == (
            "ES2_REQUESTER_NOT_ALLOWED",
            "1.1",
            "1.2",
        )
        other = env.client_as("other-op")
        assert other.download_order(call_id=cid(), iccid=iccid).iccid == iccid

    def test_bad_arguments_are_refused_before_any_call(self, env: Env) -> None:
        before = len(env.core.calls())
        with pytest.raises(InvalidInput):
            env.client.release_profile(call_id=cid(), iccid="89123")
        with pytest.raises(InvalidInput):
            env.client.download_order(call_id=cid(), profile_type="x", eid="123")
        assert len(env.core.calls()) == before
