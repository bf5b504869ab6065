"""``cleancenter isp-side ...``: what an ISP runs on its own machine, with its own logs.

Nothing here talks to the center or sends anything: the center's list comes in as a file,
the lease logs are read where they lie, and the answer is printed.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cleancenter.console import EXIT_FOUND, err, fail, out, print_json
from cleancenter.notify.incidents import Incident
from cleancenter.notify.isp.correlate import correlate
from cleancenter.notify.isp.leases import FORMATS, Lease, LeaseError, read_all
from cleancenter.textsafe import for_console

isp_side_app = typer.Typer(help="The ISP's side: its lease logs against the center's list, "
                                "on its own machine.", no_args_is_help=True)
SHOWN_ERRORS = 10


class ListError(ValueError):
    """The center's list cannot be read; the message says where."""


def read_incident_list(path: Path) -> list[Incident]:
    """The center's list in its ``json`` export format (a JSON array of incidents)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ListError(f"{path}: not a readable list: {exc}") from exc
    if not isinstance(rows, list):
        raise ListError(f"{path}: expected a JSON array of incidents (export --format json)")
    incidents = []
    for number, row in enumerate(rows, 1):
        try:
            incidents.append(Incident(
                isp=str(row["isp"]), ip=str(row["ip"]),
                first_seen=_utc(row["first_seen"]), last_seen=_utc(row["last_seen"]),
                events=int(row["events"]), ports=tuple(int(p) for p in row.get("ports", [])),
                families=tuple(str(f) for f in row.get("families", []))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ListError(f"{path}: incident {number} is malformed: {exc!r}") from exc
    return incidents


def _utc(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment


@isp_side_app.command("match")
def match_command(
    incident_list: Path = typer.Argument(..., help="the center's list (export --format json)"),
    leases: list[Path] = typer.Option(..., "--leases", help="a lease log (repeat): dhcpd, "
                                      "Kea, radacct, RADIUS detail, CGNAT; format detected"),
    lease_format: str | None = typer.Option(None, "--lease-format",
                                            help=f"force one of {', '.join(FORMATS)}"),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Find the subscriber behind each incident: matched, none, or ambiguous (never a guess).

    Exit code 1 when lease lines were bad (they are listed and left out), else 0."""
    if lease_format is not None and lease_format not in FORMATS:
        raise fail(f"unknown lease format {lease_format!r}: one of {', '.join(FORMATS)}")
    try:
        incidents = read_incident_list(incident_list)
    except ListError as exc:
        raise fail(str(exc)) from exc
    found: list[Lease] = []
    errors: list[LeaseError] = []
    try:
        for item in read_all(leases, lease_format):
            if isinstance(item, LeaseError):
                errors.append(item)
            else:
                found.append(item)
    except OSError as exc:
        raise fail(f"cannot read a lease log: {exc}") from exc
    matches = correlate(incidents, found)
    rows: list[dict[str, Any]] = [
        {"id": m.observation.id if isinstance(m.observation, Incident) else None,
         "ip": m.observation.ip, "status": m.status, "subscriber": m.subscriber,
         "lease": m.source, "note": m.note,
         "candidates": [lease.source for lease in m.leases] if m.status == "ambiguous"
         else []}
        for m in matches]
    counts = Counter(m.status for m in matches)
    if as_json:
        print_json({"leases": len(found), "lease_errors": [
            {"where": e.location, "reason": e.reason} for e in errors],
            "counts": dict(counts), "matches": rows})
    else:
        table = Table("incident", "address", "status", "subscriber", "evidence", "note")
        for row in rows:
            evidence = row["lease"] or ", ".join(row["candidates"])
            table.add_row(str(row["id"]), row["ip"], row["status"],
                          for_console(row["subscriber"] or ""), for_console(evidence or ""),
                          for_console(row["note"]))
        out.print(table)
        out.print(f"{len(found):,} leases read; matched {counts['matched']}, none "
                  f"{counts['none']}, ambiguous {counts['ambiguous']}")
        for error in errors[:SHOWN_ERRORS]:
            err.print(f"[yellow]bad lease line[/] {for_console(error.location)}: "
                      f"{for_console(error.reason)}")
        if len(errors) > SHOWN_ERRORS:
            err.print(f"... and {len(errors) - SHOWN_ERRORS} more bad lines (--json lists all)")
    if errors:
        raise typer.Exit(EXIT_FOUND)

