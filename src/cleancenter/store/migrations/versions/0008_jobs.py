"""Analysis jobs run by Celery workers: one row per task, for visibility.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cleancenter.store.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("enqueued", UTCDateTime, nullable=False),
        sa.Column("started", UTCDateTime, nullable=True),
        sa.Column("finished", UTCDateTime, nullable=True),
    )
    op.create_index("ix_job_state_priority", "job", ["state", "priority"])


def downgrade() -> None:
    op.drop_index("ix_job_state_priority", table_name="job")
    op.drop_table("job")
