"""CAMARA subscriptions through their use cases, on SQLite and PostgreSQL.

Real database, real cut-overs (a replacement driven to completion), the
in-package FakeEventSink as the relying party's sink.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from camara_subs_support import SINK_TOKEN, Resim, resim, subscription_body

from resim.adapters.db import orm
from resim.domain.camara_events import SUBSCRIPTION_ENDED, SWAPPED
from resim.errors import Conflict, InvalidInput, NotFound
from resim.services.camara import camara_subscriptions as subs
from resim.services.camara.camara_subscriptions import Caller

pytestmark = pytest.mark.integration
__all__ = ["resim"]  # the fixture

BANK = Caller("bank-a")
OTHER = Caller("bank-b")


def create(system: Resim, phone: str, caller: Caller = BANK, **kw: Any) -> dict[str, Any]:
    return subs.create_subscription(
        system.ctx, caller=caller, body=subscription_body(phone=phone, **kw)
    )


def events(system: Resim, sub_id: str | None = None) -> list[Any]:
    with system.engine.connect() as conn:
        query = sa.select(orm.camara_event).order_by(orm.camara_event.c.seq)
        if sub_id:
            query = query.where(orm.camara_event.c.subscription_id == sub_id)
        return list(conn.execute(query).all())


class TestCreatingASubscription:
    def test_two_legged_create_is_active_and_echoes_the_number(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        view = create(resim, msisdn, subscriptionMaxEvents=3)
        assert view["status"] == "ACTIVE"
        assert view["config"] == {
            "subscriptionDetail": {"phoneNumber": msisdn},
            "subscriptionMaxEvents": 3,
        }
        assert view["types"] == [SWAPPED]
        assert "sinkCredential" not in view
        assert subs.get_subscription(resim.ctx, caller=BANK, subscription_id=view["id"]) == view

    def test_the_sink_token_is_encrypted_at_rest(self, resim: Resim) -> None:
        view = create(resim, resim.add_line())
        with resim.engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT sink_access_token FROM camara_subscription")
            ).scalar_one()
        assert stored and SINK_TOKEN not in stored
        assert SINK_TOKEN not in repr(view)

    def test_three_legged_takes_the_number_from_the_token_and_hides_it(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        caller = Caller("bank-a", phone_number=msisdn)
        view = subs.create_subscription(resim.ctx, caller=caller, body=subscription_body())
        assert view["config"]["subscriptionDetail"] == {}
        # the same client with a 2-legged token sees the number
        assert subs.get_subscription(resim.ctx, caller=BANK, subscription_id=view["id"])["config"][
            "subscriptionDetail"
        ] == {"phoneNumber": msisdn}

    @pytest.mark.parametrize(
        ("caller_phone", "body_phone", "code"),
        [
            (None, None, "MISSING_IDENTIFIER"),
            ("+4530100001", "+4530100001", "UNNECESSARY_IDENTIFIER"),
        ],
    )
    def test_identifier_rules(
        self, resim: Resim, caller_phone: str | None, body_phone: str | None, code: str
    ) -> None:
        with pytest.raises(InvalidInput) as err:
            subs.create_subscription(
                resim.ctx,
                caller=Caller("bank-a", caller_phone),
                body=subscription_body(phone=body_phone),
            )
        assert err.value.code == code

    def test_an_unknown_number_is_service_not_applicable(self, resim: Resim) -> None:
        with pytest.raises(InvalidInput) as err:
            create(resim, "+4599999999")
        assert err.value.code == "SERVICE_NOT_APPLICABLE"

    def test_the_same_subscription_twice_already_exists(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        create(resim, msisdn)
        with pytest.raises(Conflict) as err:
            create(resim, msisdn)
        assert err.value.code == "ALREADY_EXISTS"
        create(resim, msisdn, caller=OTHER)  # another client may


class TestOwnership:
    def test_a_client_sees_only_its_own_subscriptions(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        mine = create(resim, msisdn)
        theirs = create(resim, msisdn, caller=OTHER, sink="https://other.example.com/hook")
        assert [v["id"] for v in subs.list_subscriptions(resim.ctx, caller=BANK)] == [mine["id"]]
        for action in (subs.get_subscription, subs.delete_subscription):
            with pytest.raises(NotFound) as err:
                action(resim.ctx, caller=BANK, subscription_id=theirs["id"])
            assert err.value.code == "NOT_FOUND"
            assert "other.example.com" not in err.value.message

    def test_a_three_legged_token_sees_only_its_number(self, resim: Resim) -> None:
        first, second = resim.add_line(), resim.add_line()
        on_first = create(resim, first)
        on_second = create(resim, second)
        caller = Caller("bank-a", phone_number=second)
        assert [v["id"] for v in subs.list_subscriptions(resim.ctx, caller=caller)] == [
            on_second["id"]
        ]
        with pytest.raises(NotFound):
            subs.get_subscription(resim.ctx, caller=caller, subscription_id=on_first["id"])


class TestSwappedEvents:
    def test_a_cut_over_notifies_each_active_subscription_once(self, resim: Resim) -> None:
        msisdn, bystander = resim.add_line(), resim.add_line()
        view = create(resim, msisdn)
        create(resim, bystander)
        resim.swap(msisdn)
        delivered = resim.sink.delivered
        assert len(delivered) == 1
        event = delivered[0]
        assert event.access_token == SINK_TOKEN
        assert event.sink == "https://rp.example.com/sink"
        assert event.body["type"] == SWAPPED
        assert event.body["data"] == {"subscriptionId": view["id"], "phoneNumber": msisdn}
        assert event.body["specversion"] == "1.0"
        with resim.engine.connect() as conn:
            changed_at = conn.execute(sa.select(orm.sim_change.c.changed_at)).scalar_one()
        assert dt.datetime.fromisoformat(event.body["time"]) == changed_at
        (row,) = events(resim, view["id"])
        assert (row.id, row.state, row.attempts) == (event.id, "delivered", 1)
        assert resim.run_jobs() == 0  # nothing is sent again

    def test_three_legged_events_leave_out_the_number(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        caller = Caller("bank-a", phone_number=msisdn)
        view = subs.create_subscription(resim.ctx, caller=caller, body=subscription_body())
        resim.swap(msisdn)
        assert resim.sink.delivered[0].body["data"] == {"subscriptionId": view["id"]}

    def test_max_events_ends_the_subscription_after_the_last_event(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        view = create(resim, msisdn, subscriptionMaxEvents=1)
        resim.swap(msisdn)
        types = [e.body["type"] for e in resim.sink.delivered]
        assert types == [SWAPPED, SUBSCRIPTION_ENDED]
        ended = resim.sink.delivered[1].body["data"]
        assert ended["terminationReason"] == "MAX_EVENTS_REACHED"
        assert (
            subs.get_subscription(resim.ctx, caller=BANK, subscription_id=view["id"])["status"]
            == "EXPIRED"
        )
        resim.clock.advance(dt.timedelta(days=200))  # a second swap soon after is held for review
        resim.swap(msisdn)
        assert len(resim.sink.delivered) == 2  # an ended subscription hears nothing

    def test_the_end_never_overtakes_the_last_event(self, resim: Resim) -> None:
        # Both ride in one delivery job: the worker runs jobs side by side, and
        # with a job each the end reached the sink first (seen with the batched
        # runner). A retried failure of the event holds the end back.
        msisdn = resim.add_line()
        create(resim, msisdn, subscriptionMaxEvents=1)
        resim.sink.answer_next(None)  # the swapped event times out once
        resim.swap(msisdn)
        assert resim.sink.delivered == []  # nothing sent after the failed event
        resim.clock.advance(dt.timedelta(minutes=30))
        resim.run_jobs()
        assert [e.body["type"] for e in resim.sink.delivered] == [SWAPPED, SUBSCRIPTION_ENDED]
        assert resim.sink.attempts == 3

    def test_expiry_ends_the_subscription_at_its_time(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        at = resim.clock.now() + dt.timedelta(hours=2)
        view = create(resim, msisdn, subscriptionExpireTime=at.isoformat())
        assert view["expiresAt"] == view["config"]["subscriptionExpireTime"]
        resim.run_jobs()
        assert resim.sink.delivered == []
        resim.clock.advance(dt.timedelta(hours=2))
        resim.run_jobs()
        (ended,) = resim.sink.delivered
        assert ended.body["data"]["terminationReason"] == "SUBSCRIPTION_EXPIRED"
        resim.swap(msisdn)
        assert len(resim.sink.delivered) == 1

    def test_the_token_expiry_ends_it_while_the_token_still_works(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        expires = resim.clock.now() + dt.timedelta(minutes=10)
        create(resim, msisdn, expires=expires.isoformat())
        resim.clock.advance(dt.timedelta(minutes=9))  # the notice is 60 s
        resim.run_jobs()
        (ended,) = resim.sink.delivered
        assert ended.body["data"]["terminationReason"] == "ACCESS_TOKEN_EXPIRED"
        assert dt.datetime.fromisoformat(ended.body["time"]) < expires

    def test_a_token_expiring_within_the_notice_is_out_of_range(self, resim: Resim) -> None:
        soon = resim.clock.now() + dt.timedelta(seconds=30)
        with pytest.raises(InvalidInput) as err:
            create(resim, resim.add_line(), expires=soon.isoformat())
        assert err.value.code == "OUT_OF_RANGE"

    def test_deleting_sends_the_ended_event_and_hides_it(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        view = create(resim, msisdn)
        subs.delete_subscription(resim.ctx, caller=BANK, subscription_id=view["id"])
        resim.run_jobs()
        (ended,) = resim.sink.delivered
        assert ended.body["data"]["terminationReason"] == "SUBSCRIPTION_DELETED"
        with pytest.raises(NotFound):
            subs.get_subscription(resim.ctx, caller=BANK, subscription_id=view["id"])
        assert subs.list_subscriptions(resim.ctx, caller=BANK) == []
        resim.swap(msisdn)
        assert len(resim.sink.delivered) == 1


class TestDeliveryFailures:
    def test_a_failing_sink_is_retried_with_the_same_event_id(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        create(resim, msisdn)
        resim.sink.answer_next(503, None, 429)  # 5xx, timeout, too many requests
        resim.swap(msisdn)
        assert resim.sink.delivered == []
        for _ in range(3):
            resim.clock.advance(dt.timedelta(seconds=10))  # past the capped backoff
            resim.run_jobs()
        (event,) = resim.sink.delivered
        (row,) = events(resim)
        assert (row.id, row.state, row.attempts) == (event.id, "delivered", 4)
        assert resim.sink.attempts == 4

    def test_a_4xx_gives_up_and_records_why(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        create(resim, msisdn)
        resim.sink.answer_next(401)
        resim.swap(msisdn)
        resim.clock.advance(dt.timedelta(minutes=5))
        resim.run_jobs()
        (row,) = events(resim)
        assert (row.state, row.attempts, row.last_status) == ("failed", 1, 401)
        assert SINK_TOKEN not in (row.last_error or "")
        with resim.engine.connect() as conn:
            job_state = conn.execute(
                sa.select(orm.job.c.state).where(orm.job.c.id == row.job_id)
            ).scalar_one()
        assert job_state == "dead"

    def test_a_gone_sink_ends_the_subscription(self, resim: Resim) -> None:
        msisdn = resim.add_line()
        view = create(resim, msisdn)
        resim.sink.answer_next(410)
        resim.swap(msisdn)
        got = subs.get_subscription(resim.ctx, caller=BANK, subscription_id=view["id"])
        assert got["status"] == "EXPIRED"
        assert [e.type for e in events(resim)] == [SWAPPED]  # no ended event to a gone sink
