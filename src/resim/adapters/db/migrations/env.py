"""Alembic environment: runs against the connection handed in by resim.adapters.db.migrate."""

from __future__ import annotations

from alembic import context

from resim.adapters.db.migrate import target_metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - resim always passes a connection
    raise RuntimeError("run migrations through `resim db upgrade`")

context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
