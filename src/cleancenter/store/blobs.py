"""Content-addressed, read-only blob storage: ``blobs/ab/cd/<sha256>``.

A blob is written to a temporary file in the same folder, flushed to disk and then
renamed into place, so a reader never sees a half-written sample under its final name.
Blobs are mode 0400: samples are data, never programs, and nothing may execute them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOB_MODE = 0o400
CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Digests:
    """The hashes every sample gets at the door; the analyzer adds fuzzy ones later."""

    sha256: str
    sha1: str
    md5: str
    size: int


def digest_bytes(data: bytes) -> Digests:
    return Digests(
        sha256=hashlib.sha256(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        size=len(data),
    )


class BlobError(Exception):
    """A blob could not be stored or read."""


@dataclass(frozen=True)
class BlobProblem:
    """One finding of `BlobStore.verify`: kind is ``mismatch``, ``misplaced``,
    ``writable``, ``stale-temp`` or ``orphan``."""

    kind: str
    path: Path | str  # a file, or an object's s3:// URL
    detail: str


def sync_filesystem(path: Path) -> bool:
    """Flush every dirty page of the file system holding ``path`` (Linux ``syncfs``).

    One call for a whole batch of blobs instead of an ``fsync`` each; False where the
    call is not available, and the caller falls back to per-file ``fsync``.
    """
    libc = _libc()
    if libc is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    lib = ctypes.CDLL(name, use_errno=True)
    return lib if hasattr(lib, "syncfs") else None


class BlobStore:
    """Blobs under ``root``. In batch mode (`begin_batch` / `publish`) new blobs wait as
    temp files until `publish` flushes them to disk with one file-system sync and then
    renames them all into place: the same guarantee (content on disk before the name
    exists) at a fraction of the cost of an ``fsync`` per small file."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root
        self.durable = durable
        self._staged: dict[str, Path] | None = None  # sha256 -> temp file, in batch mode

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise BlobError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def location(self, sha256: str) -> Path | str:
        """Where the blob of record is, for messages: a path here, a URL in `S3BlobStore`."""
        return self.path_for(sha256)

    def readable_path(self, sha256: str) -> Path:
        """Where the blob's bytes are now: its own path, or its temp file in a batch."""
        if self._staged and sha256 in self._staged:
            return self._staged[sha256]
        return self.path_for(sha256)

    def exists(self, sha256: str) -> bool:
        return self.readable_path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.readable_path(sha256).read_bytes()

    def open(self, sha256: str) -> BinaryIO:
        return self.readable_path(sha256).open("rb")

    # -- batches -------------------------------------------------------------------
    def begin_batch(self) -> None:
        if self._staged is None:
            self._staged = {}

    def publish(self) -> int:
        """Make the batch's blobs durable and visible under their names; returns how many.

        Call it before committing catalog rows that name these blobs.
        """
        staged = self._staged
        if not staged:
            return 0
        synced = self.durable and sync_filesystem(self.root)
        if self.durable and not synced:
            for tmp in staged.values():
                with tmp.open("rb+") as fh:
                    os.fsync(fh.fileno())
        for sha256, tmp in staged.items():
            target = self.path_for(sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, BLOB_MODE)
            os.replace(tmp, target)
        if self.durable:
            if synced:
                sync_filesystem(self.root)
            else:
                for parent in {self.path_for(sha).parent for sha in staged}:
                    _fsync_dir(parent)
        count = len(staged)
        staged.clear()
        return count

    def abort_batch(self) -> None:
        """Drop blobs written since the last `publish` (their temp files go)."""
        if self._staged:
            for tmp in self._staged.values():
                tmp.unlink(missing_ok=True)
            self._staged.clear()

    def end_batch(self) -> None:
        self.publish()
        self._staged = None

    def put_bytes(self, data: bytes) -> Digests:
        """Store ``data``; identical content is stored once."""
        writer = self.writer()
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def put_file(self, source: Path) -> Digests:
        """Stream ``source`` into the store, hashing as it is copied."""
        writer = self.writer()
        try:
            with source.open("rb") as src:
                while chunk := src.read(CHUNK):
                    writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def writer(self, limit: int | None = None) -> BlobWriter:
        """A push-style writer: feed it chunks, then `commit` (or `abort`)."""
        return BlobWriter(self, limit)

    def _place(self, tmp: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, BLOB_MODE)
        os.replace(tmp, target)
        if self.durable:
            _fsync_dir(target.parent)

    def _stored(self, sha256: str) -> bool:
        """Is the blob of record there already (then a new copy is dropped)?"""
        return self.path_for(sha256).exists()

    def _stage(self, sha256: str, tmp: Path) -> bool:
        """In a batch: keep ``tmp`` for `publish`; False when not batching."""
        if self._staged is None:
            return False
        if sha256 in self._staged or self._stored(sha256):
            tmp.unlink()
        else:
            self._staged[sha256] = tmp
        return True

    def iter_paths(self) -> Iterator[Path]:
        """Every file under the blob root, sorted, including strays (for `verify`)."""
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                yield Path(dirpath) / name

    def iter_sha256(self) -> Iterator[str]:
        for path in self.iter_paths():
            if _SHA256.match(path.name):
                yield path.name

    def count(self) -> int:
        """Files in the store (strays included), for a progress bar."""
        return sum(1 for _ in self.iter_paths())

    def audit(self) -> Iterator[tuple[str | None, list[BlobProblem]]]:
        """Every stored file re-hashed: (its sha256 name, or None when it is no blob at
        all, such as a stale temp file; its problems)."""
        for path in self.iter_paths():
            problems = self.check(path)
            stray = any(p.kind in ("stale-temp", "misplaced") for p in problems)
            yield (None if stray else path.name), problems

    def check(self, path: Path) -> list[BlobProblem]:
        """Re-hash one stored file and check its name, place and mode."""
        problems: list[BlobProblem] = []
        name = path.name
        if name.startswith(TMP_PREFIX):
            return [BlobProblem("stale-temp", path, "temporary file left by an interrupted write")]
        if not _SHA256.match(name) or path.parent != self.path_for(name).parent:
            return [BlobProblem("misplaced", path, "not a blob name or not in its ab/cd folder")]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        actual = digest.hexdigest()
        if actual != name:
            problems.append(BlobProblem("mismatch", path, f"content hashes to {actual}"))
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o333:
            problems.append(BlobProblem("writable", path, f"mode {mode:o}, expected 400"))
        return problems


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobTooLarge(BlobError):
    """More bytes arrived than the writer's limit allows (an archive bomb, say)."""


class BlobWriter:
    """Writes one blob: a temp file in the blob root, hashed as it grows.

    Nothing appears under a sha256 name until `commit`, which flushes the file to disk
    and renames it into ``ab/cd/<sha256>``; `abort` (or any failure) removes the temp.
    """

    def __init__(self, store: BlobStore, limit: int | None = None) -> None:
        self.store = store
        self.limit = limit
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._sha1 = hashlib.sha1()
        self._md5 = hashlib.md5()
        store.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=store.root)
        self.tmp = Path(tmp_name)
        self._out: BinaryIO | None = os.fdopen(fd, "wb")

    def write(self, chunk: bytes | bytearray | memoryview) -> int:
        if self._out is None:
            raise BlobError("write to a closed blob writer")
        n = len(chunk)
        if self.limit is not None and self.size + n > self.limit:
            raise BlobTooLarge(f"more than {self.limit} bytes")
        self.size += n
        self._sha256.update(chunk)
        self._sha1.update(chunk)
        self._md5.update(chunk)
        self._out.write(chunk)
        return n

    def commit(self) -> Digests:
        if self._out is None:
            raise BlobError("blob writer already closed")
        out, self._out = self._out, None
        try:
            digests = Digests(
                self._sha256.hexdigest(), self._sha1.hexdigest(), self._md5.hexdigest(), self.size
            )
            out.flush()
            if self.store._staged is not None:
                out.close()
                self.store._stage(digests.sha256, self.tmp)
                return digests
            if self.store.durable:
                os.fsync(out.fileno())
            out.close()
            target = self.store.path_for(digests.sha256)
            if self.store._stored(digests.sha256):
                self.tmp.unlink()
            else:
                self.store._place(self.tmp, target)
            return digests
        except BaseException:
            out.close()
            self.tmp.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self.tmp.unlink(missing_ok=True)
