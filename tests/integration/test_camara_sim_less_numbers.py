"""Numbers that have never had a SIM (issue 15 item 2), on SQLite and PostgreSQL.

A number can exist before any SIM does: reserved for a customer, or ported in
and not yet activated (``line.awaiting_sim``). The CAMARA test plan's
retrieve_sim_swap_date_4_sim_never_associated expects 200 with
``latestSimChange: null`` for it (resim answered 404 before: every line had
to name a SIM). Every response is validated against sim-swap.yaml.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from camara_support import Camara, camara_settings, serve_camara
from test_replacement_flow import System, add_line, iccid, imsi
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.errors import Refused
from resim.services.onboarding import import_file, seed
from resim.services.replacement import requests

pytestmark = pytest.mark.integration

RESERVED, PORTING = "+4520300001", "+4520300002"
LIMITED = "+393303000001"


@pytest.fixture
def numbers(system: System) -> System:
    """dk (no legal limit): two numbers without a SIM; it (30 days): one."""
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "it", "Lago Mobile", "IT", "EUR", "it", "Europe/Rome",
            BrandPolicy(verification=email_code_alone(), camara_monitored_days=30),
        ),
    )  # fmt: skip
    for brand, msisdn, holder in (
        ("dk", "+4520300100", None),
        ("it", "+393303000100", None),
    ):
        seed.add_line(
            system.ctx,
            seed.LineSpec(
                brand_id=brand, msisdn=msisdn, name="Kunde", email=f"{msisdn[1:]}@example.test",
                iccid=iccid(), imsi=imsi(), subscriber_id=holder,
            ),
        )  # fmt: skip
    subscribers = _subscribers(system)
    for brand, msisdn in (("dk", RESERVED), ("dk", PORTING), ("it", LIMITED)):
        seed.add_number_without_sim(
            system.ctx, brand_id=brand, subscriber_id=subscribers[brand], msisdn=msisdn
        )
    return system


def _subscribers(system: System) -> dict[str, str]:
    with system.ctx.uow() as uow:
        rows = uow.session.execute(sa.select(orm.line.c.brand_id, orm.line.c.subscriber_id))
        return {brand: sub for brand, sub in rows}


@pytest.fixture
def api(numbers: System, db_url: str, tmp_path: Path) -> Iterator[Camara]:
    yield from serve_camara(numbers.ctx, camara_settings(db_url, tmp_path))


class TestCamaraAnswers:
    def test_retrieve_date_is_null_without_a_monitored_period(self, api: Camara) -> None:
        token = api.token("sim-swap:retrieve-date")
        for msisdn in (RESERVED, PORTING):
            answer = api.post("/retrieve-date", {"phoneNumber": msisdn}, token)
            assert (answer.status_code, answer.json()) == (200, {"latestSimChange": None})

    def test_with_a_legal_limit_the_null_names_the_monitored_period(self, api: Camara) -> None:
        answer = api.post("/retrieve-date", {"phoneNumber": LIMITED}, api.token())
        assert answer.json() == {"latestSimChange": None, "monitoredPeriod": 30}

    def test_check_says_not_swapped_for_any_max_age(self, api: Camara) -> None:
        for max_age in (1, 240, 720):
            answer = api.post("/check", {"phoneNumber": RESERVED, "maxAge": max_age}, api.token())
            assert answer.json() == {"swapped": False}

    def test_a_three_legged_token_for_the_number_gets_the_same(self, api: Camara) -> None:
        bound = api.token("sim-swap", phone=PORTING)
        assert api.post("/retrieve-date", {}, bound).json() == {"latestSimChange": None}
        assert api.post("/check", {}, bound).json() == {"swapped": False}

    def test_a_number_nobody_has_is_still_unknown(self, api: Camara) -> None:
        answer = api.post("/retrieve-date", {"phoneNumber": "+4520399999"}, api.token())
        assert (answer.status_code, answer.json()["code"]) == (404, "IDENTIFIER_NOT_FOUND")


class TestTheRestOfResimCopes:
    def test_a_replacement_is_refused_and_nothing_changes(self, numbers: System) -> None:
        with pytest.raises(Refused) as refused:
            requests.open_request(numbers.ctx, msisdn=RESERVED, reason="lost")
        assert refused.value.code == "LINE_HAS_NO_SIM"
        with numbers.ctx.uow() as uow:
            count = uow.session.scalar(
                sa.select(sa.func.count()).select_from(orm.replacement_request)
            )
        assert count == 0

    def test_another_brands_staff_learn_nothing_about_it(self, numbers: System) -> None:
        """The Italian brand's agent asks for the Danish reserved number: not found,
        not "has no SIM" (no oracle across brands)."""
        from resim.errors import NotFound
        from resim.services.access.tenancy import Scope

        with pytest.raises(NotFound) as hidden:
            requests.open_request(
                numbers.ctx, msisdn=RESERVED, reason="lost", scope=Scope.of_brand("it")
            )
        assert hidden.value.code == "LINE_NOT_FOUND"

    def test_no_sim_is_bound_and_the_core_knows_nothing(self, numbers: System) -> None:
        with numbers.ctx.uow() as uow:
            line_ids = uow.session.scalars(
                sa.select(orm.line.c.id).where(orm.line.c.awaiting_sim.is_(True))
            ).all()
            bound = uow.session.scalars(
                sa.select(orm.sim.c.iccid).where(orm.sim.c.line_id.in_(line_ids))
            ).all()
            audited = uow.session.scalars(
                sa.select(orm.audit_event.c.object_id).where(
                    orm.audit_event.c.action == "line.reserved"
                )
            ).all()
        assert len(line_ids) == 3 and bound == []
        assert sorted(audited) == sorted(line_ids)
        assert numbers.core.imsi_of(msisdn=RESERVED) is None

    def test_the_same_number_cannot_be_reserved_twice(self, numbers: System) -> None:
        from resim.errors import Conflict

        with pytest.raises(Conflict):
            seed.add_number_without_sim(
                numbers.ctx, brand_id="dk", subscriber_id=_subscribers(numbers)["dk"],
                msisdn=RESERVED,
            )  # fmt: skip

    def test_other_lines_are_untouched(self, numbers: System) -> None:
        msisdn, _, _, _ = add_line(numbers, 5)
        opened = requests.open_request(numbers.ctx, msisdn=msisdn, reason="damaged")
        assert opened.id

    def test_the_importer_reads_an_empty_iccid_as_no_sim_yet(
        self, numbers: System, tmp_path: Path
    ) -> None:
        holder = _subscribers(numbers)["dk"]
        path = tmp_path / "lines.csv"
        path.write_text(
            "msisdn,subscriber_id,brand_id,status,iccid,created_at\n"
            f"+4520300003,{holder},dk,active,,\n"
            f"+4520300004,{holder},dk,suspended,,\n"  # a suspended line must name its SIM
            f"{RESERVED},{holder},dk,active,,\n",  # already there without a SIM: unchanged
            encoding="utf-8",
        )
        report = import_file(numbers.ctx, "lines", path)
        assert (report.new, report.unchanged, report.bad) == (1, 1, 1)
        with numbers.ctx.uow() as uow:
            awaiting = uow.session.scalar(
                sa.select(orm.line.c.awaiting_sim).where(orm.line.c.msisdn == "+4520300003")
            )
        assert awaiting is True


def test_a_first_sim_makes_it_a_line_like_any_other() -> None:
    from resim.domain.model import Line

    line = Line(
        id="l1", msisdn=RESERVED, subscriber_id="s1", brand_id="dk",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), awaiting_sim=True,
    )  # fmt: skip
    line.first_sim_bound()
    assert line.awaiting_sim is False


def test_the_demo_seeds_two_per_brand_and_camara_answers_null(
    empty_db_url: str, tmp_path: Path
) -> None:
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
    data = seed_demo(ctx, lines_per_brand=3, stock_per_brand=4)
    assert len(data.numbers_without_sim) == 8
    assert not set(data.numbers_without_sim) & {line.msisdn for line in data.lines}
    try:
        served = serve_camara(ctx, settings)
        api = next(served)
        for msisdn in data.numbers_without_sim:
            answer = api.post("/retrieve-date", {"phoneNumber": msisdn}, api.token())
            assert answer.status_code == 200
            assert answer.json()["latestSimChange"] is None
        served.close()
    finally:
        engine.dispose()
