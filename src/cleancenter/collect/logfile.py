"""Reading a growing log file line by line, from a saved position.

A position is (byte offset, line number) plus the file's identity (inode and a hash of
its first line), so that a restarted run resumes where the last one stopped, and a log
that was rotated or rewritten is read again from its start.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HEAD_BYTES = 4096


@dataclass
class LogPosition:
    offset: int = 0
    line: int = 0
    inode: int | None = None
    head: str | None = None


def head_hash(fh: BinaryIO) -> str | None:
    """Hash of the first line (at most 4 KiB): the file's identity across restarts."""
    here = fh.tell()
    fh.seek(0)
    first = fh.readline(HEAD_BYTES)
    fh.seek(here)
    if not first.endswith(b"\n") and len(first) < HEAD_BYTES:
        return None  # the first line is not complete yet: no identity to compare
    return hashlib.sha256(first).hexdigest()


def resume_position(path: Path, fh: BinaryIO, saved: LogPosition | None) -> LogPosition:
    """Where to start reading ``fh``: the saved place when it is still the same file.

    Same file: not shorter than the saved offset, and the same first line; when either
    side has no complete first line yet, the same inode must vouch for it instead.
    """
    st = os.fstat(fh.fileno())
    head = head_hash(fh)
    same_head = saved is not None and saved.head is not None and saved.head == head
    if (
        saved is not None
        and saved.offset <= st.st_size
        and (saved.head is None or same_head)
        and (same_head or saved.inode is None or saved.inode == st.st_ino)
    ):
        return LogPosition(saved.offset, saved.line, st.st_ino, head or saved.head)
    return LogPosition(0, 0, st.st_ino, head)


def read_lines(
    fh: BinaryIO, pos: LogPosition, *, final: bool, max_lines: int
) -> Iterator[tuple[bytes, int, int]]:
    """Yield (line, line number, offset after it) from ``pos`` on, at most ``max_lines``.

    A last line without its newline may still be being written: with ``final`` False it
    is left for later; with ``final`` True it is yielded too.
    """
    fh.seek(pos.offset)
    offset, number = pos.offset, pos.line
    for _ in range(max_lines):
        line = fh.readline()
        if not line:
            return
        if not line.endswith(b"\n") and not final:
            return
        offset += len(line)
        number += 1
        yield line, number, offset
