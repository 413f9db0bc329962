"""Builders shared by the risk-control tests (SEC-06/07/08): lines, facts, policies."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa
from test_replacement_flow import System, add_line

from resim.adapters.db import orm
from resim.domain.model import Brand, Line, Subscriber
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.domain.workflow import State
from resim.services.onboarding import seed
from resim.services.replacement import requests


def set_policy(system: System, **knobs: Any) -> None:
    # The lines these tests make have no PIN: the e-mail code alone verifies.
    knobs.setdefault("verification", email_code_alone())
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen", BrandPolicy(**knobs)
        ),
    )


def new_line(system: System, n: int, **kw: Any) -> tuple[str, str]:
    """A line with its own subscriber; returns (msisdn, e-mail)."""
    msisdn, email, _, _ = add_line(system, n, **kw)
    return msisdn, email


def update_subscriber(system: System, msisdn: str, **values: Any) -> None:
    with system.ctx.uow() as uow:
        line = uow.session.scalars(sa.select(Line).where(orm.line.c.msisdn == msisdn)).one()
        sub = uow.session.get(Subscriber, line.subscriber_id)
        assert sub is not None
        for name, value in values.items():
            setattr(sub, name, value)
        uow.commit()


def update_line(system: System, msisdn: str, **values: Any) -> None:
    with system.ctx.uow() as uow:
        line = uow.session.scalars(sa.select(Line).where(orm.line.c.msisdn == msisdn)).one()
        for name, value in values.items():
            setattr(line, name, value)
        uow.commit()


def verify(system: System, request_id: str, email: str) -> State:
    """The customer proves who they are (today: the e-mail code) and the risk check runs."""
    system.run_jobs()
    return requests.submit_verification(system.ctx, request_id, otp=system.code_for(email))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ago(system: System, days: float) -> dt.datetime:
    return system.clock.now() - dt.timedelta(days=days)


def audit_actions(system: System, request_id: str) -> list[str]:
    t = orm.audit_event
    with system.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.c.action).where(t.c.object_id == request_id).order_by(t.c.at, t.c.id)
            ).scalars()
        )


def origin_rules_off(system: System, brand_id: str = "dk") -> None:
    """Turn the brand's new-device and new-country rules off, for tests about something
    else: a test browser is always a new device and 127.0.0.1 has no country, so by
    default (SEC-07, missing_signal) every self-service request would need a step-up.
    Those rules are tested in test_origin_signals.py."""
    with system.ctx.uow() as uow:
        brand = uow.session.get(Brand, brand_id)
        assert brand is not None
        rules = dict(brand.policy_data.get("risk_rules") or {})
        rules.update({"new_device": {"enabled": False}, "new_country": {"enabled": False}})
        brand.policy_data = {**brand.policy_data, "risk_rules": rules}
        uow.commit()
