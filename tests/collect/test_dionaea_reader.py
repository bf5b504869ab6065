"""Tests for the Dionaea SQLite reader.

The real log from the shared corpus is checked against counts taken independently
with plain `sqlite3`; bad inputs (corruption, locks, wrong types, schema variation)
are built in tmp_path so each failure mode has its own test.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cleancenter.collect import dionaea
from cleancenter.collect.dionaea import download_md5, read_dionaea
from cleancenter.collect.records import EVENT_KINDS, EventRecord, RecordError

REAL_DB_NAME = Path("honeypot") / "dionaea" / "rebound-security-dionaea.sqlite"
SENSOR = "test-dionaea"


@pytest.fixture
def real_db(corpus: Path) -> Path:
    """The real Dionaea log; `corpus` (tests/conftest.py) skips when the corpus is absent."""
    path = corpus / REAL_DB_NAME
    if not path.is_file():
        pytest.skip(f"Dionaea corpus file not found at {path} (set CLEANCENTER_CORPUS)")
    return path


# The tables as Dionaea's logsql module creates them (constraints and indexes trimmed).
SCHEMA = {
    "connections": """CREATE TABLE connections (
        connection INTEGER PRIMARY KEY, connection_type TEXT, connection_transport TEXT,
        connection_protocol TEXT, connection_timestamp INTEGER, connection_root INTEGER,
        connection_parent INTEGER, local_host TEXT, local_port INTEGER, remote_host TEXT,
        remote_hostname TEXT, remote_port INTEGER)""",
    "logins": """CREATE TABLE logins (
        login INTEGER PRIMARY KEY, connection INTEGER, login_username TEXT,
        login_password TEXT)""",
    "offers": "CREATE TABLE offers (offer INTEGER PRIMARY KEY, connection INTEGER, offer_url TEXT)",
    "downloads": """CREATE TABLE downloads (
        download INTEGER PRIMARY KEY, connection INTEGER, download_url TEXT,
        download_md5_hash TEXT)""",
}
T0 = 1730688308.92288
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def make_db(
    path: Path,
    connections: Sequence[tuple[object, ...]] = (),
    *,
    tables: tuple[str, ...] = ("connections", "logins", "offers", "downloads"),
    logins: Sequence[tuple[object, ...]] = (),
    offers: Sequence[tuple[object, ...]] = (),
    downloads: Sequence[tuple[object, ...]] = (),
    page_size: int | None = None,
) -> Path:
    """A small Dionaea-shaped database. Connection tuples are
    (id, timestamp, remote_host, remote_port, local_host, local_port, protocol, root)."""
    db = sqlite3.connect(path)
    if page_size:
        db.execute(f"PRAGMA page_size = {page_size}")
    for name in tables:
        db.execute(SCHEMA[name])
    inserts = {
        "connections": (
            "INSERT INTO connections (connection, connection_timestamp, remote_host,"
            " remote_port, local_host, local_port, connection_protocol, connection_root,"
            " connection_type, connection_transport)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'accept', 'tcp')",
            connections,
        ),
        "logins": ("INSERT INTO logins VALUES (?, ?, ?, ?)", logins),
        "offers": ("INSERT INTO offers VALUES (?, ?, ?)", offers),
        "downloads": ("INSERT INTO downloads VALUES (?, ?, ?, ?)", downloads),
    }
    for sql, rows in inserts.values():
        if rows:
            db.executemany(sql, rows)
    db.commit()
    db.close()
    return path


DEFAULT = object()


def conn_row(
    cid: int,
    *,
    ts: object = DEFAULT,
    remote: object = "203.0.113.7",
    rport: object = 40000,
    local: object = "10.0.0.2",
    lport: object = 445,
    proto: object = "smbd",
    root: object = None,
) -> tuple[object, ...]:
    return (cid, T0 + cid if ts is DEFAULT else ts, remote, rport, local, lport, proto, root)


def read_all(path: Path, **kwargs: object) -> list[EventRecord | RecordError]:
    return list(read_dionaea(path, sensor=SENSOR, **kwargs))  # type: ignore[arg-type]


def split(out: list[EventRecord | RecordError]) -> tuple[list[EventRecord], list[RecordError]]:
    events = [o for o in out if isinstance(o, EventRecord)]
    errors = [o for o in out if isinstance(o, RecordError)]
    assert len(events) + len(errors) == len(out)
    return events, errors


def read_with_deadline(
    path: Path, deadline: float = 30.0, **kwargs: object
) -> tuple[list[EventRecord | RecordError], float]:
    """Read in a thread so a hanging reader fails the test instead of hanging it."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["out"] = read_all(path, **kwargs)
        except BaseException as exc:  # reported below
            box["exc"] = exc

    start = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(deadline)
    elapsed = time.monotonic() - start
    assert not worker.is_alive(), f"reader still running after {deadline}s"
    assert "exc" not in box, f"reader raised {box.get('exc')!r}"
    return box["out"], elapsed  # type: ignore[return-value]


# -- the real corpus file ------------------------------------------------------------


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)


def _count(db: sqlite3.Connection, table: str) -> int:
    exists = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", (table,)
    ).fetchone()[0]
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) if exists else 0


def test_real_db_counts_match_sqlite(real_db: Path) -> None:
    db = _ro(real_db)
    try:
        expected = {
            "connect": _count(db, "connections"),
            "login": _count(db, "logins"),
            "attack": _count(db, "offers"),
            "download": _count(db, "downloads"),
        }
        src_ips = {r[0] for r in db.execute("SELECT DISTINCT remote_host FROM connections")}
    finally:
        db.close()

    events, errors = split(read_all(real_db))
    assert errors == []
    kinds = Counter(e.kind for e in events)
    assert {k: kinds.get(k, 0) for k in expected} == expected
    assert set(kinds) <= set(expected)
    assert expected["connect"] > 0
    assert {e.src_ip for e in events if e.kind == "connect"} == src_ips
    assert all(e.source == "dionaea" and e.sensor == SENSOR for e in events)
    assert all(e.kind in EVENT_KINDS for e in events)


def test_real_db_uids_unique_and_stable(real_db: Path) -> None:
    first = [e.uid for e in read_all(real_db) if isinstance(e, EventRecord)]
    second = [e.uid for e in read_all(real_db) if isinstance(e, EventRecord)]
    assert len(set(first)) == len(first)
    assert first == second
    other = {e.uid for e in read_dionaea(real_db, sensor="another") if isinstance(e, EventRecord)}
    assert other.isdisjoint(first)


def test_real_db_times_and_addresses_come_from_connections(real_db: Path) -> None:
    db = _ro(real_db)
    try:
        conns = {
            row[0]: row[1:]
            for row in db.execute(
                "SELECT connection, connection_timestamp, remote_host, remote_port,"
                " local_host, local_port, connection_protocol FROM connections"
            )
        }
        login_conn = dict(db.execute("SELECT login, connection FROM logins").fetchall())
    finally:
        db.close()

    events, _ = split(read_all(real_db))
    seen_logins = 0
    for event in events:
        assert event.time.tzinfo is not None
        assert event.time.utcoffset() == timedelta(0)
        raw = json.loads(event.raw)
        cid = raw["connection"]
        ts, rhost, rport, lhost, lport, proto = conns[cid]
        assert abs(event.time.timestamp() - ts) < 1e-6
        assert event.time == datetime.fromtimestamp(ts, tz=UTC)
        assert (event.src_ip, event.src_port, event.dst_ip, event.dst_port, event.protocol) == (
            rhost,
            rport,
            lhost,
            lport,
            proto,
        )
        if event.kind == "login":
            seen_logins += 1
            assert login_conn[raw["login"]] == cid
            assert event.session == f"dionaea:{SENSOR}:{cid}"
    assert seen_logins == len(login_conn)


def test_real_db_is_not_modified(real_db: Path) -> None:
    before = hashlib.sha256(real_db.read_bytes()).hexdigest()
    stamp = real_db.stat().st_mtime_ns
    read_all(real_db)
    assert hashlib.sha256(real_db.read_bytes()).hexdigest() == before
    assert real_db.stat().st_mtime_ns == stamp


# -- well-formed synthetic logs ------------------------------------------------------


def test_all_kinds_and_download_md5(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "d.sqlite",
        [
            conn_row(1, remote="::ffff:198.51.100.9", rport=1234),
            conn_row(2, root=1, proto="ftpd", lport=21),
        ],  # a child connection of 1
        logins=[(1, 1, "root", "toor")],
        offers=[(1, 1, "ftp://198.51.100.9/x.exe")],
        downloads=[(1, 2, "ftp://198.51.100.9/x.exe", MD5.upper())],
    )
    events, errors = split(read_all(path))
    assert errors == []
    by_kind = {e.kind: e for e in events if e.kind != "connect"}
    assert sorted(e.kind for e in events) == ["attack", "connect", "connect", "download", "login"]

    connect1 = next(e for e in events if e.kind == "connect" and e.src_port == 1234)
    assert connect1.src_ip == "198.51.100.9"  # IPv4-mapped IPv6 normalised
    assert connect1.source_event == "dionaea.connection.accept"
    assert json.loads(connect1.raw)["remote_host"] == "::ffff:198.51.100.9"  # raw untouched

    assert by_kind["attack"].url == "ftp://198.51.100.9/x.exe"
    assert by_kind["login"].src_ip == "198.51.100.9"
    download = by_kind["download"]
    assert download.url == "ftp://198.51.100.9/x.exe"
    assert download.sample_sha256 is None
    assert download.dst_port == 21 and download.protocol == "ftpd"
    assert download_md5(download) == MD5
    assert json.loads(download.raw)["download_md5_hash"] == MD5.upper()
    # the child connection and everything on it share the root's session
    assert {e.session for e in events} == {f"dionaea:{SENSOR}:1"}
    assert download_md5(by_kind["login"]) is None


def test_download_md5_rejects_unsafe_values() -> None:
    base = EventRecord(
        uid="u",
        time=datetime.now(UTC),
        source="dionaea",
        sensor="s",
        kind="download",
        source_event="dionaea.download",
        raw="{}",
    )
    for raw in (
        '{"download_md5_hash": "../../etc/passwd"}',
        '{"download_md5_hash": 5}',
        "not json",
        "[]",
        "{}",
    ):
        base.raw = raw
        assert download_md5(base) is None
    base.raw = json.dumps({"download_md5_hash": MD5})
    assert download_md5(base) == MD5
    base.source = "cowrie"
    assert download_md5(base) is None


def test_missing_optional_tables_are_skipped(tmp_path: Path) -> None:
    path = make_db(tmp_path / "d.sqlite", [conn_row(1), conn_row(2)], tables=("connections",))
    events, errors = split(read_all(path))
    assert errors == []
    assert [e.kind for e in events] == ["connect", "connect"]


def test_reads_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dionaea, "CHUNK_ROWS", 3)
    path = make_db(
        tmp_path / "d.sqlite",
        [conn_row(i) for i in range(1, 11)],
        logins=[(i, i, "u", "p") for i in range(1, 8)],
    )
    events, errors = split(read_all(path))
    assert errors == []
    assert Counter(e.kind for e in events) == {"connect": 10, "login": 7}
    assert len({e.uid for e in events}) == 17


# -- bad inputs ----------------------------------------------------------------------


def test_nonexistent_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "dionaea.sqlite"
    out = read_all(missing)
    assert out == [RecordError(str(missing), "no such file")]
    assert not missing.exists()  # sqlite must not have created it


def test_directory_and_empty_file(tmp_path: Path) -> None:
    assert split(read_all(tmp_path))[1][0].message == "not a regular file"
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    (error,) = read_all(empty)
    assert isinstance(error, RecordError) and error.location == str(empty)


def test_corrupt_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.sqlite"
    path.write_bytes(os.urandom(64 * 1024))
    out, _ = read_with_deadline(path)
    assert len(out) == 1
    (error,) = out
    assert isinstance(error, RecordError)
    assert error.location == str(path)
    assert "not a readable SQLite database" in error.message


@pytest.mark.parametrize("keep", [50, 100, 4096, 8192, 65536, 200_000])
def test_truncated_copy_of_real_db(tmp_path: Path, real_db: Path, keep: int) -> None:
    path = tmp_path / "truncated.sqlite"
    path.write_bytes(real_db.read_bytes()[:keep])
    out, _ = read_with_deadline(path)
    _, errors = split(out)
    assert len(errors) == 1
    assert errors[0].location == str(path)
    assert out[-1] is errors[0]  # the file error ends the read


def test_truncated_synthetic_db(tmp_path: Path) -> None:
    full = make_db(tmp_path / "full.sqlite", [conn_row(i) for i in range(1, 300)], page_size=1024)
    path = tmp_path / "truncated.sqlite"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out, _ = read_with_deadline(path)
    _, errors = split(out)
    assert len(errors) == 1 and errors[0].location == str(path)


def test_corrupt_page_midway_keeps_what_was_read(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "d.sqlite",
        [conn_row(i) for i in range(1, 6)],
        logins=[(1, 1, "u", "p")],
        page_size=1024,
    )
    db = sqlite3.connect(path)
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name='logins'").fetchone()
    db.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * 1024)
        f.write(b"\xa5" * 1024)
    out, _ = read_with_deadline(path)
    events, errors = split(out)
    assert [e.kind for e in events] == ["connect"] * 5
    assert len(errors) == 1 and errors[0].location == str(path)
    assert "malformed" in errors[0].message or "not a readable" in errors[0].message


def test_missing_connections_table(tmp_path: Path) -> None:
    path = make_db(tmp_path / "d.sqlite", tables=("logins", "offers"))
    assert read_all(path) == [RecordError(str(path), "no 'connections' table: not a Dionaea log")]


def test_wrong_types_are_reported_and_the_rest_comes_out(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "d.sqlite",
        [
            conn_row(1),
            conn_row(2, rport="abc"),
            conn_row(3, ts=None),
            conn_row(4),
            conn_row(5, remote="not-an-ip"),
            conn_row(6, lport=70000),
            conn_row(7, ts="yesterday"),
            conn_row(8, remote=None, rport=None),  # a listening socket: no peer, no error
        ],
        logins=[(1, 1, "a", "b"), (2, 2, "a", "b"), (3, 99, "a", "b")],
        downloads=[(1, 1, "http://x/y", "../../etc/passwd"), (2, 4, "http://x/z", None)],
    )
    out, _ = read_with_deadline(path)
    events, errors = split(out)
    got = {(e.kind, json.loads(e.raw)["connection"]) for e in events}
    assert got == {("connect", 1), ("connect", 4), ("connect", 8), ("login", 1), ("download", 4)}
    bad = {e.location.removeprefix(f"{path}::"): e.message for e in errors}
    assert set(bad) == {
        "connections#2",
        "connections#3",
        "connections#5",
        "connections#6",
        "connections#7",
        "logins#2",
        "logins#3",
        "downloads#1",
    }
    assert "remote_port" in bad["connections#2"]
    assert "NULL" in bad["connections#3"]
    assert "remote_host" in bad["connections#5"]
    assert "local_port" in bad["connections#6"]
    assert "connection_timestamp" in bad["connections#7"]
    assert "connection 2" in bad["logins#2"]
    assert "99" in bad["logins#3"]
    assert "download_md5_hash" in bad["downloads#1"]
    listening = next(e for e in events if json.loads(e.raw)["connection"] == 8)
    assert listening.src_ip is None and listening.src_port is None
    download = next(e for e in events if e.kind == "download")
    assert download_md5(download) is None


# -- locks ---------------------------------------------------------------------------

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode = " + sys.argv[2])
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


class Locker:
    """Another process holding ``BEGIN EXCLUSIVE`` on a database until stopped."""

    def __init__(self, path: Path, journal_mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path), journal_mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "locked", f"locker failed to start: {line!r}"

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_locked_db_rollback_journal_reports_error(tmp_path: Path) -> None:
    path = make_db(tmp_path / "d.sqlite", [conn_row(1)])
    locker = Locker(path, "delete")
    try:
        out, elapsed = read_with_deadline(path, busy_timeout=1.0)
    finally:
        locker.stop()
    assert elapsed < 10
    assert len(out) == 1
    (error,) = out
    assert isinstance(error, RecordError) and error.location == str(path)
    assert error.message.startswith("database is locked")
    # once the lock is gone the same file reads fine
    assert [e.kind for e in read_all(path) if isinstance(e, EventRecord)] == ["connect"]


def test_locked_db_default_timeout_is_a_few_seconds(tmp_path: Path) -> None:
    path = make_db(tmp_path / "d.sqlite", [conn_row(1)])
    locker = Locker(path, "delete")
    try:
        out, elapsed = read_with_deadline(path)
    finally:
        locker.stop()
    assert elapsed < dionaea.BUSY_TIMEOUT + 5
    assert [o.message.startswith("database is locked") for o in out] == [True]  # type: ignore[union-attr]


def test_locked_db_wal_does_not_block_readers(tmp_path: Path) -> None:
    # In WAL mode an exclusive transaction still lets readers see the last commit.
    path = make_db(tmp_path / "d.sqlite", [conn_row(1), conn_row(2)])
    locker = Locker(path, "wal")
    try:
        out, elapsed = read_with_deadline(path, busy_timeout=1.0)
    finally:
        locker.stop()
    assert elapsed < 10
    events, errors = split(out)
    assert errors == []
    assert [e.kind for e in events] == ["connect", "connect"]


def test_read_only_folder_and_file(tmp_path: Path) -> None:
    # The shared corpus is read-only; opening must not need to write anything.
    folder = tmp_path / "ro"
    folder.mkdir()
    path = make_db(folder / "d.sqlite", [conn_row(1)])
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        events, errors = split(read_all(path))
    finally:
        folder.chmod(0o755)
    assert errors == [] and len(events) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["d.sqlite"]  # no journal left behind
