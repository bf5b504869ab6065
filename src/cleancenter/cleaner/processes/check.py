"""The process check: turns what a view shows into findings, one per suspicious process
with every rule it broke. Nothing found is executed: images and memory are only read.
"""

from __future__ import annotations

import hashlib
import ntpath
import os
import posixpath
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict
from typing import Any

from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.findings import Evidence, Finding, Severity
from cleancenter.cleaner.network import Connection, connections_of
from cleancenter.cleaner.processes.info import (
    EXE_CAP,
    MEMORY_CAP,
    ProcessInfo,
    ProcessView,
)

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
