"""Rate autostart entries against the definitions: every entry is listed (``info``),
behaviour rules make it ``suspicious``, a known bot file name or hash ``malicious``.

One finding per entry, at its worst severity, carrying every reason found, so the user
sees each autostart entry once and the remover gets it whole in ``target``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.findings import Evidence, Finding
from cleancenter.cleaner.persistence.entries import PersistenceEntry
from cleancenter.cleaner.persistence.paths import FileReader

# a rule's "where" that stands for several location codes
RULE_SCOPES = {
    "cron": frozenset({"crontab", "cron.d"}),
    "registry-run": frozenset({"registry-run", "registry-runonce"}),
}
DESCRIBE = {
    "crontab": "a cron job", "cron.d": "a cron job", "cron-periodic": "a periodic cron script",
    "systemd-unit": "a systemd unit", "rc.local": "a boot command in rc.local",
    "init.d": "an init script", "shell-profile": "a command run at every shell login",
    "ld.so.preload": "a library preloaded into every program",
    "authorized_keys": "an SSH key that may log in", "xdg-autostart": "a desktop autostart",
    "registry-run": "a registry Run entry", "registry-runonce": "a registry RunOnce entry",
    "service": "a service started at boot", "scheduled-task": "a scheduled task",
    "startup-folder": "a Startup folder item", "winlogon": "a changed Winlogon value",
    "ifeo": "a debugger attached to a program (IFEO)",
    "appinit": "DLLs loaded into every GUI program",
}
LOCATION_WHY = "its program lives in a folder programs are not installed to"


@dataclass(frozen=True)
class _Rule:
    where: str
    regex: re.Pattern[str]
    why: str


def _rules(behaviour: dict[str, Any]) -> list[_Rule]:
    """The persistence patterns; a malformed one is skipped rather than stopping the scan."""
    rules = []
    for item in behaviour.get("persistence_patterns", []) or []:
        try:
            rules.append(_Rule(str(item.get("where", "any")), re.compile(str(item["pattern"])),
                               str(item.get("why", item["pattern"]))))
        except (KeyError, TypeError, AttributeError, re.error):
            continue
    return rules


def _applies(rule: _Rule, location: str) -> bool:
    return rule.where in ("any", location) or location in RULE_SCOPES.get(rule.where, ())


def _base_name(program: str, system: str) -> str:
    path = PureWindowsPath(program) if system == "windows" else PurePosixPath(program)
    return path.name.lower()


def _in_folder(program: str, folder: str, system: str) -> bool:
    """Windows folders are fragments (``\\AppData\\Local\\Temp\\``) found anywhere in
    the path, without case; Linux folders are absolute prefixes."""
    if system == "windows":
        return folder.replace("/", "\\").lower() in program.replace("/", "\\").lower()
    return program.startswith(folder)


def judge(entries: Iterable[PersistenceEntry], defs: Definitions,
          file_reader: FileReader | None = None) -> list[Finding]:
    """One finding per entry (check "persistence"), worst severity first in its evidence.

    ``file_reader`` maps a program path to its bytes on the scanned system (see
    `paths.root_reader`); without it no program is hashed.
    """
    rules = _rules(defs.behaviour)
    folders: dict[str, list[str]] = {}
    raw_folders = defs.behaviour.get("suspicious_locations", {})
    if isinstance(raw_folders, dict):
        folders = {str(k): [str(f) for f in v] for k, v in raw_folders.items()
                   if isinstance(v, list)}
    hashed: dict[str, str | None] = {}
    findings = []
    for entry in entries:
        malicious: list[Evidence] = []
        suspicious: list[Evidence] = []
        program = entry.program or ""
        if program:
            name = _base_name(program, entry.system)
            if name and name in defs.iocs.filenames:  # a name alone proves nothing
                suspicious.append(Evidence(type="ioc", value=name, source=defs.source,
                                           detail="file name of a known bot"))
            if file_reader is not None and defs.hashes:
                if program not in hashed:
                    hashed[program] = _sha256(file_reader, program)
                digest = hashed[program]
                known = defs.hashes.get(digest) if digest else None
                if known is not None:
                    malicious.append(Evidence(type="hash", value=known.sha256,
                                              source=defs.source, detail=known.family or ""))
            for folder in folders.get(entry.system, []):
                if _in_folder(program, folder, entry.system):
                    suspicious.append(Evidence(type="behaviour", value=LOCATION_WHY,
                                               source=defs.source, detail=folder))
                    break
        for rule in rules:  # on the command as written (the program was checked above)
            if _applies(rule, entry.location) and rule.regex.search(entry.command):
                suspicious.append(Evidence(type="behaviour", value=rule.why, source=defs.source,
                                           detail=rule.regex.pattern))
        findings.append(_finding(entry, malicious, suspicious))
    return findings


def _sha256(file_reader: FileReader, program: str) -> str | None:
    try:
        data = file_reader(program)
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() if data is not None else None


def _finding(entry: PersistenceEntry, malicious: list[Evidence],
             suspicious: list[Evidence]) -> Finding:
    what = DESCRIBE.get(entry.location, entry.location)
    target = {"entry": entry.to_dict()}
    if malicious:
        first = malicious[0]
        if first.type == "hash":
            family = f" ({first.detail})" if first.detail else ""
            why = f"{what} starting a known bot{family}: {entry.program}"
        else:
            why = f"{what} starting a program named like a known bot: {first.value}"
        return Finding(check="persistence", kind="malicious-autostart", severity="malicious",
                       where=entry.where, why=why, evidence=malicious + suspicious,
                       target=target)
    if suspicious:
        return Finding(check="persistence", kind="suspicious-autostart", severity="suspicious",
                       where=entry.where, why=f"{what}: {suspicious[0].value}",
                       evidence=suspicious, target=target)
    starts = f": starts {entry.program}" if entry.program else ""
    return Finding(check="persistence", kind="autostart", severity="info", where=entry.where,
                   why=f"{what}{starts}", target=target)
