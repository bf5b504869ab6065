"""Files that are complete or absent: written to a temp file beside the target, fsynced,
then renamed over it. A crash leaves at most a ``.tmp-*`` file, never a half-written
file under the real name. Shared by the center and the cleaner (it needs only the stdlib).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_output(path: Path, *, mode: int | None = None, prefix: str = ".tmp-"
                  ) -> Iterator[BinaryIO]:
    """A binary file to write; it replaces ``path`` only if the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        if mode is not None and not hasattr(os, "fchmod"):  # Windows before Python 3.13
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    with atomic_output(path, mode=mode) as out:
        out.write(data)
