"""The migrations build exactly the tables the models describe, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cleancenter.center import Center
from cleancenter.store.models import Base


def test_migrated_schema_equals_the_models(center: Center) -> None:
    with center.catalog.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
