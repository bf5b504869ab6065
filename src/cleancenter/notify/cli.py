"""``cleancenter notify ...``: the center's side of notification."""

from __future__ import annotations

import typer
from rich.table import Table

from cleancenter.center import Center
from cleancenter.console import fail, out, parse_when, print_json
from cleancenter.notify.infections import DEFAULT_KINDS, infected_hosts, update_infections
from cleancenter.textsafe import for_console

notify_app = typer.Typer(help="Infected hosts and what each ISP is told.", no_args_is_help=True)


@notify_app.command("infections")
def infections_command(
    ctx: typer.Context,
    since: str | None = typer.Option(None, help="last seen since: a date, a time or an age "
                                                "like 7d"),
    limit: int = typer.Option(50, help="rows to show (0: all)"),
    kinds: str = typer.Option(",".join(DEFAULT_KINDS),
                              help="event kinds that make a host count (bare connects do not)"),
    refresh: bool = typer.Option(True, "--update/--no-update",
                                 help="read new events into the table first"),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Hosts that attacked the decoys, derived incrementally from the events."""
    center: Center = ctx.obj
    try:
        when = parse_when(since)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    summary = update_infections(center.catalog, [k.strip() for k in kinds.split(",")
                                                 if k.strip()]) if refresh else None
    with center.catalog.engine.connect() as conn:
        hosts = infected_hosts(conn, since=when, limit=limit or None)
    if as_json:
        print_json({"update": summary.to_dict() if summary else None,
                    "hosts": [h.to_dict() for h in hosts]})
        return
    if summary is not None:
        out.print(f"read {summary.events_read:,} new events: {summary.hosts_new:,} new hosts, "
                  f"{summary.hosts_updated:,} updated")
    table = Table("source ip", "first seen", "last seen", "events", "ports", "sensors",
                  "families")
    for h in hosts:
        table.add_row(h.src_ip, h.first_seen.isoformat(timespec="seconds"),
                      h.last_seen.isoformat(timespec="seconds"), f"{h.events:,}",
                      str(len(h.ports)), for_console(", ".join(h.sensors)),
                      for_console(", ".join(h.families)))
    out.print(table)
