"""Issue 13 finding 6, on SQLite and PostgreSQL: a ready request whose install callback
was lost is completed by the reconcile job once the core network (the new IMSI
attached) or the SM-DP+ (where it can be asked) says it is installed; one that is not
installed stays ready until its code expires; the customer's "I have installed it"
asks at once. The SM-DP+ callback's cut-over and the reconcile's are one step: a late
real callback changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from risk_support import audit_actions, new_line, origin_rules_off, verify
from test_portal_pages import open_via_forms, token, verify_via_form
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.adapters.es2.fake import FakeSmdpStatusQuery
from resim.domain.activation import parse_activation_code
from resim.domain.workflow import State
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.cutover.cutover import handle_download_progress
from resim.services.outbox.external import JobRecord
from resim.services.ports import DownloadProgress
from resim.services.provisioning import reconcile
from resim.services.replacement import queries, reissue, requests

pytestmark = pytest.mark.integration
MINUTE = dt.timedelta(minutes=1)


def ready_request(system: System, n: int) -> str:
    msisdn, email = new_line(system, n)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    assert verify(system, opened.id, email) == State.APPROVED
    system.run_jobs()
    assert state_of(system, opened.id) == "ready"
    return opened.id


def state_of(system: System, rid: str) -> str:
    return str(queries.get_request_view(system.ctx, rid)["state"])


def installed_without_callback(system: System, rid: str) -> list[DownloadProgress]:
    """The phone installs the profile; the SM-DP+'s callbacks never reach resim."""
    code = parse_activation_code(
        queries.activation_view(system.ctx, rid, reader="test", via="test")["activation_code"]
    )
    return system.smdp.download_and_install(code.matching_id, code.smdp_address)


def phone_registers(system: System, imsi: str) -> None:
    """The new SIM's IMSI attaches. A real HLR knows the stock's IMSIs from intake;
    resim's built-in core network learns a new one only at cut-over, so load it first."""
    system.core.provision_imsi(imsi=imsi)
    system.core.record_attach(imsi=imsi)


def new_imsi(system: System, rid: str) -> str:
    with system.engine.connect() as conn:
        r, s = orm.replacement_request, orm.sim
        return str(
            conn.execute(
                sa.select(s.c.imsi).join(r, r.c.new_iccid == s.c.iccid).where(r.c.id == rid)
            ).scalar_one()
        )


def sim_changes(system: System, rid: str) -> int:
    with system.engine.connect() as conn:
        t = orm.sim_change
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.request_id == rid)
            ).scalar_one()
        )


def jobs_of(system: System, rid: str, kind: str) -> list[sa.Row[tuple[str, dt.datetime]]]:
    with system.engine.connect() as conn:
        j = orm.job
        return list(
            conn.execute(
                sa.select(j.c.state, j.c.run_after)
                .where(j.c.request_id == rid, j.c.kind == kind)
                .order_by(j.c.run_after)
            ).all()
        )


def due_jobs(system: System, rid: str, kind: str) -> list[sa.Row[tuple[str]]]:
    with system.engine.connect() as conn:
        j = orm.job
        return list(
            conn.execute(
                sa.select(j.c.id).where(
                    j.c.request_id == rid, j.c.kind == kind, j.c.state == "pending"
                )
            ).all()
        )


def iccid_of(system: System, rid: str) -> str:
    with system.engine.connect() as conn:
        t = orm.replacement_request
        return str(conn.execute(sa.select(t.c.new_iccid).where(t.c.id == rid)).scalar_one())


def pending_jobs(system: System, rid: str) -> list[sa.Row[tuple[str, dt.datetime]]]:
    with system.engine.connect() as conn:
        j = orm.job
        return list(
            conn.execute(
                sa.select(j.c.state, j.c.run_after).where(
                    j.c.request_id == rid, j.c.state == "pending"
                )
            ).all()
        )


def later(system: System, delta: dt.timedelta) -> None:
    system.clock.advance(delta)
    system.run_jobs()


class TestALostCallbackIsReconciled:
    def test_the_core_network_saw_the_new_imsi_attach(self, system: System) -> None:
        rid = ready_request(system, 800)
        late = installed_without_callback(system, rid)
        phone_registers(system, new_imsi(system, rid))
        later(system, 14 * MINUTE)
        assert state_of(system, rid) == "ready"  # before the threshold nobody asks
        later(system, 2 * MINUTE)
        assert state_of(system, rid) == "completed"
        assert sim_changes(system, rid) == 1
        actions = audit_actions(system, rid)
        assert actions.count("esim.install_reconciled") == 1
        assert actions.count("request.completed") == 1
        # The real callback arrives late: nothing changes, nothing is enqueued again.
        for note in late:
            handle_download_progress(system.ctx, note)
        system.run_jobs()
        assert state_of(system, rid) == "completed" and sim_changes(system, rid) == 1
        assert len(jobs_of(system, rid, "core.cutover")) == 1
        assert audit_actions(system, rid).count("request.completed") == 1

    def test_a_callback_between_the_reconcile_and_the_cut_over_changes_nothing(
        self, system: System
    ) -> None:
        rid = ready_request(system, 803)
        late = installed_without_callback(system, rid)
        phone_registers(system, new_imsi(system, rid))
        (job_id,) = [
            r.id
            for r in due_jobs(system, rid, "esim.reconcile")  # run this one handler alone
        ]
        reconcile.reconcile(
            system.ctx,
            JobRecord(
                job_id,
                "esim.reconcile",
                rid,
                {"iccid": iccid_of(system, rid), "round": 0, "by": "schedule"},
                1,
            ),
        )
        for note in late:  # the SM-DP+'s retry gets through before the cut-over ran
            handle_download_progress(system.ctx, note)
        assert len(jobs_of(system, rid, "core.cutover")) == 1
        system.run_jobs()
        assert state_of(system, rid) == "completed" and sim_changes(system, rid) == 1

    def test_the_sm_dp_plus_says_installed_where_it_can_be_asked(self, system: System) -> None:
        system.ctx.smdp_status = FakeSmdpStatusQuery(system.smdp)
        rid = ready_request(system, 801)
        installed_without_callback(system, rid)
        later(system, 16 * MINUTE)
        assert state_of(system, rid) == "completed"
        (event,) = [d for a, d in audit_details(system, rid) if a == "esim.install_reconciled"]
        assert event == {"source": "smdp", "by": "schedule"}

    def test_a_failed_install_at_the_sm_dp_plus_lets_the_customer_reissue(
        self, system: System
    ) -> None:
        system.ctx.smdp_status = FakeSmdpStatusQuery(system.smdp)
        rid = ready_request(system, 802)
        code = parse_activation_code(
            queries.activation_view(system.ctx, rid, reader="test", via="test")["activation_code"]
        )
        system.smdp.download_and_install(code.matching_id, code.smdp_address, fail_install=True)
        later(system, 16 * MINUTE)
        view = queries.get_request_view(system.ctx, rid)
        assert view["state"] == "ready"
        assert "esim.install_failure_reconciled" in audit_actions(system, rid)
        assert reissue.reissue(system.ctx, rid, actor="customer") == State.PROVISIONING


class TestNothingInstalledStaysReady:
    def test_checks_back_off_until_the_code_expires_and_then_stop(self, system: System) -> None:
        system.ctx.smdp_status = FakeSmdpStatusQuery(system.smdp)
        rid = ready_request(system, 810)
        ready_at = system.clock.now()
        for _ in range(40):  # from one due job to the next, until the code expired
            due = [at for state, at in pending_jobs(system, rid) if state == "pending"]
            if not due:
                break
            later(system, max(min(due) - system.clock.now(), dt.timedelta(0)))
        assert state_of(system, rid) == "expired"
        runs = jobs_of(system, rid, "esim.reconcile")
        assert all(state == "done" for state, _ in runs)
        assert runs[0][1] == ready_at + 15 * MINUTE
        assert runs[-1][1] < ready_at + dt.timedelta(hours=72)  # the last, before expiry
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise(runs)]
        assert gaps[:4] == [30 * MINUTE, 60 * MINUTE, 120 * MINUTE, 240 * MINUTE]
        assert max(gaps) <= dt.timedelta(hours=6)
        assert len(runs) < 20
        assert "esim.install_reconciled" not in audit_actions(system, rid)

    def test_an_older_check_for_a_reissued_profile_does_nothing(self, system: System) -> None:
        rid = ready_request(system, 811)
        old_imsi = new_imsi(system, rid)
        assert reissue.reissue(system.ctx, rid, actor="customer") == State.PROVISIONING
        system.run_jobs()
        assert state_of(system, rid) == "ready"
        phone_registers(system, old_imsi)  # the withdrawn profile: not this request's
        later(system, 16 * MINUTE)
        assert state_of(system, rid) == "ready"


def audit_details(system: System, rid: str) -> list[tuple[str, object]]:
    t = orm.audit_event
    with system.engine.connect() as conn:
        return [
            (r.action, r.detail)
            for r in conn.execute(
                sa.select(t.c.action, t.c.detail).where(t.c.object_id == rid).order_by(t.c.seq)
            )
        ]


@pytest.fixture
def base_url(system: System) -> Iterator[str]:
    origin_rules_off(system)  # a test browser is a new device: see risk_support
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    yield server.url
    server.stop()


def portal_ready(system: System, http: httpx.Client, n: int) -> str:
    msisdn, email = new_line(system, n)
    rid = open_via_forms(system, http, msisdn, reason="damaged")
    system.run_jobs()
    assert verify_via_form(http, rid, system.code_for(email)).status_code == 303
    system.run_jobs()
    assert state_of(system, rid) == "ready"
    return rid


class TestTheCustomerSaysItIsInstalled:
    def test_the_button_checks_at_once_and_the_number_moves(
        self, system: System, base_url: str
    ) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            rid = portal_ready(system, http, 820)
            status = http.get(f"/portal/requests/{rid}")
            assert f'action="/portal/requests/{rid}/installed"' in status.text
            assert "I have installed it" in status.text
            installed_without_callback(system, rid)
            phone_registers(system, new_imsi(system, rid))
            pressed = http.post(
                f"/portal/requests/{rid}/installed", data={"csrf_token": token(status)}
            )
            assert pressed.status_code == 303
            assert pressed.headers["location"] == f"/portal/requests/{rid}?checking=1"
            assert "checking with the network" in http.get(pressed.headers["location"]).text
            system.run_jobs()  # no clock change: the check was due at once
            assert state_of(system, rid) == "completed"
            actions = audit_actions(system, rid)
            assert actions.count("esim.install_reported") == 1
            assert actions.count("esim.install_reconciled") == 1

    def test_in_danish_too(self, system: System, base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=10, headers={"Accept-Language": "da"}) as h:
            rid = portal_ready(system, h, 821)
            assert "Jeg har installeret det" in h.get(f"/portal/requests/{rid}").text

    def test_not_installed_yet_stays_ready_and_presses_back_off(
        self, system: System, base_url: str
    ) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            rid = portal_ready(system, http, 822)
            where = []
            for _ in range(5):
                page = http.get(f"/portal/requests/{rid}")
                pressed = http.post(
                    f"/portal/requests/{rid}/installed", data={"csrf_token": token(page)}
                )
                assert pressed.status_code == 303  # post/redirect/get, whatever happened
                where.append(pressed.headers["location"])
                system.run_jobs()
            checking = f"/portal/requests/{rid}?checking=1"
            assert where[:3] == [checking] * 3 and where[3] == f"/portal/requests/{rid}"
            assert "Too many attempts" in http.get(where[3]).text
            assert state_of(system, rid) == "ready"
            assert audit_actions(system, rid).count("esim.install_reported") == 3

    def test_only_the_verified_session_with_a_csrf_token_may_press(
        self, system: System, base_url: str
    ) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            rid = portal_ready(system, http, 823)
            page = http.get(f"/portal/requests/{rid}")
            no_token = http.post(f"/portal/requests/{rid}/installed", data={})
            assert no_token.status_code == 303
            assert "This form has expired" in http.get(no_token.headers["location"]).text
        with httpx.Client(base_url=base_url, timeout=10) as stranger:
            start = stranger.get("/portal")
            refused = stranger.post(
                f"/portal/requests/{rid}/installed", data={"csrf_token": token(start)}
            )
            assert refused.status_code == 303  # to the status page, which says why
            assert not re.search(
                r"I have installed it", stranger.get(f"/portal/requests/{rid}").text
            )
        assert "esim.install_reported" not in audit_actions(system, rid)
        assert page.status_code == 200
        assert [s for s, _ in jobs_of(system, rid, "esim.reconcile")] == ["pending"]
