"""Onboarding an operator: streaming, validated, idempotent imports of every kind.

``import_file(ctx, kind, path, ...)`` and ``import_dir(ctx, directory, ...)``;
formats in docs/onboarding.md. One module per concern: ``source`` (rows of
CSV / JSON Lines), ``fields`` (pure cell rules), one module per kind,
``run`` (the two passes), ``report``, ``progress``, ``corebind``.
"""

from resim.services.onboarding.report import ImportReport, RowError
from resim.services.onboarding.run import ORDER, files_in, import_dir, import_file

__all__ = ["ORDER", "ImportReport", "RowError", "files_in", "import_dir", "import_file"]
