"""Database errors that say "not now" rather than "never": classified here, retried once more.

Under load a database answers some units of work with an error that a second
try, a moment later, does not get::

    deadlock victim (40P01), serialization failure (40001)    -> conflict: retry at once
    SQLite "database is locked" / busy after busy_timeout     -> busy: retry
    no connection: refused, "too many clients" (53300),       -> unavailable: retry
      server shutting down (57P01-57P03), connection lost (08xxx)
    lock_timeout (55P03), statement_timeout (57014)           -> overloaded: do not retry
    no pooled connection within pool_timeout                   -> overloaded: do not retry

Anything else (a constraint the code did not expect, a syntax error) is a bug
and is left alone. :func:`retry_transient` wraps a use case that is one unit
of work (one transaction, rolled back whole on error): it runs it again on a
retryable error and, when the database still cannot serve it, raises
:class:`~resim.errors.Unavailable`, which the HTTP layer answers with 503 and
``Retry-After``. Only wrap a function that may be run again from the start:
its transaction must have rolled back (it has, unless the error came while
committing, in which case the second run finds the first one's result and
refuses it as a conflict, which is still the truth).
"""

from __future__ import annotations

import functools
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import sqlalchemy as sa
import structlog

from resim.errors import Unavailable

log = structlog.get_logger()

P = ParamSpec("P")
T = TypeVar("T")

ATTEMPTS = 3
RETRY_AFTER_SECONDS = 1.0

_CONFLICT_STATES = {"40001", "40P01"}
_OVERLOADED_STATES = {"55P03", "57014"}
_UNAVAILABLE_PREFIXES = ("08", "53", "57P")


@dataclass(frozen=True)
class Transient:
    """Why the database could not serve the unit of work, and whether to try again now."""

    reason: str  # "conflict", "busy", "unavailable", "overloaded"
    retry: bool


def classify(exc: BaseException) -> Transient | None:
    """The transient kind of ``exc``, or None when it is not a passing condition."""
    if isinstance(exc, sa.exc.TimeoutError):  # QueuePool: no connection within pool_timeout
        return Transient("overloaded", retry=False)
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        if "locked" in text or "busy" in text:
            return Transient("busy", retry=True)
        return None
    state = getattr(orig, "sqlstate", None)
    if state in _CONFLICT_STATES:
        return Transient("conflict", retry=True)
    if state in _OVERLOADED_STATES:
        return Transient("overloaded", retry=False)
    if isinstance(state, str) and state.startswith(_UNAVAILABLE_PREFIXES):
        return Transient("unavailable", retry=True)
    if exc.connection_invalidated:
        return Transient("unavailable", retry=True)
    if isinstance(exc, sa.exc.OperationalError) and exc.statement is None:
        # Raised while connecting (no statement yet): refused, too many
        # connections for the server or the role, DNS. libpq gives no SQLSTATE.
        return Transient("unavailable", retry=True)
    return None


def unavailable(kind: Transient) -> Unavailable:
    return Unavailable(
        f"the database is {'busy' if kind.reason != 'unavailable' else 'unreachable'}"
        " right now; try again shortly",
        retry_after=RETRY_AFTER_SECONDS,
    )


def retry_transient(fn: Callable[P, T]) -> Callable[P, T]:
    """Run the unit of work ``fn`` up to :data:`ATTEMPTS` times on transient database
    errors (jittered pauses of tens of milliseconds), then raise Unavailable."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_retrying(fn.__name__, lambda: fn(*args, **kwargs))

    return wrapper


def run_retrying(use_case: str, fn: Callable[[], T]) -> T:
    """``fn()``, run again on a retryable transient error (see :func:`retry_transient`)."""
    attempt = 1
    while True:
        try:
            return fn()
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            kind = classify(exc)
            if kind is None:
                raise
            if not kind.retry or attempt >= ATTEMPTS:
                log.warning("db.unavailable", use_case=use_case, reason=kind.reason, tries=attempt)
                raise unavailable(kind) from exc
            log.info("db.retry", use_case=use_case, reason=kind.reason, attempt=attempt)
            time.sleep(random.uniform(0.01, 0.05 * 2**attempt))
            attempt += 1


class SqlTransientRetry:
    """:class:`resim.services.transient.TransientRetry` for SQLAlchemy's errors."""

    def run(self, use_case: str, fn: Callable[[], T]) -> T:
        return run_retrying(use_case, fn)
