"""Cowrie logs read in batches, each with the position to save once it is stored.

This is the reading half of Cowrie ingest (no catalog writes): it parses lines, fills
in every record's connection facts from its session, and hands out `CowrieBatch`es for
the ingest step to store, each in one transaction with the position it ends at.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cleancenter.collect import cowrie
from cleancenter.collect.logfile import LogPosition, head_hash, read_lines, resume_position
from cleancenter.collect.records import FileRef, RecordError, event_row


@dataclass
class CowrieBatch:
    """Records read from one or more logs, and where each log's next line starts.

    Plain, picklable data: it may be made in another process than the one storing it.
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)  # see `event_row`
    files: list[FileRef] = field(default_factory=list)  # downloads/uploads to take
    errors: list[RecordError] = field(default_factory=list)
    positions: dict[str, LogPosition] = field(default_factory=dict)  # cursor key -> next
    bytes_read: int = 0
    lines_skipped: int = 0
    idle: bool = False  # follow mode: every log is read to its end for now

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.errors)


class StopSignal(Protocol):
    """A `threading.Event` or anything that answers the same two questions."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class OpenLog:
    """A log being read, and where its next unread line starts."""

    def __init__(self, path: Path, saved: LogPosition | None) -> None:
        self.path = path
        self.key = cursor_key(path)
        self.fh: BinaryIO = path.open("rb")
        self.pos = resume_position(path, self.fh, saved)
        self.size = os.fstat(self.fh.fileno()).st_size

    def reopen_if_rotated(self) -> None:
        """Once the old file is read to its end: if the name now points to a new file
        (rotation) or the file shrank (truncation), start over on the new one."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if st.st_ino != self.pos.inode or st.st_size < self.pos.offset:
            if os.fstat(self.fh.fileno()).st_size > self.pos.offset and st.st_ino != self.pos.inode:
                return  # the old file grew after its last read: finish it first
            self.fh.close()
            self.fh = self.path.open("rb")
            self.pos = LogPosition(0, 0, os.fstat(self.fh.fileno()).st_ino, None)
        elif self.pos.head is None:
            self.pos.head = head_hash(self.fh)

    def close(self) -> None:
        self.fh.close()


def cursor_key(path: Path) -> str:
    return f"cowrie:{path.resolve()}"


class CowrieBatchReader:
    """Batches of up to ``batch_lines`` lines, across logs: a day of small rotated logs
    is stored in a few transactions, not one per file."""

    def __init__(
        self,
        logs: list[OpenLog],
        sessions: cowrie.SessionTable,
        *,
        sensor: str | None,
        follow: bool,
        stop: StopSignal | None,
        batch_lines: int,
        poll_seconds: float,
        time_to_db: Callable[[datetime], Any] | None = None,
    ) -> None:
        self.time_to_db = time_to_db
        self.logs = logs
        self.sessions = sessions
        self.sensor = sensor
        self.follow = follow
        self.stop = stop or threading.Event()
        self.batch_lines = batch_lines
        self.poll_seconds = poll_seconds

    def __iter__(self) -> Iterator[CowrieBatch]:
        while True:
            batch = CowrieBatch()
            for log in self.logs:
                while not self.stop.is_set() and self._fill(batch, log):
                    yield batch  # full; the log may have more
                    batch = CowrieBatch()
                if self.follow:
                    log.reopen_if_rotated()
            if batch.positions:
                yield batch
            if not self.follow or self.stop.is_set():
                return
            yield CowrieBatch(idle=True)
            self.stop.wait(self.poll_seconds)

    def _fill(self, batch: CowrieBatch, log: OpenLog) -> bool:
        """Read lines of ``log`` into ``batch``; True when the batch is full."""
        final = not self.follow
        pos = log.pos
        end = LogPosition(pos.offset, pos.line, pos.inode, pos.head)
        room = self.batch_lines - batch.size
        lines_read = 0
        stopped_at_unfinished_line = False
        for line, number, offset in read_lines(log.fh, pos, final=final, max_lines=room):
            lines_read += 1
            location = f"{log.path}:{number}"
            if not line.strip():
                batch.lines_skipped += 1
                end.offset, end.line = offset, number
                continue
            item = cowrie.parse_or_error(line, location, self.sensor)
            if isinstance(item, RecordError):
                if final and not line.endswith(b"\n"):
                    # an unfinished last line: reported once, left to be read next run
                    batch.errors.append(RecordError(
                        location, f"{item.message} (last line has no newline; left for the "
                        "next run)"))
                    stopped_at_unfinished_line = True
                    break
                batch.errors.append(item)
            else:
                if self.sensor is not None:
                    item.sensor = self.sensor
                self.sessions.enrich(item)
                if item.kind == "disconnect" and item.session:
                    self.sessions.forget(item.session)
                batch.rows.append(event_row(item, self.time_to_db))
                if item.sample_sha256:
                    batch.files.append(FileRef(item.sample_sha256, item.sample_name, item.time))
            end.offset, end.line = offset, number
        full = lines_read == room and not stopped_at_unfinished_line  # there may be more
        if end.offset != pos.offset:
            batch.bytes_read += end.offset - pos.offset
            batch.positions[log.key] = end
            log.pos = LogPosition(end.offset, end.line, end.inode, end.head)
        elif batch.errors and log.key not in batch.positions:
            batch.positions[log.key] = end  # nothing read, but an error to store
        return full
