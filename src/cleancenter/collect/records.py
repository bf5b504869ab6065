"""Plain records that readers hand to the ingest step.

Readers (Cowrie, Dionaea, files, archives) know formats; they never touch the
catalog. They yield `EventRecord`, `SampleRecord` or `RecordError`, and `ingest.py`
decides what to store. A reader that meets a bad item yields a `RecordError` and
goes on: one bad line never stops a day of logs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cleancenter.store.ipkey import ip_key

# The event vocabulary shared by all sensors (docs/formats.md explains each).
EVENT_KINDS = (
    "connect",  # a TCP session reached the sensor
    "disconnect",  # the session ended
    "login",  # a login succeeded
    "login-failed",  # a login attempt was refused (brute force)
    "command",  # a shell command was typed
    "download",  # the attacker fetched or wrote a file (a bot loader)
    "download-failed",  # a fetch that did not complete
    "upload",  # a file was pushed to the sensor (SFTP/SCP)
    "attack",  # an exploit or offer against an emulated service
    "tunnel",  # a port-forward request through the sensor
    "client",  # client fingerprint (version, kex, terminal size)
    "other",
)


@dataclass(slots=True)
class EventRecord:
    """One sensor record in the catalog's vocabulary."""

    uid: str  # stable: the same record ingested twice has the same uid
    time: datetime  # aware, UTC
    source: str  # "cowrie", "dionaea"
    sensor: str
    kind: str
    source_event: str  # the sensor's own name for it, e.g. "cowrie.login.failed"
    raw: str  # the record as the sensor wrote it (JSON text)
    session: str | None = None
    src_ip: str | None = None
    src_port: int | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    protocol: str | None = None
    url: str | None = None
    sample_sha256: str | None = None
    sample_name: str | None = None  # the name the file had on the sensor


@dataclass(slots=True)
class RecordError:
    """A bad item: where it was and what was wrong with it."""

    location: str  # "path:line" or "path::table#id" or "archive!member"
    message: str


@dataclass(slots=True)
class FileItem:
    """A file to store as a sample, from disk or an archive member written to work space."""

    path: Path
    names: tuple[str, ...]
    parent_sha256: str | None = None
    relation: str = "extracted"
    depth: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file a sensor record names: the sample to take from the sensor's file folder."""

    sha256: str
    name: str | None
    seen: datetime


def event_row(r: EventRecord, time_to_db: Callable[[datetime], Any] | None = None
              ) -> tuple[Any, ...]:
    """An event as the catalog inserts it (`EVENT_INSERT_COLUMNS` order); with
    ``time_to_db`` (`Catalog.db_time`) the time is already in the driver's form."""
    when = r.time if time_to_db is None else time_to_db(r.time)
    return (
        r.uid, when, r.source, r.sensor, r.session, r.src_ip, ip_key(r.src_ip), r.src_port,
        r.dst_ip, r.dst_port, r.protocol, r.kind, r.source_event, r.url, r.sample_sha256, r.raw,
    )


def record_uid(*parts: str | bytes) -> str:
    """Deterministic 40-hex uid from the parts that identify a record."""
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()
