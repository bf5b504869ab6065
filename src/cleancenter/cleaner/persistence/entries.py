"""One autostart entry, as plain data: what the checks list, the judge rates and the
remover acts on (it travels inside a finding's ``target``, so it must survive JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

System = Literal["linux", "windows"]

# The location codes the checks produce (docs and the judge's rule "where" refer to them).
LINUX_LOCATIONS = (
    "crontab", "cron.d", "cron-periodic", "systemd-unit", "rc.local", "init.d",
    "shell-profile", "ld.so.preload", "authorized_keys", "xdg-autostart",
)
WINDOWS_LOCATIONS = (
    "registry-run", "registry-runonce", "service", "scheduled-task", "startup-folder",
    "winlogon", "ifeo", "appinit",
)


@dataclass
class PersistenceEntry:
    """Something that starts a program without the user asking (boot, logon, schedule).

    ``file`` is the real path on this machine of the file holding the entry (under the
    scanned root), ``where`` the path a person knows it by on the scanned system.
    """

    system: System
    location: str  # a code from LINUX_LOCATIONS / WINDOWS_LOCATIONS
    where: str
    command: str
    program: str | None = None
    file: str | None = None
    line: int | None = None  # 1-based, only when the entry is one line of a larger file
    whole_file: bool = False  # removing the entry means removing ``file``
    registry: dict[str, str] | None = None  # {"hive": "HKLM\\SOFTWARE", "key": ..., "value": ...}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersistenceEntry:
        """Read back a dict from `to_dict`; unknown keys (a newer cleaner's) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
