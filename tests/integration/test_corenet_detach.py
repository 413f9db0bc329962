"""A barred SIM really leaves the network: osmo-hlr tells the serving VLR (issue 12.7).

A fake MSC/VLR (tests/gsup_support.py) connects to a real osmo-hlr over GSUP
and registers the customer's old IMSI, as the stolen phone's network would.
When resim suspends or retires that IMSI, the VLR must receive GSUP
Delete-Subscriber-Data for it; a later location update must be refused.
osmo-hlr's CTRL access flags write its database only (the first class below
shows it), so this holds only because the adapter switches access over the VTY.

The replacement tests select the adapter the way a deployment does
(``RESIM_CORE_NETWORK=osmo-hlr`` and its addresses in the environment, read
by the composition root), on SQLite and PostgreSQL. Skipped without the
osmo-hlr binary, a failure under CI=true.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from gsup_support import FakeVlr, LocationUpdateRefused, location_update
from resim.adapters.corenet.osmo_ctrl import CtrlClient
from resim.adapters.corenet.osmo_hlr import OsmoHlrCoreNetwork
from resim.adapters.corenet.osmo_hlr_runner import OsmoHlrEndpoint, OsmoHlrProcess
from resim.adapters.corenet.osmo_vty import VtyClient
from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.es2.fake import FakeSmdpClient
from resim.adapters.mail.fake import FakeMailer
from resim.adapters.sms.fake import FakeSmsGateway
from resim.bootstrap import build_context, build_engine
from resim.domain.activation import parse_activation_code
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.emulator.core import SmdpCore
from resim.errors import ExternalError
from resim.services.context import FrozenClock, ServiceContext
from resim.services.cutover.cutover import handle_download_progress
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.replacement import queries, requests
from resim.settings import Settings
from tools import osmo_hlr_binary

pytestmark = pytest.mark.integration

K, OPC = "000102030405060708090a0b0c0d0e0f", "101112131415161718191a1b1c1d1e1f"
_serial = itertools.count(1)
GHOST = "subscriber imsi 001039999999999"  # never created


def new_imsi() -> str:
    return f"00103{next(_serial):010d}"


def new_msisdn() -> str:
    return f"+4593{next(_serial):08d}"


@pytest.fixture(scope="module")
def hlr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OsmoHlrEndpoint]:
    # Its own loopback address, so GSUP's fixed port 4222 never meets NATS.
    with OsmoHlrProcess(tmp_path_factory.mktemp("osmo-hlr"), binary=osmo_hlr_binary()) as ep:
        yield ep


@pytest.fixture
def vlr(hlr: OsmoHlrEndpoint) -> Iterator[FakeVlr]:
    with FakeVlr(hlr.host, hlr.gsup_port) as fake:
        yield fake


@pytest.fixture
def cn(hlr: OsmoHlrEndpoint) -> Iterator[OsmoHlrCoreNetwork]:
    adapter = OsmoHlrCoreNetwork(hlr.host, hlr.ctrl_port, vty_port=hlr.vty_port)
    yield adapter
    adapter.close()


def sim(cn: OsmoHlrCoreNetwork, msisdn: str | None = None) -> str:
    imsi = new_imsi()
    cn.provision_imsi(imsi=imsi)
    cn.set_milenage_keys(imsi=imsi, k=K, opc=OPC)
    if msisdn:
        cn.move_msisdn(msisdn=msisdn, new_imsi=imsi, old_imsi=None)
    return imsi


def no_more_deletes(vlr: FakeVlr, cn: OsmoHlrCoreNetwork, imsi: str, seen: int = 0) -> bool:
    """True when, after a GSUP round trip, ``imsi`` still has ``seen`` deletes.

    A location update of another IMSI is answered after anything osmo-hlr
    queued before it on this connection, so it flushes the pipe."""
    vlr.attach(sim(cn))
    return len(vlr.deletes_for(imsi)) == seen


class TestWhatOsmoHlrDoes:
    def test_ctrl_access_flags_alone_never_reach_the_network(
        self, hlr: OsmoHlrEndpoint, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        # Why the adapter uses the VTY: the old CTRL way leaves the phone attached.
        imsi = sim(cn, new_msisdn())
        vlr.attach(imsi)
        ctrl = CtrlClient(hlr.host, hlr.ctrl_port)
        try:
            ctrl.set(f"subscriber.by-imsi-{imsi}.cs-enabled", "0")
            ctrl.set(f"subscriber.by-imsi-{imsi}.ps-enabled", "0")
        finally:
            ctrl.close()
        assert cn.is_enabled(imsi=imsi) is False
        assert no_more_deletes(vlr, cn, imsi)


class TestSuspendAndRetireDetach:
    def test_suspending_an_attached_imsi_sends_delete_subscriber_data_to_its_vlr(
        self, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        imsi, other = sim(cn, new_msisdn()), sim(cn, new_msisdn())
        vlr.attach(imsi)
        vlr.attach(other)
        cn.suspend_imsi(imsi=imsi)
        assert vlr.wait_for_delete(imsi).imsi == imsi
        assert vlr.deletes_for(other) == []
        with pytest.raises(LocationUpdateRefused):
            vlr.attach(imsi)  # the stolen phone tries to register again

    def test_a_repeated_suspend_sends_nothing_more(
        self, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        imsi = sim(cn, new_msisdn())
        vlr.attach(imsi)
        cn.suspend_imsi(imsi=imsi)
        vlr.wait_for_delete(imsi)
        vlr.attach(sim(cn))  # flush: every delete of the first suspend has arrived
        seen = len(vlr.deletes_for(imsi))  # osmo-hlr sends one per domain switched off
        cn.suspend_imsi(imsi=imsi)
        assert no_more_deletes(vlr, cn, imsi, seen=seen)

    def test_retiring_the_old_imsi_after_a_move_detaches_it(
        self, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        vlr.attach(old)  # device change: the old SIM works until the new one is in
        cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        assert no_more_deletes(vlr, cn, old)  # moving the number alone detaches nobody
        cn.retire_imsi(imsi=old)
        assert vlr.wait_for_delete(old).imsi == old
        with pytest.raises(LocationUpdateRefused):
            vlr.attach(old)
        vlr.attach(new)  # the new SIM registers fine

    def test_resume_lets_the_phone_register_again(
        self, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        imsi = sim(cn, new_msisdn())
        vlr.attach(imsi)
        cn.suspend_imsi(imsi=imsi)
        vlr.wait_for_delete(imsi)
        cn.resume_imsi(imsi=imsi)
        vlr.attach(imsi)
        assert cn.is_enabled(imsi=imsi) is True


class TestANewSimAlreadyRegisteredLearnsItsNumber:
    def test_the_serving_vlr_gets_the_moved_number_at_once(
        self, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        vlr.attach(new)  # the eSIM is installed and registered; its callback is late
        assert vlr.numbers_sent(new) == [None]  # registered without a number
        cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        vlr.attach(sim(cn))  # flush
        assert vlr.numbers_sent(new) == [None, msisdn[1:]]

    def test_a_repeated_move_tells_it_again_and_an_unregistered_sim_is_not_told(
        self, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        msisdn = new_msisdn()
        old, new = sim(cn, msisdn), sim(cn)
        cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)
        vlr.attach(sim(cn))  # flush
        assert vlr.numbers_sent(new) == []
        vlr.attach(new)  # registers now: the location update carries the number
        assert vlr.numbers_sent(new) == [msisdn[1:]]
        cn.move_msisdn(msisdn=msisdn, new_imsi=new, old_imsi=old)  # a job's retry
        vlr.attach(sim(cn))
        assert vlr.numbers_sent(new) == [msisdn[1:], msisdn[1:]]
        assert cn.imsi_of(msisdn=msisdn) == new


class TestVtyErrorsAreClassifiedAsOnCtrl:
    def test_an_unreachable_vty_is_retryable_and_changes_nothing(
        self, hlr: OsmoHlrEndpoint, cn: OsmoHlrCoreNetwork
    ) -> None:
        imsi = sim(cn, new_msisdn())
        broken = OsmoHlrCoreNetwork(hlr.host, hlr.ctrl_port, vty_port=1, timeout=1)
        try:
            with pytest.raises(ExternalError) as info:
                broken.suspend_imsi(imsi=imsi)
        finally:
            broken.close()
        assert (info.value.code, info.value.retryable) == ("CORE_UNAVAILABLE", True)
        assert cn.is_enabled(imsi=imsi) is True

    @pytest.mark.parametrize(
        ("command", "code"),
        [
            (
                "subscriber imsi 001039999999999 update network-access-mode none",
                "CORE_UNKNOWN_IMSI",
            ),
            (
                "subscriber imsi 001039999999999 update network-access-mode all",
                "CORE_PROTOCOL_ERROR",
            ),
            ("subscriber imsi 001039999999999 update", "CORE_PROTOCOL_ERROR"),
            ("no-such-command", "CORE_PROTOCOL_ERROR"),
        ],
    )
    def test_the_vty_s_refusals_are_permanent(
        self, hlr: OsmoHlrEndpoint, command: str, code: str
    ) -> None:
        vty = VtyClient(hlr.host, hlr.vty_port)
        try:
            with pytest.raises(ExternalError) as info:
                vty.run(command)
            assert (info.value.code, info.value.retryable) == (code, False)
            assert vty.run("show version").startswith("OsmoHLR")  # the session goes on
        finally:
            vty.close()

    def test_an_unknown_imsi_is_refused_as_on_ctrl(self, cn: OsmoHlrCoreNetwork) -> None:
        ghost = new_imsi()
        with pytest.raises(ExternalError) as info:
            cn.suspend_imsi(imsi=ghost)
        assert info.value.code == "CORE_UNKNOWN_IMSI" and ghost in info.value.message


# ------------------------------------------------------------------ a whole replacement


@dataclass
class System:
    ctx: ServiceContext
    core: OsmoHlrCoreNetwork
    smdp: SmdpCore
    mail: FakeMailer

    def run_jobs(self) -> None:
        while jobs.run_due_jobs(self.ctx):
            pass

    def code_for(self, email: str) -> str:
        mails = [m for m in self.mail.to(email) if m.headers.get("X-Resim-Kind") == "one_time_code"]
        found = re.search(r"^\s+(\d{6})\s*$", mails[-1].text, re.M)
        assert found
        return found.group(1)

    def install(self, request_id: str) -> None:
        code = parse_activation_code(
            queries.activation_view(self.ctx, request_id, reader="test", via="test")[
                "activation_code"
            ]
        )
        for note in self.smdp.download_and_install(code.matching_id, code.smdp_address):
            handle_download_progress(self.ctx, note)

    def line(self, n: int) -> tuple[str, str, str]:
        """A customer's line on a SIM whose keys are in the HLR: (msisdn, email, imsi)."""
        # a valid Danish mobile number (the core's own tests need only E.164)
        msisdn, imsi, email = f"+45211{next(_serial):05d}", new_imsi(), f"kunde{n}@example.dk"
        seed.add_line(
            self.ctx,
            seed.LineSpec(
                brand_id="dk",
                msisdn=msisdn,
                name=f"Kunde {n}",
                email=email,
                iccid=iccid(),
                imsi=imsi,
            ),
        )
        self.core.set_milenage_keys(imsi=imsi, k=K, opc=OPC)
        return msisdn, email, imsi


def iccid() -> str:
    return iccid_with_check_digit(f"894503{next(_serial):012d}")


@pytest.fixture
def system(
    db_url: str, tmp_path: Path, hlr: OsmoHlrEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[System]:
    upgrade(db_url)
    # As a deployment chooses it: environment variables, read by the composition root.
    monkeypatch.setenv("RESIM_CORE_NETWORK", "osmo-hlr")
    monkeypatch.setenv("RESIM_OSMO_HLR_CTRL_HOST", hlr.host)
    monkeypatch.setenv("RESIM_OSMO_HLR_CTRL_PORT", str(hlr.ctrl_port))
    monkeypatch.setenv("RESIM_OSMO_HLR_VTY_PORT", str(hlr.vty_port))
    monkeypatch.setenv("RESIM_OSMO_HLR_TIMEOUT_SECONDS", "3")
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",  # type: ignore[arg-type]
    )
    engine = build_engine(settings, pool_size=5)
    smdp = SmdpCore(smdp_address="smdp.resim.test")
    mail = FakeMailer()
    ctx = build_context(
        settings,
        engine=engine,
        smdp=FakeSmdpClient(smdp),
        mailer=mail,
        clock=FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)),
        sms=FakeSmsGateway(),
    )
    assert isinstance(ctx.core, OsmoHlrCoreNetwork)  # chosen by RESIM_CORE_NETWORK
    # osmo-hlr has no post-swap holds: an operator on it sets them to 0 (osmo_hlr.py).
    policy = BrandPolicy(verification=email_code_alone(), sms_hold_hours=0, port_out_block_days=0)
    seed.upsert_brand(
        ctx, seed.BrandSpec("dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen", policy)
    )
    stock = [(iccid(), new_imsi()) for _ in range(3)]
    seed.add_stock(ctx, brand_id="dk", profile_type="default", profiles=stock)
    smdp.add_stock("default", [i for i, _ in stock])
    yield System(ctx, ctx.core, smdp, mail)
    ctx.core.close()
    engine.dispose()


def new_imsi_of(system: System, request_id: str) -> str:
    iccid_new = queries.get_request_view(system.ctx, request_id)["new_iccid"]
    with system.ctx.uow() as uow:
        return str(
            uow.session.execute(
                sa.select(orm.sim.c.imsi).where(orm.sim.c.iccid == iccid_new)
            ).scalar_one()
        )


class TestAStolenPhoneIsDroppedFromTheNetwork:
    def test_the_serving_vlr_is_told_when_the_stolen_sim_is_barred(
        self, system: System, hlr: OsmoHlrEndpoint, vlr: FakeVlr
    ) -> None:
        msisdn, email, old_imsi = system.line(1)
        _, _, bystander_imsi = system.line(2)
        vlr.attach(old_imsi)  # the thief's phone, registered on the network
        vlr.attach(bystander_imsi)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()

        assert queries.get_request_view(system.ctx, opened.id)["old_sim_suspended"] is True
        delete = vlr.wait_for_delete(old_imsi)
        assert delete.imsi == old_imsi
        assert vlr.deletes_for(bystander_imsi) == []
        with pytest.raises(LocationUpdateRefused):
            location_update(hlr.host, hlr.gsup_port, old_imsi)  # nor on any other VLR

        system.install(opened.id)
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "completed"
        new_imsi = new_imsi_of(system, opened.id)
        assert system.core.imsi_of(msisdn=msisdn) == new_imsi
        assert system.core.subscriber(imsi=old_imsi).retired is True  # type: ignore[union-attr]
        vlr.attach(new_imsi)  # the customer's new eSIM registers
        assert {d.imsi for d in vlr.deletes} == {old_imsi}

    def test_on_a_device_change_the_old_sim_is_dropped_at_cut_over(
        self, system: System, vlr: FakeVlr
    ) -> None:
        msisdn, email, old_imsi = system.line(3)
        vlr.attach(old_imsi)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        assert no_more_deletes(vlr, system.core, old_imsi)  # the old phone keeps working meanwhile
        system.install(opened.id)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "completed"
        assert vlr.wait_for_delete(old_imsi).imsi == old_imsi
        with pytest.raises(LocationUpdateRefused):
            vlr.attach(old_imsi)


class TestNoRefreshOnOsmoHlr:
    def test_a_refresh_is_refused_for_good_and_the_sim_keeps_service(
        self, cn: OsmoHlrCoreNetwork, vlr: FakeVlr
    ) -> None:
        imsi = sim(cn, new_msisdn())
        vlr.attach(imsi)
        with pytest.raises(ExternalError) as info:
            cn.cancel_location(imsi=imsi)
        assert (info.value.code, info.value.retryable) == ("CORE_REFRESH_UNSUPPORTED", False)
        assert cn.is_enabled(imsi=imsi) is True
        assert no_more_deletes(vlr, cn, imsi)
