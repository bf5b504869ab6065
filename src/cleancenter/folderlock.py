"""One writer at a time in a folder, across processes: an exclusive lock on the folder
itself (no lock file to list, serve or clean up). Center-side only (it needs fcntl).

Used where a read-decide-write must not interleave: choosing the next release version,
publishing over ``definitions-latest``, updating SHA256SUMS. Locks held by one process
on one folder do not nest: take the outermost one and pass ``locked=True`` inwards.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's lock for the block (waits while another process holds it)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
