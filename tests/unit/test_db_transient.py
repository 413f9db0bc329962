"""Which database errors are "not now" (retried, then 503) and which are bugs (issue 11)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import sqlalchemy as sa

from resim.adapters.db.transient import classify, retry_transient
from resim.errors import Unavailable


def wrapped(orig: Exception, statement: str | None = "UPDATE x") -> sa.exc.DBAPIError:
    """``orig`` as SQLAlchemy raises it (OperationalError, IntegrityError...)."""
    base = sqlite3.Error if isinstance(orig, sqlite3.Error) else psycopg.Error
    error = sa.exc.DBAPIError.instance(statement, {}, orig, base)
    assert isinstance(error, sa.exc.DBAPIError)
    return error


@pytest.mark.parametrize(
    ("orig", "statement", "reason", "retry"),
    [
        (psycopg.errors.DeadlockDetected("deadlock detected"), "UPDATE x", "conflict", True),
        (psycopg.errors.SerializationFailure("could not serialize"), "UPDATE x", "conflict", True),
        (sqlite3.OperationalError("database is locked"), "BEGIN IMMEDIATE", "busy", True),
        (psycopg.errors.TooManyConnections("too many clients"), None, "unavailable", True),
        (
            psycopg.OperationalError("connection failed: too many for role"),
            None,
            "unavailable",
            True,
        ),
        (psycopg.errors.AdminShutdown("terminating connection"), "SELECT 1", "unavailable", True),
        (
            psycopg.errors.LockNotAvailable("lock timeout"),
            "SELECT 1 FOR UPDATE",
            "overloaded",
            False,
        ),
        (psycopg.errors.QueryCanceled("statement timeout"), "SELECT 1", "overloaded", False),
    ],
)
def test_passing_conditions_are_transient(
    orig: Exception, statement: str | None, reason: str, retry: bool
) -> None:
    kind = classify(wrapped(orig, statement))
    assert kind is not None
    assert (kind.reason, kind.retry) == (reason, retry)


def test_a_pool_without_a_free_connection_is_overloaded() -> None:
    kind = classify(sa.exc.TimeoutError("QueuePool limit reached"))
    assert kind is not None and (kind.reason, kind.retry) == ("overloaded", False)


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.UndefinedTable("no such table"),
        sqlite3.OperationalError("no such column: x"),
        sqlite3.IntegrityError("UNIQUE constraint failed"),
    ],
)
def test_bugs_and_constraints_are_not(orig: Exception) -> None:
    assert classify(wrapped(orig)) is None
    assert classify(ValueError("x")) is None


class TestRetryingAUnitOfWork:
    def test_a_busy_database_is_tried_again_and_the_result_returned(self) -> None:
        calls = []

        @retry_transient
        def unit() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise wrapped(sqlite3.OperationalError("database is locked"))
            return "done"

        assert unit() == "done"
        assert len(calls) == 3

    def test_still_busy_after_three_tries_is_unavailable_with_retry_after(self) -> None:
        @retry_transient
        def unit() -> None:
            raise wrapped(sqlite3.OperationalError("database is locked"))

        with pytest.raises(Unavailable) as caught:
            unit()
        assert caught.value.retry_after >= 1 and caught.value.retryable
        assert caught.value.code == "TEMPORARILY_UNAVAILABLE"

    def test_a_lock_timeout_is_not_waited_out_twice(self) -> None:
        calls = []

        @retry_transient
        def unit() -> None:
            calls.append(1)
            raise wrapped(psycopg.errors.LockNotAvailable("lock timeout"))

        with pytest.raises(Unavailable):
            unit()
        assert len(calls) == 1

    def test_a_bug_is_raised_as_it_is(self) -> None:
        @retry_transient
        def unit() -> None:
            raise wrapped(psycopg.errors.UndefinedTable("no such table"))

        with pytest.raises(sa.exc.DBAPIError):
            unit()
