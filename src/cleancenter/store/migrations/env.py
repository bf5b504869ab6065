"""Alembic environment: the catalog's connection is handed in by `Catalog.migrate`."""

from __future__ import annotations

from alembic import context

from cleancenter.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` call
    raise RuntimeError("run migrations through cleancenter (Catalog.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
