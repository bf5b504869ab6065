"""The file check: walk the roots, hash every file and scan it with the rules, once.

Each file is read once, by one ``open`` that follows no link and blocks on nothing, into
memory: the hash and the YARA scan see the same bytes (yara-x scans bytes; handing it the
path would open the file a second time, maybe another file). The size limit bounds the
memory of each worker. The walk runs in this process; hashing and YARA run in
one worker process per core (yara-x's Python scanner holds the GIL, threads would not
help), each of which deserializes the compiled rules once. Unchanged files come from
the `ScanCache` and are not read at all.
"""

from __future__ import annotations

import fnmatch
import hashlib
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import yara_x

from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.findings import Evidence, Finding
from cleancenter.cleaner.rules import (
    CompiledRules,
    is_trait_rule,
    load_serialized,
    new_scanner,
    rule_evidence,
    set_externals,
)
from cleancenter.cleaner.scancache import Identity, ScanCache
from cleancenter.textsafe import display_path

DEFAULT_MAX_SIZE = 128 << 20
CHUNK_FILES = 64
CHUNK_BYTES = 32 << 20
ALONE_BYTES = 8 << 20


@dataclass
class FileScanOptions:
    roots: list[Path]
    excludes: list[str] = field(default_factory=list)  # glob patterns on the full path
    max_size: int = DEFAULT_MAX_SIZE
    one_filesystem: bool = True
    workers: int = 0  # 0: one per core


@dataclass
class FileScanStats:
    files: int = 0
    bytes: int = 0
    from_cache: int = 0
    skipped_large: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"files": self.files, "bytes": self.bytes, "from_cache": self.from_cache,
                "skipped_large": self.skipped_large, "errors": len(self.errors)}


@dataclass(frozen=True)
class _Item:
    path: str
    identity: Identity


WORKER_MEMORY = 400 << 20  # measured peak of one worker: rules, a big file, yara-x's own


def default_workers() -> int:
    """One per core, but no more than memory allows: a worker peaks at about 400 MB, and
    the cleaner must not push the machine it is cleaning into swap."""
    cores = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on every system
        return cores
    return max(1, min(cores, memory // (4 * WORKER_MEMORY)))


# -- walking ----------------------------------------------------------------------------

def walk(options: FileScanOptions, stats: FileScanStats,
         never: tuple[str, ...] = ()) -> Iterator[_Item]:
    """Regular files under the roots; symlinks are not followed, other devices skipped."""
    for root in options.roots:
        try:
            root_stat = os.stat(root)
        except OSError as exc:
            stats.errors.append({"path": str(root), "error": f"cannot read root: {exc}"})
            continue
        if stat.S_ISREG(root_stat.st_mode):
            yield from _item(str(root), root_stat, options, stats)
            continue
        stack = [str(root)]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    listed = list(entries)
            except OSError as exc:
                stats.errors.append({"path": display_path(folder), "error": f"cannot list: {exc}"})
                continue
            for entry in listed:
                path = entry.path
                if _excluded(path, options.excludes) or path.startswith(never):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    stats.errors.append({"path": display_path(path),
                                         "error": f"cannot stat: {exc}"})
                    continue
                if options.one_filesystem and st.st_dev != root_stat.st_dev:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)
                elif stat.S_ISREG(st.st_mode):
                    yield from _item(path, st, options, stats)


def _item(path: str, st: os.stat_result, options: FileScanOptions,
          stats: FileScanStats) -> Iterator[_Item]:
    if st.st_size > options.max_size:
        stats.skipped_large += 1
        return
    yield _Item(path, Identity.of(st))


def _excluded(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)


# -- the worker side --------------------------------------------------------------------

_scanner: yara_x.Scanner | None = None
_source = ""
_max_size = DEFAULT_MAX_SIZE


def _init_worker(rules_path: str | None, source: str, max_size: int) -> None:
    global _scanner, _source, _max_size
    _source, _max_size = source, max_size
    _scanner = new_scanner(load_serialized(Path(rules_path))) if rules_path else None


# path, identity read (fstat), sha256, rules, error
_WorkResult = tuple[str, Identity | None, str | None, list[Evidence], str | None]
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _scan_chunk(paths: list[str]) -> list[_WorkResult]:
    return [_scan_one(path) for path in paths]


def _read_once(path: str) -> tuple[Identity, bytes]:
    """The file's bytes and identity from one open: never a FIFO or device swapped in
    since the walk (non-blocking open, then a regular-file check), never a symlink."""
    try:
        fd = os.open(path, _OPEN_FLAGS | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs ownership; retry without it
        fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file any more")
        if st.st_size > _max_size:
            raise OSError(0, f"grew past the size limit ({st.st_size:,} bytes)")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(_max_size + 1)
    finally:
        os.close(fd)
    return Identity.of(st), data


def _scan_one(path: str) -> _WorkResult:
    """Hash and scan one file from the same bytes; errors are returned, never raised.

    The whole file is read into memory (at most the size limit, 128 MB by default, per
    worker): yara-x scans bytes only, and re-opening the path for it could scan another
    file than the one hashed."""
    try:
        identity, data = _read_once(path)
    except OSError as exc:
        return path, None, None, [], f"cannot read: {exc.strerror or exc}"
    sha256 = hashlib.sha256(data).hexdigest()
    if _scanner is None:
        return path, identity, sha256, [], None
    set_externals(_scanner, path)
    try:
        results = _scanner.scan(data)
    except (yara_x.ScanError, yara_x.TimeoutError) as exc:
        return path, identity, sha256, [], f"YARA scan incomplete: {exc}"
    return path, identity, sha256, rule_evidence(results.matching_rules, _source), None


# -- the scan -------------------------------------------------------------------------------

Progress = Callable[[int, int], None]  # files done, bytes done


class FileScanner:
    """Use as a context manager: the worker pool lives as long as the block."""

    def __init__(self, defs: Definitions, rules: CompiledRules, options: FileScanOptions,
                 cache: ScanCache | None = None, never: tuple[str, ...] = ()) -> None:
        self.defs = defs
        self.rules = rules
        self.options = options
        self.cache = cache
        self.never = never  # folders never scanned (the cleaner's own quarantine)
        self.stats = FileScanStats()
        self.workers = options.workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> FileScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def start_workers(self) -> None:
        """Start the workers now, so they load the rules while this process walks."""
        if self._pool is not None or self.workers == 1:
            return
        rules_path = str(self.rules.path) if self.rules.path else None
        if not self.rules.empty and rules_path is None:
            raise ValueError("compiled rules must be serialized for the worker processes")
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("forkserver"),
            initializer=_init_worker,
            initargs=(rules_path, self.defs.source, self.options.max_size))
        for _ in range(self.workers):  # a forkserver pool starts every worker on submit
            self._pool.submit(_scan_chunk, [])

    def collect(self) -> list[_Item]:
        """Walk first: the total lets the progress bar tell how far along the scan is."""
        return list(walk(self.options, self.stats, self.never))

    def scan(self, items: list[_Item], progress: Progress | None = None) -> list[Finding]:
        findings: list[Finding] = []
        todo: list[_Item] = []
        cached_bytes = 0
        for item in items:
            cached = self.cache.get(item.path, item.identity) if self.cache else None
            if cached is None:
                todo.append(item)
                continue
            self.stats.from_cache += 1
            self._account(item)
            cached_bytes += item.identity.size
            findings.extend(self._judge(item, cached.sha256, cached.rules))
        if progress and self.stats.from_cache:
            progress(self.stats.from_cache, cached_bytes)
        identities = {item.path: item for item in todo}
        for results in self._run(todo):
            done_bytes = 0
            for path, read_identity, sha256, rules, error in results:
                item = identities[path]
                self._account(item)
                done_bytes += item.identity.size
                if error:
                    self.stats.errors.append({"path": display_path(path), "error": error})
                if sha256 is None:
                    continue
                if self.cache is not None and error is None and read_identity is not None:
                    self.cache.put(path, read_identity, sha256, rules)
                findings.extend(self._judge(item, sha256, rules))
            if progress:
                progress(len(results), done_bytes)
        if self.cache is not None:
            self.cache.flush()
        return findings

    def _account(self, item: _Item) -> None:
        self.stats.files += 1
        self.stats.bytes += item.identity.size

    def _run(self, todo: list[_Item]) -> Iterator[list[_WorkResult]]:
        """Chunks of results; the largest files go first so no worker idles at the end."""
        chunks = list(_chunks(sorted(todo, key=lambda i: -i.identity.size)))
        if not chunks:  # all from the cache: no worker, no rules to load
            return
        if self.workers == 1 or (len(chunks) <= 1 and self._pool is None):
            _init_worker(str(self.rules.path) if self.rules.path else None, self.defs.source,
                         self.options.max_size)
            for chunk in chunks:
                yield _scan_chunk(chunk)
            return
        self.start_workers()
        assert self._pool is not None
        pending: set[Future[list[_WorkResult]]] = set()
        for chunk in chunks:  # keep a bounded number of chunks in flight
            pending.add(self._pool.submit(_scan_chunk, chunk))
            if len(pending) >= self.workers * 3:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def _judge(self, item: _Item, sha256: str, rules: list[Evidence]) -> list[Finding]:
        """What we conclude from what the file has: hash, rules, name."""
        evidence: list[Evidence] = []
        severity = "info"
        kinds = []
        known = self.defs.hashes.get(sha256)
        if known is not None:
            evidence.append(Evidence("hash", sha256, source=self.defs.source,
                                     detail=known.family or ""))
            severity, kinds = "malicious", ["hash-match"]
        if rules:
            evidence.extend(rules)
            kinds.append("yara-match")
            if any(not is_trait_rule(rule) for rule in rules):
                severity = "malicious"
            elif severity == "info":
                severity = "suspicious"
        name = os.path.basename(item.path).lower()
        if name in self.defs.iocs.filenames:
            evidence.append(Evidence("ioc", name, source=self.defs.source,
                                     detail="file name of a known bot"))
            kinds.append("ioc-filename")
            if severity == "info":
                severity = "suspicious"
        if not evidence:
            return []
        return [Finding(
            check="file", kind=kinds[0], severity="malicious" if severity == "malicious"
            else "suspicious", where=display_path(item.path), why=_why(evidence),
            evidence=evidence,
            target={"path": item.path, "sha256": sha256, "size": item.identity.size})]


def _why(evidence: list[Evidence]) -> str:
    first = evidence[0]
    if first.type == "hash":
        family = f" ({first.detail})" if first.detail else ""
        return f"sha256 is a known bot{family}"
    if first.type == "rule":
        more = f" and {len(evidence) - 1} more" if len(evidence) > 1 else ""
        return f"YARA rule {first.value}{more}"
    return f"file name {first.value} is a known bot's"


def _chunks(items: list[_Item]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for item in items:
        if item.identity.size >= ALONE_BYTES:  # a big file is a task of its own
            yield [item.path]
            continue
        chunk.append(item.path)
        size += item.identity.size
        if len(chunk) >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
