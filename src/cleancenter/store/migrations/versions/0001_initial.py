"""Initial catalog: sample, names, tags, relation, event, ingest cursor and errors.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cleancenter.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sample",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_type", sa.String(64), nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("ssdeep", sa.String(255)),
        sa.Column("tlsh", sa.String(80)),
        sa.Column("imphash", sa.String(32)),
        sa.Column("analysis_state", sa.String(16), nullable=False),
    )
    op.create_index("ix_sample_md5", "sample", ["md5"])
    op.create_index("ix_sample_sha1", "sample", ["sha1"])
    op.create_index("ix_sample_file_type", "sample", ["file_type"])
    op.create_index("ix_sample_first_seen", "sample", ["first_seen"])
    op.create_index("ix_sample_analysis_state", "sample", ["analysis_state"])

    op.create_table(
        "sample_name",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("sample.sha256", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.UniqueConstraint("sha256", "name", name="uq_sample_name"),
    )
    op.create_index("ix_sample_name_name", "sample_name", ["name"])

    op.create_table(
        "sample_tag",
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("sample.sha256", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(128), primary_key=True),
    )
    op.create_index("ix_sample_tag_tag", "sample_tag", ["tag"])

    op.create_table(
        "relation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("parent_sha256", sa.String(64), nullable=False),
        sa.Column("child_sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.UniqueConstraint("parent_sha256", "child_sha256", "kind", name="uq_rel"),
    )
    op.create_index("ix_relation_parent_sha256", "relation", ["parent_sha256"])
    op.create_index("ix_relation_child_sha256", "relation", ["child_sha256"])

    op.create_table(
        "event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("uid", sa.String(40), nullable=False, unique=True),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("sensor", sa.String(128), nullable=False),
        sa.Column("session", sa.String(64)),
        sa.Column("src_ip", sa.String(45)),
        sa.Column("src_key", sa.String(32)),
        sa.Column("src_port", sa.Integer),
        sa.Column("dst_ip", sa.String(45)),
        sa.Column("dst_port", sa.Integer),
        sa.Column("protocol", sa.String(16)),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("source_event", sa.String(64), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("sample_sha256", sa.String(64)),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_index("ix_event_time", "event", ["time"])
    # Few indexes, on purpose: every one slows the bulk insert of a honeypot day. Sensor
    # and kind are low-cardinality filters served by the time and source indexes; most
    # events name no sample, so that index is partial.
    op.create_index(
        "ix_event_sample_sha256", "event", ["sample_sha256"],
        sqlite_where=sa.text("sample_sha256 IS NOT NULL"),
        postgresql_where=sa.text("sample_sha256 IS NOT NULL"),
    )
    op.create_index("ix_event_session_kind", "event", ["session", "kind"])
    op.create_index("ix_event_src_key_time", "event", ["src_key", "time"])

    op.create_table(
        "ingest_cursor",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("line", sa.BigInteger, nullable=False),
        sa.Column("inode", sa.BigInteger),
        sa.Column("head", sa.String(64)),
        sa.Column("updated", UTCDateTime, nullable=False),
    )

    op.create_table(
        "ingest_error",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_ingest_error_time", "ingest_error", ["time"])


def downgrade() -> None:
    for table in ("ingest_error", "ingest_cursor", "event", "relation", "sample_tag",
                  "sample_name", "sample"):
        op.drop_table(table)
