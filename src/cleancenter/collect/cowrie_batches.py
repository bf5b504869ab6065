"""Cowrie logs read in batches, each with the position to save once it is stored.

This is the reading half of Cowrie ingest (no catalog writes): it parses lines, fills
in every record's connection facts from its session, and hands out `CowrieBatch`es for
the ingest step to store, each in one transaction with the position it ends at.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cleancenter.collect import cowrie
from cleancenter.collect.logfile import LogPosition, head_hash, read_lines, resume_position
from cleancenter.collect.records import EventRecord, RecordError


@dataclass
class CowrieBatch:
    log: OpenLog | None
    records: list[EventRecord] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    end: LogPosition | None = None
    bytes_read: int = 0
    lines_skipped: int = 0
    idle: bool = False  # follow mode: every log is read to its end for now


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
    def __init__(
        self,
        logs: list[OpenLog],
        sessions: cowrie.SessionTable,
        *,
        sensor: str | None,
        follow: bool,
        stop: threading.Event | None,
        batch_lines: int,
        poll_seconds: float,
    ) -> None:
        self.logs = logs
        self.sessions = sessions
        self.sensor = sensor
        self.follow = follow
        self.stop = stop or threading.Event()
        self.batch_lines = batch_lines
        self.poll_seconds = poll_seconds

    def __iter__(self) -> Iterator[CowrieBatch]:
        while True:
            for log in self.logs:
                while not self.stop.is_set():
                    batch = self._read_batch(log)
                    if batch is None:
                        break
                    yield batch
                    if batch.bytes_read == 0:
                        break  # only an unfinished last line is left
                if self.follow:
                    log.reopen_if_rotated()
            if not self.follow or self.stop.is_set():
                return
            yield CowrieBatch(log=None, idle=True)
            self.stop.wait(self.poll_seconds)

    def _read_batch(self, log: OpenLog) -> CowrieBatch | None:
        """The next batch of ``log``, or None when nothing (complete) is left."""
        final = not self.follow
        pos = log.pos
        end = LogPosition(pos.offset, pos.line, pos.inode, pos.head)
        batch = CowrieBatch(log=log, end=end)
        for line, number, offset in read_lines(log.fh, pos, final=final,
                                               max_lines=self.batch_lines):
            location = f"{log.path}:{number}"
            if not line.strip():
                batch.lines_skipped += 1
                end.offset, end.line = offset, number
                continue
            item = cowrie.parse_or_error(line, location, self.sensor)
            if isinstance(item, RecordError):
                if final and not line.endswith(b"\n"):
                    # an unfinished last line, left to be read again next time; reported by
                    # the batch that starts with it (a batch with lines before it stops
                    # short of it, and the next one starts there)
                    if end.offset == pos.offset:
                        batch.errors.append(RecordError(
                            location, f"{item.message} (last line has no newline; left for "
                            "the next run)"))
                    break
                batch.errors.append(item)
            else:
                if self.sensor is not None:
                    item.sensor = self.sensor
                self.sessions.enrich(item)
                if item.kind == "disconnect" and item.session:
                    self.sessions.forget(item.session)
                batch.records.append(item)
            end.offset, end.line = offset, number
        if end.offset == pos.offset:
            return None if not batch.errors else batch
        batch.bytes_read = end.offset - pos.offset
        log.pos = end
        return batch
