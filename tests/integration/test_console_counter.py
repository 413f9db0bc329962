"""The console as a counter tool (issue 14.2 and 14.4), over real HTTP, SQLite and
PostgreSQL: the line overview's facts, the ID check that compares the document
with the account without showing the account's values, the hand-over from the
store's stock and its receipt."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from identity_support import enrol
from risk_support import new_line, update_line, update_subscriber
from tenancy_support import OTHER, add_brand_line, add_other_brand
from test_console_pages import (
    Staff,
    approve_in_console,
    cards,
    line_url,
    server,
    signed_in,
    text_of,
)
from test_replacement_flow import System, iccid, imsi
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.model import SimForm
from resim.domain.policy import BrandPolicy, FeeRule
from resim.domain.verification import email_code_alone
from resim.services.onboarding import seed
from resim.services.replacement import queries, requests

__all__ = ["server", "system"]

NAME, BORN, DOCUMENT = "Søren Ærø-Jensen", "1984-03-07", "AB 1234567"


def on_file(system: System, n: int) -> str:
    """A line whose holder has a birth date and a document number on file."""
    msisdn, _ = new_line(system, n)
    update_subscriber(system, msisdn, name=NAME, birth_date=BORN, id_document_number=DOCUMENT)
    return msisdn


def compare(agent: Staff, msisdn: str, **typed: str) -> object:
    values = {
        "document_type": "passport",
        "name": NAME,
        "birth_date": BORN,
        "last_digits": "4567",
        **typed,
    }
    return agent.post(f"/console/lines/{msisdn}/identity-check", line_url(msisdn), **values)


def audit_actions(system: System, action: str) -> list[dict[str, object]]:
    a = orm.audit_event
    with system.ctx.uow() as uow:
        rows = uow.session.execute(sa.select(a.c.detail).where(a.c.action == action)).all()
    return [dict(r[0] or {}) for r in rows]


class TestTheOverview:
    def test_shows_sim_state_fee_contact_changes_and_signals_before_the_check(
        self, system: System, server: str
    ) -> None:
        seed.upsert_brand(
            system.ctx,
            seed.BrandSpec(
                "dk",
                "Nordlys Mobil",
                "DK",
                "DKK",
                "da",
                "Europe/Copenhagen",
                BrandPolicy(
                    verification=email_code_alone(),
                    fee=FeeRule(amount_minor=14900, free_per_window=0),
                ),
            ),
        )
        msisdn, _ = new_line(system, 1401)
        now = system.clock.now()
        update_subscriber(system, msisdn, email_changed_at=now - dt.timedelta(days=2))
        with system.ctx.uow() as uow:
            sim = uow.session.execute(
                sa.select(orm.sim.c.iccid)
                .join(orm.line, orm.line.c.id == orm.sim.c.line_id)
                .where(orm.line.c.msisdn == msisdn)
            ).scalar_one()
        agent = signed_in(system, server, "agent")
        page = agent.http.get(line_url(msisdn))
        assert page.status_code == 200
        words = text_of(page)
        assert f"eSIM, ICCID {sim[:4]} … {sim[-4:]}" in words
        assert sim not in page.text  # the customer's ICCID is masked
        assert "In service" in words and "No SIM change on record." in words
        assert re.search(r"149[,.]00", words), words  # the brand's fee, DKK
        assert "The e-mail address changed recently." in words  # a signal, before opening
        assert "Replacing the SIM is not available: Check the customer's ID document first." in (
            words
        )
        contact = re.search(r'id="contact-changes">(.*?)</dl>', page.text, re.S)
        assert contact and "Never" in contact.group(1) and "2026" in contact.group(1)

    def test_open_request_frozen_and_lock_are_said_in_words(
        self, system: System, server: str
    ) -> None:
        msisdn, _ = new_line(system, 1402)
        requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        agent = signed_in(system, server, "agent")
        words = text_of(agent.http.get(line_url(msisdn)))
        assert "Waiting for verification" in words and "requested" not in words
        assert "This line already has an open replacement request." in words
        other, _ = new_line(system, 1403)
        update_subscriber(system, other, replacements_frozen_at=system.clock.now())
        update_line(system, other, sim_change_locked=True)
        words = text_of(agent.http.get(line_url(other)))
        assert "Yes, since" in words and "only a fraud reviewer can unfreeze it" in words
        assert "The SIM-change lock is on." in words

    def test_a_completed_change_is_listed_masked(self, system: System, server: str) -> None:
        msisdn, _ = new_line(system, 1404)
        with system.ctx.uow() as uow:
            line_id = uow.session.execute(
                sa.select(orm.line.c.id).where(orm.line.c.msisdn == msisdn)
            ).scalar_one()
            uow.session.execute(
                orm.sim_change.insert().values(
                    id="chg-1404",
                    msisdn=msisdn,
                    line_id=line_id,
                    changed_at=system.clock.now() - dt.timedelta(days=40),
                    new_iccid="8945000000000001404",
                    old_iccid="8945000000000009999",
                )
            )
            uow.commit()
        agent = signed_in(system, server, "agent")
        page = agent.http.get(line_url(msisdn))
        assert "8945 … 1404" in text_of(page) and "8945 … 9999" in text_of(page)
        assert "8945000000000009999" not in page.text


class TestTheIdCheckCompares:
    def test_a_match_despite_case_accents_and_spaces_unlocks_the_details(
        self, system: System, server: str
    ) -> None:
        msisdn = on_file(system, 1410)
        agent = signed_in(system, server, "agent")
        before = agent.http.get(line_url(msisdn))
        for value in (NAME, "Søren", "Jensen", BORN, "07.03.1984", "1234567", "4567"):
            assert value not in before.text, value  # nothing to copy before a match
        done = compare(agent, msisdn, name="  SOREN   aero jensen ", birth_date="07.03.1984")
        assert done.status_code == 303
        after = agent.http.get(done.headers["location"])
        assert "Match: the document matches the account." in text_of(after)
        assert NAME in after.text and 'id="verified"' in after.text
        recorded = audit_actions(system, "identity_check.recorded")[-1]
        assert recorded["compared"] == ["name", "birth_date", "document_number"]

    def test_no_match_is_audited_and_unlocks_nothing(self, system: System, server: str) -> None:
        msisdn = on_file(system, 1411)
        agent = signed_in(system, server, "agent")
        for wrong in ({"birth_date": "1984-03-08"}, {"last_digits": "4568"}, {"name": "Søren"}):
            refused = compare(agent, msisdn, **wrong)
            assert refused.status_code == 400
            assert "No match" in text_of(refused)
            assert NAME not in refused.text and BORN not in refused.text
            assert "1234567" not in refused.text
        assert 'id="redacted"' in agent.http.get(line_url(msisdn)).text
        failed = audit_actions(system, "identity_check.no_match")
        assert len(failed) == 3 and failed[-1]["failures"] == 3
        stored = repr(failed)
        assert "1984" not in stored and "4568" not in stored and "ren" not in stored
        assert not audit_actions(system, "identity_check.recorded")

    def test_repeated_no_matches_are_throttled_per_agent_and_line(
        self, system: System, server: str
    ) -> None:
        msisdn = on_file(system, 1412)
        agent, colleague = (signed_in(system, server, "agent") for _ in range(2))
        for _ in range(5):
            compare(agent, msisdn, last_digits="0000")
            system.clock.advance(dt.timedelta(hours=1))  # past each back-off
        blocked = compare(agent, msisdn)  # even the right values
        assert blocked.status_code == 429 and "Too many" in text_of(blocked)
        assert 'id="redacted"' in agent.http.get(line_url(msisdn)).text
        assert compare(colleague, msisdn).status_code == 303  # another agent is not blocked

    def test_without_values_on_file_the_name_alone_is_compared(
        self, system: System, server: str
    ) -> None:
        msisdn, _ = new_line(system, 1413)
        agent = signed_in(system, server, "agent")
        assert compare(agent, msisdn, name="Someone Else").status_code == 400
        assert compare(agent, msisdn, name="kunde 1413").status_code == 303

    def test_malformed_input_is_refused_without_counting(self, system: System, server: str) -> None:
        msisdn = on_file(system, 1414)
        agent = signed_in(system, server, "agent")
        for bad, words in (
            ({"name": "   "}, "holder's name"),
            ({"birth_date": "yesterday"}, "birth date"),
            ({"last_digits": "45a7"}, "last 4 digits"),
            ({"document_type": "library_card"}, "type of document"),
        ):
            refused = compare(agent, msisdn, **bad)
            assert refused.status_code == 400 and words in text_of(refused), bad
        assert not audit_actions(system, "identity_check.no_match")

    def test_another_brands_agent_gets_not_found(self, system: System, server: str) -> None:
        add_other_brand(system)
        theirs, _ = add_brand_line(system, OTHER, 1415)
        dk_agent = Staff(system, server, "agent")
        dk_agent.username, dk_agent.seed = enrol(system.ctx, "agent", brand_id="dk")
        assert dk_agent.sign_in().status_code == 303
        assert dk_agent.http.get(line_url(theirs)).status_code == 404
        token_page = dk_agent.http.get("/console/lines")
        refused = dk_agent.http.post(
            f"/console/lines/{theirs}/identity-check",
            data={
                "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', token_page.text)[0],
                "document_type": "passport",
                "name": f"Customer {OTHER} 1415",
                "birth_date": BORN,
                "last_digits": "4567",
            },
        )
        assert refused.status_code == 404


class TestTheHandOver:
    def test_stock_lists_only_this_brands_unused_cards_and_the_receipt_follows(
        self, system: System, server: str
    ) -> None:
        add_other_brand(system)
        theirs = [(iccid(), imsi())]
        seed.add_stock(
            system.ctx, brand_id=OTHER, profile_type="card", profiles=theirs, form=SimForm.PHYSICAL
        )
        mine = cards(system)
        msisdn = on_file(system, 1420)
        agent = signed_in(system, server, "agent")
        assert compare(agent, msisdn).status_code == 303
        line_page = line_url(msisdn)
        made = agent.post(
            f"/console/lines/{msisdn}/requests", line_page, reason="damaged", target_form="physical"
        )
        rid = made.headers["location"].rsplit("/", 1)[1]
        approve_in_console(system, server, rid)
        overview = agent.http.get(line_page)
        assert f'href="/console/requests/{rid}/handover"' in overview.text
        desk = agent.http.get(f"/console/requests/{rid}/handover")
        assert desk.status_code == 200
        listed = re.findall(r'name="stock_iccid"[^>]*value="(\d+)"', desk.text)
        assert sorted(listed) == sorted(mine)  # full ICCIDs, this brand's, unused only
        assert theirs[0][0] not in desk.text
        done = agent.post(
            f"/console/requests/{rid}/handover",
            f"/console/requests/{rid}/handover",
            stock_iccid=mine[1],
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/console/requests/{rid}/receipt"
        receipt = agent.http.get(done.headers["location"])
        assert receipt.status_code == 200
        words = text_of(receipt)
        view = queries.get_request_view(system.ctx, rid)
        assert mine[1] in words and view["old_iccid"] in words
        assert "S*** Æ***" in words and NAME not in receipt.text
        assert msisdn not in words and f"{msisdn[:3]}" in words
        assert "Test agent" in words and view["ref"] in words
        assert "+0100" in words, words  # Copenhagen in winter, not UTC
        assert 'href="/static/counter.css"' in receipt.text
        css = agent.http.get("/static/counter.css").text
        assert "@media print" in css
        again = agent.http.get(f"/console/requests/{rid}/handover")
        assert mine[1] not in again.text  # reserved now, no longer in stock

    def test_no_receipt_before_a_hand_over_and_none_for_another_brand(
        self, system: System, server: str
    ) -> None:
        msisdn, _ = new_line(system, 1421)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        agent = signed_in(system, server, "agent")
        missing = agent.http.get(f"/console/requests/{opened.id}/receipt")
        assert missing.status_code == 409 and "no receipt" in text_of(missing)
        add_other_brand(system)
        outsider = Staff(system, server, "agent")
        outsider.username, outsider.seed = enrol(system.ctx, "agent", brand_id=OTHER)
        assert outsider.sign_in().status_code == 303
        for path in ("receipt", "handover"):
            got = outsider.http.get(f"/console/requests/{opened.id}/{path}")
            assert got.status_code == 404, path


def test_the_demo_customers_have_a_document_on_file(empty_db_url: str, tmp_path: Path) -> None:
    """The demo's customers carry the birth date and document number the console
    compares (encrypted in the database), so an agent can try the ID check."""
    from camara_support import camara_settings
    from identity_support import signed_in as staff_signed_in

    from resim.adapters.corenet.fake import FakeCoreNetwork
    from resim.adapters.db.migrate import upgrade
    from resim.adapters.es2.fake import FakeSmdpClient
    from resim.adapters.mail.fake import FakeMailer
    from resim.bootstrap import build_context, build_engine
    from resim.demo.demo_seed import seed_demo
    from resim.services.context import FrozenClock

    upgrade(empty_db_url)
    settings = camara_settings(empty_db_url, tmp_path)
    clock = FrozenClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    engine = build_engine(settings, pool_size=4)
    ctx = build_context(
        settings, engine=engine, smdp=FakeSmdpClient(), core=FakeCoreNetwork(clock.now),
        mailer=FakeMailer(), clock=clock,
    )  # fmt: skip
    try:
        data = seed_demo(ctx, lines_per_brand=2, stock_per_brand=4)
        first = data.lines[0]
        assert first.name and first.birth_date and first.document_number
        with engine.connect() as conn:
            raw = conn.execute(sa.text("SELECT birth_date FROM subscriber")).scalars().all()
        assert first.birth_date not in repr(raw)  # encrypted at rest
        from resim.services.console import id_compare

        checked = id_compare.compare_identity(
            ctx,
            staff_id=staff_signed_in(ctx, "agent")[1],
            msisdn=first.msisdn,
            document_type="passport",
            name=first.name.upper(),
            birth_date=first.birth_date,
            last_digits=first.document_number[-4:],
        )
        assert checked.line_id
    finally:
        engine.dispose()
