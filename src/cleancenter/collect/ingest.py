"""The ingest step: readers' records in, blobs and catalog rows out.

Readers know formats; this module knows the store. Work is committed in batches, each
batch in one transaction together with how far the input has been read, so a run that is
killed leaves whole batches only and the next run carries on from the last one. Every
write is idempotent (content hashes, record uids), so doing a batch twice adds nothing.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from threading import Event as StopFlag
from typing import Any, Protocol

from sqlalchemy import Connection, select

from cleancenter.collect import cowrie, dionaea
from cleancenter.collect.archives import (
    DEFAULT_PASSWORD,
    ArchiveLimits,
    ArchiveRefused,
    ExtractedMember,
    ExtractionBudget,
    extract,
)
from cleancenter.collect.cowrie_batches import CowrieBatch, CowrieBatchReader, OpenLog, cursor_key
from cleancenter.collect.filetype import ARCHIVE_TYPES, HEAD_SIZE, sniff
from cleancenter.collect.logfile import LogPosition
from cleancenter.collect.records import EventRecord, RecordError, event_row
from cleancenter.store.blobs import BlobStore, Digests
from cleancenter.store.catalog import EVENT, SAMPLE, Catalog, NewSample, utcnow

BATCH_SAMPLES = 500
BATCH_LINES = 5000
FOLLOW_POLL_SECONDS = 0.5
FOLLOW_BACKFILL_SECONDS = 30.0  # --follow: look for late download files this often


class Progress(Protocol):
    """What ingest tells a progress display; the CLI passes a Rich one."""

    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def start(self, label: str, total: int | None) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None


@dataclass
class IngestReport:
    """What one ingest run did; `errors` are the bad items it skipped."""

    inputs: int = 0
    files: int = 0
    members: int = 0
    samples_new: int = 0
    samples_known: int = 0
    events_read: int = 0
    events_new: int = 0
    lines_skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return len(self.errors)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = [asdict(e) for e in self.errors]
        data["error_count"] = self.error_count
        return data


@dataclass
class _Pending:
    """Catalog writes waiting for the next transaction."""

    samples: dict[str, NewSample] = field(default_factory=dict)
    relations: set[tuple[str, str, str]] = field(default_factory=set)
    errors: list[tuple[str, RecordError]] = field(default_factory=list)

    def add_sample(self, sample: NewSample) -> None:
        old = self.samples.get(sample.sha256)
        if old is None:
            self.samples[sample.sha256] = sample
            return
        self.samples[sample.sha256] = NewSample(
            sha256=old.sha256, md5=old.md5, sha1=old.sha1, size=old.size,
            file_type=old.file_type, seen=min(old.seen, sample.seen),
            names=tuple(dict.fromkeys(old.names + sample.names)),
            tags=tuple(dict.fromkeys(old.tags + sample.tags)),
        )

    def __len__(self) -> int:
        return len(self.samples) + len(self.relations) + len(self.errors)


class Ingestor:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        *,
        password: str | None = DEFAULT_PASSWORD,
        limits: ArchiveLimits | None = None,
        tags: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> None:
        self.catalog = catalog
        self.blobs = blobs
        self.password = password
        self.limits = limits or ArchiveLimits()
        self.tags = tuple(tags)
        self.progress: Progress = progress or _NoProgress()
        self._pending = _Pending()
        # download-dir files refused this run (content is not their name): (size, mtime)
        self._refused_downloads: dict[Path, tuple[int, int]] = {}

    # -- shared plumbing ------------------------------------------------------------
    def _flush(self, report: IngestReport, conn: Connection | None = None) -> None:
        """Write pending samples, relations and errors (in ``conn``'s transaction if given)."""
        if not len(self._pending):
            return
        self.blobs.publish()  # blobs are on disk before catalog rows name them
        pending, self._pending = self._pending, _Pending()
        if conn is None:
            with self.catalog.transaction() as own:
                self._write_pending(own, pending, report)
        else:
            self._write_pending(conn, pending, report)

    def _write_pending(self, conn: Connection, pending: _Pending, report: IngestReport) -> None:
        samples = list(pending.samples.values())
        new = self.catalog.add_samples(conn, samples)
        report.samples_new += new
        report.samples_known += len(samples) - new
        self.catalog.add_relations(conn, pending.relations)
        for source, error in pending.errors:
            self.catalog.record_error(conn, source, error.location, error.message)

    def _error(self, report: IngestReport, source: str, error: RecordError) -> None:
        report.errors.append(error)
        self._pending.errors.append((source, error))

    def _sample(
        self, digests: Digests, names: Iterable[str], seen: datetime, tags: Iterable[str] = ()
    ) -> str:
        with self.blobs.open(digests.sha256) as fh:
            file_type = sniff(fh.read(HEAD_SIZE))
        self._pending.add_sample(
            NewSample(
                sha256=digests.sha256, md5=digests.md5, sha1=digests.sha1, size=digests.size,
                file_type=file_type, seen=seen,
                names=tuple(n for n in names if n),
                tags=tuple(dict.fromkeys((*self.tags, *tags))),
            )
        )
        return file_type

    # -- files, folders and archives -------------------------------------------------
    def ingest_paths(self, paths: Sequence[Path]) -> IngestReport:
        report = IngestReport(inputs=len(paths))
        files = list(self._walk(paths, report))
        self.progress.start("files", len(files))
        self.blobs.begin_batch()
        try:
            for path in files:
                self._ingest_file(path, report)
                self.progress.advance()
                if len(self._pending) >= BATCH_SAMPLES:
                    self._flush(report)
            self._flush(report)
        finally:
            self.blobs.abort_batch()  # only reached with blobs unpublished after a failure
            self.blobs.end_batch()
        return report

    def _walk(self, paths: Sequence[Path], report: IngestReport) -> Iterator[Path]:
        for top in paths:
            if top.is_file():
                yield top
            elif top.is_dir():
                for dirpath, dirnames, filenames in os.walk(top, onerror=None):
                    dirnames.sort()
                    for name in sorted(filenames):
                        path = Path(dirpath) / name
                        if path.is_symlink():
                            continue  # never follow links out of the tree being ingested
                        if path.is_file():
                            yield path
            else:
                self._error(report, "files", RecordError(str(top), "no such file or folder"))

    def _ingest_file(self, path: Path, report: IngestReport) -> None:
        try:
            digests = self.blobs.put_file(path)
        except OSError as exc:
            self._error(report, "files", RecordError(str(path), f"cannot read: {exc.strerror}"))
            return
        report.files += 1
        now = utcnow()
        file_type = self._sample(digests, [path.name], now)
        if file_type in ARCHIVE_TYPES:
            budget = ExtractionBudget(self.limits)
            self._expand(digests.sha256, file_type, str(path), 1, budget, report, now)

    def _expand(
        self, sha256: str, kind: str, label: str, depth: int, budget: ExtractionBudget,
        report: IngestReport, seen: datetime,
        expanded: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        """Store an archive's members as samples and expand archives among them in turn.

        ``expanded`` maps the archives of this input already opened to what expanding
        them cost (members, bytes, nested ones included). A copy nested again (a bomb's
        favourite trick) is not opened twice, but it is charged again: content
        addressing would store it once, yet an input that declares a bomb's worth of
        data is refused as one.
        """
        expanded = {} if expanded is None else expanded
        if depth > self.limits.max_depth:
            self._error(report, "archive", RecordError(
                label, f"not expanded: nested deeper than {self.limits.max_depth} archives"))
            return
        if sha256 in expanded:
            members_cost, bytes_cost = expanded[sha256]
            try:
                budget.reserve(members_cost, bytes_cost, label)
                budget.spend_bytes(bytes_cost)
            except ArchiveRefused as exc:
                self._error(report, "archive", RecordError(label, str(exc)))
            return
        expanded[sha256] = (0, 0)
        before = (budget.members_left, budget.bytes_left)
        members: list[ExtractedMember] = []
        try:
            for item in extract(self.blobs.readable_path(sha256), kind, self.blobs,
                                password=self.password, budget=budget, label=label):
                if isinstance(item, RecordError):
                    self._error(report, "archive", item)
                else:
                    members.append(item)
        except ArchiveRefused as exc:
            self._error(report, "archive", RecordError(label, str(exc)))
        except Exception as exc:  # an archive library's surprise must not end the run
            self._error(report, "archive", RecordError(
                label, f"could not expand ({type(exc).__name__}: {exc})"))
        for member in members:
            report.members += 1
            child_type = self._sample(member.digests, [member.name], seen)
            self._pending.relations.add((sha256, member.digests.sha256, "extracted"))
            if child_type in ARCHIVE_TYPES and budget.exhausted is None:
                self._expand(member.digests.sha256, child_type, f"{label}!{member.name}",
                             depth + 1, budget, report, seen, expanded)
        expanded[sha256] = (before[0] - budget.members_left, before[1] - budget.bytes_left)

    # -- Cowrie -----------------------------------------------------------------------
    def ingest_cowrie(
        self,
        logs: Sequence[Path],
        *,
        downloads: Path | None = None,
        sensor: str | None = None,
        follow: bool = False,
        stop: StopFlag | None = None,
        batch_lines: int = BATCH_LINES,
    ) -> IngestReport:
        """Ingest Cowrie JSON logs; with ``follow``, keep reading until ``stop`` is set.

        """
        report = IngestReport(inputs=len(logs))
        open_logs: list[OpenLog] = []
        for path in logs:
            try:
                open_logs.append(OpenLog(path, self._saved_position(path)))
            except OSError as exc:
                self._error(report, "cowrie", RecordError(str(path), f"cannot read: {exc}"))
        total = sum(max(log.size - log.pos.offset, 0) for log in open_logs)
        self.progress.start("cowrie log bytes", None if follow else total)
        # Parsing in another thread or a forked process while this one stores was
        # measured and gave <= 7% (see docs/benchmarks.md): one process it is.
        reader = CowrieBatchReader(
            open_logs, cowrie.SessionTable(self._session_from_catalog), sensor=sensor,
            follow=follow, stop=stop, batch_lines=batch_lines,
            poll_seconds=FOLLOW_POLL_SECONDS, time_to_db=self.catalog.db_time,
        )
        try:
            last_backfill = time.monotonic()
            for batch in reader:
                if batch.idle:
                    due = time.monotonic() - last_backfill >= FOLLOW_BACKFILL_SECONDS
                    if downloads is not None and due:
                        self._backfill_downloads(downloads, report)
                        last_backfill = time.monotonic()
                    continue
                self._store_cowrie_batch(batch, downloads, report)
            if downloads is not None:
                self._backfill_downloads(downloads, report)
        finally:
            for log in open_logs:
                log.close()
            self._flush(report)
        return report

    def _saved_position(self, path: Path) -> LogPosition | None:
        saved = self.catalog.get_cursor(cursor_key(path))
        if saved is None:
            return None
        return LogPosition(saved["offset"], saved["line"], saved["inode"], saved["head"])

    def _session_from_catalog(self, session: str) -> cowrie.SessionInfo | None:
        with self.catalog.engine.connect() as conn:
            row = self.catalog.session_connect(conn, session)
        if row is None:
            return None
        return cowrie.SessionInfo(row["src_port"], row["dst_ip"], row["dst_port"],
                                  row["protocol"])

    def _store_cowrie_batch(
        self, batch: CowrieBatch, downloads: Path | None, report: IngestReport
    ) -> None:
        """One transaction: the batch's events, files and errors, and each log's cursor."""
        for error in batch.errors:
            self._error(report, "cowrie", error)
        report.events_read += len(batch.rows)
        report.lines_skipped += batch.lines_skipped
        with self.catalog.transaction() as conn:
            if downloads is not None:
                for ref in batch.files:
                    self._take_download(downloads, ref.sha256, ref.name, ref.seen, "cowrie",
                                        report)
            report.events_new += self.catalog.add_events(conn, batch.rows,
                                                         times_converted=True)
            self._flush(report, conn)
            for key, end in batch.positions.items():
                self.catalog.set_cursor(conn, key, offset=end.offset, line=end.line,
                                        inode=end.inode, head=end.head)
        self.progress.advance(batch.bytes_read)

    def _take_download(
        self, folder: Path, sha256: str, name: str | None, seen: datetime, source: str,
        report: IngestReport,
    ) -> bool:
        path = folder / sha256
        try:
            st = path.stat()
        except OSError:
            return False
        stamp = (st.st_size, st.st_mtime_ns)
        if not stat.S_ISREG(st.st_mode) or self._refused_downloads.get(path) == stamp:
            return False  # not a file, or refused and reported already (unchanged since)
        try:
            digests = self.blobs.put_file(path)
        except OSError as exc:
            self._error(report, source, RecordError(str(path), f"cannot read: {exc.strerror}"))
            return False
        if digests.sha256 != sha256:
            self._refused_downloads[path] = stamp
            self._error(report, source, RecordError(
                str(path), f"content hashes to {digests.sha256}, not the name it was logged "
                "under; stored under its real hash, not linked"))
        self._sample(digests, [name or sha256], seen, tags=(source,))
        report.files += 1
        return digests.sha256 == sha256

    def _backfill_downloads(self, folder: Path, report: IngestReport) -> None:
        """Files named by events of earlier runs that only now are in the download dir."""
        e, s = EVENT.c, SAMPLE.c
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(
                select(e.sample_sha256, e.time, e.url, e.raw, e.source)
                .outerjoin(SAMPLE, s.sha256 == e.sample_sha256)
                .where(e.sample_sha256.is_not(None), s.sha256.is_(None))
            ).all()
        for sha256, when, _url, raw, source in rows:
            name = _name_from_raw(source, raw)
            self._take_download(folder, sha256, name, when, source, report)
        self._flush(report)

    # -- Dionaea ---------------------------------------------------------------------
    def ingest_dionaea(
        self, database: Path, *, binaries: Path | None = None, sensor: str | None = None
    ) -> IngestReport:
        report = IngestReport(inputs=1)
        sensor_name = sensor or database.stem
        records: list[EventRecord] = []
        self.progress.start("dionaea rows", None)

        def commit() -> None:
            with self.catalog.transaction() as conn:
                report.events_new += self.catalog.add_events(
                    conn, [event_row(r) for r in records])
                self._flush(report, conn)
            records.clear()

        for item in dionaea.read_dionaea(database, sensor=sensor_name):
            if isinstance(item, RecordError):
                self._error(report, "dionaea", item)
                continue
            report.events_read += 1
            md5 = dionaea.download_md5(item)
            if md5 and binaries is not None:
                item.sample_sha256 = self._take_dionaea_binary(binaries, md5, item, report)
            records.append(item)
            self.progress.advance()
            if len(records) >= BATCH_LINES:
                commit()
        commit()
        return report

    def _take_dionaea_binary(
        self, folder: Path, md5: str, record: EventRecord, report: IngestReport
    ) -> str | None:
        path = folder / md5
        if not path.is_file():
            return None
        try:
            digests = self.blobs.put_file(path)
        except OSError as exc:
            self._error(report, "dionaea", RecordError(str(path), f"cannot read: {exc.strerror}"))
            return None
        if digests.md5 != md5.lower():
            self._error(report, "dionaea", RecordError(
                str(path), f"content md5 is {digests.md5}, not {md5}; not linked"))
        name = (record.url or "").rstrip("/").rsplit("/", 1)[-1] or md5
        self._sample(digests, [name], record.time, tags=("dionaea",))
        report.files += 1
        return digests.sha256 if digests.md5 == md5.lower() else None


def _name_from_raw(source: str, raw: str) -> str | None:
    if source != "cowrie":
        return None
    try:
        record = cowrie.parse_line(raw.encode(), "catalog", default_sensor="catalog")
    except cowrie.BadRecord:
        return None
    return record.sample_name
