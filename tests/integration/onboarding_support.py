"""Loading an onboarding directory into a database, for the export round-trip tests.

``import_dataset`` goes through the real importer (the service behind
``resim import all DIR``) and fails the test if any row is rejected, in
conflict or left unwritten: the round trip is import -> export -> import ->
export through the production code.
"""

from __future__ import annotations

from pathlib import Path

from resim.services.context import ServiceContext
from resim.services.onboarding import import_dir


def import_dataset(ctx: ServiceContext, directory: Path) -> None:
    """Import every kind found in ``directory`` (brands.toml, <kind>.csv or .jsonl)."""
    reports = import_dir(ctx, directory, strict=True)
    assert reports, f"nothing to import in {directory}"
    for report in reports:
        assert report.bad == 0 and not report.held_back, (report.summary(), report.errors[:10])
        assert report.written == report.new, report.summary()
