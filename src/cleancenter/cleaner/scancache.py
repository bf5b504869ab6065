"""A cache of files already scanned, so that a re-scan of an unchanged tree only stats.

A file's entry is trusted only while its path, size, mtime and ctime (ns), inode, device
and the definitions it was scanned with are all unchanged; anything else scans it again.
The identity stored is the one the worker saw on the file it read (``fstat``), so a file
changed between the walk and the read is not cached under the walk's identity. What is
cached is what the worker produced (sha256 and rule matches); the hash lookup and the
verdict are made fresh on every run, so the cache can never hide a finding.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cleancenter.cleaner.findings import Evidence

SCHEMA = """
CREATE TABLE IF NOT EXISTS scanned (
    path BLOB PRIMARY KEY,
    identity TEXT NOT NULL,
    definitions TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    rules TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Identity:
    """What must not change for a cached result to stay valid. ``ctime`` cannot be set back
    by a program (unlike mtime), so a file rewritten in place and re-dated still shows."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def key(self) -> str:
        return f"{self.size}:{self.mtime_ns}:{self.ctime_ns}:{self.inode}:{self.device}"


@dataclass(frozen=True)
class Cached:
    sha256: str
    rules: list[Evidence]


class ScanCache:
    """Paths are stored as bytes (``os.fsencode``): a file name need not be UTF-8."""

    def __init__(self, path: Path, definitions_key: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.key = definitions_key
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._known: dict[bytes, tuple[str, str, str]] | None = None
        self._pending: list[tuple[bytes, str, str, str, str]] = []

    def _load(self) -> dict[bytes, tuple[str, str, str]]:
        if self._known is None:
            rows = self._db.execute(
                "SELECT path, identity, sha256, rules FROM scanned WHERE definitions = ?",
                (self.key,))
            self._known = {bytes(row[0]): (row[1], row[2], row[3]) for row in rows}
        return self._known

    def empty(self) -> bool:
        """True when nothing was scanned with these definitions yet."""
        return not self._load()

    def get(self, path: str, identity: Identity) -> Cached | None:
        row = self._load().get(os.fsencode(path))
        if row is None or row[0] != identity.key():
            return None
        try:
            rules = [Evidence(**item) for item in json.loads(row[2])]
        except (ValueError, TypeError):
            return None
        return Cached(row[1], rules)

    def put(self, path: str, identity: Identity, sha256: str, rules: list[Evidence]) -> None:
        encoded = json.dumps([vars(item) for item in rules]) if rules else "[]"
        raw = os.fsencode(path)
        self._pending.append((raw, identity.key(), self.key, sha256, encoded))
        if self._known is not None:
            self._known[raw] = (identity.key(), sha256, encoded)
        if len(self._pending) >= 2000:
            self.flush()

    def forget(self, path: str) -> None:
        """Drop a path (quarantined or removed), so it is never served from the cache."""
        self.flush()
        raw = os.fsencode(path)
        with self._db:
            self._db.execute("DELETE FROM scanned WHERE path = ?", (raw,))
        if self._known is not None:
            self._known.pop(raw, None)

    def flush(self) -> None:
        if not self._pending:
            return
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scanned VALUES (?, ?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()
