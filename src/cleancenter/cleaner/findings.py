"""What the cleaner reports: one `Finding` per thing found, written as one JSON line.

A finding says *what* (its check and kind), *where* (a path, a process, a registry value,
a connection), *why* (the evidence: a hash, a rule with its source and author, an IOC,
or a behaviour rule) and, after ``--clean``, the *action* taken. ``target`` holds what
an action needs (a path, a pid, a persistence entry); it is plain JSON so a report can be
read back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Check = Literal["file", "process", "persistence", "network"]
Severity = Literal["malicious", "suspicious", "info"]
SEVERITIES: tuple[Severity, ...] = ("malicious", "suspicious", "info")


@dataclass
class Evidence:
    """One reason: ``type`` is hash, rule, ioc or behaviour; ``value`` what matched."""

    type: Literal["hash", "rule", "ioc", "behaviour"]
    value: str
    source: str = ""  # the definitions file or rule pack it came from
    author: str = ""
    reference: str = ""
    detail: str = ""


@dataclass
class Finding:
    check: Check
    kind: str  # short code, e.g. hash-match, deleted-executable, autostart (docs/cleaner.md)
    severity: Severity
    where: str
    why: str
    evidence: list[Evidence] = field(default_factory=list)
    target: dict[str, Any] = field(default_factory=dict)
    action: str | None = None  # after --clean: quarantined, stopped, removed, skipped: ...
    action_id: str | None = None  # the journal / quarantine id that undoes it

    @property
    def counts(self) -> bool:
        """True when the finding makes the scan's exit code 1 (info entries do not)."""
        return self.severity != "info"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        evidence = [Evidence(**item) for item in data.get("evidence", [])]
        return cls(**{**data, "evidence": evidence})
