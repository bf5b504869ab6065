"""YARA rule packs: folders of community rules, compiled with yara-x, cached, scanned.

A *pack* is a folder of ``*.yar``/``*.yara`` files (ReversingLabs, Elastic,
signature-base, your own). Each file is compiled into a namespace of its own (its path
inside the folder), so packs whose files reuse rule names still load. A file that does
not compile is reported (file, message) and left out; the rest of the pack still works.

Why yara-x: measured faster than yara-python on these packs. Compiling is the slow
part (seconds per pack), so compiled rules are serialized into a cache keyed by the
pack's file contents, the yara-x version and the compile options; a later load with
unchanged files only deserializes.

signature-base's LOKI/THOR rules read the externals ``filename``, ``filepath``,
``extension``, ``filetype`` and ``owner``: every pack declares them (empty strings) at
compile time and `RuleSet.scan` sets them per scanned sample.

Processes: yara-x objects cannot be pickled and a yara-x scanner is not shared between
threads. The analysis pool should pass `RuleSet.refs()` (picklable) to each worker and
build ``RuleSet.from_refs(refs)`` once in the worker's initializer: that deserializes
the cache files the parent chose (no hashing, no compiling) and every worker scans with
exactly the same rules. Scanners are made lazily, one per thread (and per pack when the
set is not merged).

Merged scanning: a `RuleSet` of several packs compiles all of them into ONE
``yara_x.Rules`` (namespace ``"<pack>/<file>"``) and scans each sample once instead of
once per pack: measured 13.0 s instead of 20.5 s of YARA over the 1,077-file benchmark
corpus. yara-x cannot merge compiled rules, so the merged set is compiled from the packs'
sources (the files each pack left out stay out) and cached beside the packs as
``_merged-<key>.yxc``, keyed by the packs' names and digests (the digests already cover
the yara-x version, options and externals). `RuleSet.refs` makes sure that file exists
and hands it to the workers; ``from_refs`` then only deserializes it (the per-pack
caches are read only if a per-pack scan is ever needed). ``merge=False`` keeps the old
one-scanner-per-pack behaviour. Matches still name their pack and their file namespace.

Timeouts: ``timeout`` is per scan of one scanner. Merged, one sample gets one ``timeout``
for all packs together, and a timeout (or scan error) fails every pack at once:
`ScanIncomplete.failures` names every pack (same message, ending in "(merged scan)") and
``matches`` is empty (yara-x returns nothing from an interrupted scan). Per pack
(``merge=False``, or a single pack), the other packs' matches are kept as before.

Fork: yara-x enforces timeouts with a heartbeat thread started by the first scan of the
process; a child forked after that has no heartbeat and its scans would never time out.
A `RuleSet.scan` in such a child raises `TimeoutUnavailable` instead of risking a hung
worker: use the "spawn" or "forkserver" start method, or fork before the first scan
(rules loaded but not yet used in the parent are fine to inherit).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import yara_x

from cleancenter.analyze.report import YaraMatch

EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
RULE_SUFFIXES = frozenset({".yar", ".yara"})
REGISTRY_FILE = "packs.json"
DEFAULT_TIMEOUT = 60.0  # seconds per scanner and scan (per pack, or once for a merged set)
MAX_OFFSETS = 8  # string-match offsets kept per matching rule
MAX_MESSAGE = 4000  # characters of a compile error kept per broken file

# Rules are written for libyara, which accepts sloppy regexps (``\R``, unescaped ``{``);
# relaxed syntax reads them the way libyara does instead of rejecting the file. Includes
# are off: every file of the folder is loaded anyway, and a rule file must not read
# files outside its pack.
COMPILE_OPTIONS: dict[str, bool] = {"relaxed_re_syntax": True, "includes_enabled": False}

_CACHE_FORMAT = 1
_CACHE_MAGIC = b"CCYARAX1"
_CACHE_SUFFIX = ".yxc"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Merged caches start with "_", which no pack name can: the two never collide.
_MERGED_PREFIX = "_merged-"
_MERGED_RE = re.compile(re.escape(_MERGED_PREFIX) + r"[0-9a-f]{32}" + re.escape(_CACHE_SUFFIX))

try:
    YARA_X_VERSION = _dist_version("yara-x")
except PackageNotFoundError:  # pragma: no cover - an unpackaged build
    YARA_X_VERSION = "unknown"

_compiles = 0  # how many times this process compiled rules (tests spy on it)
_compiles_lock = threading.Lock()
_first_scan_pid: int | None = None  # the process whose scans started yara-x's heartbeat


def compile_count() -> int:
    """How many rule sets this process compiled (not loaded from a cache) so far: a pack
    counts one, a merged set of packs counts one."""
    return _compiles


class RulesError(Exception):
    """A pack or registry problem the user must fix: bad name, missing folder, ..."""


class ScanIncomplete(Exception):
    """Some packs could not finish a scan (timeout, scan error).

    ``matches`` holds what the other packs found, so the caller can keep them and record
    the failure (a `report.StageError`) instead of losing the whole YARA stage.
    """

    def __init__(self, failures: dict[str, str], matches: list[YaraMatch],
                 path: Path | None = None) -> None:
        self.failures = failures  # pack name -> message
        self.matches = matches
        self.path = path
        where = f"{path}: " if path else ""
        detail = "; ".join(f"{pack}: {msg}" for pack, msg in failures.items())
        super().__init__(f"{where}YARA scan incomplete ({detail})")


class TimeoutUnavailable(RuntimeError):
    """This process was forked after a scan: yara-x's timeout thread did not follow."""


@dataclass(frozen=True)
class BrokenFile:
    """A rule file left out of its pack, and the compiler's reason."""

    file: str  # path inside the pack folder (also its namespace)
    message: str


@dataclass(eq=False)
class RulePack:
    """A compiled pack: what was loaded, what was left out, and how long it took."""

    name: str
    folder: Path
    file_count: int  # rule files found, broken ones included
    rule_count: int  # rules compiled (public and private)
    broken: list[BrokenFile]
    warnings: dict[str, int]  # yara-x warning code -> count (slow patterns, ...)
    digest: str  # of the files' contents, yara-x version and options: the cache key
    # None: not loaded yet (a worker that scans with the merged rules never needs them);
    # `rules` reads them from `cache_file` on first use.
    _rules: yara_x.Rules | None = field(default=None, repr=False)
    cache_file: Path | None = None
    from_cache: bool = False
    cache_error: str | None = None  # the cache could not be written (pack still usable)
    load_seconds: float = 0.0

    @property
    def rules(self) -> yara_x.Rules:
        """The compiled rules, deserialized from the cache on first use when the pack came
        from a merged cache (compiled again if that cache file is gone)."""
        if self._rules is None:
            with _lazy_lock:
                if self._rules is None:
                    cached = (_read_cache(self.cache_file, self.digest)
                              if self.cache_file is not None else None)
                    if cached is not None:
                        self._rules = cached[0]
                    else:
                        fresh = load_pack(self.name, self.folder,
                                          self.cache_file.parent if self.cache_file else None)
                        self._rules = fresh.rules
        return self._rules

    def ref(self, merged: MergedRef | None = None) -> PackRef:
        """A picklable handle to rebuild this pack in another process."""
        return PackRef(self.name, str(self.folder), self.digest,
                       str(self.cache_file) if self.cache_file else None, merged)


@dataclass(frozen=True)
class MergedRef:
    """The merged cache file of a rule set: every `PackRef` of the set carries it."""

    key: str
    cache_file: str


@dataclass(frozen=True)
class PackRef:
    """What a worker process needs to load a pack the parent already compiled."""

    name: str
    folder: str
    digest: str
    cache_file: str | None
    merged: MergedRef | None = None  # the set's merged cache, when it has one


_lazy_lock = threading.Lock()


# -- loading -------------------------------------------------------------------------


def rule_files(folder: Path) -> list[Path]:
    """Every ``*.yar``/``*.yara`` under ``folder``, sorted; hidden folders (.git,
    .github test fixtures) and symlinked folders are not entered."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in filenames:
            if not fn.startswith(".") and os.path.splitext(fn)[1].lower() in RULE_SUFFIXES:
                found.append(Path(dirpath) / fn)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def load_pack(name: str, folder: Path | str, cache_dir: Path | str | None = None) -> RulePack:
    """Compile the rule files under ``folder`` as pack ``name``, or load it from
    ``cache_dir`` when the files are unchanged since it was cached.

    Raises `RulesError` when the name is invalid or the folder holds no rule file;
    broken rule files are not errors: they are listed in `RulePack.broken`.
    """
    started = time.perf_counter()
    _check_name(name)
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise RulesError(f"rule pack {name!r}: {root} is not a folder")
    files, sources = _read_sources(root)
    if not files:
        raise RulesError(f"rule pack {name!r}: no .yar or .yara file under {root}")
    digest = _digest(sources)

    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"{name}-{digest[:32]}{_CACHE_SUFFIX}"
        cached = _read_cache(cache_path, digest)
        if cached is not None:
            rules, info = cached
            return RulePack(
                name=name, folder=root, file_count=int(info["file_count"]),
                rule_count=int(info["rule_count"]),
                broken=[BrokenFile(f, m) for f, m in info["broken"]],
                warnings=dict(info["warnings"]), digest=digest, _rules=rules,
                cache_file=cache_path, from_cache=True,
                load_seconds=time.perf_counter() - started)

    rules, broken, warnings = _compile(sources)
    pack = RulePack(name=name, folder=root, file_count=len(files),
                    rule_count=sum(1 for _ in rules), broken=broken, warnings=warnings,
                    digest=digest, _rules=rules)
    if cache_path is not None:
        try:
            _write_cache(cache_path, _pack_info(pack), rules, _stale_pack(name))
            pack.cache_file = cache_path
        except OSError as exc:
            pack.cache_error = f"{cache_path}: {exc.strerror or exc}"
    pack.load_seconds = time.perf_counter() - started
    return pack


def _read_sources(root: Path) -> tuple[list[Path], list[tuple[str, bytes | str]]]:
    """The pack's rule files and their contents (str: why a file could not be read)."""
    files = rule_files(root)
    sources: list[tuple[str, bytes | str]] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            sources.append((rel, path.read_bytes()))
        except OSError as exc:
            sources.append((rel, f"unreadable: {exc.strerror or exc}"))
    return files, sources


def _check_name(name: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise RulesError(f"invalid pack name {name!r}: use letters, digits, '.', '_', '-' "
                         "(at most 64, not starting with a punctuation mark)")


def _digest(sources: Sequence[tuple[str, bytes | str]]) -> str:
    """The cache key: anything that changes the compiled rules changes it."""
    h = hashlib.sha256()
    header = {"format": _CACHE_FORMAT, "yara_x": YARA_X_VERSION, "externals": EXTERNALS,
              "options": COMPILE_OPTIONS}
    h.update(json.dumps(header, sort_keys=True).encode())
    for rel, content in sources:
        h.update(b"\0" + rel.encode("utf-8", "surrogateescape") + b"\0")
        body = content if isinstance(content, bytes) else b"\1" + content.encode()
        h.update(hashlib.sha256(body).digest())
    return h.hexdigest()


def _new_compiler() -> yara_x.Compiler:
    compiler = yara_x.Compiler(**COMPILE_OPTIONS)
    for name in EXTERNALS:
        compiler.define_global(name, "")
    return compiler


def _count_compile() -> None:
    global _compiles
    with _compiles_lock:
        _compiles += 1


def _compile(
    sources: Sequence[tuple[str, bytes | str]],
) -> tuple[yara_x.Rules, list[BrokenFile], dict[str, int]]:
    """Compile every file, one namespace each, leaving out the ones that fail.

    yara-x keeps going after a failed `add_source` but keeps the *valid* rules of the
    failed file (it recovers even from syntax errors). We skip whole files, so when any
    file failed, one more pass on a fresh compiler without those files builds the pack:
    a second compile only for packs with broken files. Files do not see each other's
    namespaces, so that pass cannot fail on a file that compiled in the first one; the
    loop is only a guard.
    """
    _count_compile()
    broken: dict[str, str] = {}
    texts: list[tuple[str, str]] = []
    for rel, content in sources:
        if isinstance(content, str):
            broken[rel] = content
            continue
        try:
            texts.append((rel, content.decode("utf-8-sig")))
        except UnicodeDecodeError as exc:
            broken[rel] = f"not UTF-8 text: {exc}"
    while True:
        compiler = _new_compiler()
        failed: dict[str, str] = {}
        for rel, text in texts:
            if rel in broken:
                continue
            compiler.new_namespace(rel)
            try:
                compiler.add_source(text, origin=rel)
            except yara_x.CompileError as exc:
                failed[rel] = str(exc)[:MAX_MESSAGE]
        if failed:
            broken.update(failed)
            continue
        warnings: dict[str, int] = {}
        for warning in compiler.warnings():
            code = str(warning.get("code") or warning.get("type") or "warning")
            warnings[code] = warnings.get(code, 0) + 1
        rules = compiler.build()
        listed = [BrokenFile(rel, broken[rel]) for rel, _ in sources if rel in broken]
        return rules, listed, warnings


class _MergeFailed(Exception):
    """The packs cannot be merged consistently; the set scans pack by pack instead."""


def merge_key(packs: Sequence[RulePack]) -> str:
    """The merged cache key: the packs' names and digests in order (each digest already
    covers its files, the yara-x version, the externals and the compile options)."""
    header = {"format": _CACHE_FORMAT, "merged": 1, "yara_x": YARA_X_VERSION,
              "externals": EXTERNALS, "options": COMPILE_OPTIONS,
              "packs": [[p.name, p.digest] for p in packs]}
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()


def _compile_merged(packs: Sequence[RulePack]) -> yara_x.Rules:
    """All packs in one ``Rules``, namespace ``"<pack>/<file>"``, each pack's broken files
    left out. The files are read again and must still hash to the pack's digest (else
    the merged rules would not be the packs' rules). Raises `_MergeFailed` when a folder
    changed since its pack was loaded, or when a file compiles alone but not merged
    (not expected: namespaces do not see each other)."""
    entries: list[tuple[str, str, str]] = []  # namespace, origin, text
    for pack in packs:
        _, sources = _read_sources(pack.folder)
        if _digest(sources) != pack.digest:
            raise _MergeFailed(f"the files of pack {pack.name!r} changed since it was loaded")
        broken = {b.file for b in pack.broken}
        for rel, content in sources:
            if rel in broken:
                continue
            if isinstance(content, str):  # unreadable now, yet not broken: digest differs
                raise _MergeFailed(f"{pack.name}/{rel}: {content}")
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError as exc:  # pragma: no cover - digest guards it
                raise _MergeFailed(f"{pack.name}/{rel}: not UTF-8 text: {exc}") from exc
            entries.append((f"{pack.name}/{rel}", rel, text))
    _count_compile()
    compiler = _new_compiler()
    for namespace, origin, text in entries:
        compiler.new_namespace(namespace)
        try:
            compiler.add_source(text, origin=origin)
        except yara_x.CompileError as exc:
            raise _MergeFailed(f"{namespace} compiles alone but not merged: "
                               f"{str(exc)[:MAX_MESSAGE]}") from exc
    return compiler.build()


# -- cache ---------------------------------------------------------------------------
# One file per pack (and one per merged set): magic, 8-byte header length, JSON header,
# then yara-x's serialized rules. Written to a temp file and renamed, so readers never
# see half a file.


def _read_cache(path: Path, digest: str) -> tuple[yara_x.Rules, dict[str, Any]] | None:
    """The cached rules and header, or None when missing, stale or unreadable (a bad
    cache file is never fatal: the pack is compiled again)."""
    try:
        with path.open("rb") as fh:
            if fh.read(len(_CACHE_MAGIC)) != _CACHE_MAGIC:
                return None
            size = int.from_bytes(fh.read(8), "big")
            info = json.loads(fh.read(size))
            if info.get("digest") != digest:
                return None
            rules = yara_x.Rules.deserialize_from(fh)
    except FileNotFoundError:
        return None
    except Exception:  # corrupt or truncated: rebuild it
        return None
    return rules, info


def _read_header(path: Path) -> dict[str, Any] | None:
    """Only the JSON header of a cache file (no rules deserialized); None if unreadable."""
    try:
        with path.open("rb") as fh:
            if fh.read(len(_CACHE_MAGIC)) != _CACHE_MAGIC:
                return None
            size = int.from_bytes(fh.read(8), "big")
            info = json.loads(fh.read(size))
    except Exception:
        return None
    return info if isinstance(info, dict) else None


def _pack_info(pack: RulePack) -> dict[str, Any]:
    return {
        "digest": pack.digest, "name": pack.name, "folder": str(pack.folder),
        "yara_x": YARA_X_VERSION, "file_count": pack.file_count,
        "rule_count": pack.rule_count, "warnings": pack.warnings,
        "broken": [[b.file, b.message] for b in pack.broken],
        "cache_file": str(pack.cache_file) if pack.cache_file else None,
    }


def _stale_pack(name: str) -> Callable[[Path], bool]:
    """Older versions of this pack are dead weight."""
    stale = re.compile(re.escape(name) + r"-[0-9a-f]{32}" + re.escape(_CACHE_SUFFIX))
    return lambda other: bool(stale.fullmatch(other.name))


def _stale_merged(digests: dict[str, str]) -> Callable[[Path], bool]:
    """Another merged cache is stale when it holds the same packs (an older version of
    them), or one of our packs with other contents. Merged sets of other pack choices
    with current contents are kept."""
    def stale(other: Path) -> bool:
        if not _MERGED_RE.fullmatch(other.name):
            return False
        info = _read_header(other)
        if info is None:
            return True
        theirs = {str(p["name"]): str(p["digest"]) for p in info.get("packs", [])}
        return set(theirs) == set(digests) or any(
            digests.get(name, digest) != digest for name, digest in theirs.items())
    return stale


def _write_cache(path: Path, info: dict[str, Any], rules: yara_x.Rules,
                 stale: Callable[[Path], bool]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {**info, "created": datetime.now(UTC).isoformat()}
    header = json.dumps(info).encode()
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=_CACHE_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_CACHE_MAGIC + len(header).to_bytes(8, "big") + header)
            rules.serialize_into(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for other in path.parent.iterdir():
        if other != path and stale(other):
            other.unlink(missing_ok=True)


# -- scanning ------------------------------------------------------------------------


def scan_externals(filename: str | None = None, filepath: str | None = None,
                   filetype: str = "", owner: str = "") -> dict[str, str]:
    """The LOKI/THOR externals for one sample: ``filename`` is the base name,
    ``filepath`` the full path as given, ``extension`` the lower-case suffix with its dot
    (``.exe``), ``filetype`` THOR's vocabulary (see `thor_filetype`)."""
    path = _clean(filepath or "")
    name = filename if filename is not None else path
    name = re.split(r"[\\/]", _clean(name))[-1]
    ext = os.path.splitext(name)[1].lower()
    return {"filename": name, "filepath": path, "extension": ext,
            "filetype": _clean(filetype), "owner": _clean(owner)}


def _clean(text: str) -> str:
    """Honeypot file names may carry undecodable bytes (surrogates); yara-x wants UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


_THOR_TYPES = {
    ("pe", None): "EXE", ("elf", None): "ELF", ("script", "vbs"): "VBS",
    ("script", "ps1"): "PowerShell", ("script", "bat"): "BATCH", ("script", "py"): "Python",
    ("script", "js"): "JS", ("script", "sh"): "SH", ("archive", "zip"): "ZIP",
    ("archive", "rar"): "RAR", ("archive", "7z"): "7Z", ("document", "rtf"): "RTF",
    ("document", "pdf"): "PDF",
}


def thor_filetype(kind: str, subtype: str | None = None) -> str:
    """`report.Identity` kind/subtype in THOR's ``filetype`` words ("EXE", "ELF", ...),
    the values signature-base compares with; "" when THOR has no word for it."""
    return _THOR_TYPES.get((kind, subtype)) or _THOR_TYPES.get((kind, None)) or ""


class RuleSet:
    """Several packs scanned together.

    With more than one pack (and ``merge`` on, the default), one merged ``yara_x.Rules``
    for all packs, built on first need (first scan or `refs`): deserialized from
    ``cache_dir`` when cached, else compiled from the packs' sources and cached there.
    ``cache_dir`` defaults to the folder of the packs' cache files when they share one.
    If the packs cannot be merged (a folder changed since its pack was loaded), the set
    scans pack by pack and says why in `merge_error`.

    Scanners are made on first use, one per thread (per pack and thread when not merged),
    and reused (making one costs milliseconds, more than scanning a small file).
    """

    def __init__(self, packs: Iterable[RulePack], *, timeout: float = DEFAULT_TIMEOUT,
                 max_offsets: int = MAX_OFFSETS, merge: bool = True,
                 cache_dir: Path | str | None = None) -> None:
        self.packs = list(packs)
        names = [p.name for p in self.packs]
        if len(set(names)) != len(names):
            raise RulesError(f"duplicate pack names in {names}")
        self.timeout = timeout
        self.max_offsets = max_offsets
        self.merge = merge and len(self.packs) > 1
        if cache_dir is None:
            parents = {p.cache_file.parent for p in self.packs if p.cache_file is not None}
            if len(parents) == 1 and all(p.cache_file is not None for p in self.packs):
                cache_dir = parents.pop()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        # the merged set: filled by `_merged` (in the parent) or `from_refs` (in a worker)
        self.merged_cache_file: Path | None = None  # written or read
        self.merged_from_cache = False
        self.merged_cache_error: str | None = None  # could not be written (still usable)
        self.merge_error: str | None = None  # could not merge: scanning pack by pack
        self.merge_seconds = 0.0  # compiling or deserializing it
        self._merged_rules: yara_x.Rules | None = None
        self._merge_lock = threading.Lock()
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.packs)

    @property
    def rule_count(self) -> int:
        return sum(p.rule_count for p in self.packs)

    @property
    def merged_key(self) -> str | None:
        """The merged cache key, None when this set is not merged."""
        return merge_key(self.packs) if self.merge else None

    def _merged_path(self) -> Path | None:
        if not self.merge or self.cache_dir is None:
            return None
        return self.cache_dir / f"{_MERGED_PREFIX}{merge_key(self.packs)[:32]}{_CACHE_SUFFIX}"

    def merged_rules(self) -> yara_x.Rules | None:
        """The packs in one ``Rules`` (loaded or compiled now if needed); None when the set
        scans pack by pack (one pack, ``merge=False``, or `merge_error`)."""
        if not self.merge or self.merge_error is not None:
            return None
        if self._merged_rules is not None:
            return self._merged_rules
        with self._merge_lock:
            if self._merged_rules is None and self.merge_error is None:
                self._build_merged()
        return self._merged_rules

    def _build_merged(self) -> None:
        started = time.perf_counter()
        key = merge_key(self.packs)
        path = self._merged_path()
        cached = _read_cache(path, key) if path is not None else None
        if cached is not None:
            self._merged_rules, self.merged_cache_file = cached[0], path
            self.merged_from_cache = True
            self.merge_seconds = time.perf_counter() - started
            return
        try:
            rules = _compile_merged(self.packs)
        except _MergeFailed as exc:
            self.merge_error = str(exc)
            return
        self._merged_rules = rules
        if path is not None:
            info = {"digest": key, "merged": True, "yara_x": YARA_X_VERSION,
                    "rule_count": self.rule_count,
                    "packs": [_pack_info(p) for p in self.packs]}
            try:
                _write_cache(path, info, rules,
                             _stale_merged({p.name: p.digest for p in self.packs}))
                self.merged_cache_file = path
            except OSError as exc:
                self.merged_cache_error = f"{path}: {exc.strerror or exc}"
        self.merge_seconds = time.perf_counter() - started

    def refs(self) -> list[PackRef]:
        """Picklable handles for `from_refs` in worker processes.

        For a merged set with a cache folder, this makes sure the merged cache file exists
        (compiling it now if needed, so the workers do not each compile it) and every ref
        names it.
        """
        merged: MergedRef | None = None
        path = self._merged_path()
        if path is not None and self.merge_error is None:
            key = merge_key(self.packs)
            if self.merged_cache_file is None:
                header = _read_header(path)
                if header is None or header.get("digest") != key:
                    self.merged_rules()
            if self.merged_cache_file is not None or (
                    self.merge_error is None and self.merged_cache_error is None
                    and (_read_header(path) or {}).get("digest") == key):
                merged = MergedRef(key, str(path))
        return [p.ref(merged) for p in self.packs]

    @classmethod
    def from_refs(cls, refs: Iterable[PackRef], cache_dir: Path | str | None = None, *,
                  timeout: float = DEFAULT_TIMEOUT, max_offsets: int = MAX_OFFSETS,
                  merge: bool = True) -> RuleSet:
        """Rebuild a rule set in a worker from the parent's cache files: no hashing, no
        compiling. With a merged cache, only that file is deserialized (each pack's own
        rules are read from its cache only if ever needed). A missing or stale merged
        cache falls back to the packs' caches (and the merged set is then built, from
        ``cache_dir`` or by compiling, on the first scan); a missing or stale pack cache
        falls back to `load_pack`."""
        refs = list(refs)
        merged = refs[0].merged if refs and merge else None
        if merged is not None and all(r.merged == merged for r in refs):
            ruleset = cls._from_merged(refs, merged, cache_dir, timeout, max_offsets)
            if ruleset is not None:
                return ruleset
        packs: list[RulePack] = []
        for ref in refs:
            started = time.perf_counter()
            cached = _read_cache(Path(ref.cache_file), ref.digest) if ref.cache_file else None
            if cached is None:
                packs.append(load_pack(ref.name, ref.folder, cache_dir))
                continue
            rules, info = cached
            packs.append(RulePack(
                name=ref.name, folder=Path(ref.folder), file_count=int(info["file_count"]),
                rule_count=int(info["rule_count"]),
                broken=[BrokenFile(f, m) for f, m in info["broken"]],
                warnings=dict(info["warnings"]), digest=ref.digest, _rules=rules,
                cache_file=Path(ref.cache_file) if ref.cache_file else None,
                from_cache=True, load_seconds=time.perf_counter() - started))
        if cache_dir is None and merged is not None:
            cache_dir = Path(merged.cache_file).parent
        return cls(packs, timeout=timeout, max_offsets=max_offsets, merge=merge,
                   cache_dir=cache_dir)

    @classmethod
    def _from_merged(cls, refs: list[PackRef], merged: MergedRef,
                     cache_dir: Path | str | None, timeout: float,
                     max_offsets: int) -> RuleSet | None:
        started = time.perf_counter()
        path = Path(merged.cache_file)
        cached = _read_cache(path, merged.key)
        if cached is None:
            return None
        rules, info = cached
        by_name = {str(p["name"]): p for p in info.get("packs", [])}
        if [(r.name, r.digest) for r in refs] != [
                (n, str(p["digest"])) for n, p in by_name.items()]:
            return None
        seconds = time.perf_counter() - started
        packs = [RulePack(
            name=ref.name, folder=Path(ref.folder),
            file_count=int(by_name[ref.name]["file_count"]),
            rule_count=int(by_name[ref.name]["rule_count"]),
            broken=[BrokenFile(f, m) for f, m in by_name[ref.name]["broken"]],
            warnings=dict(by_name[ref.name]["warnings"]), digest=ref.digest,
            cache_file=Path(ref.cache_file) if ref.cache_file else None,
            from_cache=True, load_seconds=seconds / len(refs)) for ref in refs]
        ruleset = cls(packs, timeout=timeout, max_offsets=max_offsets,
                      cache_dir=cache_dir if cache_dir is not None else path.parent)
        if ruleset.merged_key != merged.key:  # pragma: no cover - refs and header agree
            return None
        ruleset._merged_rules, ruleset.merged_cache_file = rules, path
        ruleset.merged_from_cache, ruleset.merge_seconds = True, seconds
        return ruleset

    def _timeout_seconds(self) -> int:
        return max(1, math.ceil(self.timeout))

    def _scanners(self) -> list[yara_x.Scanner]:
        scanners: list[yara_x.Scanner] | None = getattr(self._local, "scanners", None)
        if scanners is None:
            scanners = []
            for pack in self.packs:
                scanner = yara_x.Scanner(pack.rules)
                scanner.set_timeout(self._timeout_seconds())
                scanners.append(scanner)
            self._local.scanners = scanners
        return scanners

    def _merged_scanner(self, rules: yara_x.Rules) -> yara_x.Scanner:
        scanner: yara_x.Scanner | None = getattr(self._local, "merged", None)
        if scanner is None:
            scanner = yara_x.Scanner(rules)
            scanner.set_timeout(self._timeout_seconds())
            self._local.merged = scanner
        return scanner

    def scan(self, data: bytes, *, filename: str | None = None, filepath: str | None = None,
             filetype: str = "", owner: str = "") -> list[YaraMatch]:
        """Matches of every pack on ``data``, with the externals set for this sample.

        Raises `ScanIncomplete` when a scan timed out or failed: per pack, it carries the
        other packs' matches; merged, it names every pack and carries no match (see the
        module notes). Raises `TimeoutUnavailable` in a child forked after a scan. yara-x
        counts timeouts in whole seconds on a 1 s heartbeat, so a scan can stop up to a
        second early.
        """
        global _first_scan_pid
        if _first_scan_pid is None:
            _first_scan_pid = os.getpid()
        elif _first_scan_pid != os.getpid():
            raise TimeoutUnavailable(
                "this process was forked after a YARA scan, so yara-x's timeouts would not "
                "fire here; start workers with 'spawn' or 'forkserver', or fork before "
                "the first scan")
        externals = scan_externals(filename, filepath, filetype, owner)
        merged = self.merged_rules()
        if merged is not None:
            return self._scan_merged(self._merged_scanner(merged), data, externals)
        matches: list[YaraMatch] = []
        failures: dict[str, str] = {}
        for pack, scanner in zip(self.packs, self._scanners(), strict=True):
            for key, value in externals.items():
                scanner.set_global(key, value)
            try:
                results = scanner.scan(data)
            except yara_x.TimeoutError:
                failures[pack.name] = f"timed out after {self._timeout_seconds()} s"
                continue
            except yara_x.ScanError as exc:
                failures[pack.name] = str(exc)
                continue
            matches.extend(_to_match(rule, pack.name, self.max_offsets)
                           for rule in results.matching_rules)
        if failures:
            raise ScanIncomplete(failures, matches)
        return matches

    def _scan_merged(self, scanner: yara_x.Scanner, data: bytes,
                     externals: dict[str, str]) -> list[YaraMatch]:
        for key, value in externals.items():
            scanner.set_global(key, value)
        try:
            results = scanner.scan(data)
        except yara_x.TimeoutError:
            message = f"timed out after {self._timeout_seconds()} s (merged scan)"
            raise ScanIncomplete({p.name: message for p in self.packs}, []) from None
        except yara_x.ScanError as exc:
            message = f"{exc} (merged scan)"
            raise ScanIncomplete({p.name: message for p in self.packs}, []) from exc
        matches: list[YaraMatch] = []
        for rule in results.matching_rules:
            pack, _, namespace = rule.namespace.partition("/")
            matches.append(_to_match(rule, pack, self.max_offsets, namespace))
        return matches


def _to_match(rule: yara_x.Rule, pack: str, max_offsets: int,
              namespace: str | None = None) -> YaraMatch:
    offsets: set[int] = set()
    for pattern in rule.patterns:
        offsets.update(m.offset for m in pattern.matches[:max_offsets])
    return YaraMatch(rule=rule.identifier, pack=pack,
                     namespace=rule.namespace if namespace is None else namespace,
                     tags=list(rule.tags), meta=_meta(rule.metadata),
                     offsets=sorted(offsets)[:max_offsets])


def _meta(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Rule metadata as a dict. Keys can repeat (several ``reference`` or ``hash``
    lines): repeated keys keep every value, as a list. Byte strings become text."""
    meta: dict[str, Any] = {}
    for key, raw in pairs:
        value = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
        if key not in meta:
            meta[key] = value
        elif isinstance(meta[key], list):
            meta[key].append(value)
        else:
            meta[key] = [meta[key], value]
    return meta


def test_pack(pack: RulePack | RuleSet, files: Iterable[Path | str], *,
              timeout: float = DEFAULT_TIMEOUT) -> list[tuple[Path, list[YaraMatch]]]:
    """``rules test``: scan files (folders are walked) with a pack; read, never run.

    A scan that times out raises `ScanIncomplete` naming the file.
    """
    ruleset = pack if isinstance(pack, RuleSet) else RuleSet([pack], timeout=timeout)
    results: list[tuple[Path, list[YaraMatch]]] = []
    for path in _walk_files(files):
        data = path.read_bytes()
        try:
            matches = ruleset.scan(data, filename=path.name, filepath=str(path))
        except ScanIncomplete as exc:
            raise ScanIncomplete(exc.failures, exc.matches, path) from exc
        results.append((path, matches))
    return results


test_pack.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _walk_files(items: Iterable[Path | str]) -> Iterator[Path]:
    for item in items:
        path = Path(item)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for fn in sorted(filenames):
                    child = Path(dirpath) / fn
                    if child.is_file() and not child.is_symlink():
                        yield child
        else:
            yield path


# -- registry ------------------------------------------------------------------------
# ``packs.json`` in the registry folder: {"version": 1, "packs": {name: {"folder",
# "added"}}}. Small, human-readable, rewritten atomically on every change.


@dataclass(frozen=True)
class PackEntry:
    """A registered pack: where its rules live and when it was added."""

    name: str
    folder: Path
    added: datetime


def _registry_path(registry_dir: Path | str) -> Path:
    return Path(registry_dir) / REGISTRY_FILE


def _read_registry(registry_dir: Path | str) -> dict[str, dict[str, str]]:
    path = _registry_path(registry_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RulesError(f"cannot read the rule pack registry {path}: {exc}") from exc
    packs = doc.get("packs") if isinstance(doc, dict) else None
    if not isinstance(packs, dict):
        raise RulesError(f"{path} is not a rule pack registry (no 'packs' object)")
    return packs


def _write_registry(registry_dir: Path | str, packs: dict[str, dict[str, str]]) -> None:
    path = _registry_path(registry_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": 1, "packs": dict(sorted(packs.items()))}, indent=2)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _entry(name: str, raw: dict[str, str]) -> PackEntry:
    return PackEntry(name, Path(raw["folder"]), datetime.fromisoformat(raw["added"]))


def add_pack(registry_dir: Path | str, name: str, folder: Path | str, *,
             replace: bool = False) -> PackEntry:
    """Register ``folder`` as pack ``name`` (its absolute path is stored). Compile it
    with `load_pack` to see its rules and broken files."""
    _check_name(name)
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise RulesError(f"{root} is not a folder")
    if not rule_files(root):
        raise RulesError(f"no .yar or .yara file under {root}")
    packs = _read_registry(registry_dir)
    if name in packs and not replace:
        raise RulesError(f"a rule pack named {name!r} exists ({packs[name]['folder']})")
    packs[name] = {"folder": str(root), "added": datetime.now(UTC).isoformat()}
    _write_registry(registry_dir, packs)
    return _entry(name, packs[name])


def list_packs(registry_dir: Path | str) -> list[PackEntry]:
    """The registered packs, by name."""
    return [_entry(n, raw) for n, raw in sorted(_read_registry(registry_dir).items())]


def get_pack(registry_dir: Path | str, name: str) -> PackEntry:
    packs = _read_registry(registry_dir)
    if name not in packs:
        raise RulesError(f"no rule pack named {name!r}")
    return _entry(name, packs[name])


def remove_pack(registry_dir: Path | str, name: str) -> PackEntry:
    """Unregister a pack (its folder is left alone); returns what was removed."""
    packs = _read_registry(registry_dir)
    if name not in packs:
        raise RulesError(f"no rule pack named {name!r}")
    entry = _entry(name, packs.pop(name))
    _write_registry(registry_dir, packs)
    return entry


def load_registered(registry_dir: Path | str, cache_dir: Path | str | None = None, *,
                    timeout: float = DEFAULT_TIMEOUT) -> RuleSet:
    """Every registered pack, loaded (from the cache when unchanged) into one set."""
    return RuleSet([load_pack(e.name, e.folder, cache_dir) for e in list_packs(registry_dir)],
                   timeout=timeout)
