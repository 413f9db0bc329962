"""Contract of the SQL-only stores (alerts, audit log, look-ups, dashboard, CAMARA,
sealed values) on SQLite and PostgreSQL: what their Protocols in
resim.services.stores promise, checked on small data."""

from __future__ import annotations

import datetime as dt

import pytest
from stores_rig import MakeUow, databases, fixture_over

from resim.domain.model import (
    Brand,
    Channel,
    Line,
    Reason,
    ReplacementRequest,
    Sim,
    SimChange,
    SimForm,
    SimState,
    Subscriber,
)
from resim.domain.security import Alert, Role, StaffUser
from resim.domain.workflow import State
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.unit_of_work import new_id

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
make_uow = fixture_over(databases())


def seed(make_uow: MakeUow, *, state: State = State.REQUESTED) -> ReplacementRequest:
    """Brands dk and se, subscriber s-1 with line +4520000001 (SIM active), a card in
    stock, one SIM change, and an open request by staff:a1."""
    req = ReplacementRequest(
        id="req-1",
        line_id="line-1",
        brand_id="dk",
        subscriber_id="s-1",
        msisdn="+4520000001",
        reason=Reason.LOST,
        channel=Channel.AGENT,
        actor="staff:a1",
        created_at=T0,
        old_iccid="89450000000000000001",
    )
    req.state = state
    with make_uow() as uow:
        for code, country in (("dk", "DK"), ("se", "SE")):
            uow.brands.add(
                Brand(
                    id=code,
                    name=code.upper(),
                    country=country,
                    currency="DKK",
                    language="da",
                    timezone="Europe/Copenhagen",
                    policy={},
                )
            )
        uow.flush()
        uow.subscribers.add(
            Subscriber(
                id="s-1", brand_id="dk", name="Ada", email="a@x.test", language="da", created_at=T0
            )
        )
        uow.flush()
        uow.lines.add(
            Line(
                id="line-1", msisdn="+4520000001", subscriber_id="s-1", brand_id="dk", created_at=T0
            )
        )
        uow.flush()
        for iccid, state_, form, line_id in (
            ("89450000000000000001", SimState.ACTIVE, SimForm.ESIM, "line-1"),
            ("89450000000000000019", SimState.IN_STOCK, SimForm.PHYSICAL, None),
            ("89450000000000000027", SimState.IN_STOCK, SimForm.ESIM, None),
        ):
            uow.sims.add(
                Sim(
                    iccid=iccid,
                    imsi="2380100" + iccid[-8:],
                    form=form,
                    state=state_,
                    brand_id="dk",
                    line_id=line_id,
                    profile_type="standard",
                )
            )
        uow.flush()
        uow.sim_changes.add(
            SimChange(
                id="sc-1",
                msisdn="+4520000001",
                line_id="line-1",
                changed_at=T0 - dt.timedelta(days=3),
                new_iccid="89450000000000000001",
                old_iccid=None,
                request_id=None,
            )
        )
        uow.requests.add(req)
        uow.flush()
        uow.commit()
    return req


def alert(kind: str, subject_type: str, subject_id: str, at: dt.datetime) -> Alert:
    return Alert(id=new_id(), at=at, kind=kind, subject_type=subject_type, subject_id=subject_id)


class TestAlertStore:
    def test_scope_msisdn_order_and_acknowledging_a_subscribers_alerts(
        self, make_uow: MakeUow
    ) -> None:
        seed(make_uow)
        with make_uow() as uow:
            uow.alerts.add(alert("account_frozen", "subscriber", "s-1", T0))
            uow.alerts.add(alert("not_me", "request", "req-1", T0 + dt.timedelta(minutes=1)))
            uow.alerts.add(alert("brute_force", "source_address", "10.0.0.1", T0))
            uow.commit()
        with make_uow() as uow:
            every = uow.alerts.open_alerts(UNRESTRICTED, limit=10)
            assert every[0].kind == "not_me"  # newest first
            assert {a.kind: a.msisdn for a in every} == {
                "not_me": "+4520000001",
                "account_frozen": "+4520000001",
                "brute_force": None,
            }
            assert len(uow.alerts.open_alerts(Scope.of_brand("dk"), limit=10)) == 2
            assert uow.alerts.open_alerts(Scope.of_brand("se"), limit=10) == []
            customer = Scope.of_customer(line_id="line-1", request_id="req-1")
            assert uow.alerts.open_alerts(customer, limit=10) == []
            assert len(uow.alerts.open_alerts(UNRESTRICTED, limit=1)) == 1
            assert (
                uow.alerts.raised_since(
                    kind="not_me", subject_type="request", subject_id="req-1", since=T0
                )
                == 1
            )
            assert uow.alerts.open_count(kind="not_me", subject_id="req-1") == 1
            assert uow.alerts.open_count(kind="not_me", subject_id="req-2") == 0
            assert uow.alerts.open_count(kind="brute_force", subject_id="req-1") == 0
            assert uow.alerts.brand_of_subject("request", "req-1") == "dk"
            assert uow.alerts.brand_of_subject("line", "line-1") == "dk"
            assert uow.alerts.brand_of_subject("source_address", "10.0.0.1") is None
            acked = uow.alerts.acknowledge_about_subscriber("s-1", by="staff:r", at=T0)
            assert acked == 2
            uow.commit()
        with make_uow() as uow:
            left = uow.alerts.open_alerts(UNRESTRICTED, limit=10)
            assert [a.kind for a in left] == ["brute_force"]
            assert uow.alerts.open_count(kind="not_me", subject_id="req-1") == 0
            assert uow.alerts.lock_open(left[0].id, Scope.of_brand("dk")) is None
            locked = uow.alerts.lock_open(left[0].id, UNRESTRICTED)
            assert locked is not None and locked.kind == "brute_force"


class TestAuditLogStore:
    def test_events_trails_and_the_chain_as_written(self, make_uow: MakeUow) -> None:
        req = seed(make_uow)
        with make_uow() as uow:
            for minute, (action, otype, oid, detail) in enumerate(
                [
                    ("request.opened", "request", "req-1", {}),
                    ("sim.suspended", "sim", "89450000000000000001", {"request": "req-1"}),
                    ("line.viewed", "line", "line-1", {}),
                    ("refresh.asked", "line", "line-1", {"refresh": "r1"}),
                    ("refresh.asked", "line", "line-1", {"refresh": "r2"}),
                ]
            ):
                uow.audit(
                    at=T0 + dt.timedelta(minutes=minute),
                    actor="staff:a1",
                    action=action,
                    object_type=otype,
                    object_id=oid,
                    detail=detail,
                )
            uow.commit()
        with make_uow() as uow:
            log = uow.audit_log
            assert log.has_event(action="line.viewed", object_id="line-1")
            assert not log.has_event(action="line.viewed", object_id="line-2")
            latest = log.latest(action="refresh.asked", object_id="line-1", object_type="line")
            assert latest is not None and latest.detail == {"refresh": "r2"}
            assert log.latest(action="refresh.asked", object_id="line-1", object_type="sim") is None
            assert [e.action for e in log.events_of(object_type="line", object_id="line-1")] == [
                "line.viewed",
                "refresh.asked",
                "refresh.asked",
            ]
            trail = log.request_trail(
                request_id=req.id,
                sim_iccids=["89450000000000000001"],
                line_id="line-1",
                since=T0 - dt.timedelta(days=1),
                limit=3,
            )
            assert [e.action for e in trail] == ["request.opened", "sim.suspended", "line.viewed"]
            head = log.head()
            assert head is not None and head.last_seq == 5
            rows = log.rows(after_seq=1, upto_seq=3, limit=10)
            assert [r["seq"] for r in rows] == [2, 3]
            newest = log.newest()
            assert newest is not None and newest[0] == 5
            assert log.rows(after_seq=4, upto_seq=None, limit=1)[0]["id"] == newest[1]
            first, last = log.seq_bounds(T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=3))
            assert (first, last) == (2, 3)
            assert log.hash_of(3) == rows[1]["hash"]
            link = log.last_link_before(T0 + dt.timedelta(minutes=2))
            assert link is not None and link.seq == 2


class TestLookupQueries:
    def test_the_console_and_portal_reads(self, make_uow: MakeUow) -> None:
        seed(make_uow, state=State.IN_REVIEW)
        with make_uow() as uow:
            uow.enqueue("core.refresh", at=T0, payload={"line_id": "line-1"})
            uow.commit()
        with make_uow() as uow:
            q = uow.lookups
            assert [r.id for r in q.review_queue(Scope.of_brand("dk"), limit=5)] == ["req-1"]
            assert q.review_queue(Scope.of_brand("se"), limit=5) == []
            assert q.review_queue(UNRESTRICTED, channel=Channel.API, limit=5) == []
            assert q.cards_in_stock() == [("dk", "89450000000000000019")]
            assert q.cards_in_stock("se") == []
            changes = q.recent_sim_changes("line-1", limit=5)
            assert [(c.old_iccid, c.new_iccid) for c in changes] == [(None, "89450000000000000001")]
            assert q.job_pending_for_line("core.refresh", "line-1")
            assert not q.job_pending_for_line("core.refresh", "line-2")
            count, oldest = q.requests_opened("staff:a1", T0 - dt.timedelta(hours=1))
            assert (count, oldest) == (1, T0)
            assert q.requests_opened("staff:a2", T0 - dt.timedelta(hours=1)) == (0, None)
            assert q.brand_countries() == ["DK", "SE"]
            assert list(q.numbers(["+4520000001", "+4520000009"])) == [("+4520000001", "dk", "DK")]


class TestDashboardQueries:
    def test_queue_and_names(self, make_uow: MakeUow) -> None:
        seed(make_uow, state=State.IN_REVIEW)
        with make_uow() as uow:
            uow.staff.add(
                StaffUser(
                    id="a1",
                    username="a1",
                    display_name="Agent One",
                    role=Role.AGENT,
                    password_hash="x",
                    created_at=T0,
                    brand_id="se",
                )
            )
            uow.commit()
        with make_uow() as uow:
            board = uow.dashboard
            waiting, _oldest = board.queue(Scope.of_brand("dk"))
            assert waiting == 1
            assert board.queue(Scope.of_brand("se"))[0] == 0
            assert set(board.brand_names(UNRESTRICTED)) == {"dk", "se"}
            assert board.brand_names(Scope.of_brand("dk")) == {"dk": ("DK", "Europe/Copenhagen")}
            assert board.staff_names(Scope.of_brand("dk")) == {}
            assert board.staff_names(Scope.of_brand("se")) == {"a1": "Agent One"}
            changes = board.sim_changes(T0 - dt.timedelta(days=5), T0, UNRESTRICTED)
            assert [(c.id, c.channel) for c in changes] == [("sc-1", None)]
            assert board.completed(T0 - dt.timedelta(days=5), T0, UNRESTRICTED) == []


class TestSealedValueStore:
    def test_places_batches_and_rewrites(self, make_uow: MakeUow) -> None:
        seed(make_uow)
        with make_uow() as uow:
            places = {p.name: p for p in uow.sealed.places()}
            assert "subscriber.name" in places and "job.payload[sealed]" in places
            name = places["subscriber.name"]
            rows = uow.sealed.batch(name, after=None, limit=10)
            assert [key for key, _value in rows] == [("s-1",)]
            assert uow.sealed.batch(name, after=("s-1",), limit=10) == []
            uow.sealed.rewrite(name, [(("s-1",), "clear text")])
            uow.commit()
        with make_uow() as uow:
            rows = uow.sealed.batch(name, after=None, limit=10)
            assert rows[0][1] == "clear text"
