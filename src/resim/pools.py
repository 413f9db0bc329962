"""The database connection pools each resim process opens, and the check that they fit.

PostgreSQL refuses connections beyond ``max_connections`` (less the slots kept
for superusers); a process whose pools could together open more is refused at
start-up with the settings to change (docs/operations.md, "Database connections").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
import structlog

from resim.adapters.db.engine import connection_limit
from resim.errors import ConfigurationError
from resim.settings import Settings


@dataclass(frozen=True)
class Pool:
    """One engine's connection pool: at most ``size + overflow`` connections."""

    name: str
    size: int
    overflow: int
    settings: str  # the settings that size it, for error messages

    @property
    def most(self) -> int:
        return self.size + self.overflow


Process = Literal["api", "worker", "demo"]


def api_pool(settings: Settings) -> Pool:
    return Pool(
        "api",
        settings.db_pool_size,
        settings.db_max_overflow,
        "RESIM_DB_POOL_SIZE + RESIM_DB_MAX_OVERFLOW",
    )


def read_pool(settings: Settings) -> Pool:
    return Pool(
        "camara-read",
        settings.read_db_pool_size,
        settings.read_db_max_overflow,
        "RESIM_READ_DB_POOL_SIZE + RESIM_READ_DB_MAX_OVERFLOW",
    )


def worker_pool(settings: Settings, concurrency: int | None = None) -> Pool:
    jobs = concurrency or settings.worker_concurrency
    return Pool(
        "worker",
        settings.worker_db_pool_size or jobs + 4,
        settings.worker_db_max_overflow,
        "RESIM_WORKER_DB_POOL_SIZE (unset: concurrency + 4) + RESIM_WORKER_DB_MAX_OVERFLOW",
    )


def connection_pools(
    settings: Settings, process: Process, *, concurrency: int | None = None
) -> tuple[Pool, ...]:
    """The pools one process of this kind opens (docs/operations.md, "Database
    connections"). The demo is one process: the worker's engine serves its API too."""
    if process == "api":
        return (api_pool(settings), read_pool(settings))
    if process == "worker":
        return (worker_pool(settings, concurrency),)
    return (worker_pool(settings, concurrency), read_pool(settings))


def check_connection_budget(engine: sa.Engine, pools: tuple[Pool, ...], *, process: str) -> int:
    """Refuse (ConfigurationError) pools that together may open more connections
    than PostgreSQL's ``max_connections`` leaves to ordinary roles; return the sum.

    Checks this one process: the operator adds up the processes (the docs show
    how). SQLite has no limit. An unreachable server is logged and not checked:
    the process starts and /ready says the database is unreachable.
    """
    total = sum(pool.most for pool in pools)
    try:
        limit = connection_limit(engine)
    except sa.exc.SQLAlchemyError as exc:
        structlog.get_logger().warning(
            "db.connection_limit_unchecked", process=process, error=type(exc).__name__
        )
        return total
    if limit is None:
        return total
    most, reserved = limit
    usable = most - reserved
    if total > usable:
        parts = ", ".join(f"{p.name} {p.most} ({p.settings})" for p in pools)
        raise ConfigurationError(
            f"this {process} process may open {total} database connections ({parts}), but "
            f"PostgreSQL allows {usable} (max_connections {most} less {reserved} reserved); "
            "make the pools smaller or raise max_connections (docs/operations.md)",
            code="TOO_MANY_DB_CONNECTIONS",
        )
    return total
