"""The cleaner's process check: bots that run, hide, or dress up as system programs.

Processes are read through one view with three backends: `ProcView` reads Linux ``/proc``
itself (it sees deleted executables, kernel-thread flags and can probe for hidden pids),
`PsutilView` serves Windows and the rest, and `SnapshotView` reads a recorded JSON listing
so the Windows rules are exercised on any machine. `check_processes` turns what a view
shows into findings; `stop_process` ends one process without hitting a reused pid.

Nothing found here is ever executed: executables and memory are only read and hashed.
"""

from __future__ import annotations

import hashlib
import json
import ntpath
import os
import posixpath
import select
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.findings import Evidence, Finding, Severity
from cleancenter.cleaner.network import (
    Connection,
    ProcNetView,
    PsutilNetView,
    connections_of,
)

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is optional on Linux
    psutil = None  # type: ignore[assignment]

PF_KTHREAD = 0x00200000  # include/linux/sched.h: the task is a kernel thread
DELETED = " (deleted)"
EXE_CAP = 128 * 1024 * 1024  # larger running images are not hashed (and named as such)
MEMORY_CAP = 64 * 1024 * 1024  # bytes of memory read per process for `scan_memory`
# hidden-pid probing: at least up to min(pid_max, PROBE_CAP), and past the highest pid seen
PROBE_CAP = 65536
PROBE_MARGIN = 4096
# memory mappings that cannot be read through /proc/pid/mem (or only with an error)
UNREADABLE_MAPPINGS = frozenset({"[vvar]", "[vvar_vclock]", "[vsyscall]"})

# rule texts (the Evidence value) and the finding kind each one leads to
RULE_DELETED = "executable deleted while running"
RULE_REPLACED = "executable replaced while running"
RULE_LOCATION = "runs from a temporary or shared folder"
RULE_KERNEL_NAME = "user-space process with a kernel thread name"
RULE_LOOKALIKE = "name imitates a system program"
RULE_WRONG_FOLDER = "system program name from the wrong folder"
RULE_WRONG_PARENT = "system program name with the wrong parent"
RULE_HIDDEN = "hidden from a process listing"
KIND_ORDER = ("hash-match", "memory-rule", "hidden-process", "deleted-executable",
              "masquerade", "suspicious-location", "replaced-executable")
RULE_KINDS = {RULE_DELETED: "deleted-executable", RULE_REPLACED: "replaced-executable",
              RULE_LOCATION: "suspicious-location", RULE_KERNEL_NAME: "masquerade",
              RULE_LOOKALIKE: "masquerade", RULE_WRONG_FOLDER: "masquerade",
              RULE_WRONG_PARENT: "masquerade", RULE_HIDDEN: "hidden-process"}


@dataclass
class ProcessInfo:
    """One process as a view sees it. ``exe`` has no " (deleted)" suffix; ``exe_deleted``
    says the running image is gone from disk and ``exe_replaced`` that another file now
    sits at its path (what a package upgrade does). ``start_time`` is in clock ticks since
    boot (/proc) or seconds since the epoch (psutil); it tells a pid from its reuse."""

    pid: int
    ppid: int
    name: str
    exe: str | None = None
    exe_deleted: bool = False
    cmdline: list[str] = field(default_factory=list)
    uid: int | None = None
    start_time: float | None = None
    kernel_thread: bool = False
    exe_replaced: bool = False

    @property
    def exe_display(self) -> str | None:
        if self.exe is None:
            return None
        return self.exe + DELETED if self.exe_deleted else self.exe

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessInfo:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        values["cmdline"] = [str(part) for part in values.get("cmdline") or []]
        return cls(**values)


@dataclass(frozen=True)
class Listing:
    """One way of enumerating pids. ``limit`` is the highest pid the source covers (a
    probe stops somewhere); a pid above it is not "missing" from this source."""

    name: str
    pids: frozenset[int]
    limit: int | None = None

    def misses(self, pid: int) -> bool:
        return pid not in self.pids and (self.limit is None or pid <= self.limit)


class ProcessView(Protocol):
    """What the process check needs from a machine; ``errors`` collects what could not
    be read (permission, races), which is reported but never fatal."""

    system: str
    live: bool  # this machine, right now (not a recording or a copied /proc tree)
    errors: list[str]

    def processes(self) -> list[ProcessInfo]: ...

    def process(self, pid: int) -> ProcessInfo | None: ...

    def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None: ...

    def stat_executable(self, pid: int) -> os.stat_result | None: ...

    def listing_sources(self) -> list[Listing]: ...

    def memory_regions(self, pid: int, cap: int) -> Iterator[tuple[int, bytes]]: ...

    def connections(self) -> list[Connection]: ...


# --- Linux /proc --------------------------------------------------------------------------

@dataclass
class _Stat:
    name: str
    state: str
    ppid: int
    flags: int
    start_time: int


def _parse_stat(text: str) -> _Stat:
    """/proc/pid/stat; the name sits in parentheses and may itself contain ") "."""
    open_at, close_at = text.index("("), text.rindex(")")
    rest = text[close_at + 2:].split()
    return _Stat(name=text[open_at + 1:close_at], state=rest[0], ppid=int(rest[1]),
                 flags=int(rest[6]), start_time=int(rest[19]))


def _read_stat(proc_root: Path, pid: int) -> _Stat | None:
    try:
        return _parse_stat((proc_root / str(pid) / "stat").read_text(errors="replace"))
    except (OSError, ValueError, IndexError):
        return None


def _status_fields(proc_root: Path, pid: int) -> dict[str, str]:
    try:
        text = (proc_root / str(pid) / "status").read_text(errors="replace")
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def _argv0_name(cmdline: Sequence[str]) -> str | None:
    """The program name a process claims in argv[0]: "[kworker/0:1]" stays whole,
    "sshd: root@pts/0" gives sshd, "-bash" gives bash."""
    if not cmdline or not cmdline[0].strip():
        return None
    first = cmdline[0].strip()
    if first.startswith("["):
        return first.strip("[]") or None
    token = first.split()[0].rstrip(":").lstrip("-")
    return posixpath.basename(token) or None


class ProcView:
    """Linux processes straight from /proc.

    ``listdir`` is how the /proc directory is enumerated (``os.listdir``: the readdir
    listing a rootkit filters); it is a parameter so the hidden-process check can be run
    against a listing that leaves a pid out, exactly as a hooked getdents would."""

    system = "linux"

    def __init__(self, proc_root: Path = Path("/proc"), *,
                 listdir: Callable[[Path], list[str]] | None = None,
                 probe_limit: int | None = None) -> None:
        self.proc_root = proc_root
        self.listdir: Callable[[Path], list[str]] = listdir or (lambda p: os.listdir(p))
        self.probe_limit = probe_limit
        self.errors: list[str] = []
        self.live = proc_root.resolve() == Path("/proc")

    def _listed(self) -> set[int]:
        try:
            return {int(n) for n in self.listdir(self.proc_root) if n.isdigit()}
        except OSError as exc:
            self.errors.append(f"{self.proc_root}: {exc}")
            return set()

    def processes(self) -> list[ProcessInfo]:
        found = []
        for pid in sorted(self._listed()):
            info = self.process(pid)
            if info is not None:
                found.append(info)
        return found

    def process(self, pid: int) -> ProcessInfo | None:
        base = self.proc_root / str(pid)
        stat = _read_stat(self.proc_root, pid)
        if stat is None:
            return None  # gone since it was listed, or not a process at all
        status = _status_fields(self.proc_root, pid)
        uid = None
        if status.get("Uid", "").split():
            uid = int(status["Uid"].split()[0])
        try:
            raw = (base / "cmdline").read_bytes()
            cmdline = [part.decode(errors="replace") for part in raw.split(b"\0")]
            while cmdline and cmdline[-1] == "":
                cmdline.pop()
        except OSError:
            cmdline = []
        exe, deleted, replaced = self._exe(pid)
        kernel = bool(stat.flags & PF_KTHREAD) or (
            exe is None and not cmdline and (stat.ppid == 2 or pid == 2))
        return ProcessInfo(pid=pid, ppid=stat.ppid, name=stat.name, exe=exe,
                           exe_deleted=deleted, cmdline=cmdline, uid=uid,
                           start_time=stat.start_time, kernel_thread=kernel,
                           exe_replaced=replaced)

    def _exe(self, pid: int, *, quiet: bool = False) -> tuple[str | None, bool, bool]:
        """(path, deleted, replaced). The kernel appends " (deleted)" once the name is
        unlinked, even if a hard link elsewhere keeps the file; a file really named so is
        told apart by looking the literal name up (as the process sees the file system)."""
        base = self.proc_root / str(pid)
        link = base / "exe"
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None, False, False  # kernel thread, zombie, or gone
        except OSError as exc:
            if not quiet:
                self.errors.append(f"pid {pid}: executable link unreadable ({exc.strerror})")
            return None, False, False
        target = target.split("\0", 1)[0]
        try:
            image: os.stat_result | None = os.stat(link)
        except OSError:
            image = None
        deleted = target.endswith(DELETED)
        if deleted and image is not None:
            literal = self._same_file(base, target, image)
            deleted = literal is not True
        elif image is not None and image.st_nlink == 0:
            deleted = True  # e.g. a file system that does not mark the name
        path = target.removesuffix(DELETED) if deleted else target
        replaced = deleted and image is not None and \
            self._same_file(base, path, image) is False
        return path, deleted, replaced

    def _same_file(self, base: Path, path: str, image: os.stat_result) -> bool | None:
        """Whether ``path``, seen from the process's own root (containers, chroots), is
        the running image; None when nothing is there."""
        if not path.startswith("/"):
            return None
        try:
            now = os.stat(base / "root" / path.lstrip("/"))
        except OSError:
            return None
        return (now.st_dev, now.st_ino) == (image.st_dev, image.st_ino)

    def stat_executable(self, pid: int) -> os.stat_result | None:
        try:
            return os.stat(self.proc_root / str(pid) / "exe")
        except OSError:
            return None

    def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None:
        """The running image through /proc/pid/exe, which works even when it is deleted."""
        try:
            with open(self.proc_root / str(pid) / "exe", "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    self.errors.append(f"pid {pid}: executable of {size} bytes not hashed "
                                       f"(over the {limit} byte cap)")
                    return None
                return handle.read(limit + 1)[:limit]
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.errors.append(f"pid {pid}: executable unreadable ({exc.strerror})")
            return None

    def pid_max(self) -> int:
        try:
            return int((self.proc_root / "sys" / "kernel" / "pid_max").read_text())
        except (OSError, ValueError):
            return 32768

    def _is_thread(self, pid: int) -> bool:
        """/proc/<tid> answers for every thread, though readdir lists only processes."""
        tgid = _status_fields(self.proc_root, pid).get("Tgid")
        return tgid is not None and tgid.isdigit() and int(tgid) != pid

    def listing_sources(self) -> list[Listing]:
        """readdir of /proc, then a stat of /proc/<n> for every n up to the limit, then
        psutil's list (live /proc only). Cost: one stat per probed pid, about 3 µs, so
        0.1 s for pid_max 32768; with pid_max 4194304 the probe stops at
        max(PROBE_CAP, highest pid seen + PROBE_MARGIN) unless ``probe_limit`` says more."""
        listed = self._listed()
        pid_max = self.pid_max()
        limit = self.probe_limit
        if limit is None:
            limit = max(min(pid_max, PROBE_CAP),
                        min(pid_max, max(listed, default=0) + PROBE_MARGIN))
        probed = set()
        root = str(self.proc_root)
        for pid in range(1, limit + 1):
            try:
                os.stat(f"{root}/{pid}")
            except OSError:
                continue
            probed.add(pid)
        probed = {pid for pid in probed if pid in listed or not self._is_thread(pid)}
        sources = [Listing("readdir", frozenset(listed)),
                   Listing("probe", frozenset(probed), limit)]
        if self.live and psutil is not None:
            try:
                sources.append(Listing("psutil", frozenset(psutil.pids())))
            except (psutil.Error, OSError) as exc:
                self.errors.append(f"psutil.pids: {exc}")
        return sources

    def memory_regions(self, pid: int, cap: int) -> Iterator[tuple[int, bytes]]:
        """Readable mappings through /proc/pid/mem, up to ``cap`` bytes: the program's
        own image and anonymous memory (where unpacked code lives) first, libraries last."""
        base = self.proc_root / str(pid)
        try:
            maps = (base / "maps").read_text(errors="replace")
        except OSError as exc:
            self.errors.append(f"pid {pid}: memory map unreadable ({exc.strerror})")
            return
        exe = self._exe(pid, quiet=True)[0]
        regions: list[tuple[int, int, int]] = []
        for line in maps.splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) < 5 or not parts[1].startswith("r"):
                continue
            path = parts[5].strip() if len(parts) == 6 else ""
            if path in UNREADABLE_MAPPINGS:
                continue
            try:
                start, end = (int(x, 16) for x in parts[0].split("-"))
            except ValueError:
                continue
            own = not path or path.startswith("[") or path.removesuffix(DELETED) == exe \
                or path.startswith("/memfd:")
            regions.append((0 if own else 1, start, end))
        regions.sort()
        remaining, failed = cap, 0
        try:
            handle = open(base / "mem", "rb", buffering=0)  # noqa: SIM115 - `with` below
        except OSError as exc:
            self.errors.append(f"pid {pid}: memory unreadable ({exc.strerror})")
            return
        with handle:
            for _order, start, end in regions:
                if remaining <= 0:
                    break
                try:
                    handle.seek(start)
                    data = handle.read(min(end - start, remaining))
                except (OSError, OverflowError):
                    failed += 1
                    continue
                if data:
                    remaining -= len(data)
                    yield start, data
        if failed:
            self.errors.append(f"pid {pid}: {failed} memory regions unreadable")

    def connections(self) -> list[Connection]:
        net = ProcNetView(self.proc_root)
        conns = net.connections()
        self.errors += net.errors
        return conns


# --- psutil (Windows, macOS; runs on Linux too) -------------------------------------------

class PsutilView:
    """Processes through psutil. On Windows pids are multiples of 4, so the probe that
    looks for hidden pids steps by 4 there."""

    def __init__(self, *, probe_limit: int | None = None) -> None:
        if psutil is None:
            raise RuntimeError("psutil is not installed")
        self.system = sys_system()
        self.probe_limit = probe_limit
        self.live = True
        self.errors: list[str] = []

    def _info(self, proc: psutil.Process) -> ProcessInfo | None:
        try:
            with proc.oneshot():
                name = proc.name()
                ppid = proc.ppid()
                start = proc.create_time()
                try:
                    exe: str | None = proc.exe() or None
                except psutil.AccessDenied:
                    exe = None
                    self.errors.append(f"pid {proc.pid}: executable path unreadable "
                                       "(access denied)")
                try:
                    cmdline = proc.cmdline()
                except psutil.AccessDenied:
                    cmdline = []
                uid = None
                if hasattr(proc, "uids"):
                    try:
                        uid = proc.uids().real
                    except psutil.AccessDenied:
                        uid = None
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        except psutil.Error as exc:
            self.errors.append(f"pid {proc.pid}: {exc}")
            return None
        deleted = False
        if exe is not None and os.path.isabs(exe):
            deleted = not os.path.exists(exe)
        if self.system == "windows":
            kernel = proc.pid in (0, 4)  # System Idle Process, System
        else:
            kernel = exe is None and not cmdline and (ppid == 2 or proc.pid == 2)
        return ProcessInfo(pid=proc.pid, ppid=ppid, name=name, exe=exe, exe_deleted=deleted,
                           cmdline=cmdline, uid=uid, start_time=start, kernel_thread=kernel)

    def processes(self) -> list[ProcessInfo]:
        found = []
        for proc in psutil.process_iter():
            info = self._info(proc)
            if info is not None:
                found.append(info)
        return sorted(found, key=lambda p: p.pid)

    def process(self, pid: int) -> ProcessInfo | None:
        try:
            return self._info(psutil.Process(pid))
        except psutil.Error:
            return None

    def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None:
        info = self.process(pid)
        if info is None or info.exe is None:
            return None
        path = f"/proc/{pid}/exe" if self.system == "linux" else info.exe
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    self.errors.append(f"pid {pid}: executable of {size} bytes not hashed "
                                       f"(over the {limit} byte cap)")
                    return None
                return handle.read(limit + 1)[:limit]
        except OSError as exc:
            self.errors.append(f"pid {pid}: executable unreadable ({exc.strerror})")
            return None

    def stat_executable(self, pid: int) -> os.stat_result | None:
        info = self.process(pid)
        path = f"/proc/{pid}/exe" if self.system == "linux" else info.exe if info else None
        try:
            return os.stat(path) if path else None
        except OSError:
            return None

    def listing_sources(self) -> list[Listing]:
        """psutil's list against a probe with pid_exists (kill(pid, 0) on POSIX,
        OpenProcess on Windows): neither walks a directory a rootkit may filter."""
        listed = frozenset(psutil.pids())
        step = 4 if self.system == "windows" else 1
        limit = self.probe_limit or max(PROBE_CAP, max(listed, default=0) + PROBE_MARGIN)
        probed = set()
        for pid in range(step, limit + 1, step):
            try:
                if psutil.pid_exists(pid):
                    probed.add(pid)
            except (psutil.Error, OSError):
                continue
        return [Listing("psutil.pids", listed), Listing("pid_exists", frozenset(probed), limit)]

    def memory_regions(self, pid: int, cap: int) -> Iterator[tuple[int, bytes]]:
        self.errors.append(f"pid {pid}: memory scan not available through psutil")
        return iter(())

    def connections(self) -> list[Connection]:
        net = PsutilNetView()
        conns = net.connections()
        self.errors += net.errors
        return conns


# --- a recorded listing --------------------------------------------------------------------

class SnapshotView:
    """A recorded listing (JSON): either a list of process dicts, or an object with
    ``processes``, optional ``connections``, ``system`` and ``listings`` (name -> pids,
    as recorded by independent enumerations on the machine)."""

    def __init__(self, path: Path, *, system: str = "windows") -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):
            data = {"processes": data}
        self.system = str(data.get("system", system))
        self.live = False
        self.errors: list[str] = []
        self._processes = [ProcessInfo.from_dict(item) for item in data.get("processes", [])]
        self._connections = [Connection.from_dict(c) for c in data.get("connections", [])]
        self._listings = {str(name): frozenset(int(p) for p in pids)
                          for name, pids in (data.get("listings") or {}).items()}

    def processes(self) -> list[ProcessInfo]:
        return list(self._processes)

    def process(self, pid: int) -> ProcessInfo | None:
        return next((p for p in self._processes if p.pid == pid), None)

    def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None:
        return None  # a listing records names, not images

    def stat_executable(self, pid: int) -> os.stat_result | None:
        return None

    def listing_sources(self) -> list[Listing]:
        if not self._listings:
            return [Listing("snapshot", frozenset(p.pid for p in self._processes))]
        return [Listing(name, pids) for name, pids in sorted(self._listings.items())]

    def memory_regions(self, pid: int, cap: int) -> Iterator[tuple[int, bytes]]:
        return iter(())

    def connections(self) -> list[Connection]:
        return list(self._connections)


# --- the check ------------------------------------------------------------------------------

def damerau_levenshtein(a: str, b: str, limit: int | None = None) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment); stops early
    once every cell of a row exceeds ``limit``."""
    if a == b:
        return 0
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if limit is not None and min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def lookalike_limit(name: str, system: str) -> int:
    """How many edits still count as imitation. Short Linux names get none: ``ssh``,
    ``dash`` and ``zsh`` are real programs one edit away from ``sshd``, ``bash``, ``sh``."""
    stem = name.rsplit(".", 1)[0] if system == "windows" and "." in name else name
    if system == "windows":
        return 0 if len(stem) <= 3 else 1 if len(stem) <= 9 else 2
    return 0 if len(stem) <= 4 else 1 if len(stem) <= 8 else 2


def _norm_windows(path: str) -> str:
    """A Windows path without drive or device prefix, lower-cased, for folder compares."""
    text = path.replace("/", "\\")
    for prefix in ("\\\\?\\", "\\??\\"):
        text = text.removeprefix(prefix)
    lowered = text.lower()
    if lowered.startswith("\\device\\harddiskvolume"):
        text = "\\" + text.split("\\", 3)[3] if text.count("\\") >= 3 else text
    elif lowered.startswith("\\systemroot\\"):
        text = "\\windows\\" + text[len("\\systemroot\\"):]
    return ntpath.splitdrive(text)[1].rstrip("\\").lower()


def _names(p: ProcessInfo, system: str) -> list[str]:
    """The names a process goes by: its name, its file's name and (Linux) argv[0]."""
    pathmod = ntpath if system == "windows" else posixpath
    names = [p.name]
    if p.exe:
        names.append(pathmod.basename(p.exe))
    if system != "windows":
        claimed = _argv0_name(p.cmdline)
        if claimed:
            names.append(claimed)
    result: list[str] = []
    for name in names:
        if name and name.lower() not in result:
            result.append(name.lower())
    return result


def _real_kernel_thread(p: ProcessInfo) -> bool:
    return p.kernel_thread and p.exe is None and not p.cmdline and \
        (p.ppid == 2 or (p.pid == 2 and p.ppid == 0))


def _behaviour(rule: str, detail: str, defs: Definitions) -> Evidence:
    return Evidence("behaviour", rule, source=defs.source, detail=detail)


def _masquerade(p: ProcessInfo, table: list[dict[str, Any]], system: str,
                by_pid: dict[int, ProcessInfo], defs: Definitions) -> list[Evidence]:
    if system != "windows" and _real_kernel_thread(p):
        return []
    names = _names(p, system)
    found: list[Evidence] = []
    exact = {str(e.get("name", "")).lower(): e for e in table if e.get("name")}
    for entry in table:
        if not entry.get("kernel_thread"):
            continue
        prefix = str(entry["name"]).lower()
        claimed = next((n for n in names if n.split("/")[0].startswith(prefix)), None)
        if claimed is not None:
            why = []
            if p.exe is not None:
                why.append(f"has an executable file {p.exe_display}")
            if p.cmdline:
                why.append("has a command line")
            if p.ppid != 2:
                why.append(f"its parent is pid {p.ppid}, not kthreadd (2)")
            if not p.kernel_thread:
                why.append("is not flagged as a kernel thread")
            found.append(_behaviour(RULE_KERNEL_NAME, f"{claimed}: " + "; ".join(why), defs))
            return found
    identical = [(n, exact[n]) for n in names if n in exact]
    pathmod = ntpath if system == "windows" else posixpath
    for name, entry in identical:
        if entry.get("kernel_thread"):
            continue
        folders = [str(f) for f in entry.get("folders") or []]
        if folders and p.exe:
            if system == "windows":
                here = _norm_windows(pathmod.dirname(p.exe))
                allowed = {_norm_windows(f) for f in folders}
            else:
                here = posixpath.dirname(p.exe)
                allowed = {f.rstrip("/") for f in folders}
            if here not in allowed:
                found.append(_behaviour(RULE_WRONG_FOLDER, f"{name} runs from "
                                        f"{pathmod.dirname(p.exe)}, belongs in "
                                        f"{' or '.join(folders)}", defs))
        parents = [str(x).lower() for x in entry.get("parents") or []]
        parent = by_pid.get(p.ppid)
        if parents and parent is not None and parent.pid != p.pid:
            reused = parent.start_time is not None and p.start_time is not None \
                and parent.start_time > p.start_time  # the parent pid belongs to a newer one
            if not reused and parent.name.lower() not in parents:
                found.append(_behaviour(RULE_WRONG_PARENT, f"{name} started by "
                                        f"{parent.name} (pid {parent.pid}), expected "
                                        f"{' or '.join(entry['parents'])}", defs))
    if identical:
        return found
    for name in names:
        best: tuple[int, str] | None = None
        for entry_name, entry in exact.items():
            if entry.get("kernel_thread") and system != "windows":
                base = name.split("/")[0]
            else:
                base = name
            limit = lookalike_limit(entry_name, system)
            same_stem = system == "windows" and "." in base and "." in entry_name and \
                base.rsplit(".", 1)[0] == entry_name.rsplit(".", 1)[0]
            distance = 1 if same_stem else damerau_levenshtein(base, entry_name, limit)
            if 0 < distance <= limit and (best is None or distance < best[0]):
                best = (distance, entry_name)
        if best is not None:
            found.append(_behaviour(RULE_LOOKALIKE, f"{name} is {best[0]} edit"
                                    f"{'s' if best[0] > 1 else ''} from {best[1]}", defs))
            break
    return found


def _location(p: ProcessInfo, locations: list[str], system: str,
              defs: Definitions) -> list[Evidence]:
    if not p.exe:
        return []
    if system == "windows":
        path = p.exe.replace("/", "\\").lower()
        hit = next((loc for loc in locations if loc.lower() in path), None)
    else:
        hit = next((loc for loc in locations if p.exe.startswith(loc)), None)
    return [_behaviour(RULE_LOCATION, f"{p.exe} is under {hit}", defs)] if hit else []


def _deleted(p: ProcessInfo, defs: Definitions) -> list[Evidence]:
    if not p.exe_deleted:
        return []
    if p.exe_replaced:
        return [_behaviour(RULE_REPLACED, f"{p.exe} was replaced on disk since it started "
                           "(an upgrade does this; restart the program)", defs)]
    detail = f"{p.exe} no longer exists on disk"
    if p.exe and p.exe.startswith("/memfd:"):
        detail = f"runs from an anonymous memory file ({p.exe}), never stored on disk"
    return [_behaviour(RULE_DELETED, detail, defs)]


def _hidden(view: ProcessView) -> dict[int, str]:
    """pids some listing shows and another, covering them, does not. A second round
    confirms each, so a process that started or ended during the probe is not reported."""
    def round_() -> dict[int, tuple[tuple[str, ...], tuple[str, ...]]]:
        sources = view.listing_sources()
        seen: set[int] = set().union(*(s.pids for s in sources)) if sources else set()
        result = {}
        for pid in seen:
            missing = tuple(s.name for s in sources if s.misses(pid))
            if missing:
                result[pid] = (missing, tuple(s.name for s in sources if pid in s.pids))
        return result

    first = round_()
    if not first:
        return {}
    second = round_()
    return {pid: f"missing from {', '.join(missing)}; found by {', '.join(present)}"
            for pid, (missing, present) in sorted(first.items())
            if second.get(pid) == (missing, present)}


def _memory(view: ProcessView, pid: int, scan: Callable[[bytes], list[Evidence]],
            cap: int) -> list[Evidence]:
    found: dict[tuple[str, str, str], Evidence] = {}
    try:
        for address, data in view.memory_regions(pid, cap):
            for item in scan(data):
                key = (item.type, item.value, item.source)
                if key not in found:
                    if not item.detail:
                        item = Evidence(**{**asdict(item),
                                           "detail": f"in memory at 0x{address:x}"})
                    found[key] = item
    except OSError as exc:
        view.errors.append(f"pid {pid}: memory scan stopped ({exc})")
    return list(found.values())


def check_processes(view: ProcessView, defs: Definitions, *, system: str | None = None,
                    scan_memory: Callable[[bytes], list[Evidence]] | None = None,
                    memory_cap: int = MEMORY_CAP, memory_pids: Collection[int] | None = None,
                    is_trait: Callable[[Evidence], bool] | None = None,
                    exe_cap: int = EXE_CAP, hidden: bool = True,
                    connections: Sequence[Connection] | None = None) -> list[Finding]:
    """One finding per suspicious process, with every rule it broke as evidence.

    Rules: running image deleted; image in a temp or shared folder; a system program's
    name from the wrong folder or parent, a look-alike name, a user-space kernel-thread
    name; hidden from a listing; image sha256 in the definitions (each distinct image
    hashed once, up to ``exe_cap``); optionally ``scan_memory`` over each process's memory
    (``memory_pids`` limits which; the cleaner's own process and its workers are never
    scanned: their memory holds the rules). A memory match for which ``is_trait`` is true
    (a rule describing a trait, not a bot) makes the finding suspicious, not malicious.
    What could not be read is added to ``view.errors``."""
    system = system or view.system
    behaviour = defs.behaviour
    table: list[dict[str, Any]] = list(
        behaviour.get("windows_programs" if system == "windows" else "linux_programs") or [])
    locations = [str(x) for x in
                 (behaviour.get("suspicious_locations") or {}).get(system, [])]
    procs = {p.pid: p for p in view.processes()}
    hidden_pids = _hidden(view) if hidden else {}
    for pid in hidden_pids:
        if pid not in procs:
            info = view.process(pid)
            procs[pid] = info if info is not None else ProcessInfo(pid=pid, ppid=0, name="?")
    own = os.getpid() if view.live else None
    sizes = {entry.size for entry in defs.hashes.values()}
    hashed: dict[str, str | None] = {}  # image key -> sha256
    findings: list[Finding] = []
    for pid in sorted(procs):
        p = procs[pid]
        if pid == own:
            continue  # the cleaner itself; it may well run from a Downloads or temp folder
        evidence: list[Evidence] = []
        if pid in hidden_pids:
            evidence.append(_behaviour(RULE_HIDDEN, hidden_pids[pid], defs))
        evidence += _deleted(p, defs)
        evidence += _location(p, locations, system, defs)
        evidence += _masquerade(p, table, system, procs, defs)
        if defs.hashes and p.exe is not None and not _real_kernel_thread(p):
            sha256 = _image_hash(view, p, hashed, sizes, exe_cap)
            entry = defs.hashes.get(sha256) if sha256 else None
            if sha256 and entry is not None:
                evidence.insert(0, Evidence("hash", sha256, source=defs.source,
                                            detail=entry.family or ""))
        if scan_memory is not None and not p.kernel_thread and p.ppid != own and \
                (memory_pids is None or pid in memory_pids):
            evidence += _memory(view, pid, scan_memory, memory_cap)
        if evidence:
            findings.append(_finding(p, evidence, is_trait))
    if findings:
        if connections is None:
            connections = view.connections()
        for finding in findings:
            owned = connections_of(connections, finding.target["pid"])
            if owned:
                finding.target["connections"] = [c.describe() for c in owned]
    return findings


def sys_system() -> str:
    """The system this cleaner runs on, in the words the behaviour table uses."""
    return "windows" if sys.platform == "win32" else \
        "linux" if sys.platform.startswith("linux") else sys.platform


def _image_hash(view: ProcessView, p: ProcessInfo, hashed: dict[str, str | None],
                sizes: set[int | None], cap: int) -> str | None:
    """sha256 of the running image, once per distinct file: a path names its content
    while it exists, a deleted image is hashed per process."""
    key = f"pid:{p.pid}" if p.exe_deleted or p.exe is None else f"path:{p.exe}"
    if key in hashed:
        return hashed[key]
    if None not in sizes:
        st = view.stat_executable(p.pid)
        if st is not None and st.st_size not in sizes:
            hashed[key] = None  # no known bot has this size: skip reading it
            return None
    data = view.read_executable(p.pid, cap)
    hashed[key] = hashlib.sha256(data).hexdigest() if data is not None else None
    return hashed[key]


def _reason(item: Evidence) -> str:
    if item.type == "hash":
        return "its image's sha256 is a known bot's" + (f" ({item.detail})" if item.detail
                                                        else "")
    if item.type == "rule":
        return f"YARA rule {item.value} matches its memory"
    return item.value


def _finding(p: ProcessInfo, evidence: list[Evidence],
             is_trait: Callable[[Evidence], bool] | None) -> Finding:
    kinds = set()
    severity: Severity = "info"
    for item in evidence:
        if item.type == "rule" and is_trait is not None and is_trait(item):
            kinds.add("memory-rule")
            severity = "suspicious" if severity == "info" else severity
        elif item.type in ("hash", "rule"):
            kinds.add("hash-match" if item.type == "hash" else "memory-rule")
            severity = "malicious"
        else:
            kinds.add(RULE_KINDS.get(item.value, "masquerade"))
            if item.value != RULE_REPLACED and severity == "info":
                severity = "suspicious"
    kind = next(k for k in KIND_ORDER if k in kinds)
    exe = p.exe_display
    where = f"pid {p.pid} {p.name}" + (f" ({exe})" if exe else "")
    return Finding(check="process", kind=kind, severity=severity, where=where,
                   why="; ".join(dict.fromkeys(_reason(e) for e in evidence)), evidence=evidence,
                   target={"pid": p.pid, "start_time": p.start_time, "exe": exe,
                           "name": p.name, "ppid": p.ppid, "uid": p.uid})


# --- stopping -------------------------------------------------------------------------------

def stop_process(pid: int, start_time: float | None, proc_root: Path = Path("/proc"), *,
                 timeout: float = 5.0) -> str:
    """Stop one process, only if it is still the one that was found: same start time.

    SIGSTOP first, so it cannot react (fork, respawn a partner) between the check and the
    kill; on Linux through a pidfd, so the signal cannot reach a pid reused in between.
    Refuses pid 1, the cleaner itself and kernel threads. Returns what happened."""
    if pid <= 1:
        return "refused: pid 1 (init) is never stopped"
    if pid == os.getpid():
        return "refused: that is the cleaner's own process"
    if start_time is None:
        return "refused: start time unknown, a reused pid cannot be ruled out"
    if sys.platform == "win32" or not proc_root.is_dir():
        return _stop_psutil(pid, start_time, timeout)
    stat = _read_stat(proc_root, pid)
    if stat is None or stat.state in ("Z", "X"):
        return "gone: already exited"
    if stat.flags & PF_KTHREAD or pid == 2 or stat.ppid == 2:
        return "refused: kernel thread"
    if float(stat.start_time) != float(start_time):
        return "skipped: pid reused by another program (start time differs)"
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # old kernel: fall back to kill(), with the start time checked again
    try:
        again = _read_stat(proc_root, pid)
        if again is None or float(again.start_time) != float(start_time):
            return "gone: exited before it was stopped"
        try:
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                if pidfd is not None:
                    signal.pidfd_send_signal(pidfd, sig)
                else:
                    os.kill(pid, sig)
        except ProcessLookupError:
            return "gone: exited before it was stopped"
        except PermissionError:
            return "failed: permission denied (run the cleaner as administrator/root)"
        if _wait_gone(pid, start_time, proc_root, pidfd, timeout):
            return "stopped"
        return f"failed: still running {timeout:g} s after SIGKILL"
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _wait_gone(pid: int, start_time: float, proc_root: Path, pidfd: int | None,
               timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(int(timeout * 1000)):
            return True
    while time.monotonic() < deadline:
        stat = _read_stat(proc_root, pid)
        if stat is None or stat.state in ("Z", "X") or float(stat.start_time) != start_time:
            return True  # exited (a zombie waits only for its parent to collect it)
        time.sleep(0.02)
    return False


def _stop_psutil(pid: int, start_time: float, timeout: float) -> str:
    if psutil is None:
        return "failed: no way to stop processes here (psutil missing)"
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(start_time)) > 1e-3:
            return "skipped: pid reused by another program (start time differs)"
        if sys.platform == "win32" and pid == 4:
            return "refused: kernel (System)"
        proc.suspend()
        proc.kill()
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return "gone: already exited"
    except psutil.AccessDenied:
        return "failed: permission denied (run the cleaner as administrator/root)"
    except psutil.TimeoutExpired:
        return f"failed: still running {timeout:g} s after kill"
    return "stopped"
