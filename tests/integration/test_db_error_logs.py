"""Issue 13, finding 11: a database error neither shows nor logs the values it was given.

A failed statement used to carry its SQL parameters in the exception (and so
in every log of it): a failed UPDATE logged a MatchingID. On SQLite and
PostgreSQL: the exception names no parameter, and what the server quotes on
its own (PostgreSQL's "Failing row contains (...)") is scrubbed from the logs,
structlog's and the standard library's alike. And a job that fails while
sending a message leaves neither the recipient nor their name in its error.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.adapters.db.engine import create_admin_engine, create_read_engine
from resim.entrypoints.logs import configure_logging
from resim.errors import ExternalError
from resim.services.audit import redaction
from resim.services.ports import OutgoingMail
from resim.services.replacement import requests

pytestmark = pytest.mark.integration
MATCHING_ID = "K2D7Q-8WZ3M-P4HXA-N6TRB"
EMAIL = "karen.blixen@example.dk"
NAME = "Karen Blixen"


def failing_insert(engine: sa.Engine) -> sa.exc.DBAPIError:
    """An INSERT that breaks a NOT NULL constraint, with a MatchingID, an address and a name."""
    with pytest.raises(sa.exc.IntegrityError) as err, engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO alert (id, kind, subject_type, subject_id, acknowledged_by)"
                " VALUES (:id, 'test', 'request', :subject, :by)"
            ),
            {"id": MATCHING_ID, "subject": EMAIL, "by": NAME},
        )
    return err.value


def test_every_engine_hides_parameters(system: System, tmp_path: Path) -> None:
    url = system.engine.url.render_as_string(hide_password=False)
    for engine in (system.engine, create_admin_engine(url), create_read_engine(url, pool_size=1)):
        assert engine.hide_parameters is True


def test_a_failed_statement_names_no_parameter(system: System) -> None:
    error = failing_insert(system.engine)
    text = str(error)
    assert "[SQL parameters hidden due to hide_parameters=True]" in text
    if system.engine.dialect.name == "sqlite":  # SQLite's own message quotes no value
        assert MATCHING_ID not in text and EMAIL not in text and NAME not in text


def test_its_logs_show_no_matching_id_address_or_told_name(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    error = failing_insert(system.engine)
    configure_logging(fmt="json", level="INFO")
    stdlib = logging.getLogger("resim.test.db_errors")
    buffer = io.StringIO()  # a plain handler: pytest's own capture owns the root logger
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    stdlib.addHandler(handler)
    try:
        with redaction.scope(NAME):  # a service handling Karen's data said so
            try:
                raise error
            except sa.exc.IntegrityError:
                structlog.get_logger().exception("db.statement_failed")
                stdlib.error("statement failed", exc_info=True)
        logged = capsys.readouterr().err + buffer.getvalue()
    finally:
        structlog.reset_defaults()
        stdlib.removeHandler(handler)
    assert "db.statement_failed" in logged and "ERROR statement failed" in logged
    assert logged.count("IntegrityError") >= 2  # both tracebacks are there
    for value in (MATCHING_ID, EMAIL, NAME):
        assert value not in logged


def test_a_failing_message_job_keeps_the_recipient_out_of_its_error_and_logs(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    msisdn, email, _, _ = add_line(system, 5)

    class Refusing:
        """An SMTP relay whose refusal quotes the recipient, as many do."""

        def send(self, mail: OutgoingMail) -> None:
            raise ExternalError(
                f"550 <{mail.to}> (Kunde 5) mailbox unavailable",
                retryable=True,
                code="SMTP_UNAVAILABLE",
            )

    system.ctx.mailer = Refusing()  # type: ignore[assignment]
    requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    configure_logging(fmt="json", level="INFO")
    try:
        system.run_jobs()
        logged = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    with system.engine.connect() as conn:
        errors = [
            str(e)
            for e in conn.execute(
                sa.select(orm.job.c.last_error).where(orm.job.c.kind == "mail.send")
            ).scalars()
        ]
    assert errors and all("550" in e and "SMTP_UNAVAILABLE" in e for e in errors)
    assert "job.retry" in logged
    for text in [*errors, logged]:
        assert email not in text and "Kunde 5" not in text
