"""Read a Dionaea honeypot SQLite log (``logsql``) into `EventRecord`s.

Dionaea writes one row per TCP/UDP connection into ``connections`` and hangs what
happened on it (credentials, exploit offers, fetched binaries) off that row by
``connection`` id. We turn each ``connections`` row into a ``connect`` event and each
``logins`` / ``offers`` / ``downloads`` row into a ``login`` / ``attack`` / ``download``
event that carries the time, addresses and ports of its connection.

The database may be live (Dionaea still writing), so it is opened read-only without
``immutable``, read in short chunks so we never hold a read lock for long, and with a
bounded busy timeout so a writer's lock gives a clear error instead of a hang.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
import sqlite3
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cleancenter.collect.records import EventRecord, RecordError, record_uid

__all__ = ["BUSY_TIMEOUT", "download_md5", "read_dionaea"]

SOURCE = "dionaea"
BUSY_TIMEOUT = 5.0  # seconds to wait for a writer's lock before giving up on the file
CHUNK_ROWS = 1000  # rows per query: bounded memory, and the read lock is released between

_SESSION_MAX = 64  # event.session column width
_SOURCE_EVENT_MAX = 64  # event.source_event column width
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")

_CONNECTIONS = "connections"
# Columns we use from `connections`. Only the first two are required; the rest
# become None when an older/newer Dionaea schema lacks them.
_CONN_REQUIRED = ("connection", "connection_timestamp")
_CONN_COLUMNS = (
    "connection",
    "connection_type",
    "connection_transport",
    "connection_protocol",
    "connection_timestamp",
    "connection_root",
    "connection_parent",
    "local_host",
    "local_port",
    "remote_host",
    "remote_hostname",
    "remote_port",
)
_CONN_PREFIX = "c."  # alias prefix for joined connection columns in child queries


@dataclass(frozen=True, slots=True)
class _ChildTable:
    """A table whose rows hang off a connection and become one event each."""

    table: str
    id_column: str
    kind: str
    url_column: str | None


_CHILD_TABLES = (
    _ChildTable("logins", "login", "login", None),
    _ChildTable("offers", "offer", "attack", "offer_url"),
    _ChildTable("downloads", "download", "download", "download_url"),
)


class _RowError(Exception):
    """A single row is unusable; reported as a `RecordError`, the read goes on."""


class _FileError(Exception):
    """The file as a whole is unusable; reported once, then the read stops."""


@dataclass(frozen=True, slots=True)
class _Conn:
    """The validated fields of one `connections` row."""

    id: int
    time: datetime
    stamp: str  # the timestamp as text, part of the uid
    session: str
    src_ip: str | None
    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    protocol: str | None
    type: str | None


def read_dionaea(
    path: Path, *, sensor: str, busy_timeout: float = BUSY_TIMEOUT
) -> Iterator[EventRecord | RecordError]:
    """Yield the events of one Dionaea SQLite log, and a `RecordError` for each bad item.

    Per-row problems (wrong types, bad addresses, dangling references) give a
    `RecordError` and the read goes on. Whole-file problems (missing file, not a
    database, corruption, a lock held longer than `busy_timeout` seconds, no
    `connections` table) give one `RecordError` located at the file and end the read.
    Re-reading the same database yields the same uids.
    """
    path = Path(path)
    where = str(path)
    problem = _file_problem(path)
    if problem:
        yield RecordError(where, problem)
        return
    try:
        db = _open(path, busy_timeout)
    except sqlite3.Error as exc:
        yield RecordError(where, _describe(exc, busy_timeout))
        return
    try:
        yield from _read(db, path, sensor, busy_timeout)
    finally:
        db.close()


def _file_problem(path: Path) -> str | None:
    """Why `path` cannot be a database, checked before sqlite would create or misreport it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size == 0:
        return "empty file, not a Dionaea SQLite database"
    return None


def download_md5(record: EventRecord) -> str | None:
    """The lowercase MD5 of a Dionaea download, under which Dionaea stored the binary.

    `EventRecord` has no MD5 field, so the reader keeps ``download_md5_hash`` in
    ``raw``. Only a well-formed 32-hex value is returned, so the result is safe to use
    as a file name under the binaries folder.
    """
    if record.source != SOURCE or record.kind != "download":
        return None
    try:
        data = json.loads(record.raw)
    except ValueError:
        return None
    value = data.get("download_md5_hash") if isinstance(data, dict) else None
    if isinstance(value, str) and _MD5_RE.fullmatch(value):
        return value.lower()
    return None


# -- opening and reading -------------------------------------------------------------


def _open(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Open read-only through a URI (percent-encoded, so odd file names are safe)."""
    uri = path.absolute().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
    db.text_factory = _decode_text
    return db


def _decode_text(data: bytes) -> str:
    """Decode TEXT without failing on bad UTF-8: one odd byte must not stop a table."""
    return data.decode("utf-8", "backslashreplace")


def _read(
    db: sqlite3.Connection, path: Path, sensor: str, busy_timeout: float
) -> Iterator[EventRecord | RecordError]:
    """Read every table we know; turn sqlite and schema failures into one file error."""
    try:
        db.execute("PRAGMA query_only = ON")
        tables = _tables(db)
        if _CONNECTIONS not in tables:
            raise _FileError(f"no {_CONNECTIONS!r} table: not a Dionaea log")
        conn_cols = _columns(db, _CONNECTIONS)
        missing = [c for c in _CONN_REQUIRED if c not in conn_cols]
        if missing:
            raise _FileError(f"{_CONNECTIONS!r} table lacks column(s) {', '.join(missing)}")
        yield from _read_connections(db, path, sensor, conn_cols)
        for child in _CHILD_TABLES:
            if child.table not in tables:
                continue  # schema variation: this Dionaea did not log that module
            yield from _read_child(db, path, sensor, child, conn_cols)
    except _FileError as exc:
        yield RecordError(str(path), str(exc))
    except sqlite3.Error as exc:
        yield RecordError(str(path), _describe(exc, busy_timeout))


def _tables(db: sqlite3.Connection) -> set[str]:
    """Names of the ordinary tables; the first query, so it meets most file errors."""
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(row[0]) for row in rows}


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    """The table's column names in schema order (schemas vary between Dionaea versions)."""
    return [str(row[1]) for row in db.execute(f"PRAGMA table_info({_quote(table)})")]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _chunks(db: sqlite3.Connection, sql: str) -> Iterator[tuple[int, dict[str, object]]]:
    """Run `sql` (with a ``:after`` rowid bound) chunk by chunk; yield (rowid, row).

    Each chunk is fetched whole, so the shared lock is dropped between chunks and a
    live Dionaea can keep writing while our caller works through the rows.
    """
    after = -(2**63)
    while True:
        cursor = db.execute(sql, {"after": after, "limit": CHUNK_ROWS})
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        for row in rows:
            values = dict(zip(names, row, strict=True))
            rowid = values.pop("_rowid")
            assert isinstance(rowid, int)
            yield rowid, values
        if len(rows) < CHUNK_ROWS:
            return
        after = int(rows[-1][0])


def _read_connections(
    db: sqlite3.Connection, path: Path, sensor: str, conn_cols: list[str]
) -> Iterator[EventRecord | RecordError]:
    """One ``connect`` event per ``connections`` row."""
    select = ", ".join(_quote(c) for c in _CONN_COLUMNS if c in conn_cols)
    sql = (
        f"SELECT rowid AS _rowid, {select} FROM {_quote(_CONNECTIONS)}"
        " WHERE rowid > :after ORDER BY rowid LIMIT :limit"
    )
    for rowid, row in _chunks(db, sql):
        where = _location(path, _CONNECTIONS, row.get("connection"), rowid)
        try:
            conn = _parse_conn(row, sensor)
            raw = _raw(row)
        except _RowError as exc:
            yield RecordError(where, str(exc))
            continue
        source_event = "dionaea.connection"
        if conn.type:
            source_event = f"{source_event}.{conn.type}"[:_SOURCE_EVENT_MAX]
        yield EventRecord(
            uid=record_uid(SOURCE, sensor, _CONNECTIONS, str(conn.id), conn.stamp),
            time=conn.time,
            source=SOURCE,
            sensor=sensor,
            kind="connect",
            source_event=source_event,
            raw=raw,
            session=conn.session,
            src_ip=conn.src_ip,
            src_port=conn.src_port,
            dst_ip=conn.dst_ip,
            dst_port=conn.dst_port,
            protocol=conn.protocol,
        )


def _read_child(
    db: sqlite3.Connection,
    path: Path,
    sensor: str,
    child: _ChildTable,
    conn_cols: list[str],
) -> Iterator[EventRecord | RecordError]:
    """One event per row of a table hanging off ``connections``, joined to its connection."""
    cols = _columns(db, child.table)
    missing = [c for c in (child.id_column, "connection") if c not in cols]
    if missing:
        yield RecordError(
            f"{path}::{child.table}",
            f"table lacks column(s) {', '.join(missing)}; table skipped",
        )
        return
    own = ", ".join(f"t.{_quote(c)}" for c in cols)
    joined = ", ".join(
        f"c.{_quote(c)} AS {_quote(_CONN_PREFIX + c)}" for c in _CONN_COLUMNS if c in conn_cols
    )
    sql = (
        f"SELECT t.rowid AS _rowid, {own}, {joined} FROM {_quote(child.table)} AS t"
        f" LEFT JOIN {_quote(_CONNECTIONS)} AS c ON c.connection = t.connection"
        " WHERE t.rowid > :after ORDER BY t.rowid LIMIT :limit"
    )
    for rowid, values in _chunks(db, sql):
        row = {k: v for k, v in values.items() if not k.startswith(_CONN_PREFIX)}
        conn_row = {
            k[len(_CONN_PREFIX) :]: v for k, v in values.items() if k.startswith(_CONN_PREFIX)
        }
        where = _location(path, child.table, row.get(child.id_column), rowid)
        try:
            event = _child_event(child, sensor, row, conn_row)
        except _RowError as exc:
            yield RecordError(where, str(exc))
            continue
        yield event


def _child_event(
    child: _ChildTable, sensor: str, row: dict[str, object], conn_row: dict[str, object]
) -> EventRecord:
    """Build the event of one child row; raise `_RowError` if it cannot stand."""
    row_id = _int(row.get(child.id_column), child.id_column, required=True)
    conn_id = _int(row.get("connection"), "connection", required=True)
    if conn_row.get("connection") is None:
        raise _RowError(f"refers to connection {conn_id}, which is not in {_CONNECTIONS!r}")
    try:
        conn = _parse_conn(conn_row, sensor)
    except _RowError as exc:
        raise _RowError(f"its connection {conn_id} is unusable: {exc}") from None
    url = _text(row.get(child.url_column), child.url_column) if child.url_column else None
    if child.table == "downloads":
        md5 = row.get("download_md5_hash")
        if md5 is not None and not (isinstance(md5, str) and _MD5_RE.fullmatch(md5)):
            raise _RowError(f"download_md5_hash {md5!r} is not 32 hex digits")
    # The child's own columns, then its connection's (names do not clash but "connection").
    merged = dict(row)
    merged.update((k, v) for k, v in conn_row.items() if k not in merged)
    return EventRecord(
        uid=record_uid(SOURCE, sensor, child.table, str(row_id), conn.stamp),
        time=conn.time,
        source=SOURCE,
        sensor=sensor,
        kind=child.kind,
        source_event=f"dionaea.{child.id_column}",
        raw=_raw(merged),
        session=conn.session,
        src_ip=conn.src_ip,
        src_port=conn.src_port,
        dst_ip=conn.dst_ip,
        dst_port=conn.dst_port,
        protocol=conn.protocol,
        url=url,
    )


# -- row validation ------------------------------------------------------------------


def _parse_conn(row: Mapping[str, object], sensor: str) -> _Conn:
    """Validate a `connections` row; raise `_RowError` naming the first bad field."""
    conn_id = _int(row.get("connection"), "connection", required=True)
    assert conn_id is not None
    stamp = row.get("connection_timestamp")
    if stamp is None:
        raise _RowError("connection_timestamp is NULL")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise _RowError(f"connection_timestamp {stamp!r} is not a number")
    try:
        if not math.isfinite(stamp):
            raise ValueError("not finite")
        time = datetime.fromtimestamp(stamp, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise _RowError(f"connection_timestamp {stamp!r} is out of range: {exc}") from None
    root = _int(row.get("connection_root"), "connection_root") or conn_id
    return _Conn(
        id=conn_id,
        time=time,
        stamp=str(stamp),
        session=_session(sensor, root),
        src_ip=_ip(row.get("remote_host"), "remote_host"),
        src_port=_port(row.get("remote_port"), "remote_port"),
        dst_ip=_ip(row.get("local_host"), "local_host"),
        dst_port=_port(row.get("local_port"), "local_port"),
        protocol=_text(row.get("connection_protocol"), "connection_protocol") or None,
        type=_text(row.get("connection_type"), "connection_type") or None,
    )


def _session(sensor: str, root: int) -> str:
    """Group a connection with its children (and root) under one session key.

    Dionaea's connection ids restart at 1 in every database, so the sensor is part of
    the key; a sensor name too long for the column is replaced by a short hash.
    """
    session = f"{SOURCE}:{sensor}:{root}"
    if len(session) > _SESSION_MAX:
        digest = hashlib.sha1(sensor.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        session = f"{SOURCE}:{digest}:{root}"
    return session


def _int(value: object, name: str, *, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise _RowError(f"{name} is NULL")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _RowError(f"{name} {value!r} is not an integer")
    return value


def _port(value: object, name: str) -> int | None:
    port = _int(value, name)
    if port is not None and not 0 <= port <= 65535:
        raise _RowError(f"{name} {port} is not a port number")
    return port


def _ip(value: object, name: str) -> str | None:
    """A normalised address, or None for the empty host of listening sockets."""
    text = _text(value, name)
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _RowError(f"{name} {text!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # Dionaea on a dual-stack socket logs ::ffff:a.b.c.d
    return str(address)


def _text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    raise _RowError(f"{name} {value!r} is not text")


def _raw(row: Mapping[str, object]) -> str:
    """The row as JSON text; BLOBs and non-finite floats made representable."""
    return json.dumps({k: _jsonable(v) for k, v in row.items()}, ensure_ascii=False)


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _location(path: Path, table: str, row_id: object, rowid: int) -> str:
    ident = row_id if isinstance(row_id, int) and not isinstance(row_id, bool) else f"rowid{rowid}"
    return f"{path}::{table}#{ident}"


def _describe(exc: sqlite3.Error, busy_timeout: float) -> str:
    """A message a person can act on, for an sqlite error that ends the file."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        detail = "" if lowered == "database is locked" else f" ({text})"
        return (
            f"database is locked: another process held a lock on it for more than "
            f"{busy_timeout:g}s{detail}; try again later"
        )
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return f"not a readable SQLite database (corrupt or truncated?): {text}"
    if "unable to open" in lowered:
        return f"cannot open database: {text}"
    return f"sqlite error: {text}"
