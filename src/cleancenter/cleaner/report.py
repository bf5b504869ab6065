"""The scan report: JSON Lines for programs, a short summary for the person.

The JSONL file holds one header line (``"record": "scan"``: cleaner and definitions
versions, roots, counts, errors) and then one line per finding (``"record": "finding"``).
Exit codes follow scanner conventions: 0 nothing found, 1 something found, 2 the scan
could not do its work.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cleancenter.atomicfile import write_atomically
from cleancenter.cleaner.findings import Finding
from cleancenter.textsafe import for_console

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


@dataclass
class ScanReport:
    cleaner_version: str
    definitions_version: int | None
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished: str | None = None
    roots: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    cleaned: bool = False

    def finish(self) -> None:
        self.finished = datetime.now(UTC).isoformat(timespec="seconds")

    @property
    def exit_code(self) -> int:
        if any(f.counts for f in self.findings):
            return EXIT_FOUND
        return EXIT_ERROR if self.fatal else EXIT_CLEAN

    @property
    def fatal(self) -> bool:
        """True when a whole check could not run (single unreadable files are not fatal)."""
        return any(e.get("fatal") == "yes" for e in self.errors)

    def counts(self) -> dict[str, int]:
        by = Counter(f.severity for f in self.findings)
        acted = sum(1 for f in self.findings if f.action and not
                    f.action.startswith(("skipped", "failed")))
        return {"malicious": by["malicious"], "suspicious": by["suspicious"],
                "info": by["info"], "actions": acted}

    def header(self) -> dict[str, Any]:
        return {"record": "scan", "cleaner_version": self.cleaner_version,
                "definitions_version": self.definitions_version, "started": self.started,
                "finished": self.finished, "roots": self.roots, "checks": self.checks,
                "cleaned": self.cleaned, "counts": self.counts(), "stats": self.stats,
                "errors": self.errors, "exit_code": self.exit_code}

    def lines(self) -> list[str]:
        rows = [self.header()] + [{"record": "finding", **f.to_dict()} for f in self.findings]
        # ASCII: a file name that is not UTF-8 survives as an escape, read back exactly
        return [json.dumps(row, ensure_ascii=True, sort_keys=True) for row in rows]

    def write_jsonl(self, path: Path) -> None:
        """Written whole or not at all."""
        write_atomically(path, ("\n".join(self.lines()) + "\n").encode("utf-8"))

    def summary(self) -> dict[str, Any]:
        """The anonymous summary sent with ``--token``: counts only, no paths, no names."""
        kinds = Counter(f"{f.check}:{f.kind}" for f in self.findings if f.counts)
        return {"cleaner_version": self.cleaner_version,
                "definitions_version": self.definitions_version, "counts": self.counts(),
                "kinds": dict(sorted(kinds.items())), "cleaned": self.cleaned,
                "families": sorted({e.detail for f in self.findings for e in f.evidence
                                    if e.type == "hash" and e.detail})}


STYLE = {"malicious": "bold red", "suspicious": "yellow", "info": "dim"}


def print_summary(report: ScanReport, console: Console, *, show_info: bool = False) -> None:
    """A readable table; strings from the machine are escaped (they may be hostile)."""
    shown = [f for f in report.findings if show_info or f.counts]
    if shown:
        table = Table(title="Findings", show_lines=False, expand=False)
        for column in ("severity", "check", "where", "why", "action"):
            table.add_column(column, overflow="fold")
        for f in shown:
            table.add_row(f"[{STYLE[f.severity]}]{f.severity}[/]", f.check,
                          for_console(f.where), for_console(f.why),
                          for_console(f.action or "") + (f" [dim]{f.action_id}[/]"
                                                         if f.action_id else ""))
        console.print(table)
    counts = report.counts()
    stats = report.stats.get("files", {})
    scanned = (f"{stats.get('files', 0):,} files ({stats.get('bytes', 0) / 1e6:,.1f} MB, "
               f"{stats.get('from_cache', 0):,} unchanged since the last scan)"
               if stats else "no files")
    using = f"definitions v{report.definitions_version}" if report.definitions_version \
        else "the built-in behaviour rules only"
    console.print(f"Scanned {scanned} with {using}.")
    if counts["malicious"] or counts["suspicious"]:
        console.print(f"[bold red]{counts['malicious']} malicious[/], "
                      f"[yellow]{counts['suspicious']} suspicious[/] finding(s); "
                      f"{counts['info']} autostart entries listed.")
        if not report.cleaned and counts["malicious"]:
            console.print("Run again with [bold]--clean[/] to quarantine, stop and remove "
                          "what is malicious; every action can be undone with `restore`.")
    else:
        console.print("[green]Nothing malicious or suspicious found.[/]")
    if report.errors:
        console.print(f"[yellow]{len(report.errors)} item(s) could not be checked[/] "
                      "(see the report's errors).")
