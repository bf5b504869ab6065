"""Behaviour rules shipped in every bundle: where system programs legitimately live (and
who starts them), and persistence places bots like. Bots imitate these names
(``spoolsvc.exe`` beside ``spoolsv.exe``, a user-space ``kworker``); the cleaner compares
what runs against this table."""

from __future__ import annotations

from typing import Any

WINDOWS_PROGRAMS: list[dict[str, Any]] = [
    {"name": "svchost.exe", "folders": ["C:\\Windows\\System32", "C:\\Windows\\SysWOW64"],
     "parents": ["services.exe", "MsMpEng.exe"]},
    {"name": "spoolsv.exe", "folders": ["C:\\Windows\\System32"], "parents": ["services.exe"]},
    {"name": "lsass.exe", "folders": ["C:\\Windows\\System32"], "parents": ["wininit.exe"]},
    {"name": "services.exe", "folders": ["C:\\Windows\\System32"], "parents": ["wininit.exe"]},
    {"name": "csrss.exe", "folders": ["C:\\Windows\\System32"], "parents": ["smss.exe"]},
    {"name": "winlogon.exe", "folders": ["C:\\Windows\\System32"], "parents": ["smss.exe"]},
    {"name": "wininit.exe", "folders": ["C:\\Windows\\System32"], "parents": ["smss.exe"]},
    {"name": "smss.exe", "folders": ["C:\\Windows\\System32"], "parents": ["System"]},
    {"name": "explorer.exe", "folders": ["C:\\Windows"],
     "parents": ["userinit.exe", "winlogon.exe"]},
    {"name": "taskhostw.exe", "folders": ["C:\\Windows\\System32"], "parents": ["svchost.exe"]},
    {"name": "rundll32.exe", "folders": ["C:\\Windows\\System32", "C:\\Windows\\SysWOW64"],
     "parents": []},
    {"name": "conhost.exe", "folders": ["C:\\Windows\\System32"], "parents": []},
    # genuine programs one or two edits from names above: listed so they are not lookalikes
    {"name": "taskhost.exe", "folders": ["C:\\Windows\\System32"], "parents": []},
    {"name": "taskhostex.exe", "folders": ["C:\\Windows\\System32"], "parents": []},
]
LINUX_PROGRAMS: list[dict[str, Any]] = [
    {"name": "kworker", "kernel_thread": True},
    {"name": "kthreadd", "kernel_thread": True},
    {"name": "ksoftirqd", "kernel_thread": True},
    {"name": "sshd", "folders": ["/usr/sbin"]},
    {"name": "cron", "folders": ["/usr/sbin"]},
    {"name": "crond", "folders": ["/usr/sbin"]},
    {"name": "systemd", "folders": ["/usr/lib/systemd", "/lib/systemd"]},
    {"name": "dbus-daemon", "folders": ["/usr/bin"]},
    {"name": "rsyslogd", "folders": ["/usr/sbin"]},
    {"name": "bash", "folders": ["/usr/bin", "/bin"]},
    {"name": "sh", "folders": ["/usr/bin", "/bin"]},
]
SUSPICIOUS_LOCATIONS = {
    "linux": ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/"],
    # not \\ProgramData\\: Windows Defender itself runs from there
    "windows": ["\\AppData\\Local\\Temp\\", "\\Windows\\Temp\\", "\\Users\\Public\\"],
}
PERSISTENCE_PATTERNS = [
    {"where": "cron", "pattern": r"(?:wget|curl|tftp)\b.*\|\s*(?:ba)?sh\b",
     "why": "a scheduled download piped to a shell"},
    {"where": "any", "pattern": r"(?:^|[\s'\"=;|&(])/(?:tmp|dev/shm|var/tmp)/\S+",
     "why": "runs a program from a temporary folder"},
    {"where": "ld.so.preload", "pattern": r".+", "why": "any entry preloads into every program"},
    {"where": "registry-run", "pattern": r"(?i)\\(?:temp|appdata\\roaming)\\[^\\]+\.exe",
     "why": "starts a program from a user-writable folder"},
]


def behaviour_rules() -> dict[str, Any]:
    return {
        "windows_programs": WINDOWS_PROGRAMS,
        "linux_programs": LINUX_PROGRAMS,
        "suspicious_locations": SUSPICIOUS_LOCATIONS,
        "persistence_patterns": PERSISTENCE_PATTERNS,
    }
