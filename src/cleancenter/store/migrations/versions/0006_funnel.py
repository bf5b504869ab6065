"""The funnel after a notification: notices (tokens an ISP mailed) and what followed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cleancenter.store.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("isp", sa.String(64), sa.ForeignKey("isp.name", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("sent_at", UTCDateTime, nullable=False, index=True),
        sa.Column("received", UTCDateTime, nullable=False),
    )
    op.create_table(
        "notice_incident",
        sa.Column("token", sa.String(64), sa.ForeignKey("notice.token", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("incident_id", sa.String(32), primary_key=True),
        sa.Column("src_ip", sa.String(45), nullable=False),
        sa.Column("src_key", sa.String(32), nullable=False, index=True),
    )
    op.create_table(
        "funnel_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("token", sa.String(64), sa.ForeignKey("notice.token", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_funnel_event_token_kind", "funnel_event", ["token", "kind"])


def downgrade() -> None:
    op.drop_index("ix_funnel_event_token_kind", table_name="funnel_event")
    op.drop_table("funnel_event")
    op.drop_table("notice_incident")
    op.drop_table("notice")
