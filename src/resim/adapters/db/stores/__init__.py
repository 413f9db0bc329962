"""SQLAlchemy implementations of the stores in :mod:`resim.services.stores`.

Each store holds the unit of work it belongs to (anything with a ``session``
property: :class:`SessionHolder`) and reads the session on every call, so one
store object serves every ``with`` block of its unit of work. Statements that
are run again and again are built once, at import.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session


class SessionHolder(Protocol):
    """A unit of work as the SQL stores see it: its current session."""

    @property
    def session(self) -> Session: ...

    @property
    def dialect(self) -> str: ...

    def write_jobs(self) -> None:
        """Write the jobs the unit of work holds (a store reading ``job`` calls it first)."""
        ...
