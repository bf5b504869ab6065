"""The goodware index: every string of a benign corpus, as 64-bit hashes, so rule
generation can drop strings that benign programs also carry.

Why hashes in a sorted numpy array: a benign corpus of 1 GB holds millions of distinct
strings; 8 bytes each keeps the index small (about 10 MB for /usr/bin plus the test
material), it loads in milliseconds, and a lookup is one ``np.searchsorted``. A false
positive (two strings with the same 64-bit hash) only drops a candidate string, never
adds one. Strings are hashed by their text: ``CreateFileW`` stored as ASCII or as
UTF-16LE is the same string here, which is the cautious choice.

The index also records the files it read (path and size): rule generation scans those
same files with the candidate rules, since a string absent from the index can still sit
inside a longer benign string. Symlinks are not followed inside the walked folders (a
path named on the command line is), non-regular files (FIFOs, devices) are never opened,
files over the size cap are counted and skipped, unreadable ones are recorded as errors
and the rest is indexed. Everything is read, nothing is run.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import stat
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cleancenter.analyze.strings import scan_strings
from cleancenter.atomicfile import write_atomically

INDEX_FILE = Path("goodware") / "index.npz"
FORMAT = 1
MIN_LEN = 6
DEFAULT_MAX_SIZE = 64 << 20
MAX_STRINGS = 10_000_000  # per file: no cap in practice, but never unbounded
CHUNK = 16  # files per task when indexing in worker processes

Hashes = npt.NDArray[np.uint64]


class Progress(Protocol):
    """What a long job tells a progress display (`console.RichProgress` fits)."""

    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, n: int = 1) -> None: ...


class GoodwareError(Exception):
    """The goodware index is missing or cannot be read."""


def index_path(data_dir: Path) -> Path:
    """Where the center keeps its goodware index."""
    return data_dir / INDEX_FILE


def string_hash(data: bytes) -> int:
    """The 64-bit hash of one string's bytes (its text, latin-1)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def string_hashes(texts: Iterable[bytes]) -> Hashes:
    values = [string_hash(t) for t in texts]
    return np.array(values, dtype=np.uint64)


@dataclass(frozen=True)
class IndexedFile:
    path: str
    size: int


@dataclass(frozen=True)
class FileError:
    path: str
    message: str


@dataclass
class GoodwareIndex:
    """Sorted, unique string hashes of the benign corpus and the files they came from."""

    hashes: Hashes
    files: list[IndexedFile]
    errors: list[FileError] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # symlink, too_large, not_regular
    created: str = ""
    min_len: int = MIN_LEN
    max_size: int = DEFAULT_MAX_SIZE
    seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def contains(self, string_bytes: bytes) -> bool:
        """Whether a benign file holds exactly this string (ASCII or UTF-16LE)."""
        return bool(self.contains_many([string_bytes])[0])

    def contains_many(self, texts: Sequence[bytes]) -> npt.NDArray[np.bool_]:
        """`contains` for many strings at once (one vectorized search)."""
        wanted = string_hashes(texts)
        if not len(self.hashes) or not len(wanted):
            return np.zeros(len(wanted), dtype=np.bool_)
        at = np.searchsorted(self.hashes, wanted)
        at[at >= len(self.hashes)] = len(self.hashes) - 1
        return np.asarray(self.hashes[at] == wanted, dtype=np.bool_)

    def summary(self, max_errors: int = 20) -> dict[str, Any]:
        return {"files": len(self.files), "bytes": self.total_bytes,
                "strings": len(self.hashes), "errors": len(self.errors),
                "error_list": [{"path": e.path, "message": e.message}
                               for e in self.errors[:max_errors]],
                "skipped": self.skipped, "created": self.created, "min_len": self.min_len,
                "max_size": self.max_size, "seconds": round(self.seconds, 3)}

    def save(self, path: Path) -> None:
        """Write the index atomically (temp file, fsync, rename): a reader never sees
        half an index."""
        meta = {"format": FORMAT, "created": self.created, "min_len": self.min_len,
                "max_size": self.max_size, "seconds": self.seconds, "skipped": self.skipped,
                "files": [[f.path, f.size] for f in self.files],
                "errors": [[e.path, e.message] for e in self.errors]}
        buffer = io.BytesIO()
        np.savez(buffer, hashes=self.hashes,
                 meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        write_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> GoodwareIndex:
        try:
            with np.load(path, allow_pickle=False) as data:
                hashes = np.asarray(data["hashes"], dtype=np.uint64)
                meta = json.loads(bytes(data["meta"]).decode())
        except FileNotFoundError as exc:
            raise GoodwareError(f"no goodware index at {path}; build one with "
                                "`cleancenter definitions goodware build PATH...`") from exc
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise GoodwareError(f"{path}: not a readable goodware index: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise GoodwareError(f"{path}: goodware index format {found!r} is not {FORMAT}; "
                                "build it again")
        if len(hashes) > 1 and not bool((hashes[1:] > hashes[:-1]).all()):
            raise GoodwareError(f"{path}: goodware hashes are not sorted; build it again")
        try:
            return cls(hashes=hashes, files=[IndexedFile(str(p), int(s)) for p, s in meta["files"]],
                       errors=[FileError(str(p), str(m)) for p, m in meta["errors"]],
                       skipped=dict(meta["skipped"]), created=str(meta["created"]),
                       min_len=int(meta["min_len"]), max_size=int(meta["max_size"]),
                       seconds=float(meta["seconds"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise GoodwareError(f"{path}: goodware index metadata is malformed: {exc}") from exc


def load_index(data_dir: Path) -> GoodwareIndex | None:
    """The center's goodware index, or None when none was built."""
    path = index_path(data_dir)
    if not path.exists():
        return None
    return GoodwareIndex.load(path)


# -- building ------------------------------------------------------------------------


@dataclass
class _Walk:
    files: list[tuple[str, int]] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=lambda: {
        "symlink": 0, "too_large": 0, "not_regular": 0, "duplicate": 0})


def _walk(paths: Iterable[Path], max_size: int) -> _Walk:
    """The regular files under ``paths``; symlinks below them are not followed."""
    walk = _Walk()
    seen: set[tuple[int, int]] = set()

    def consider(path: str, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode):
            walk.skipped["symlink"] += 1
        elif not stat.S_ISREG(st.st_mode):
            walk.skipped["not_regular"] += 1
        elif st.st_size > max_size:
            walk.skipped["too_large"] += 1
        elif (st.st_dev, st.st_ino) in seen:
            walk.skipped["duplicate"] += 1
        else:
            seen.add((st.st_dev, st.st_ino))
            walk.files.append((path, st.st_size))

    for root in paths:
        try:
            top = os.stat(root)  # a path the user named is followed
        except OSError as exc:
            walk.errors.append(FileError(str(root), exc.strerror or str(exc)))
            continue
        if not stat.S_ISDIR(top.st_mode):
            consider(str(Path(root).absolute()), top)
            continue

        def on_error(exc: OSError) -> None:
            walk.errors.append(FileError(str(exc.filename), exc.strerror or str(exc)))

        for dirpath, dirnames, filenames in os.walk(Path(root).absolute(), onerror=on_error):
            dirnames.sort()
            for name in dirnames:  # os.walk does not enter symlinked folders; count them
                if os.path.islink(os.path.join(dirpath, name)):
                    walk.skipped["symlink"] += 1
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    consider(path, os.lstat(path))
                except OSError as exc:
                    walk.errors.append(FileError(path, exc.strerror or str(exc)))
    return walk


def read_regular(path: str, max_size: int) -> bytes:
    """A regular file's bytes, opened without following a symlink and without blocking on
    a FIFO that replaced it since the walk; raises OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path}: not a regular file")
        if st.st_size > max_size:
            raise OSError(f"{path}: larger than {max_size} bytes")
        return fh.read(max_size + 1)[:max_size]


def _index_files(paths: Sequence[str], min_len: int, max_size: int
                 ) -> tuple[Hashes, list[tuple[str, int]], list[tuple[str, str]]]:
    """Worker task: the unique string hashes of a few files, plus what could be read."""
    chunks: list[Hashes] = []
    done: list[tuple[str, int]] = []
    errors: list[tuple[str, str]] = []
    for path in paths:
        try:
            data = read_regular(path, max_size)
        except OSError as exc:
            errors.append((path, exc.strerror or str(exc)))
            continue
        table = scan_strings(data, min_len, max_bytes=max_size, max_strings=MAX_STRINGS)
        texts = {t.encode("latin-1") for t in table.texts}
        chunks.append(string_hashes(texts))
        done.append((path, len(data)))
    hashes = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, np.uint64)
    return hashes, done, errors


def _chunks(items: Sequence[tuple[str, int]], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield [path for path, _ in items[i:i + size]]


def build_index(paths: Iterable[Path], *, max_size: int = DEFAULT_MAX_SIZE,
                min_len: int = MIN_LEN, workers: int | None = None,
                progress: Progress | None = None) -> GoodwareIndex:
    """Walk ``paths`` and index the strings of every regular file found (see module
    notes); worker processes share the string scanning (``workers=1``: in process)."""
    started = time.perf_counter()
    walk = _walk(paths, max_size)
    workers = max(1, workers or os.cpu_count() or 1)
    if progress is not None:
        progress.start("indexing goodware", len(walk.files))
    parts: list[Hashes] = []
    done: dict[str, int] = {}
    errors = list(walk.errors)

    def take(result: tuple[Hashes, list[tuple[str, int]], list[tuple[str, str]]],
             count: int) -> None:
        hashes, ok, bad = result
        parts.append(hashes)
        done.update(ok)
        errors.extend(FileError(p, m) for p, m in bad)
        if progress is not None:
            progress.advance(count)

    batches = list(_chunks(walk.files, CHUNK))
    if workers == 1 or len(batches) < 2:
        for batch in batches:
            take(_index_files(batch, min_len, max_size), len(batch))
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no inherited state, no fork issues
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(batches)),
                                                    mp_context=context) as pool:
            futures = {pool.submit(_index_files, batch, min_len, max_size): len(batch)
                       for batch in batches}
            for future in concurrent.futures.as_completed(futures):
                take(future.result(), futures[future])
    hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    files = [IndexedFile(path, done[path]) for path, _ in walk.files if path in done]
    return GoodwareIndex(
        hashes=hashes.astype(np.uint64), files=files,
        errors=sorted(errors, key=lambda e: e.path),
        skipped={k: v for k, v in walk.skipped.items() if v},
        created=datetime.now(UTC).isoformat(), min_len=min_len, max_size=max_size,
        seconds=time.perf_counter() - started)
