"""Request events -> audit rows and jobs (services.event_handlers), without a database."""

from __future__ import annotations

import datetime as dt

from aggregate_builders import AT, opened, request_in

from resim.domain import events as ev
from resim.domain.model import DeliveryMode, RiskOutcome
from resim.domain.workflow import State
from resim.services.replacement.event_handlers import effects, handled_event_types

LATER = AT + dt.timedelta(minutes=5)


def all_event_classes() -> set[type[ev.RequestEvent]]:
    return {
        cls
        for cls in vars(ev).values()
        if isinstance(cls, type) and issubclass(cls, ev.RequestEvent) and cls is not ev.RequestEvent
    }


def test_every_event_class_has_a_handler() -> None:
    assert all_event_classes() == set(handled_event_types())


def test_opening_audits_created_and_schedules_the_unverified_expiry() -> None:
    (event,) = opened().events
    done = effects(event)
    (audit,) = done.audit
    assert (audit.action, audit.object_type, audit.object_id) == (
        "request.created",
        "request",
        "r1",
    )
    assert {"reason", "channel", "fee_minor", "delivery_mode", "transition"} <= set(audit.detail)
    (job,) = done.jobs
    assert (job.kind, job.request_id, job.run_after) == (
        "request.expire_unverified",
        "r1",
        AT + dt.timedelta(hours=24),
    )


def test_approval_orders_the_esim_or_the_courier_after_cooling_off() -> None:
    for mode, kind in [
        (DeliveryMode.ESIM, "esim.provision"),
        (DeliveryMode.COURIER, "courier.dispatch"),
    ]:
        req = request_in(State.VERIFIED, delivery_mode=mode)
        req.approve(by="risk-engine", cooling_off=dt.timedelta(hours=2), at=AT)
        done = effects(req.events[-1])
        assert [a.action for a in done.audit] == ["request.approved"]
        assert [(j.kind, j.run_after) for j in done.jobs] == [(kind, AT + dt.timedelta(hours=2))]
    pickup = request_in(State.VERIFIED, delivery_mode=DeliveryMode.PICKUP)
    pickup.approve(by="risk-engine", cooling_off=dt.timedelta(), at=AT)
    assert effects(pickup.events[-1]).jobs == []


def test_every_transition_audit_carries_the_edge_reason() -> None:
    req = request_in(State.VERIFIED)
    req.assess(
        outcome=RiskOutcome.REVIEW,
        decision=RiskOutcome.REVIEW,
        findings=[{"rule": "r", "outcome": "review", "reason": "x"}],
        four_eyes=False,
        step_up_methods=[],
        step_up_rules=[],
        step_up_deadline=AT,
        deny_reason="",
        cooling_off=dt.timedelta(),
        at=AT,
    )
    assessed, held = (effects(e).audit[0] for e in req.events)
    assert assessed.action == "risk.assessed" and "transition" not in assessed.detail
    assert held.action == "request.held"
    assert held.detail["transition"] == "risk check held it for a reviewer"


def test_install_enqueues_the_cut_over_and_a_card_activation_is_audited() -> None:
    esim = request_in(State.READY, new_iccid="8945")
    esim.install(how="esim", actor="worker", at=AT)
    done = effects(esim.events[-1])
    assert done.audit == [] and [j.kind for j in done.jobs] == ["core.cutover"]
    card = request_in(State.READY, new_iccid="8945c")
    card.install(how="activated", actor="customer", at=AT, source="192.0.2.1")
    done = effects(card.events[-1])
    assert [(a.action, a.source) for a in done.audit] == [("sim.activated", "192.0.2.1")]


def test_cancel_and_expiry_of_a_ready_esim_withdraw_the_order() -> None:
    for end in ("cancel", "expire"):
        req = request_in(State.READY, new_iccid="8945")
        if end == "cancel":
            req.cancel(by="customer", note=None, at=AT)
        else:
            req.expire(what="activation code unused", at=AT)
        done = effects(req.events[-1])
        assert done.audit[0].detail["from"] == "ready"
        assert [(j.kind, j.payload) for j in done.jobs] == [
            ("esim.cancel_order", {"iccid": "8945"})
        ]


def test_ready_schedules_the_activation_expiry_and_reissue_orders_again() -> None:
    req = request_in(State.PROVISIONING, new_iccid="8945", matching_id="M")
    req.mark_ready(activation_code_enc="sealed", expires_at=LATER, at=AT)
    done = effects(req.events[-1])
    assert [(j.kind, j.run_after) for j in done.jobs] == [("request.expire_activation", LATER)]
    req.reissue(actor="customer", at=LATER)
    assert [j.kind for j in effects(req.events[-1]).jobs] == ["esim.provision"]


def test_no_audit_detail_holds_a_sealed_value() -> None:
    req = request_in(State.PROVISIONING, new_iccid="8945", matching_id="M")
    req.mark_ready(activation_code_enc="SEALED", expires_at=LATER, smdp_matching_id="X", at=AT)
    for event in req.events:
        for entry in effects(event).audit:
            assert "SEALED" not in repr(entry.detail) and "'X'" not in repr(entry.detail)


def test_failing_withdraws_only_a_confirmed_order() -> None:
    confirmed = request_in(State.READY, new_iccid="8945", smdp_step="confirmed")
    confirmed.fail(code="CUTOVER_REFUSED", reason="refused", at=AT)
    done = effects(confirmed.events[-1])
    assert [a.action for a in done.audit] == ["request.failed"]
    assert [(j.kind, j.payload) for j in done.jobs] == [("esim.cancel_order", {"iccid": "8945"})]
    ordered = request_in(State.PROVISIONING, new_iccid="8945", smdp_step="ordered")
    ordered.fail(code="SMDP_REFUSED", reason="refused", at=AT)
    assert effects(ordered.events[-1]).jobs == []
