"""The osmo-hlr adapter against a real osmo-hlr on loopback.

Beyond the contract: what the HLR stores, partial operations completed on
retry, and faults injected by a CTRL proxy between the adapter and the HLR
(an error answer, a dropped connection, a lost reply, a trap).
Skipped when the osmo-hlr binary is absent, a failure under CI=true.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from resim.adapters.corenet.osmo_ctrl import CtrlClient, encode_frame
from resim.adapters.corenet.osmo_hlr import MSISDN_TAKEN, OsmoHlrCoreNetwork
from resim.adapters.corenet.osmo_hlr_runner import (
    OsmoHlrEndpoint,
    OsmoHlrProcess,
    ports_free,
)
from resim.errors import ExternalError, InvalidInput
from tools import osmo_hlr_binary

pytestmark = pytest.mark.integration

K, OPC = "000102030405060708090a0b0c0d0e0f", "101112131415161718191a1b1c1d1e1f"
_serial = itertools.count(1)


def new_imsi() -> str:
    return f"00102{next(_serial):010d}"


def new_msisdn() -> str:
    return f"+4592{next(_serial):08d}"


def _binary() -> str:
    return osmo_hlr_binary()


@pytest.fixture(scope="module")
def hlr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OsmoHlrEndpoint]:
    with OsmoHlrProcess(tmp_path_factory.mktemp("osmo-hlr"), binary=_binary()) as endpoint:
        yield endpoint


@pytest.fixture
def raw(hlr: OsmoHlrEndpoint) -> Iterator[CtrlClient]:
    client = CtrlClient(hlr.host, hlr.ctrl_port)
    yield client
    client.close()


@pytest.fixture
def cn(hlr: OsmoHlrEndpoint) -> Iterator[OsmoHlrCoreNetwork]:
    adapter = OsmoHlrCoreNetwork(hlr.host, hlr.ctrl_port)
    yield adapter
    adapter.close()


def sim(cn: OsmoHlrCoreNetwork, msisdn: str | None = None) -> str:
    imsi = new_imsi()
    cn.provision_imsi(imsi=imsi)
    cn.set_milenage_keys(imsi=imsi, k=K, opc=OPC)
    if msisdn:
        cn.move_msisdn(msisdn=msisdn, new_imsi=imsi, old_imsi=None)
    return imsi


def var(raw: CtrlClient, imsi: str, name: str) -> str:
    return raw.get(f"subscriber.by-imsi-{imsi}.{name}")


class TestWhatTheHlrStores:
    def test_numbers_are_stored_without_the_plus(self, cn: OsmoHlrCoreNetwork, raw) -> None:
        msisdn = new_msisdn()
        imsi = sim(cn, msisdn)
        assert var(raw, imsi, "msisdn") == msisdn[1:]
        other = sim(cn)
        raw.set(f"subscriber.by-imsi-{other}.msisdn", "4593000001")
        assert cn.msisdn_of(imsi=other) == "+4593000001"
        assert cn.imsi_of(msisdn="+4593000001") == other

    def test_keys_are_loaded_as_milenage(self, cn: OsmoHlrCoreNetwork, raw) -> None:
        imsi = sim(cn)
        assert var(raw, imsi, "aud3g").lower().startswith(f"milenage,{K},opc,{OPC}")
        with pytest.raises(InvalidInput):
            cn.set_milenage_keys(imsi=imsi, k="xyz", opc=OPC)

    def test_suspend_and_resume_switch_both_access_flags(self, cn, raw) -> None:
        imsi = sim(cn)
        cn.suspend_imsi(imsi=imsi)
        assert (var(raw, imsi, "cs-enabled"), var(raw, imsi, "ps-enabled")) == ("0", "0")
        cn.resume_imsi(imsi=imsi)
        assert (var(raw, imsi, "cs-enabled"), var(raw, imsi, "ps-enabled")) == ("1", "1")

    def test_retire_switches_access_off_and_deletes_the_keys(self, cn, raw) -> None:
        imsi = sim(cn)
        raw.set(f"subscriber.by-imsi-{imsi}.aud2g", f"comp128v1,{K}")
        cn.retire_imsi(imsi=imsi)
        assert (var(raw, imsi, "cs-enabled"), var(raw, imsi, "ps-enabled")) == ("0", "0")
        assert (var(raw, imsi, "aud2g"), var(raw, imsi, "aud3g")) == ("none", "none")
        with pytest.raises(ExternalError) as info:
            cn.set_milenage_keys(imsi=imsi, k=K, opc=OPC)
        assert info.value.code == "CORE_IMSI_RETIRED"

    def test_a_suspended_record_without_keys_reads_as_retired(self, cn) -> None:
        # The documented limit of an HLR without a "retired" flag.
        imsi = new_imsi()
        cn.provision_imsi(imsi=imsi)
        cn.suspend_imsi(imsi=imsi)
        with pytest.raises(ExternalError) as info:
            cn.resume_imsi(imsi=imsi)
        assert info.value.code == "CORE_IMSI_RETIRED"


class TestPartialOperationsCompleteOnRetry:
    def test_a_half_done_resume(self, cn: OsmoHlrCoreNetwork, raw) -> None:
        imsi = sim(cn)
        raw.set(f"subscriber.by-imsi-{imsi}.ps-enabled", "0")
        assert cn.is_enabled(imsi=imsi) is True  # some service is still on
        cn.resume_imsi(imsi=imsi)
        assert var(raw, imsi, "ps-enabled") == "1"

    def test_a_half_done_retire(self, cn: OsmoHlrCoreNetwork, raw) -> None:
        imsi = sim(cn)
        raw.set(f"subscriber.by-imsi-{imsi}.cs-enabled", "0")
        raw.set(f"subscriber.by-imsi-{imsi}.ps-enabled", "0")
        cn.retire_imsi(imsi=imsi)
        assert var(raw, imsi, "aud3g") == "none"

    def test_a_move_interrupted_after_clearing_the_old_imsi(self, cn, raw) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        raw.set(f"subscriber.by-imsi-{old}.msisdn", "none")
        cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert cn.imsi_of(msisdn=msisdn) == new


class FaultyProxy:
    """Forwards CTRL frames to the HLR; ``fault(text)`` may change one exchange.

    ``fault`` returns None (forward), "error" (answer ERROR, do not forward),
    "drop" (close without forwarding), "lose" (forward, then close without
    answering) or "trap" (send a TRAP first, then forward).
    """

    def __init__(self, target: OsmoHlrEndpoint, fault: Callable[[str], str | None]):
        self.target, self.fault, self.seen = target, fault, list[str]()
        self.server = socket.create_server((target.host, 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.server.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection((self.target.host, self.target.ctrl_port))
        with client, upstream:
            while True:
                request = _read_frame(client)
                if request is None:
                    return
                text = request[4:].decode()
                self.seen.append(text)
                action = self.fault(text)
                if action == "error":
                    client.sendall(encode_frame(f"ERROR {text.split()[1]} injected"))
                    continue
                if action == "taken":  # what osmo-hlr says when another IMSI holds the number
                    client.sendall(encode_frame(f"ERROR {text.split()[1]} {MSISDN_TAKEN}"))
                    continue
                if action == "drop":
                    return
                upstream.sendall(request)
                reply = _read_frame(upstream)
                if action == "lose" or reply is None:
                    return
                if action == "trap":
                    client.sendall(encode_frame("TRAP some.variable 1"))
                client.sendall(reply)


def _read_frame(sock: socket.socket) -> bytes | None:
    data = b""
    while len(data) < 3 or len(data) < 3 + struct.unpack(">H", data[:2])[0]:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


def once(pattern: str, action: str) -> Callable[[str], str | None]:
    fired = threading.Event()

    def fault(text: str) -> str | None:
        if text.startswith("SET") and text.endswith(pattern) and not fired.is_set():
            fired.set()
            return action
        return None

    return fault


@pytest.fixture
def through_proxy(hlr: OsmoHlrEndpoint) -> Iterator[Callable[..., OsmoHlrCoreNetwork]]:
    opened: list[tuple[FaultyProxy, OsmoHlrCoreNetwork]] = []

    def make(fault: Callable[[str], str | None]) -> OsmoHlrCoreNetwork:
        proxy = FaultyProxy(hlr, fault)
        adapter = OsmoHlrCoreNetwork(hlr.host, proxy.port, timeout=2)
        opened.append((proxy, adapter))
        return adapter

    yield make
    for proxy, adapter in opened:
        adapter.close()
        proxy.close()


class TestFaults:
    def test_a_refused_bind_puts_the_number_back_on_the_old_imsi(self, cn, through_proxy) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        faulty = through_proxy(once(f"{new}.msisdn {msisdn[1:]}", "error"))
        with pytest.raises(ExternalError) as info:
            faulty.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert (info.value.code, info.value.retryable) == ("CORE_REJECTED", False)
        assert cn.imsi_of(msisdn=msisdn) == old
        assert cn.msisdn_of(imsi=new) is None

    def test_a_number_taken_for_a_moment_by_another_move_is_retryable(
        self, cn, through_proxy
    ) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        faulty = through_proxy(once(f"{new}.msisdn {msisdn[1:]}", "taken"))
        with pytest.raises(ExternalError) as info:
            faulty.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert (info.value.code, info.value.retryable) == ("CORE_BUSY", True)
        assert cn.imsi_of(msisdn=msisdn) == old  # put back; the retry moves it
        faulty.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert cn.imsi_of(msisdn=msisdn) == new

    def test_a_dropped_connection_during_the_bind_restores_and_is_retryable(
        self, cn, through_proxy
    ) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        faulty = through_proxy(once(f"{new}.msisdn {msisdn[1:]}", "drop"))
        with pytest.raises(ExternalError) as info:
            faulty.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert (info.value.code, info.value.retryable) == ("CORE_UNAVAILABLE", True)
        assert cn.imsi_of(msisdn=msisdn) == old
        faulty.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)  # the job's retry
        assert cn.imsi_of(msisdn=msisdn) == new

    def test_a_lost_answer_to_a_bind_that_happened_is_a_success(self, cn, through_proxy) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        faulty = through_proxy(once(f"{new}.msisdn {msisdn[1:]}", "lose"))
        faulty.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert cn.imsi_of(msisdn=msisdn) == new
        assert cn.msisdn_of(imsi=old) is None

    def test_traps_between_request_and_answer_are_skipped(self, cn, through_proxy) -> None:
        imsi = sim(cn)
        faulty = through_proxy(lambda text: "trap")
        faulty.suspend_imsi(imsi=imsi)
        assert faulty.is_enabled(imsi=imsi) is False

    def test_a_stopped_hlr_is_a_retryable_error(self, tmp_path: Path) -> None:
        process = OsmoHlrProcess(tmp_path, binary=_binary())
        endpoint = process.start()
        adapter = OsmoHlrCoreNetwork(endpoint.host, endpoint.ctrl_port, timeout=2)
        imsi = new_imsi()
        adapter.provision_imsi(imsi=imsi)
        process.stop()
        with pytest.raises(ExternalError) as info:
            adapter.is_enabled(imsi=imsi)
        assert (info.value.code, info.value.retryable) == ("CORE_UNAVAILABLE", True)
        adapter.close()
        assert ports_free(endpoint.host)
