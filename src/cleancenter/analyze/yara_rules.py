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
exactly the same rules. Scanners are made lazily, one per pack and thread.

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
from collections.abc import Iterable, Iterator, Sequence
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
DEFAULT_TIMEOUT = 60.0  # seconds per pack and scan
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

try:
    YARA_X_VERSION = _dist_version("yara-x")
except PackageNotFoundError:  # pragma: no cover - an unpackaged build
    YARA_X_VERSION = "unknown"

_compiles = 0  # how many times this process compiled a pack (tests spy on it)
_compiles_lock = threading.Lock()
_first_scan_pid: int | None = None  # the process whose scans started yara-x's heartbeat


def compile_count() -> int:
    """How many packs this process compiled (not loaded from the cache) so far."""
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
    rules: yara_x.Rules = field(repr=False)
    cache_file: Path | None = None
    from_cache: bool = False
    cache_error: str | None = None  # the cache could not be written (pack still usable)
    load_seconds: float = 0.0

    def ref(self) -> PackRef:
        """A picklable handle to rebuild this pack in another process."""
        return PackRef(self.name, str(self.folder), self.digest,
                       str(self.cache_file) if self.cache_file else None)


@dataclass(frozen=True)
class PackRef:
    """What a worker process needs to load a pack the parent already compiled."""

    name: str
    folder: str
    digest: str
    cache_file: str | None


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
    files = rule_files(root)
    if not files:
        raise RulesError(f"rule pack {name!r}: no .yar or .yara file under {root}")
    sources: list[tuple[str, bytes | str]] = []  # str: why the file could not be read
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            sources.append((rel, path.read_bytes()))
        except OSError as exc:
            sources.append((rel, f"unreadable: {exc.strerror or exc}"))
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
                warnings=dict(info["warnings"]), digest=digest, rules=rules,
                cache_file=cache_path, from_cache=True,
                load_seconds=time.perf_counter() - started)

    rules, broken, warnings = _compile(sources)
    pack = RulePack(name=name, folder=root, file_count=len(files),
                    rule_count=sum(1 for _ in rules), broken=broken, warnings=warnings,
                    digest=digest, rules=rules)
    if cache_path is not None:
        try:
            _write_cache(cache_path, pack)
            pack.cache_file = cache_path
        except OSError as exc:
            pack.cache_error = f"{cache_path}: {exc.strerror or exc}"
    pack.load_seconds = time.perf_counter() - started
    return pack


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
    global _compiles
    with _compiles_lock:
        _compiles += 1
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


# -- cache ---------------------------------------------------------------------------
# One file per pack: magic, 8-byte header length, JSON header, then yara-x's serialized
# rules. Written to a temp file and renamed, so readers never see half a file.


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


def _write_cache(path: Path, pack: RulePack) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "digest": pack.digest, "name": pack.name, "folder": str(pack.folder),
        "yara_x": YARA_X_VERSION, "file_count": pack.file_count,
        "rule_count": pack.rule_count, "warnings": pack.warnings,
        "broken": [[b.file, b.message] for b in pack.broken],
        "created": datetime.now(UTC).isoformat(),
    }
    header = json.dumps(info).encode()
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=_CACHE_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_CACHE_MAGIC + len(header).to_bytes(8, "big") + header)
            pack.rules.serialize_into(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Older versions of this pack are dead weight: drop them.
    stale = re.compile(re.escape(pack.name) + r"-[0-9a-f]{32}" + re.escape(_CACHE_SUFFIX))
    for other in path.parent.iterdir():
        if other != path and stale.fullmatch(other.name):
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

    One yara-x scanner per pack and thread, made on first use and reused (making one
    costs milliseconds, more than scanning a small file).
    """

    def __init__(self, packs: Iterable[RulePack], *, timeout: float = DEFAULT_TIMEOUT,
                 max_offsets: int = MAX_OFFSETS) -> None:
        self.packs = list(packs)
        names = [p.name for p in self.packs]
        if len(set(names)) != len(names):
            raise RulesError(f"duplicate pack names in {names}")
        self.timeout = timeout
        self.max_offsets = max_offsets
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.packs)

    @property
    def rule_count(self) -> int:
        return sum(p.rule_count for p in self.packs)

    def refs(self) -> list[PackRef]:
        """Picklable handles for `from_refs` in worker processes."""
        return [p.ref() for p in self.packs]

    @classmethod
    def from_refs(cls, refs: Iterable[PackRef], cache_dir: Path | str | None = None, *,
                  timeout: float = DEFAULT_TIMEOUT, max_offsets: int = MAX_OFFSETS,
                  ) -> RuleSet:
        """Rebuild a rule set in a worker from the parent's cache files: no hashing, no
        compiling. A missing or stale cache file falls back to `load_pack`."""
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
                warnings=dict(info["warnings"]), digest=ref.digest, rules=rules,
                cache_file=Path(ref.cache_file) if ref.cache_file else None,
                from_cache=True, load_seconds=time.perf_counter() - started))
        return cls(packs, timeout=timeout, max_offsets=max_offsets)

    def _scanners(self) -> list[yara_x.Scanner]:
        scanners: list[yara_x.Scanner] | None = getattr(self._local, "scanners", None)
        if scanners is None:
            scanners = []
            for pack in self.packs:
                scanner = yara_x.Scanner(pack.rules)
                scanner.set_timeout(max(1, math.ceil(self.timeout)))
                scanners.append(scanner)
            self._local.scanners = scanners
        return scanners

    def scan(self, data: bytes, *, filename: str | None = None, filepath: str | None = None,
             filetype: str = "", owner: str = "") -> list[YaraMatch]:
        """Matches of every pack on ``data``, with the externals set for this sample.

        Raises `ScanIncomplete` (carrying the other packs' matches) when a pack timed out
        or failed, `TimeoutUnavailable` in a child forked after a scan (see the module
        notes). yara-x counts timeouts in whole seconds on a 1 s heartbeat, so a scan can
        stop up to a second early.
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
        matches: list[YaraMatch] = []
        failures: dict[str, str] = {}
        for pack, scanner in zip(self.packs, self._scanners(), strict=True):
            for key, value in externals.items():
                scanner.set_global(key, value)
            try:
                results = scanner.scan(data)
            except yara_x.TimeoutError:
                failures[pack.name] = f"timed out after {max(1, math.ceil(self.timeout))} s"
                continue
            except yara_x.ScanError as exc:
                failures[pack.name] = str(exc)
                continue
            matches.extend(_to_match(rule, pack.name, self.max_offsets)
                           for rule in results.matching_rules)
        if failures:
            raise ScanIncomplete(failures, matches)
        return matches


def _to_match(rule: yara_x.Rule, pack: str, max_offsets: int) -> YaraMatch:
    offsets: set[int] = set()
    for pattern in rule.patterns:
        offsets.update(m.offset for m in pattern.matches[:max_offsets])
    return YaraMatch(rule=rule.identifier, pack=pack, namespace=rule.namespace,
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
