"""Analysis: reports keyed by sample and analyzer version, IOCs, analyst labels.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cleancenter.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("analyzer_version", sa.String(16), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("family", sa.String(128)),
        sa.Column("packer", sa.String(64)),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("error_count", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),  # the Report as JSON
        sa.UniqueConstraint("sha256", "analyzer_version", name="uq_report_version"),
    )
    op.create_index("ix_report_sha256", "report", ["sha256"])
    op.create_table(
        "ioc",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.String(2048), nullable=False),
        sa.UniqueConstraint("type", "value", name="uq_ioc"),
    )
    op.create_table(
        "sample_ioc",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("ioc_id", sa.Integer, sa.ForeignKey("ioc.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("offset", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sample_ioc_ioc_id", "sample_ioc", ["ioc_id"])
    op.create_table(
        "analyst_label",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("family", sa.String(128)),
        sa.Column("note", sa.Text),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
    )
    op.create_index("ix_analyst_label_sha256", "analyst_label", ["sha256"])
    with op.batch_alter_table("sample") as batch:
        batch.add_column(sa.Column("verdict", sa.String(16)))
        batch.add_column(sa.Column("family", sa.String(128)))
        batch.create_index("ix_sample_family", ["family"])
        batch.create_index("ix_sample_tlsh", ["tlsh"])


def downgrade() -> None:
    with op.batch_alter_table("sample") as batch:
        batch.drop_index("ix_sample_tlsh")
        batch.drop_index("ix_sample_family")
        batch.drop_column("family")
        batch.drop_column("verdict")
    for table in ("analyst_label", "sample_ioc", "ioc", "report"):
        op.drop_table(table)
