"""The SmdpStatusQuery contract (issue 13.6): FakeSmdpStatusQuery and EmulatorStatusQuery
(real HTTP on loopback to the emulator's non-standard admin endpoint) answer alike.
ES2+ has no status query; this port exists for the emulator only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from resim.adapters.es2.emulator_status import EmulatorStatusQuery
from resim.adapters.es2.fake import FakeSmdpClient, FakeSmdpStatusQuery
from resim.bootstrap import build_smdp_status
from resim.emulator.app import EmulatorConfig
from resim.emulator.core import SmdpCore
from resim.emulator.ids import make_iccids
from resim.emulator.server import EmulatorThread
from resim.errors import ExternalError, InvalidInput
from resim.services.ports import SmdpStatusQuery
from resim.settings import Settings


@dataclass
class Env:
    query: SmdpStatusQuery
    core: SmdpCore

    def ready_profile(self) -> tuple[str, str]:
        """A released profile: (ICCID, matching ID)."""
        profile_type = f"pt-{uuid.uuid4().hex[:8]}"
        (iccid,) = self.core.add_generated_stock(profile_type, 1)
        client = FakeSmdpClient(self.core)
        client.download_order(call_id=uuid.uuid4().hex, iccid=iccid)
        out = client.confirm_order(call_id=uuid.uuid4().hex, iccid=iccid, release_flag=True)
        return iccid, out.matching_id


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorConfig(allowed_requesters=("resim",))) as server:
        yield server


@pytest.fixture(params=["fake", "http"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    if request.param == "fake":
        core = SmdpCore(allowed_requesters=["resim"])
        yield Env(FakeSmdpStatusQuery(core), core)
        return
    server: EmulatorThread = request.getfixturevalue("emulator")
    query = EmulatorStatusQuery(server.url, timeout=5.0)
    yield Env(query, server.core)
    query.close()


def test_before_during_and_after_the_install(env: Env) -> None:
    iccid, matching_id = env.ready_profile()
    assert env.query.install_state(iccid=iccid) == "not_installed"
    env.core.download(matching_id, env.core.smdp_address)
    assert env.query.install_state(iccid=iccid) == "not_installed"  # downloaded only
    env.core.install(iccid)
    assert env.query.install_state(iccid=iccid) == "installed"
    assert env.query.install_state(iccid=iccid + "F") == "installed"  # padded, as on the wire


def test_a_failed_install(env: Env) -> None:
    iccid, matching_id = env.ready_profile()
    env.core.download_and_install(matching_id, env.core.smdp_address, fail_install=True)
    assert env.query.install_state(iccid=iccid) == "failed"


def test_an_unknown_iccid_is_a_permanent_error(env: Env) -> None:
    with pytest.raises(ExternalError) as info:
        env.query.install_state(iccid=make_iccids(1, prefix="8999777")[0])
    assert (info.value.code, info.value.retryable) == ("SMDP_PROFILE_UNKNOWN", False)


def test_a_malformed_iccid_is_invalid_input(env: Env) -> None:
    with pytest.raises(InvalidInput):
        env.query.install_state(iccid="12")


def test_an_unreachable_emulator_is_retryable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    query = EmulatorStatusQuery("http://127.0.0.1:9", transport=httpx.MockTransport(down))
    with pytest.raises(ExternalError) as info:
        query.install_state(iccid=make_iccids(1, prefix="8999777")[0])
    assert (info.value.code, info.value.retryable) == ("SMDP_UNAVAILABLE", True)


def test_a_peer_that_is_not_the_emulator_is_named_as_such() -> None:
    real = httpx.MockTransport(lambda request: httpx.Response(200, json={"header": {}}))
    query = EmulatorStatusQuery("http://127.0.0.1:9", transport=real)
    with pytest.raises(ExternalError) as info:
        query.install_state(iccid=make_iccids(1, prefix="8999777")[0])
    assert info.value.code == "SMDP_PROTOCOL_MISMATCH" and "emulator only" in info.value.message


def test_the_setting_builds_it_for_the_emulator_only_and_never_in_production(
    tmp_path: Path,
) -> None:
    base = {"data_dir": tmp_path, "smdp_url": "http://127.0.0.1:8700"}
    assert build_smdp_status(Settings(**base)) is None  # type: ignore[arg-type]
    built = build_smdp_status(Settings(**base, smdp_status_query="emulator"))  # type: ignore[arg-type]
    assert isinstance(built, EmulatorStatusQuery)
    built.close()
    with pytest.raises(ValidationError, match="ES2\\+ has no status query"):
        Settings(**base, environment="production", smdp_status_query="emulator")  # type: ignore[arg-type]
