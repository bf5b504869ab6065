"""The catalog: what the center knows about samples and events, in SQL.

One class, `Catalog`, owns the engine and speaks SQLAlchemy Core for bulk writes (a
honeypot day is tens of thousands of rows) and for queries. Every write that may be
repeated is idempotent: samples, names, tags, relations and events are inserted with
"on conflict do nothing" and keyed by content (sha256) or by a record uid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from cleancenter.store.models import (
    Event,
    IngestCursor,
    IngestError,
    Relation,
    Sample,
    SampleName,
    SampleTag,
    UTCDateTime,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

SAMPLE = cast(Table, Sample.__table__)
SAMPLE_NAME = cast(Table, SampleName.__table__)
SAMPLE_TAG = cast(Table, SampleTag.__table__)
RELATION = cast(Table, Relation.__table__)
EVENT = cast(Table, Event.__table__)
CURSOR = cast(Table, IngestCursor.__table__)
ERROR = cast(Table, IngestError.__table__)


EVENT_INSERT_COLUMNS = (
    "uid", "time", "source", "sensor", "session", "src_ip", "src_key", "src_port", "dst_ip",
    "dst_port", "protocol", "kind", "source_event", "url", "sample_sha256", "raw",
)


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value.replace(tzinfo=None)
    return value.astimezone(UTC).replace(tzinfo=None)


def _sqlite_time(value: datetime) -> str:
    """The text form SQLAlchemy's SQLite DateTime stores and reads back."""
    return _naive_utc(value).isoformat(sep=" ", timespec="microseconds")


class CatalogError(Exception):
    """The catalog cannot be opened or used."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewSample:
    """What collection hands the catalog for one sample it saw."""

    sha256: str
    md5: str
    sha1: str
    size: int
    file_type: str
    seen: datetime
    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: index inserts of a bulk ingest stay hot
    cur.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


MIGRATION_LOCK = 0x63636D6967  # "ccmig": the advisory lock key of schema upgrades


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: an empty database
    head: str
    newer_than_code: bool  # the catalog has a revision this code does not know

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


class Catalog:
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            if migrate:
                self.migrate()
        except CatalogError:
            raise
        except Exception as exc:  # driver errors differ per backend; say which URL failed
            raise CatalogError(f"cannot open catalog {self.safe_url}: {exc}") from exc
        self.dialect = self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------
    def _alembic_config(self) -> AlembicConfig:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg

    def schema_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def schema_state(self, current: str | None = "") -> SchemaState:
        """This catalog's revision (or ``current``, read already) against the newest this
        code knows."""
        script = ScriptDirectory.from_config(self._alembic_config())
        if current == "":
            current = self.schema_revision()
        known = {rev.revision for rev in script.walk_revisions()}
        return SchemaState(current, script.get_current_head() or "",
                           current is not None and current not in known)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (cheap when it already is).

        Many processes may start at once after an upgrade (every worker, every portal
        process): on PostgreSQL they queue on an advisory lock and each looks again
        once it holds it, so one upgrades and the rest find the work done. A catalog
        newer than this code is refused: an old worker must not run on a new schema.
        """
        cfg = self._alembic_config()
        state = self.schema_state()
        self._refuse_newer(state)
        if state.current == state.head:
            return
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": MIGRATION_LOCK})
                # another process may have upgraded while we waited (perhaps further)
                now = self.schema_state(MigrationContext.configure(conn)
                                        .get_current_revision())
                self._refuse_newer(now)
                if now.current == now.head:
                    return
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _refuse_newer(self, state: SchemaState) -> None:
        if state.newer_than_code:
            raise CatalogError(
                f"the catalog {self.safe_url} is at schema revision {state.current}, which "
                f"this cleancenter ({state.head} is its newest) does not know: the catalog "
                "was upgraded by a newer release; upgrade cleancenter on this machine")

    # -- writes -----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _insert_ignore(self, table: Table, conflict: Sequence[str] | None = None) -> Insert:
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict)
        return sqlite.insert(table).on_conflict_do_nothing()

    def add_samples(self, conn: Connection, samples: Sequence[NewSample]) -> int:
        """Insert new samples, widen first/last seen of known ones; returns how many were new."""
        if not samples:
            return 0
        rows = [
            {
                "sha256": s.sha256,
                "md5": s.md5,
                "sha1": s.sha1,
                "size": s.size,
                "file_type": s.file_type,
                "first_seen": s.seen,
                "last_seen": s.seen,
                "analysis_state": "pending",
            }
            for s in samples
        ]
        inserted = conn.execute(
            self._insert_ignore(SAMPLE, ["sha256"]).returning(SAMPLE.c.sha256), rows
        ).scalars().all()
        fresh = set(inserted)
        known = [s for s in samples if s.sha256 not in fresh]
        if known:
            c = SAMPLE.c
            conn.execute(
                update(SAMPLE)
                .where(c.sha256 == _bind("b_sha256"))
                .values(
                    last_seen=func.max(c.last_seen, _bind("b_seen"))
                    if self.dialect == "sqlite"
                    else func.greatest(c.last_seen, _bind("b_seen")),
                    first_seen=func.min(c.first_seen, _bind("b_seen"))
                    if self.dialect == "sqlite"
                    else func.least(c.first_seen, _bind("b_seen")),
                ),
                [{"b_sha256": s.sha256, "b_seen": s.seen} for s in known],
            )
        names = [
            {"sha256": s.sha256, "name": n, "first_seen": s.seen} for s in samples for n in s.names
        ]
        if names:
            conn.execute(self._insert_ignore(SAMPLE_NAME, ["sha256", "name"]), names)
        tags = [{"sha256": s.sha256, "tag": t} for s in samples for t in s.tags]
        if tags:
            conn.execute(self._insert_ignore(SAMPLE_TAG, ["sha256", "tag"]), tags)
        return len(fresh)

    def add_relations(self, conn: Connection, relations: Iterable[tuple[str, str, str]]) -> None:
        rows = [{"parent_sha256": p, "child_sha256": c, "kind": k} for p, c, k in relations]
        if rows:
            conn.execute(
                self._insert_ignore(RELATION, ["parent_sha256", "child_sha256", "kind"]), rows
            )

    def db_time(self, value: datetime) -> Any:
        """An aware time as this backend's driver stores it (for `add_events`)."""
        return _sqlite_time(value) if self.dialect == "sqlite" else _naive_utc(value)

    def add_events(
        self, conn: Connection, rows: Sequence[Sequence[Any]], *, times_converted: bool = False
    ) -> int:
        """Insert events, each a tuple in `EVENT_INSERT_COLUMNS` order; returns how many
        were new (a known ``uid`` is skipped). ``time`` is aware UTC, or already passed
        through `db_time` when ``times_converted`` (a reader process can do that work).

        This is the hot path of honeypot ingest (tens of thousands of rows a second), so
        it goes straight to the driver's ``executemany`` with plain tuples, skipping
        SQLAlchemy's per-row type processing.
        """
        if not rows:
            return 0
        columns = ", ".join(EVENT_INSERT_COLUMNS)
        if self.dialect == "sqlite":
            marks = ", ".join("?" for _ in EVENT_INSERT_COLUMNS)
            sql = f"INSERT OR IGNORE INTO event ({columns}) VALUES ({marks})"
        else:
            marks = ", ".join("%s" for _ in EVENT_INSERT_COLUMNS)
            sql = f"INSERT INTO event ({columns}) VALUES ({marks}) ON CONFLICT (uid) DO NOTHING"
        params: Sequence[Sequence[Any]] = rows
        if not times_converted:
            at = EVENT_INSERT_COLUMNS.index("time")
            params = [(*row[:at], self.db_time(row[at]), *row[at + 1 :]) for row in rows]
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, params)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def record_error(self, conn: Connection, source: str, location: str, message: str) -> None:
        conn.execute(
            ERROR.insert(),
            {"time": utcnow(), "source": source, "location": location, "message": message},
        )

    # -- ingest cursors -------------------------------------------------------------
    def get_cursor(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(CURSOR).where(CURSOR.c.key == key)).mappings().first()
            return dict(row) if row else None

    def set_cursor(
        self, conn: Connection, key: str, *, offset: int, line: int, inode: int | None,
        head: str | None,
    ) -> None:
        values = {"offset": offset, "line": line, "inode": inode, "head": head,
                  "updated": utcnow()}
        done = conn.execute(update(CURSOR).where(CURSOR.c.key == key).values(**values))
        if done.rowcount == 0:
            conn.execute(CURSOR.insert().values(key=key, **values))

    # -- lookups used during ingest ---------------------------------------------------
    def session_connect(self, conn: Connection, session: str) -> dict[str, Any] | None:
        """The `connect` event of a honeypot session, seen in an earlier file or run."""
        e = EVENT.c
        row = conn.execute(
            select(e.src_port, e.dst_ip, e.dst_port, e.protocol)
            .where(e.session == session, e.kind == "connect")
            .limit(1)
        ).mappings().first()
        return dict(row) if row else None

    def existing_samples(self, conn: Connection, sha256s: Iterable[str]) -> set[str]:
        wanted = list(set(sha256s))
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            found.update(
                conn.execute(select(SAMPLE.c.sha256).where(SAMPLE.c.sha256.in_(chunk))).scalars()
            )
        return found


def _bind(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime()) if name.endswith("_seen") else bindparam(name)

