"""What the onboarding export reads (``uow.export``), behind
:mod:`resim.services.onboarding.onboarding_export`.

SQL only (:mod:`resim.adapters.db.stores.export`): the rows are streamed from
the database in batches, so memory stays flat for a million lines. Values come
back as stored (enums, datetimes); the service formats them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class ExportQueries(Protocol):
    def snapshot(self) -> None:
        """Read every later query of this unit of work from one snapshot, where the
        database can (PostgreSQL: REPEATABLE READ). Call first."""
        ...

    def brands(self, brand_id: str | None) -> list[dict[str, Any]]:
        """Brand rows (every column, ``policy_data`` as stored), by id; one brand's
        when ``brand_id`` is given."""
        ...

    def rows(self, kind: str, brand_id: str | None, include_keys: bool) -> Iterator[dict[str, Any]]:
        """Every row of ``kind`` (subscribers, sims, lines, sim_changes, locks,
        stock), in the files' order (byte order of the key), with the export's
        column names; SIM keys only with ``include_keys``."""
        ...
