"""The network owners the center notifies: ISPs, their prefixes and AS numbers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cleancenter.store.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "isp",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
    )
    op.create_table(
        "isp_prefix",
        sa.Column("prefix", sa.String(49), primary_key=True),
        sa.Column("isp", sa.String(64), sa.ForeignKey("isp.name", ondelete="CASCADE"),
                  nullable=False, index=True),
    )
    op.create_table(
        "isp_asn",
        sa.Column("asn", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("isp", sa.String(64), sa.ForeignKey("isp.name", ondelete="CASCADE"),
                  nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("isp_asn")
    op.drop_table("isp_prefix")
    op.drop_table("isp")
