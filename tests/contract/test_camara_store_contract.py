"""The CAMARA store contract (resim.services.stores.camara): subscriptions and
their events, in memory (resim.adapters.memory.camara), on SQLite and on
PostgreSQL (resim.adapters.db.stores.camara)."""

from __future__ import annotations

from typing import Any

import pytest
from stores_rig import MakeUow, databases, fixture_over
from test_readmodel_stores import T0, seed

pytestmark = pytest.mark.integration

make_uow = fixture_over(["memory", *databases()])


def _active(subscription_id: str, *, sink: str) -> dict[str, Any]:
    """The columns of an ACTIVE subscription of client "bank" on +4520000001."""
    return {
        "id": subscription_id,
        "client_id": "bank",
        "phone_number": "+4520000001",
        "three_legged": False,
        "protocol": "HTTP",
        "sink": sink,
        "types": ["swapped"],
        "status": "ACTIVE",
        "events_sent": 0,
        "event_seq": 0,
        "created_at": T0,
        "starts_at": T0,
    }


class TestCamaraStore:
    def test_a_subscription_its_events_and_their_delivery(self, make_uow: MakeUow) -> None:
        seed(make_uow)
        with make_uow() as uow:
            cam = uow.camara
            assert cam.line_status("+4520000001") is not None
            assert cam.line_status("+4520000009") is None
            cam.add(**_active("sub-1", sink="https://sink.test/"))
            uow.commit()
        with make_uow() as uow:
            cam = uow.camara
            assert cam.active_types(
                client_id="bank", phone_number="+4520000001", sink="https://sink.test/"
            ) == [["swapped"]]
            assert [s.id for s in cam.active_on("+4520000001")] == ["sub-1"]
            assert [s.id for s in cam.of_client("bank", None)] == ["sub-1"]
            assert cam.of_client("bank", "+4520000009") == []
            assert cam.next_event_seq("sub-1") == 1
            assert cam.next_event_seq("sub-1") == 2
            job = uow.enqueue("camara.deliver", at=T0)
            cam.add_event(
                id="ev-1",
                subscription_id="sub-1",
                seq=2,
                payload={"type": "swapped", "id": "ev-1"},
                job_id=job,
                created_at=T0,
            )
            cam.set_events_sent("sub-1", 1)
            uow.commit()
        with make_uow() as uow:
            cam = uow.camara
            out = cam.outgoing("ev-1")
            assert out is not None and (out.state, out.sink) == ("pending", "https://sink.test/")
            cam.mark_sending("ev-1", T0)
            cam.event_done("ev-1", state="delivered", last_status=204, delivered_at=T0)
            assert cam.subscription_of_event("ev-1") == "sub-1"
            cam.set_status("sub-1", "DELETED", ended_at=T0)
            uow.commit()
        with make_uow() as uow:
            row = uow.camara.get("sub-1", lock=True)
            assert row is not None and (row.status, row.events_sent) == ("DELETED", 1)
            assert uow.camara.of_client("bank", None) == []
            done = uow.camara.outgoing("ev-1")
            assert done is not None and done.state == "delivered"

    def test_a_unit_that_does_not_commit_leaves_nothing(self, make_uow: MakeUow) -> None:
        seed(make_uow)
        with make_uow() as uow:
            uow.camara.add(**_active("sub-2", sink="https://sink.test/"))
            uow.commit()
        with make_uow() as uow:
            assert uow.camara.next_event_seq("sub-2") == 1
            uow.camara.set_status("sub-2", "DELETED", ended_at=T0)
            uow.camara.add(**_active("sub-3", sink="https://other.test/"))  # no commit
        with make_uow() as uow:
            assert uow.camara.get("sub-3") is None
            assert [s.id for s in uow.camara.active_on("+4520000001")] == ["sub-2"]
            assert uow.camara.next_event_seq("sub-2") == 1
