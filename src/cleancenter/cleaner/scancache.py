"""A cache of files already scanned, so that a re-scan of an unchanged tree only stats.

A file's entry is trusted only while its path, size, mtime (ns), inode and the
definitions it was scanned with are all unchanged; anything else scans it again. What is
cached is what the worker produced (sha256 and rule matches); the hash lookup and the
verdict are made fresh on every run, so the cache can never hide a finding.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cleancenter.cleaner.findings import Evidence

SCHEMA = """
CREATE TABLE IF NOT EXISTS scanned (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    definitions TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    rules TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Identity:
    """What must not change for a cached result to stay valid."""

    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class Cached:
    sha256: str
    rules: list[Evidence]


class ScanCache:
    def __init__(self, path: Path, definitions_key: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.key = definitions_key
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._known: dict[str, tuple[int, int, int, str, str]] | None = None
        self._pending: list[tuple[str, int, int, int, str, str, str]] = []

    def _load(self) -> dict[str, tuple[int, int, int, str, str]]:
        if self._known is None:
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, inode, sha256, rules FROM scanned "
                "WHERE definitions = ?", (self.key,))
            self._known = {row[0]: row[1:] for row in rows}
        return self._known

    def get(self, path: str, identity: Identity) -> Cached | None:
        row = self._load().get(path)
        if row is None or row[:3] != (identity.size, identity.mtime_ns, identity.inode):
            return None
        try:
            rules = [Evidence(**item) for item in json.loads(row[4])]
        except (ValueError, TypeError):
            return None
        return Cached(row[3], rules)

    def put(self, path: str, identity: Identity, sha256: str, rules: list[Evidence]) -> None:
        encoded = json.dumps([vars(item) for item in rules])
        self._pending.append((path, identity.size, identity.mtime_ns, identity.inode,
                              self.key, sha256, encoded))
        if self._known is not None:
            self._known[path] = (identity.size, identity.mtime_ns, identity.inode, sha256,
                                 encoded)
        if len(self._pending) >= 2000:
            self.flush()

    def forget(self, path: str) -> None:
        """Drop a path (quarantined or removed), so it is never served from the cache."""
        self.flush()
        with self._db:
            self._db.execute("DELETE FROM scanned WHERE path = ?", (path,))
        if self._known is not None:
            self._known.pop(path, None)

    def flush(self) -> None:
        if not self._pending:
            return
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scanned VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()
