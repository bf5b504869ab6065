"""Infected hosts derived from events: one row per source address, kept up to date.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cleancenter.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "infection",
        sa.Column("src_ip", sa.String(45), primary_key=True),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("ports", sa.Text, nullable=False),  # JSON list, capped
        sa.Column("sensors", sa.Text, nullable=False),  # JSON list
        sa.Column("families", sa.Text, nullable=False),  # JSON list
        sa.Column("updated", UTCDateTime, nullable=False),
    )
    op.create_index("ix_infection_last_seen", "infection", ["last_seen"])
    op.create_table(
        "infection_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("last_event_id", sa.BigInteger, nullable=False),
        sa.Column("kinds", sa.Text, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("infection_state")
    op.drop_index("ix_infection_last_seen", table_name="infection")
    op.drop_table("infection")
