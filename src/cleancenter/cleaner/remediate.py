"""From findings to actions: tie the findings of one bot together, then undoably remove it.

`correlate` is the conclusion step: a process talking to a C&C address is the bot, its
executable is the bot's file, and an autostart entry that starts that file is the bot's
persistence, even when each of those alone was only suspicious. `clean` then acts on the
malicious findings only, in the order that keeps a bot from putting itself back: capture
and stop its processes, quarantine its files, remove its autostart entries. Each action
is journaled first and undone with ``restore``. A file in an OS-critical folder is only
ever touched on an exact hash match, and a process running an OS program is stopped only
on an exact hash match or a connection to a known IRC server's host and port (a perl IRC
bot is perl; perl talking to a listed address is not enough).
"""

from __future__ import annotations

import os
import re
import shlex
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


def _tokens(command: str) -> set[str]:
    try:
        return set(shlex.split(command, comments=False, posix=True))
    except ValueError:  # unbalanced quotes: plain words will do
        return set(command.split())


def correlate(findings: list[Finding]) -> None:
    """Raise the findings that belong to a bot already found malicious (in place)."""
    c2_pids = {f.target.get("pid") for f in findings
               if f.check == "network" and f.severity == "malicious" and f.target.get("pid")}
    for f in findings:
        if f.check == "process" and f.target.get("pid") in c2_pids:
            _escalate(f, Evidence("behaviour", "connected to a known C&C address"))
    bad_paths = {str(f.target["path"]) for f in findings
                 if f.check == "file" and f.severity == "malicious" and "path" in f.target}
    # an OS program (an interpreter running a bot script) is not the bot's file
    bad_paths |= {_exe(f) for f in findings if f.check == "process"
                  and f.severity == "malicious" and _exe(f) and not is_os_critical(_exe(f))}
    for f in findings:
        if f.check != "persistence":
            continue
        entry = f.target.get("entry") or {}
        program = str(entry.get("program") or "")
        words = _tokens(str(entry.get("command") or "")) | {program}
        hit = next((path for path in sorted(bad_paths) if path in words), None)
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
    exe_of: Callable[[int], str | None] = lambda pid: None  # for a connection's owner
    cache: ScanCache | None = None


def clean(findings: list[Finding], tools: CleanTools) -> None:
    """Act on every malicious finding; the result is written into each finding."""
    malicious = [f for f in findings if f.severity == "malicious"]
    file_paths = {str(f.target.get("path")) for f in malicious if f.check == "file"}
    left_on_disk = _stop_processes([f for f in malicious if f.check in ("process", "network")],
                                   tools, file_paths)
    for f in malicious:
        if f.check == "file":
            _quarantine_file(f, tools)
    for path, group in left_on_disk.items():  # a stopped bot's file outside the scanned roots
        extra = Finding("file", "hash-match", "malicious", path, "the file of a stopped bot",
                        list(group[0].evidence), {"path": path})
        _quarantine_file(extra, tools)
        for f in group:
            f.action = f"{f.action}; its file {extra.action}"
            f.action_id = f.action_id or extra.action_id
    _remove_entries([f for f in malicious if f.check == "persistence"], tools)
    for f in findings:
        if f.severity != "malicious" and f.action is None:
            f.action = "reported"


def _may_stop(exe: str, group: list[Finding]) -> bool:
    if not exe or not is_os_critical(exe):
        return True
    return any(has_hash_match(f) for f in group) or any(
        e.type == "ioc" and e.detail.startswith("IRC server")
        for f in group for e in f.evidence)


def _stop_processes(found: list[Finding], tools: CleanTools,
                    file_paths: set[str]) -> dict[str, list[Finding]]:
    """Stop each malicious process once; returns the files of stopped bots that are still
    on disk and that no file finding covers (they are quarantined next)."""
    by_pid: dict[int, list[Finding]] = {}
    for f in found:
        pid = f.target.get("pid")
        if isinstance(pid, int):
            by_pid.setdefault(pid, []).append(f)
        elif f.action is None:
            f.action = "skipped: no process owns it"
    left_on_disk: dict[str, list[Finding]] = {}
    for pid, group in sorted(by_pid.items()):
        exe = next((_exe(f) for f in group if _exe(f)), "") or \
            (tools.exe_of(pid) or "").removesuffix(DELETED)
        start_time = next((f.target.get("start_time") for f in group
                           if f.target.get("start_time") is not None), None)
        if not _may_stop(exe, group):
            _set(group, f"skipped: runs the OS program {exe}; no exact hash or IRC server "
                        "match (stop it yourself if it is the bot)")
            continue
        deleted = not exe or not os.path.exists(exe) or any(
            str(f.target.get("exe") or "").endswith(DELETED) for f in group)
        image_id, kept = None, ""
        if deleted:
            image_id, kept = _keep_image(pid, exe, tools)
        tools.quarantine.journal.write({"action": "stop", "state": "planned", "pid": pid,
                                        "exe": exe})
        status = tools.stop(pid, start_time)
        tools.quarantine.journal.write({"action": "stop", "state": "done", "pid": pid,
                                        "status": status})
        _set(group, status + kept, image_id)
        if status == "stopped" and not deleted and exe not in file_paths \
                and not is_os_critical(exe):
            left_on_disk.setdefault(exe, []).extend(group)
    return left_on_disk


def _keep_image(pid: int, exe: str, tools: CleanTools) -> tuple[str | None, str]:
    """Copy a running bot's image into quarantine before it is stopped (its file is gone)."""
    image, st = tools.read_image(pid), tools.image_stat(pid)
    if image is None or st is None:
        return None, "; its image could not be read, so it was not kept"
    tools.quarantine.journal.write({"action": "quarantine-image", "state": "planned",
                                    "pid": pid, "path": exe})
    try:
        item = tools.quarantine.store(exe or f"pid-{pid}-image", image, st,
                                      kind="running-image", reason=f"running image of pid {pid}")
    except (OSError, QuarantineError) as exc:
        tools.quarantine.journal.write({"action": "quarantine-image", "state": "failed",
                                        "pid": pid, "error": str(exc)})
        return None, f"; its image could not be kept: {exc}"
    tools.quarantine.journal.write({"action": "quarantine-image", "state": "done", "pid": pid,
                                    "id": item.id})
    return item.id, " and its image quarantined"


def _set(group: list[Finding], action: str, action_id: str | None = None) -> None:
    for f in group:
        f.action, f.action_id = action, action_id


def _quarantine_file(f: Finding, tools: CleanTools) -> None:
    path = str(f.target.get("path", ""))
    if is_os_critical(path) and not has_hash_match(f):
        f.action = "skipped: OS-critical path, no exact hash match"
        return
    try:
        item = tools.quarantine.quarantine_file(
            path, reason=f.why, expected_sha256=f.target.get("sha256"))
    except QuarantineError as exc:
        f.action = f"failed: {exc}"
        return
    if tools.cache is not None:
        tools.cache.forget(path)
    f.action, f.action_id = "quarantined", item.id


def _remove_entries(found: list[Finding], tools: CleanTools) -> None:
    """Whole files once each; the lines of one file all in one rewrite."""
    lines: dict[str, list[Finding]] = {}
    done: dict[str, Finding] = {}
    for f in found:
        entry = f.target.get("entry") or {}
        path = str(entry.get("file") or "")
        if not path:
            f.action = "skipped: registry entries are listed, not changed (remove it with " \
                       "the Windows tools; see docs/cleaner.md)"
        elif is_os_critical(path):
            f.action = "skipped: an OS file; not changed (check it yourself)"
        elif entry.get("whole_file"):
            if path in done:
                f.action, f.action_id = done[path].action, done[path].action_id
                continue
            try:
                item = tools.quarantine.quarantine_file(path, reason=f.why,
                                                        kind="persistence-file")
                f.action, f.action_id = "removed (file quarantined)", item.id
            except QuarantineError as exc:
                f.action = f"failed: {exc}"
            done[path] = f
        elif isinstance(entry.get("line"), int):
            lines.setdefault(path, []).append(f)
        else:
            f.action = "skipped: the entry's line is not known"
    for path, group in lines.items():
        try:
            backup = _cut_lines(Path(path), group, tools)
        except (OSError, QuarantineError, ValueError) as exc:
            _set(group, f"failed: {exc}")
            continue
        _set(group, "removed (line cut, file backed up)", backup)


def _cut_lines(path: Path, group: list[Finding], tools: CleanTools) -> str:
    """Back the file up into quarantine, then rewrite it without the entries' lines.

    Lines are split as the persistence check split them (text, `str.splitlines`), and each
    must still hold its command: a file changed since the scan is not touched."""
    if os.path.realpath(path) != str(path):
        raise ValueError(f"{path} leads elsewhere now (a link?); not touched")
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    lines = text.splitlines(keepends=True)
    cut = set()
    for f in group:
        entry = f.target["entry"]
        number, command = int(entry["line"]), str(entry.get("command", "")).strip()
        if not 1 <= number <= len(lines) or command not in lines[number - 1]:
            raise ValueError(f"{path}:{number} changed since the scan; not touched")
        cut.add(number)
    backup = tools.quarantine.quarantine_file(str(path), reason=group[0].why, kind="backup",
                                              remove=False)
    st = path.stat()
    tools.quarantine.journal.write({"action": "cut-lines", "state": "planned",
                                    "path": str(path), "lines": sorted(cut),
                                    "backup": backup.id})
    kept = "".join(line for number, line in enumerate(lines, 1) if number not in cut)
    with atomic_output(path, mode=st.st_mode & 0o7777, prefix=".cut-") as out:
        out.write(kept.encode("utf-8", "surrogateescape"))
        if getattr(os, "geteuid", lambda: None)() == 0:
            os.fchown(out.fileno(), st.st_uid, st.st_gid)
    tools.quarantine.journal.write({"action": "cut-lines", "state": "done", "path": str(path),
                                    "lines": sorted(cut), "backup": backup.id})
    return backup.id
