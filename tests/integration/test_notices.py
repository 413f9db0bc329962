"""SEC-04: the customer hears of every request on every contact point, in their
language, with a "this was not me" link that works once and for that request only.

Real database (SQLite and PostgreSQL) through the use cases; SMS goes to the
FakeSmsGateway, or over HTTP to the SMS capture where the test says so.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.adapters.sms.capture import SmsCapture
from resim.adapters.sms.http import HttpSmsGateway
from resim.domain.model import RequestKind, Sim, SimState
from resim.domain.policy import BrandPolicy
from resim.domain.security import Alert, Role, StaffUser
from resim.domain.verification import email_code_alone
from resim.domain.workflow import State
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.errors import NotFound
from resim.services import repo
from resim.services.notifications import notify
from resim.services.notifications.notify import not_me_token, notify_customer
from resim.services.onboarding import seed
from resim.services.outbox import jobs
from resim.services.outbox.external import JobRecord
from resim.services.ports import OutgoingMail
from resim.services.replacement import cancel, queries, requests

pytestmark = pytest.mark.integration

OTP = "482913"
ALT = "+4560000001"
NOT_ME = re.compile(r"/not-me/([A-Za-z0-9_-]+)")


@pytest.fixture
def sys_(system: System) -> Iterator[System]:
    system.ctx.otp_generator = lambda: OTP
    yield system


def with_alt(system: System, msisdn: str, alt: str = ALT) -> None:
    with system.ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, msisdn)
        repo.get_subscriber(uow, line.subscriber_id).alt_msisdn = alt
        uow.commit()


def sms_jobs(
    system: System, request_id: str | None = None, *, job_ids: list[str] | None = None
) -> list[dict[str, object]]:
    """The text jobs (oldest first; jobs of one transaction in no fixed order)."""
    t = orm.job
    query = sa.select(t.c.payload).where(t.c.kind == "sms.send").order_by(t.c.created_at)
    if request_id is not None:
        query = query.where(t.c.request_id == request_id)
    if job_ids is not None:
        query = query.where(t.c.id.in_(job_ids))
    with system.ctx.uow() as uow:
        payloads = [dict(p) for p in uow.session.scalars(query)]
    assert all("to" not in p for p in payloads)  # the number travels sealed
    return [{**p, "to": notify.open_message(system.ctx, p).to} for p in payloads]


def texts(system: System, number: str) -> list[str]:
    return [m.text for m in system.sms.to(number)]


def complete(system: System, msisdn: str, email: str, reason: str = "device_change") -> str:
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason=reason)
    system.run_jobs()
    assert requests.submit_verification(system.ctx, opened.id, otp=OTP) == State.APPROVED
    system.run_jobs()
    system.install(opened.id)
    system.run_jobs()
    assert queries.get_request_view(system.ctx, opened.id)["state"] == "completed"
    return opened.id


class TestEveryContactPointHearsOfARequest:
    def test_opening_queues_mail_and_texts_to_the_alternate_number_and_the_old_sim(
        self, sys_: System
    ) -> None:
        msisdn, email, _, _ = add_line(sys_, 1)
        with_alt(sys_, msisdn)
        opened = requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
        # Committed with the request: the jobs are there before any worker ran.
        assert sorted((j["to"], j["target"]) for j in sms_jobs(sys_, opened.id)) == sorted(
            [(msisdn, "old_sim"), (ALT, "alternate")]
        )
        assert all("not-me" not in str(j) for j in sms_jobs(sys_))  # the link travels sealed
        sys_.run_jobs()
        for number in (msisdn, ALT):
            (text,) = texts(sys_, number)
            assert text.startswith("Nordlys Mobil: ")
            assert "+45******01" in text and msisdn not in text
            assert NOT_ME.search(text) and OTP not in text
        # one transaction queues both: they may be sent in either order
        kinds = sorted(m.headers["X-Resim-Kind"] for m in sys_.mail.to(email))
        assert kinds == ["one_time_code", "replacement_requested"]

    def test_notices_exist_only_if_their_transaction_commits(self, sys_: System) -> None:
        msisdn, _, _, _ = add_line(sys_, 2)
        with_alt(sys_, msisdn)
        opened = requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
        before = len(sms_jobs(sys_))
        with sys_.ctx.uow() as uow:
            request = repo.get_request(uow, opened.id)
            notify_customer(sys_.ctx, uow, kind="held_for_review", request=request)
            # no commit: rolled back
        assert len(sms_jobs(sys_)) == before
        with sys_.ctx.uow() as uow:
            request = repo.get_request(uow, opened.id)
            ids = notify_customer(sys_.ctx, uow, kind="held_for_review", request=request)
            uow.commit()
        assert len(ids) == 3  # mail, alternate number, old SIM
        assert len(sms_jobs(sys_)) == before + 2

    def test_lock_notices_go_to_every_contact_point_without_a_not_me_link(
        self, sys_: System
    ) -> None:
        msisdn, email, _, _ = add_line(sys_, 3)
        with_alt(sys_, msisdn)
        when = sys_.clock.now() + dt.timedelta(hours=24)
        for kind in ("lock_on", "unlock_requested", "unlock_effective"):
            with sys_.ctx.uow() as uow:
                line = repo.get_line_by_msisdn(uow, msisdn)
                notify_customer(sys_.ctx, uow, kind=kind, line=line, context={"effective_at": when})
                uow.commit()
        sys_.run_jobs()
        # three jobs with one frozen timestamp: any order
        assert sorted(m.headers["X-Resim-Kind"] for m in sys_.mail.to(email)) == [
            "lock_on",
            "unlock_effective",
            "unlock_requested",
        ]
        for number in (msisdn, ALT):
            sent = texts(sys_, number)
            assert len(sent) == 3 and not any("not-me" in t for t in sent)
            # The three jobs share one frozen timestamp, so they may run in any
            # order: find the unlock notice by its Danish date, not by position.
            dated = [t for t in sent if "2 marts 2026" in t or "2. marts 2026" in t]
            assert len(dated) == 1, sent

    def test_a_policy_can_turn_texts_to_the_old_sim_off(self, sys_: System) -> None:
        seed.upsert_brand(
            sys_.ctx,
            seed.BrandSpec(
                "dk",
                "Nordlys Mobil",
                "DK",
                "DKK",
                "da",
                "Europe/Copenhagen",
                BrandPolicy(notify_old_sim=False, verification=email_code_alone()),
            ),
        )
        msisdn, _, _, _ = add_line(sys_, 4)
        with_alt(sys_, msisdn)
        requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
        sys_.run_jobs()
        assert texts(sys_, msisdn) == [] and len(texts(sys_, ALT)) == 1


class TestTheOldSim:
    def test_gets_no_more_texts_once_suspended(self, sys_: System) -> None:
        msisdn, _, _, _ = add_line(sys_, 10)
        with_alt(sys_, msisdn)
        opened = requests.open_request(sys_.ctx, msisdn=msisdn, reason="stolen")
        sys_.run_jobs()
        requests.submit_verification(sys_.ctx, opened.id, otp=OTP)
        sys_.run_jobs()
        assert queries.get_request_view(sys_.ctx, opened.id)["old_sim_suspended"] is True
        to_old = len(texts(sys_, msisdn))
        cancel.cancel(sys_.ctx, opened.id, actor="agent-1")
        assert [j["to"] for j in sms_jobs(sys_, opened.id)][-1] == ALT
        sys_.run_jobs()
        assert len(texts(sys_, msisdn)) == to_old
        assert "annulleret" in texts(sys_, ALT)[-1]

    def test_a_text_queued_before_the_suspension_is_not_sent_after_it(self, sys_: System) -> None:
        msisdn, _, old_iccid, _ = add_line(sys_, 11)
        with_alt(sys_, msisdn)
        requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
        with sys_.ctx.uow() as uow:  # suspended before the worker got to the text
            sim = uow.session.get(Sim, old_iccid)
            assert sim is not None
            sim.set_state(SimState.SUSPENDED)
            uow.commit()
        sys_.run_jobs()
        assert texts(sys_, msisdn) == [] and len(texts(sys_, ALT)) == 1

    def test_after_cut_over_the_number_is_not_told_only_the_alternate_is(
        self, sys_: System
    ) -> None:
        msisdn, email, _, _ = add_line(sys_, 12)
        with_alt(sys_, msisdn)
        complete(sys_, msisdn, email)
        # The number now answers on the new SIM: whoever holds it must not get the
        # "completed" notice with its not-me link; the alternate number does.
        assert not any("udskiftet" in t or "skiftet" in t for t in texts(sys_, msisdn))
        assert "SIM-kortet til +45******12 er skiftet" in texts(sys_, ALT)[-1]

    def test_line_separation_requests_never_text_the_old_sim(self, sys_: System) -> None:
        msisdn, _, _, _ = add_line(sys_, 13)
        with_alt(sys_, msisdn)
        opened = requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
        with sys_.ctx.uow() as uow:
            request = repo.get_request(uow, opened.id)
            request.kind = RequestKind.LINE_SEPARATION
            ids = notify_customer(sys_.ctx, uow, kind="held_for_review", request=request)
            uow.commit()
        assert len(ids) == 2
        assert [j["to"] for j in sms_jobs(sys_, job_ids=ids)] == [ALT]
        assert [j["to"] for j in sms_jobs(sys_, opened.id)].count(msisdn) == 1  # the first


class TestLanguage:
    def test_each_subscriber_reads_notices_in_their_own_language(self, sys_: System) -> None:
        fr, fr_email, _, _ = add_line(sys_, 20, language="fr")
        zh, zh_email, _, _ = add_line(sys_, 21, language="zh_Hans")
        for number in (fr, zh):
            requests.open_request(sys_.ctx, msisdn=number, reason="damaged")
        sys_.run_jobs()
        assert "Une nouvelle carte SIM a été demandée" in texts(sys_, fr)[0]
        assert "Ce n'est pas vous\u00a0?" in texts(sys_, fr)[0]
        assert "申请了新的 SIM 卡" in texts(sys_, zh)[0]
        assert {m.language for m in sys_.mail.to(fr_email)} == {"fr"}
        assert {m.language for m in sys_.mail.to(zh_email)} == {"zh_Hans"}


class TestNoNoticeLetsAReaderTakeOver:
    def test_no_mail_or_text_of_a_whole_replacement_holds_a_code(self, sys_: System) -> None:
        msisdn, email, _, _ = add_line(sys_, 30)
        with_alt(sys_, msisdn)
        rid = complete(sys_, msisdn, email)
        with sys_.ctx.uow() as uow:
            request = repo.get_request(uow, rid)
            assert request.activation_code_enc and request.matching_id
            activation = sys_.ctx.secrets.decrypt(request.activation_code_enc)
            matching_id = request.matching_id
        notices = [
            m.text + (m.html or "") + m.subject
            for m in sys_.mail.to(email)
            if m.headers["X-Resim-Kind"] != "one_time_code"
        ] + [m.text for m in sys_.sms.sent]
        kinds = {m.headers["X-Resim-Kind"] for m in sys_.mail.to(email)}
        assert kinds >= {
            "replacement_requested",
            "replacement_approved",
            "esim_ready",
            "replacement_completed",
        }
        assert len(texts(sys_, ALT)) == 4
        for notice in notices:
            assert OTP not in notice
            assert activation not in notice and matching_id not in notice
            assert NOT_ME.search(notice), notice  # and every one can stop it


def report(system: System, text: str) -> cancel.NotMeOutcome:
    found = NOT_ME.search(text)
    assert found
    return cancel.report_not_me(system.ctx, found.group(1))


@dataclass(frozen=True)
class Flags:
    replacements_frozen_at: dt.datetime | None
    frozen_reason: str | None
    fraud_flags: int


def subscriber_of(system: System, msisdn: str) -> Flags:
    with system.ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, msisdn)
        s = repo.get_subscriber(uow, line.subscriber_id)
        return Flags(s.replacements_frozen_at, s.frozen_reason, s.fraud_flags)


def requested_mail(system: System, email: str) -> OutgoingMail:
    return next(
        m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "replacement_requested"
    )


@dataclass(frozen=True)
class AlertRow:
    id: str
    kind: str
    subject_type: str
    subject_id: str
    detail: dict[str, object]


def alerts(system: System) -> list[AlertRow]:
    with system.ctx.uow() as uow:
        return [
            AlertRow(a.id, a.kind, a.subject_type, a.subject_id, dict(a.detail))
            for a in uow.session.scalars(sa.select(Alert))
        ]


class TestThisWasNotMe:
    def test_cancels_freezes_flags_and_alerts_once_and_only_for_its_request(
        self, sys_: System
    ) -> None:
        a, _, _, _ = add_line(sys_, 40)
        b, _, _, _ = add_line(sys_, 41)
        with_alt(sys_, a)
        first = requests.open_request(sys_.ctx, msisdn=a, reason="damaged")
        second = requests.open_request(sys_.ctx, msisdn=b, reason="damaged")
        sys_.run_jobs()
        assert not_me_token(sys_.ctx, first.id) != not_me_token(sys_.ctx, second.id)
        outcome = report(sys_, texts(sys_, ALT)[0])  # the link in the SMS
        assert outcome == cancel.NotMeOutcome(first.id, cancelled=True)
        with sys_.ctx.uow() as uow:
            request = repo.get_request(uow, first.id)
            other = repo.get_request(uow, second.id)
            assert request.state == State.CANCELLED and request.fraud_reported_at is not None
            assert request.not_me_token_hash is None
            assert other.state == State.REQUESTED and other.fraud_reported_at is None
            assert other.not_me_token_hash is not None
        victim = subscriber_of(sys_, a)
        assert (victim.frozen_reason, victim.fraud_flags) == ("not_me", 1)
        assert victim.replacements_frozen_at == sys_.clock.now()
        bystander = subscriber_of(sys_, b)
        assert (bystander.replacements_frozen_at, bystander.fraud_flags) == (None, 0)
        (alert,) = alerts(sys_)
        assert (alert.kind, alert.subject_type, alert.subject_id) == ("not_me", "request", first.id)
        # Used: the same link (in any notice, e-mail or SMS) changes nothing more.
        with pytest.raises(NotFound, match="already used"):
            report(sys_, texts(sys_, a)[0])
        assert subscriber_of(sys_, a).fraud_flags == 1 and len(alerts(sys_)) == 1
        sys_.run_jobs()  # the cancelled notice carries the (now used) link, not a fresh one
        assert NOT_ME.findall(texts(sys_, ALT)[-1]) == NOT_ME.findall(texts(sys_, ALT)[0])
        with pytest.raises(NotFound):
            report(sys_, texts(sys_, ALT)[-1])

    def test_a_made_up_token_changes_nothing(self, sys_: System) -> None:
        msisdn, _, _, _ = add_line(sys_, 42)
        opened = requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
        real = not_me_token(sys_.ctx, opened.id)
        forged = real[:-1] + ("B" if real.endswith("A") else "A")  # never the real one
        for token in ("", "x" * 300, forged):
            with pytest.raises(NotFound):
                cancel.report_not_me(sys_.ctx, token)
        assert queries.get_request_view(sys_.ctx, opened.id)["state"] == "requested"
        assert alerts(sys_) == []

    def test_after_completion_it_flags_and_alerts_without_touching_the_sims(
        self, sys_: System
    ) -> None:
        msisdn, email, old_iccid, old_imsi = add_line(sys_, 43)
        rid = complete(sys_, msisdn, email)
        view = queries.get_request_view(sys_.ctx, rid)
        done = sys_.mail.latest_to(email)
        assert done is not None and done.headers["X-Resim-Kind"] == "replacement_completed"
        outcome = report(sys_, done.text)
        assert outcome == cancel.NotMeOutcome(rid, cancelled=False)
        after = queries.get_request_view(sys_.ctx, rid)
        assert after["state"] == "completed" and after["new_iccid"] == view["new_iccid"]
        with sys_.ctx.uow() as uow:
            old = uow.session.get(Sim, old_iccid)
            new = uow.session.get(Sim, view["new_iccid"])
            assert old is not None and new is not None
            assert (old.state, new.state) == (SimState.RETIRED, SimState.ACTIVE)
            assert repo.get_request(uow, rid).fraud_reported_at == sys_.clock.now()
        assert sys_.core.imsi_of(msisdn=msisdn) != old_imsi
        subscriber = subscriber_of(sys_, msisdn)
        assert (subscriber.frozen_reason, subscriber.fraud_flags) == ("not_me", 1)
        (alert,) = alerts(sys_)
        assert alert.detail["reversal_candidate"] is True and alert.subject_id == rid


def add_staff(system: System, username: str, role: Role, email: str | None, active: bool) -> None:
    with system.ctx.uow() as uow:
        uow.session.add(
            StaffUser(
                id=f"staff-{username}",
                username=username,
                display_name=username.title(),
                role=role,
                password_hash="not-a-real-hash",
                created_at=system.clock.now(),
                email=email,
                active=active,
            )
        )
        uow.commit()


class TestReviewersHearOfAlerts:
    def test_every_active_reviewer_with_an_email_gets_one_mail(self, sys_: System) -> None:
        add_staff(sys_, "rita", Role.REVIEWER, "rita@operator.test", True)
        add_staff(sys_, "rolf", Role.REVIEWER, "rolf@operator.test", True)
        add_staff(sys_, "gone", Role.REVIEWER, "gone@operator.test", False)
        add_staff(sys_, "nomail", Role.REVIEWER, None, True)
        add_staff(sys_, "agnes", Role.AGENT, "agnes@operator.test", True)
        msisdn, email, _, _ = add_line(sys_, 50)
        requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
        sys_.run_jobs()
        notice = requested_mail(sys_, email)
        token = NOT_ME.search(notice.text)
        assert token
        report(sys_, notice.text)
        sys_.run_jobs()
        (alert,) = alerts(sys_)
        told = [m for m in sys_.mail.sent if m.headers["X-Resim-Kind"] == "reviewer_alert"]
        assert sorted(m.to for m in told) == ["rita@operator.test", "rolf@operator.test"]
        for mail in told:
            assert "not_me" in mail.subject and mail.language == "en"
            assert f"http://127.0.0.1:8600/console/alerts/{alert.id}" in mail.text
            assert token.group(1) not in mail.text + (mail.html or "")
        # A re-run of the job (a worker died after its commit) mails nobody twice.
        jobs.HANDLERS["alert.notify"](
            sys_.ctx, JobRecord("again", "alert.notify", None, {"alert_id": alert.id}, 2)
        )
        sys_.run_jobs()
        again = [m for m in sys_.mail.sent if m.headers["X-Resim-Kind"] == "reviewer_alert"]
        assert len(again) == 2


class TestOverRealHttp:
    def test_texts_reach_the_sms_capture_and_show_on_the_demo_page(
        self, sys_: System, tmp_path: object
    ) -> None:
        from pathlib import Path

        folder = Path(str(tmp_path)) / "sms"
        with SmsCapture(folder) as capture:
            gateway = HttpSmsGateway(capture.url, sender="Nordlys")
            sys_.ctx.sms = gateway
            msisdn, _, _, _ = add_line(sys_, 60)
            with_alt(sys_, msisdn)
            requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged")
            sys_.run_jobs()
            gateway.close()
            stored = capture.messages()
        assert sorted(m.to for m in stored) == sorted([msisdn, ALT])
        server = ServerThread(build_app(sys_.ctx, ApiConfig(sms_capture_dir=folder))).start()
        try:
            page = httpx.get(f"{server.url}/demo/sms", timeout=10)
        finally:
            server.stop()
        assert page.status_code == 200 and "+45******60" in page.text

    def test_a_used_link_shows_a_plain_already_used_page(self, sys_: System) -> None:
        msisdn, email, _, _ = add_line(sys_, 61)
        rid = requests.open_request(sys_.ctx, msisdn=msisdn, reason="damaged").id
        sys_.run_jobs()
        notice = requested_mail(sys_, email)
        found = NOT_ME.search(notice.text)
        assert found
        server = ServerThread(build_app(sys_.ctx, ApiConfig())).start()
        try:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                assert http.get(f"/not-me/{found.group(1)}").status_code == 200
                assert queries.get_request_view(sys_.ctx, rid)["state"] == "requested"
                first = http.post(f"/not-me/{found.group(1)}")
                assert first.status_code == 303  # post/redirect/get
                first = http.get(first.headers["location"])
                again = http.post(f"/not-me/{found.group(1)}")
                again = http.get(again.headers["location"])
        finally:
            server.stop()
        assert first.status_code == 200 and "stopped" in first.text
        assert again.status_code == 404 and "already used" in again.text
        assert subscriber_of(sys_, msisdn).fraud_flags == 1
