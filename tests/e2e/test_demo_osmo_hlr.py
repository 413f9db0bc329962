"""The demo on a real osmo-hlr (``resim demo --core-network osmo-hlr``), over HTTP.

The demo starts its own osmo-hlr on a free loopback address; the walkthrough
(a lost phone, reviewed, eSIM installed on the emulator) must complete with
the lost phone dropped by its VLR (a fake one over GSUP) when its SIM is
barred, the number moved and the old SIM retired in the HLR itself, and the daemon
must be gone after the demo stops. Without the binary the demo refuses in
one line. Skipped without osmo-hlr, a failure under CI=true.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gsup_support import FakeVlr
from resim.adapters.corenet.osmo_hlr import OsmoHlrCoreNetwork
from resim.adapters.corenet.osmo_hlr_runner import GSUP_PORT
from resim.entrypoints.demo import DemoStack, start_demo
from resim.entrypoints.walkthrough import walkthrough
from resim.errors import ConfigurationError
from resim.settings import Settings
from tools import osmo_hlr_binary

pytestmark = pytest.mark.e2e
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="


def demo_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_keys=KEY, core_network="osmo-hlr")  # type: ignore[arg-type]


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[DemoStack]:
    osmo_hlr_binary()
    said: list[str] = []
    started = start_demo(
        demo_settings(tmp_path),
        api_port=0,
        smdp_port=0,
        smtp_port=0,
        sms_port=0,
        lines_per_brand=4,
        database_url="" if db_url.startswith("sqlite") else db_url,
        say=said.append,
    )
    started.said = said  # type: ignore[attr-defined]
    yield started
    started.stop()


def test_the_walkthrough_completes_on_osmo_hlr(stack: DemoStack) -> None:
    assert stack.hlr is not None
    assert any(line.startswith("core       osmo-hlr started on 127.") for line in stack.said)  # type: ignore[attr-defined]
    settings = stack.settings
    hlr = OsmoHlrCoreNetwork(
        settings.osmo_hlr_ctrl_host,
        settings.osmo_hlr_ctrl_port,
        vty_port=settings.osmo_hlr_vty_port,
    )
    try:
        line = stack.data.lines[0]
        before = hlr.imsi_of(msisdn=line.msisdn)
        assert before is not None and hlr.is_enabled(imsi=before)
        with FakeVlr(settings.osmo_hlr_ctrl_host, GSUP_PORT) as vlr:
            vlr.attach(before)  # the lost phone, registered on the network
            done = walkthrough(stack, say=lambda _line: None)  # over HTTP, lost phone
            assert vlr.wait_for_delete(before).imsi == before  # dropped when barred
        assert done["state"] == "completed"
        after = hlr.imsi_of(msisdn=line.msisdn)
        assert after not in (None, before)  # the number moved in the HLR itself
        old = hlr.subscriber(imsi=before)
        assert old is not None and old.retired and old.msisdn is None
    finally:
        hlr.close()
    process = stack.hlr._proc
    assert process is not None and process.poll() is None
    stack.stop()
    assert process.poll() is not None  # the demo's osmo-hlr is gone with it


def test_without_the_binary_the_demo_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no osmo-hlr on it
    with pytest.raises(ConfigurationError) as info:
        start_demo(demo_settings(tmp_path), api_port=0, smdp_port=0, smtp_port=0, sms_port=0)
    assert info.value.code == "OSMO_HLR_MISSING"
    assert "\n" not in info.value.message and "apt-get install osmo-hlr" in info.value.message
    assert os.listdir(tmp_path / "demo") == []  # nothing started, nothing written
