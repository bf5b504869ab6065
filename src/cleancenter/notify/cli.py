"""``cleancenter notify ...``: the center's side of notification."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import typer
from rich.table import Table

from cleancenter.atomicfile import write_atomically
from cleancenter.center import Center
from cleancenter.console import EXIT_FOUND, err, fail, out, parse_when, print_json
from cleancenter.notify.exports import FORMATS, Reporter, export
from cleancenter.notify.funnel import (
    CCC_FY2006,
    FunnelFigures,
    SentReportError,
    funnel,
    import_sent_report,
    read_sent_report,
)
from cleancenter.notify.infections import DEFAULT_KINDS, infected_hosts, update_infections
from cleancenter.notify.isps import RegistryError, add_isp, isp_incidents, list_isps, remove_isp
from cleancenter.textsafe import for_console

notify_app = typer.Typer(help="Infected hosts and what each ISP is told.", no_args_is_help=True)
isp_app = typer.Typer(help="The ISPs the center notifies: prefixes, AS numbers, contacts.",
                      no_args_is_help=True)


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


@notify_app.command("export")
def export_command(
    ctx: typer.Context,
    isp: str = typer.Option(..., help="the ISP whose list this is (only its addresses)"),
    since: str | None = typer.Option(None, help="hosts last seen since: a date or an age"),
    fmt: str = typer.Option("xarf", "--format", help=f"one of {', '.join(FORMATS)}"),
    out_file: Path | None = typer.Option(None, "--out", help="write here (default: stdout)"),
    ipasn: Path | None = typer.Option(None, help="a pyasn IPASN file, to own addresses by "
                                                 "the ISP's AS numbers too"),
    org: str = typer.Option("cleancenter", envvar="CLEANCENTER_REPORTER_ORG",
                            help="the center's name in the reports"),
    contact: str = typer.Option("abuse@cleancenter.invalid",
                                envvar="CLEANCENTER_REPORTER_CONTACT",
                                help="the center's contact address in the reports"),
    domain: str = typer.Option("cleancenter.invalid", envvar="CLEANCENTER_REPORTER_DOMAIN",
                               help="the center's domain in the reports"),
    refresh: bool = typer.Option(True, "--update/--no-update",
                                 help="read new events into the infections first"),
) -> None:
    """One ISP's list of infected addresses: X-ARF v4, Shadowserver-style CSV, IntelMQ."""
    center: Center = ctx.obj
    if fmt not in FORMATS:
        raise fail(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    try:
        when = parse_when(since)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if refresh:
        update_infections(center.catalog)
    try:
        with center.catalog.engine.connect() as conn:
            incidents = isp_incidents(conn, isp, since=when, ipasn=ipasn)
    except (RegistryError, OSError) as exc:
        raise fail(str(exc)) from exc
    reporter = Reporter(org=org, contact=contact, domain=domain)
    if out_file is None:
        export(incidents, fmt, reporter, sys.stdout)
        return
    buffer = io.StringIO(newline="")
    count = export(incidents, fmt, reporter, buffer)
    write_atomically(out_file, buffer.getvalue().encode("utf-8"))
    err.print(f"{count} incident(s) for {for_console(isp)} written to {out_file}")


@notify_app.command("sent-report")
def sent_report_command(
    ctx: typer.Context,
    report: Path = typer.Argument(..., help="the ISP's sent report (isp-side sent-report)"),
    isp: str = typer.Option(..., help="the ISP that sent it"),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Take in the tokens an ISP mailed (no subscriber data), for the funnel.

    Exit code 1 when some rows were refused (they are listed), else 0."""
    center: Center = ctx.obj
    try:
        rows = read_sent_report(report)
        with center.catalog.transaction() as conn:
            summary = import_sent_report(conn, isp, rows)
    except (SentReportError, RegistryError) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(summary.to_dict())
    else:
        out.print(f"{for_console(isp)}: {summary.new} new notices ({summary.incidents} "
                  f"incidents), {summary.known} already known, {len(summary.errors)} refused")
        for error in summary.errors[:20]:
            err.print(f"[yellow]refused[/] {for_console(error)}")
    if summary.errors:
        raise typer.Exit(EXIT_FOUND)


@notify_app.command("funnel")
def funnel_command(ctx: typer.Context,
                   as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """What happened after the mails, per ISP and overall, beside CCC's FY2006 figures."""
    center: Center = ctx.obj
    with center.catalog.engine.connect() as conn:
        figures = funnel(conn)
    if as_json:
        print_json({"funnel": [f.to_dict() for f in figures], "ccc_fy2006": CCC_FY2006})
        return
    table = Table("ISP", "notified", "visited", "downloaded", "cleaned",
                  "seen again (4 weeks)", "window open")
    for f in figures:
        table.add_row(for_console(f.isp) if f.isp else "[bold]all[/]", f"{f.notified:,}",
                      _share(f, f.visited), _share(f, f.downloaded), _share(f, f.cleaned),
                      _share(f, f.seen_again), f"{f.window_open:,}")
    table.add_row("CCC FY2006", "", "", f"{CCC_FY2006['downloaded']:.1%}", "",
                  f"< {CCC_FY2006['seen_again']:.0%}", "")
    out.print(table)


def _share(figures: FunnelFigures, count: int) -> str:
    rate = figures.rate(count)
    return f"{count:,}" if rate is None else f"{count:,} ({rate:.1%})"


@isp_app.command("add")
def isp_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="a short name: letters, digits, . _ -"),
    prefix: list[str] = typer.Option([], "--prefix", help="a prefix it announces (repeat)"),
    asn: list[int] = typer.Option([], "--asn", help="an AS number (repeat)"),
    contact: str = typer.Option(..., help="the abuse desk's mail address"),
    lang: str = typer.Option("ja", help="language of its subscribers' mails: ja or en"),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Register an ISP, or add prefixes and AS numbers to one."""
    center: Center = ctx.obj
    try:
        with center.catalog.transaction() as conn:
            entry = add_isp(conn, name, contact=contact, lang=lang, prefixes=prefix, asns=asn)
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(entry.to_dict())
    else:
        out.print(f"{for_console(entry.name)}: {len(entry.prefixes)} prefixes, "
                  f"{len(entry.asns)} AS numbers, contact {for_console(entry.contact)}")


@isp_app.command("list")
def isp_list(ctx: typer.Context,
             as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """The registered ISPs."""
    center: Center = ctx.obj
    with center.catalog.engine.connect() as conn:
        entries = list_isps(conn)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    table = Table("name", "contact", "lang", "prefixes", "AS numbers")
    for e in entries:
        table.add_row(for_console(e.name), for_console(e.contact), e.lang,
                      for_console(", ".join(e.prefixes)), ", ".join(map(str, e.asns)))
    out.print(table)


@isp_app.command("remove")
def isp_remove(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Forget an ISP and its prefixes."""
    center: Center = ctx.obj
    try:
        with center.catalog.transaction() as conn:
            remove_isp(conn, name)
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    out.print(f"removed {for_console(name)}")
