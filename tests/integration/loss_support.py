"""Helpers for the loss-report tests (issue 12): a customer with a PIN and an
alternate number, the codes and notices the loss flows send."""

from __future__ import annotations

import re

import sqlalchemy as sa
from test_replacement_flow import System, add_line

from resim.adapters.db import orm
from resim.domain.model import Subscriber

PIN = "4826"
ALT = "+4560001234"


def add_customer(system: System, n: int, **kw: object) -> tuple[str, str, str, str]:
    """A line whose subscriber has a PIN and an alternate number: (msisdn, email, iccid, imsi)."""
    msisdn, email, iccid, imsi = add_line(system, n, pin=PIN, **kw)
    with system.ctx.uow() as uow:
        line = uow.session.execute(
            sa.select(orm.line.c.subscriber_id).where(orm.line.c.msisdn == msisdn)
        ).scalar_one()
        sub = uow.session.get(Subscriber, line)
        assert sub is not None
        sub.alt_msisdn = ALT
        uow.commit()
    return msisdn, email, iccid, imsi


def loss_code(system: System, email: str) -> str:
    """The code in the newest loss-report code mail to ``email``."""
    mails = [m for m in system.mail.to(email) if m.headers.get("X-Resim-Kind") == "loss_code"]
    assert mails, f"no loss code mail to {email}"
    found = re.search(r"^\s+(\d{6})\s*$", mails[-1].text, re.M)
    assert found
    return found.group(1)


def kinds_to(system: System, email: str) -> list[str]:
    return [m.headers.get("X-Resim-Kind", "") for m in system.mail.to(email)]


def texts_to(system: System, number: str) -> list[str]:
    return [m.text for m in system.sms.sent if m.to == number]


def sim_state(system: System, iccid: str) -> str:
    with system.engine.connect() as conn:
        return str(
            conn.execute(sa.select(orm.sim.c.state).where(orm.sim.c.iccid == iccid)).scalar_one()
        )


def audit_actions(system: System, object_type: str) -> list[str]:
    with system.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(orm.audit_event.c.action)
                .where(orm.audit_event.c.object_type == object_type)
                .order_by(orm.audit_event.c.seq)
            ).scalars()
        )
