"""The ISP side's own database: subscribers, the mail outbox and what each mail covered.

One SQLite file on the ISP's machine (``--db``, else ``CLEANCENTER_ISP_DB``, else
``./isp-side.db``), created readable by its owner only: it holds subscribers' addresses.
WAL journal, foreign keys on, the schema versioned with ``PRAGMA user_version``; every
change is one ``BEGIN IMMEDIATE`` transaction, so a crash leaves it before or after, never
in between. Times are stored as UTC ISO 8601 text of one fixed width (microseconds,
``+00:00``), so text order is time order.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 1
DEFAULT_DB = "isp-side.db"
DB_ENV = "CLEANCENTER_ISP_DB"

_SCHEMA_1 = [
    """CREATE TABLE subscriber (
        subscriber_id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        lang TEXT NOT NULL CHECK (lang IN ('ja', 'en')),
        name TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE notification (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        subscriber_id TEXT NOT NULL REFERENCES subscriber(subscriber_id),
        token TEXT NOT NULL UNIQUE,
        link TEXT NOT NULL,
        lang TEXT NOT NULL CHECK (lang IN ('ja', 'en')),
        status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        message_id TEXT,
        incidents TEXT NOT NULL
    )""",
    "CREATE INDEX notification_due ON notification (status, next_attempt_at)",
    "CREATE INDEX notification_sent ON notification (sent_at)",
    "CREATE INDEX notification_subscriber ON notification (subscriber_id, created_at)",
    """CREATE TABLE notice_item (
        idempotency_key TEXT NOT NULL UNIQUE,
        subscriber_id TEXT NOT NULL REFERENCES subscriber(subscriber_id),
        incident_id TEXT NOT NULL,
        round INTEGER NOT NULL CHECK (round >= 1),
        notification_id INTEGER NOT NULL REFERENCES notification(id),
        UNIQUE (subscriber_id, incident_id, round)
    )""",
    "CREATE INDEX notice_item_notification ON notice_item (notification_id)",
]


class DatabaseError(RuntimeError):
    """The database cannot be used (a newer schema, not a database, ...)."""


def default_db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def utc_text(moment: datetime) -> str:
    """The stored form of a time: UTC, microseconds, ``+00:00``."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def open_db(path: Path) -> sqlite3.Connection:
    """Open (creating it owner-only if new) and bring the schema up to date."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: {exc}") from exc
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic write transaction (taken at once: no upgrade deadlock)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"schema version {version} is newer than this program "
                                f"knows ({SCHEMA_VERSION}): upgrade cleancenter")
        if version < 1:
            for statement in _SCHEMA_1:
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
