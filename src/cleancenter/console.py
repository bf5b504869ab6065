"""Shared terminal plumbing for every command: consoles, JSON output, progress, exit codes.

Exit codes follow scanner conventions: 0 clean/done, 1 something was found (bad items,
store problems), 2 the command could not do its work.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_ERROR = 2

# Piped output (scripts, `less`) is not cut at 80 columns: hashes must stay whole.
_PIPE_WIDTH = int(os.environ.get("COLUMNS", "0") or 0) or 200
out = Console(highlight=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """JSON on stdout, one document, for scripts (``--json``)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code)


_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str | None) -> datetime | None:
    """An ISO date or time (UTC unless it says otherwise) or an age like ``7d``, ``12h``."""
    if text is None:
        return None
    match = _RELATIVE.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r}: use an ISO date/time (2018-05-06, 2018-05-06T12:00Z) or an age (7d, 12h)"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class RichProgress:
    """Adapter from the collect/store progress protocol to a Rich progress bar on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not enabled,
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, label: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=True)
        self.task = self.progress.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)
