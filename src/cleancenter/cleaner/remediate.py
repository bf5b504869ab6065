"""From findings to actions: tie the findings of one bot together, then undoably remove it.

`correlate` is the conclusion step: a process talking to a C&C address is the bot, its
executable is the bot's file, and an autostart entry that starts that file is the bot's
persistence, even when each of those alone was only suspicious. `clean` then acts on the
malicious findings only, in the order that keeps a bot from putting itself back: capture
and stop its processes, quarantine its files, remove its autostart entries. Each action
is journaled first and undone with ``restore``. A file in an OS-critical folder is only
ever touched on an exact hash match.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleancenter.atomicfile import atomic_output
from cleancenter.cleaner.findings import Evidence, Finding
from cleancenter.cleaner.quarantine import Quarantine, QuarantineError
from cleancenter.cleaner.scancache import ScanCache

CRITICAL_PREFIXES = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib64/",
                     "/lib/", "/lib64/", "/boot/", "/usr/libexec/")
CRITICAL_WINDOWS = re.compile(r"(?i)^[a-z]:\\windows\\(system32|syswow64|winsxs)\\")
DELETED = " (deleted)"


def is_os_critical(path: str) -> bool:
    return path.startswith(CRITICAL_PREFIXES) or bool(CRITICAL_WINDOWS.match(path))


def has_hash_match(finding: Finding) -> bool:
    return any(e.type == "hash" for e in finding.evidence)


def _exe(finding: Finding) -> str:
    return str(finding.target.get("exe") or "").removesuffix(DELETED)


def _escalate(finding: Finding, evidence: Evidence, kind: str | None = None) -> None:
    if finding.severity != "malicious":
        finding.severity = "malicious"
        finding.why = f"{finding.why}; {evidence.value}"
        if kind:
            finding.kind = kind
    finding.evidence.append(evidence)


def correlate(findings: list[Finding]) -> None:
    """Raise the findings that belong to a bot already found malicious (in place)."""
    c2_pids = {f.target.get("pid") for f in findings
               if f.check == "network" and f.severity == "malicious" and f.target.get("pid")}
    for f in findings:
        if f.check == "process" and f.target.get("pid") in c2_pids:
            _escalate(f, Evidence("behaviour", "connected to a known C&C address"))
    bad_paths = {str(f.target["path"]) for f in findings
                 if f.check == "file" and f.severity == "malicious" and "path" in f.target}
    bad_paths |= {_exe(f) for f in findings
                  if f.check == "process" and f.severity == "malicious" and _exe(f)}
    for f in findings:
        if f.check != "persistence":
            continue
        entry = f.target.get("entry") or {}
        program = str(entry.get("program") or "")
        command = str(entry.get("command") or "")
        hit = program if program in bad_paths else next(
            (path for path in bad_paths if path and path in command), None)
        if hit:
            _escalate(f, Evidence("behaviour", f"starts {hit}, found malicious"),
                      "malicious-autostart")


@dataclass
class CleanTools:
    """What `clean` needs from the machine; each check module supplies its part."""

    quarantine: Quarantine
    read_image: Callable[[int], bytes | None]  # a running process's executable
    image_stat: Callable[[int], os.stat_result | None]
    stop: Callable[[int, Any], str]  # (pid, start_time) -> status text
    cache: ScanCache | None = None


def clean(findings: list[Finding], tools: CleanTools) -> None:
    """Act on every malicious finding; the result is written into each finding."""
    malicious = [f for f in findings if f.severity == "malicious"]
    _stop_processes([f for f in malicious if f.check in ("process", "network")], tools)
    for f in malicious:
        if f.check == "file":
            _quarantine_file(f, tools)
    removed: dict[str, Finding] = {}  # a unit with several Exec lines is one file
    for f in malicious:
        if f.check == "persistence":
            path = str((f.target.get("entry") or {}).get("file") or "")
            first = removed.get(path)
            if first is not None and (f.target.get("entry") or {}).get("whole_file"):
                f.action, f.action_id = first.action, first.action_id
                continue
            _remove_entry(f, tools)
            if path:
                removed[path] = f
    for f in findings:
        if f.severity != "malicious" and f.action is None:
            f.action = "reported"


def _stop_processes(found: list[Finding], tools: CleanTools) -> None:
    by_pid: dict[int, list[Finding]] = {}
    for f in found:
        pid = f.target.get("pid")
        if isinstance(pid, int):
            by_pid.setdefault(pid, []).append(f)
        elif f.action is None:
            f.action = "skipped: no process owns it"
    quarantined: dict[str, str] = {}
    for pid, group in sorted(by_pid.items()):
        exe = next((_exe(f) for f in group if _exe(f)), "")
        start_time = next((f.target.get("start_time") for f in group
                           if f.target.get("start_time") is not None), None)
        if exe and is_os_critical(exe) and not any(has_hash_match(f) for f in group):
            _set(group, "skipped: OS program, no exact hash match")
            continue
        action_id = None
        deleted = any(str(f.target.get("exe") or "").endswith(DELETED) for f in group)
        if exe and (deleted or not os.path.exists(exe)) and exe not in quarantined:
            image, st = tools.read_image(pid), tools.image_stat(pid)
            if image is not None and st is not None:
                tools.quarantine.journal.write({"action": "quarantine-image", "state":
                                                "planned", "pid": pid, "path": exe})
                try:
                    item = tools.quarantine.store(exe, image, st, kind="running-image",
                                                  reason=f"running image of pid {pid}")
                    quarantined[exe] = item.id
                    tools.quarantine.journal.write({"action": "quarantine-image", "state":
                                                    "done", "pid": pid, "id": item.id})
                except (OSError, QuarantineError) as exc:
                    tools.quarantine.journal.write({"action": "quarantine-image", "state":
                                                    "failed", "pid": pid, "error": str(exc)})
        action_id = quarantined.get(exe)
        tools.quarantine.journal.write({"action": "stop", "state": "planned", "pid": pid,
                                        "exe": exe})
        status = tools.stop(pid, start_time)
        tools.quarantine.journal.write({"action": "stop", "state": "done", "pid": pid,
                                        "status": status})
        text = status + (" and its image quarantined" if action_id else "")
        _set(group, text, action_id)


def _set(group: list[Finding], action: str, action_id: str | None = None) -> None:
    for f in group:
        f.action, f.action_id = action, action_id


def _quarantine_file(f: Finding, tools: CleanTools) -> None:
    path = str(f.target.get("path", ""))
    if is_os_critical(path) and not has_hash_match(f):
        f.action = "skipped: OS-critical path, no exact hash match"
        return
    try:
        item = tools.quarantine.quarantine_file(path, reason=f.why)
    except QuarantineError as exc:
        f.action = f"failed: {exc}"
        return
    if tools.cache is not None:
        tools.cache.forget(path)
    f.action, f.action_id = "quarantined", item.id


def _remove_entry(f: Finding, tools: CleanTools) -> None:
    entry = f.target.get("entry") or {}
    path = entry.get("file")
    if not path:
        f.action = "skipped: registry entries are listed, not changed (remove with the " \
                   "Windows tools; see docs/cleaner.md)"
        return
    if entry.get("whole_file"):
        try:
            item = tools.quarantine.quarantine_file(str(path), reason=f.why,
                                                    kind="persistence-file")
        except QuarantineError as exc:
            f.action = f"failed: {exc}"
            return
        f.action, f.action_id = "removed (file quarantined)", item.id
        return
    line = entry.get("line")
    if not isinstance(line, int):
        f.action = "skipped: the entry's line is not known"
        return
    try:
        f.action_id = _cut_line(Path(path), line, str(entry.get("command", "")), f.why, tools)
        f.action = "removed (line cut, file backed up)"
    except (OSError, QuarantineError, ValueError) as exc:
        f.action = f"failed: {exc}"


def _cut_line(path: Path, line: int, expected: str, reason: str, tools: CleanTools) -> str:
    """Back the file up into quarantine, then rewrite it without that one line."""
    lines = path.read_bytes().splitlines(keepends=True)
    if not 1 <= line <= len(lines) or \
            expected.strip() not in lines[line - 1].decode("utf-8", "replace"):
        raise ValueError(f"{path}:{line} changed since the scan; not touched")
    backup = tools.quarantine.quarantine_file(str(path), reason=reason, kind="backup",
                                              remove=False)
    st = path.stat()
    tools.quarantine.journal.write({"action": "cut-line", "state": "planned",
                                    "path": str(path), "line": line, "backup": backup.id})
    with atomic_output(path, mode=st.st_mode & 0o7777, prefix=".cut-") as out:
        out.write(b"".join(lines[:line - 1] + lines[line:]))
        if os.geteuid() == 0:
            os.fchown(out.fileno(), st.st_uid, st.st_gid)
    tools.quarantine.journal.write({"action": "cut-line", "state": "done", "path": str(path),
                                    "line": line, "backup": backup.id})
    return backup.id
