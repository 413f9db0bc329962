"""Import, export and the generator share one definition of every file format."""

from __future__ import annotations

from resim.services.onboarding import formats
from resim.services.onboarding.run import KINDS, ORDER


def test_the_importer_reads_exactly_the_columns_export_writes() -> None:
    assert tuple(KINDS) == formats.TABULAR_KINDS
    assert ORDER == formats.KINDS
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.columns == formats.COLUMNS[name], name
        assert set(formats.export_columns(name, include_keys=True)) <= set(kind.columns)
        assert set(kind.required) <= set(kind.columns), name
