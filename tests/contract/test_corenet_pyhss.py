"""The CoreNetwork contract on PyHSS, plus what only PyHSS has (Cancel-Location).

``TestPyHssStandIn`` runs the whole contract against the stand-in served over
real HTTP on loopback (``resim.adapters.corenet.pyhss_standin``); CI runs it.
``TestRealPyHss`` runs the same contract against a real PyHSS API when
``RESIM_TEST_PYHSS_URL`` names one (and ``RESIM_TEST_PYHSS_KEY`` its
provisioning key); docs/operations.md says how to start one. Keeping both on
one suite is what keeps the stand-in honest.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from test_corenet_contract import CoreNetworkContract, Env, expect, new_imsi, new_msisdn

from resim.adapters.corenet.pyhss import NO_CREDENTIALS, PyHssCoreNetwork, PyHssSettings
from resim.adapters.corenet.pyhss_standin import build_pyhss_standin
from resim.emulator.server import AppThread
from resim.errors import ExternalError

KEY = "stand-in-provisioning-key"
K, OPC = "000102030405060708090A0B0C0D0E0F", "0F0E0D0C0B0A09080706050403020100"


def intake(cn: PyHssCoreNetwork) -> object:
    def load(imsi: str) -> None:
        iccid = f"8999{uuid.uuid4().int % 10**15:015d}"  # unique across runs on a real PyHSS
        cn.load_credentials(imsi=imsi, iccid=iccid, k=K, opc=OPC)

    return load


def env_is_suspended(cn: PyHssCoreNetwork, imsi: str) -> bool:
    return cn.is_enabled(imsi=imsi) is False


def pyhss_env(url: str, key: str | None, *, stand_in: bool = True) -> Iterator[Env]:
    clients: list[PyHssCoreNetwork] = []

    def client() -> PyHssCoreNetwork:
        clients.append(PyHssCoreNetwork(PyHssSettings(url=url, provisioning_key=key)))
        return clients[-1]

    cn = client()
    load = intake(cn)

    def provision(imsi: str) -> None:  # stock intake: keys, then the record
        load(imsi)  # type: ignore[operator]
        cn.provision_imsi(imsi=imsi)

    def attach(imsi: str) -> None:
        answer = httpx.post(f"{url}/standin/attach/{imsi}", json={"mme": "mme01"}, timeout=5)
        assert answer.status_code == 200, answer.text

    def detached(imsi: str) -> bool:  # a Cancel-Location was pushed to its MME
        log = httpx.get(f"{url}/standin/clr", timeout=5).json()
        return any(c["imsi"] == imsi for c in log)

    yield Env(
        cn=cn,
        peer=client,
        provision=provision,
        has_holds=False,
        attach=attach if stand_in else None,
        detached=detached if stand_in else None,
        refuses_barred_attach=False,  # the stand-in's attach is an MME's record, unchecked
        intake=load,  # type: ignore[arg-type]
        examples=15,
    )
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def standin() -> Iterator[AppThread]:
    server = AppThread(build_pyhss_standin(provisioning_key=KEY, connected_peers={"mme01"}))
    server.start()
    yield server
    server.stop()


class TestPyHssStandIn(CoreNetworkContract):
    @pytest.fixture
    def env(self, standin: AppThread) -> Iterator[Env]:
        yield from pyhss_env(standin.url, KEY)


@pytest.mark.skipif(
    not os.environ.get("RESIM_TEST_PYHSS_URL"), reason="RESIM_TEST_PYHSS_URL names no PyHSS"
)
class TestRealPyHss(CoreNetworkContract):
    @pytest.fixture
    def env(self) -> Iterator[Env]:
        url = os.environ["RESIM_TEST_PYHSS_URL"]
        # A real PyHSS learns attachment from an MME over Diameter only.
        yield from pyhss_env(url, os.environ.get("RESIM_TEST_PYHSS_KEY"), stand_in=False)

    def test_an_imsi_has_attached_only_after_a_phone_registered(self, env: Env) -> None:
        pytest.skip("needs an MME's Update-Location over Diameter")

    def test_a_number_moved_onto_an_attached_imsi_leaves_it_attached(self, env: Env) -> None:
        pytest.skip("needs an MME's Update-Location over Diameter")


# ---------------------------------------------------------------------- PyHSS only


class TestPyHssSpecifics:
    @pytest.fixture
    def env(self, standin: AppThread) -> Iterator[Env]:
        yield from pyhss_env(standin.url, KEY)

    def clr_for(self, standin: AppThread, imsi: str) -> list[dict[str, object]]:
        log = httpx.get(f"{standin.url}/standin/clr", timeout=5).json()
        return [c for c in log if c["imsi"] == imsi]

    def test_suspending_an_attached_imsi_pushes_a_cancel_location(
        self, env: Env, standin: AppThread
    ) -> None:
        imsi = new_imsi()
        env.provision(imsi)
        env.cn.move_msisdn(msisdn=new_msisdn(), new_imsi=imsi, old_imsi=None)
        assert env.attach is not None
        env.attach(imsi)
        env.cn.suspend_imsi(imsi=imsi)
        (clr,) = self.clr_for(standin, imsi)
        assert clr["DestinationHost"] == "mme01"
        assert clr["cancellationType"] == 2  # SUBSCRIPTION_WITHDRAWAL
        assert env.cn.attached(imsi=imsi) is False  # the MME dropped it

    def test_retiring_an_attached_imsi_drops_it_and_changes_its_keys(
        self, env: Env, standin: AppThread
    ) -> None:
        old, new = new_imsi(), new_imsi()
        msisdn = new_msisdn()
        for imsi in (old, new):
            env.provision(imsi)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=old, old_imsi=None)
        assert env.attach is not None
        env.attach(old)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        env.cn.retire_imsi(imsi=old)
        assert len(self.clr_for(standin, old)) == 1
        state = standin._server.config.app.state.pyhss  # the stand-in's own tables
        (auc,) = [a for a in state.auc.values() if a["imsi"] == old]
        assert (auc["ki"], auc["opc"]) != (K, OPC)
        expect("CORE_IMSI_RETIRED", lambda: env.cn.resume_imsi(imsi=old))

    def test_an_unattached_imsi_needs_no_cancel_location(
        self, env: Env, standin: AppThread
    ) -> None:
        (imsi,) = [new_imsi()]
        env.provision(imsi)
        env.cn.suspend_imsi(imsi=imsi)
        assert self.clr_for(standin, imsi) == []
        assert env.cn.cancel_location(imsi=imsi) is False

    def test_a_refresh_asks_the_phone_to_attach_again(self, env: Env, standin: AppThread) -> None:
        imsi = new_imsi()
        env.provision(imsi)
        assert env.attach is not None
        env.attach(imsi)
        assert env.cn.cancel_location(imsi=imsi) is True
        (clr,) = self.clr_for(standin, imsi)
        assert clr["immediateReattach"] is True

    def test_a_cancel_location_pyhss_cannot_queue_is_retried(self, standin: AppThread) -> None:
        cn = PyHssCoreNetwork(PyHssSettings(url=standin.url, provisioning_key=KEY))
        imsi = new_imsi()
        intake(cn)(imsi)  # type: ignore[operator]
        cn.provision_imsi(imsi=imsi)
        httpx.post(f"{standin.url}/standin/attach/{imsi}", json={"mme": "mme-gone"}, timeout=5)
        with pytest.raises(ExternalError) as info:
            cn.suspend_imsi(imsi=imsi)
        assert (info.value.code, info.value.retryable) == ("CORE_UNAVAILABLE", True)
        assert env_is_suspended(cn, imsi)
        cn.close()

    def test_an_imsi_without_keys_cannot_be_provisioned(self, env: Env) -> None:
        err = expect(NO_CREDENTIALS, lambda: env.cn.provision_imsi(imsi=new_imsi()))
        assert "stock intake" in err.message

    def test_a_wrong_provisioning_key_is_a_permanent_refusal(self, standin: AppThread) -> None:
        cn = PyHssCoreNetwork(PyHssSettings(url=standin.url, provisioning_key="wrong"))
        err = expect("CORE_REJECTED", lambda: intake(cn)(new_imsi()))  # type: ignore[operator]
        assert "RESIM_PYHSS_PROVISIONING_KEY" in err.message
        cn.close()

    def test_an_unreachable_pyhss_is_retryable(self) -> None:
        cn = PyHssCoreNetwork(PyHssSettings(url="http://127.0.0.1:9", timeout=1))
        with pytest.raises(ExternalError) as info:
            cn.is_enabled(imsi=new_imsi())
        assert (info.value.code, info.value.retryable) == ("CORE_UNAVAILABLE", True)

    def test_keys_echoed_by_pyhss_reach_no_log_and_no_error(
        self, standin: AppThread, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        cn = PyHssCoreNetwork(PyHssSettings(url=standin.url, provisioning_key=KEY))
        imsi = new_imsi()
        intake(cn)(imsi)  # type: ignore[operator]
        with pytest.raises(ExternalError) as info:  # a duplicate ICCID: PyHSS says 400
            cn._api.create_auc(
                {"imsi": new_imsi(), "iccid": "dup", "ki": K, "opc": OPC, "amf": "8000"}
            )
            cn._api.create_auc(
                {"imsi": new_imsi(), "iccid": "dup", "ki": K, "opc": OPC, "amf": "8000"}
            )
        assert K not in info.value.message and OPC not in info.value.message
        assert K not in caplog.text and OPC not in caplog.text
        cn.close()

    def test_two_holders_of_one_number_are_never_left_behind(self, env: Env) -> None:
        # PyHSS would accept the same number on two subscribers; the adapter
        # notices (PyHSS's lookup answers null for several) and backs off.
        a, b = new_imsi(), new_imsi()
        msisdn = new_msisdn()
        for imsi in (a, b):
            env.provision(imsi)
        env.cn.move_msisdn(msisdn=msisdn, new_imsi=a, old_imsi=None)
        expect(
            "CORE_MSISDN_CONFLICT",
            lambda: env.cn.move_msisdn(msisdn=msisdn, new_imsi=b, old_imsi=None),
        )
        assert env.cn.msisdn_of(imsi=b) is None
