"""``cleancenter isp-side ...``: what an ISP runs on its own machine, with its own logs.

Nothing here talks to the center: the center's list comes in as a file, the lease logs
are read where they lie, subscribers and the outbox are in the ISP's own SQLite file, and
the only thing that goes out is the mail to subscribers (`send`, through the ISP's SMTP
server) and the sent report the ISP chooses to give the center (tokens, incident ids,
times).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cleancenter.atomicfile import write_atomically
from cleancenter.console import EXIT_FOUND, RichProgress, err, fail, out, parse_when, print_json
from cleancenter.notify.incidents import Incident
from cleancenter.notify.isp.correlate import correlate
from cleancenter.notify.isp.db import DB_ENV, DEFAULT_DB, DatabaseError, default_db_path, open_db
from cleancenter.notify.isp.leases import FORMATS, Lease, LeaseError, read_all
from cleancenter.notify.isp.mail import MailError, Renderer, parse_sender
from cleancenter.notify.isp.outbox import HELD, check_landing_url, enqueue, outbox, sent_report
from cleancenter.notify.isp.smtp import ConfigError, SmtpSettings, send_due, waiting
from cleancenter.notify.isp.subscribers import (
    SubscriberFileError,
    import_subscribers,
    list_subscribers,
    read_subscriber_csv,
)
from cleancenter.textsafe import for_console

isp_side_app = typer.Typer(help="The ISP's side: its lease logs against the center's list, "
                                "on its own machine.", no_args_is_help=True)
SHOWN_ERRORS = 10
LANDING_ENV = "CLEANCENTER_LANDING_URL"


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


def _read_inputs(incident_list: Path, leases: list[Path], lease_format: str | None
                 ) -> tuple[list[Incident], list[Lease], list[LeaseError]]:
    """The center's list and the lease logs, or exit 2 when either cannot be read."""
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
    return incidents, found, errors


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
    incidents, found, errors = _read_inputs(incident_list, leases, lease_format)
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



# --- the mail step: subscribers, outbox, delivery ------------------------------------------

subscribers_app = typer.Typer(help="The ISP's subscribers: who gets the mail, in which "
                                   "language.", no_args_is_help=True)
isp_side_app.add_typer(subscribers_app, name="subscribers")

DB_OPTION = typer.Option(None, "--db", help=f"the ISP side's database (default: "
                         f"${DB_ENV}, else ./{DEFAULT_DB})")


def _open(db: Path | None) -> sqlite3.Connection:
    path = db if db is not None else default_db_path()
    try:
        return open_db(path)
    except (DatabaseError, OSError) as exc:
        raise fail(f"cannot open the database: {exc}") from exc


@subscribers_app.command("import")
def subscribers_import_command(
    csv_file: Path = typer.Argument(..., help="CSV, UTF-8, header subscriber_id,email,lang,name"),
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Add or update subscribers from a CSV file; bad rows are listed and skipped.

    Exit code 1 when rows were skipped, 2 when the file is refused."""
    try:
        good, bad = read_subscriber_csv(csv_file)
    except SubscriberFileError as exc:
        raise fail(for_console(str(exc))) from exc
    conn = _open(db)
    with closing(conn):
        result = import_subscribers(conn, good, datetime.now(UTC))
    if as_json:
        print_json({"added": result.added, "updated": result.updated,
                    "unchanged": result.unchanged,
                    "bad_rows": [{"line": b.line, "reason": b.reason} for b in bad]})
    else:
        for row in bad:
            err.print(f"[yellow]skipped[/] {for_console(str(csv_file))}:{row.line}: "
                      f"{for_console(row.reason)}")
        out.print(f"{result.added} added, {result.updated} updated, {result.unchanged} "
                  f"unchanged, {len(bad)} bad rows skipped")
    if bad:
        raise typer.Exit(EXIT_FOUND)


@subscribers_app.command("list")
def subscribers_list_command(
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """The subscribers in the database."""
    conn = _open(db)
    with closing(conn):
        rows = list_subscribers(conn)
    if as_json:
        print_json([s.to_dict() for s in rows])
        return
    table = Table("subscriber", "e-mail", "lang", "name")
    for s in rows:
        table.add_row(for_console(s.subscriber_id), for_console(s.email), s.lang,
                      for_console(s.name))
    out.print(table)
    out.print(f"{len(rows)} subscribers")


@isp_side_app.command("notify")
def notify_command(
    incident_list: Path = typer.Argument(..., help="the center's list (export --format json)"),
    leases: list[Path] = typer.Option(..., "--leases", help="a lease log (repeat)"),
    lease_format: str | None = typer.Option(None, "--lease-format",
                                            help=f"force one of {', '.join(FORMATS)}"),
    landing_url: str | None = typer.Option(
        None, "--landing-url", envvar=LANDING_ENV,
        help="the center's landing page; the mail links to it + the code (https, ends '/')"),
    renotify_days: int = typer.Option(7, "--renotify-days", min=0,
                                      help="mail again about a still-seen incident after"),
    max_per_month: int = typer.Option(2, "--max-per-month", min=1,
                                      help="mails per subscriber in any 30 days"),
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Queue one mail per subscriber for the matched incidents of the center's list.

    Nothing is sent (that is `send`). Running it again with the same list queues nothing.
    Exit code 1 when lease lines were bad, or incidents were ambiguous or belong to
    subscribers not in the database; else 0."""
    if lease_format is not None and lease_format not in FORMATS:
        raise fail(f"unknown lease format {lease_format!r}: one of {', '.join(FORMATS)}")
    if landing_url is None:
        raise fail(f"--landing-url (or ${LANDING_ENV}) is required")
    try:
        check_landing_url(landing_url)
    except ValueError as exc:
        raise fail(for_console(str(exc))) from exc
    incidents, found, errors = _read_inputs(incident_list, leases, lease_format)
    matches = correlate(incidents, found)
    conn = _open(db)
    with closing(conn):
        result = enqueue(conn, matches, landing_url=landing_url, now=datetime.now(UTC),
                         renotify_days=renotify_days, max_per_month=max_per_month)
    codes = Counter(s.code for s in result.skipped)
    if as_json:
        print_json({"queued": [q.to_dict() for q in result.queued],
                    "skipped": [s.to_dict() for s in result.skipped],
                    "counts": {"notifications": len(result.queued),
                               "incidents": sum(len(q.incidents) for q in result.queued),
                               **codes},
                    "lease_errors": [{"where": e.location, "reason": e.reason}
                                     for e in errors]})
    else:
        table = Table("incident", "address", "subscriber", "result")
        for q in result.queued:
            for incident, round_, ip in zip(q.incidents, q.rounds, q.ips, strict=True):
                table.add_row(incident, for_console(ip), for_console(q.subscriber_id),
                              f"queued (mail {q.notification_id}, {q.lang}"
                              + (f", round {round_})" if round_ > 1 else ")"))
        for s in result.skipped:
            colour = "yellow" if s.held or s.code in ("ambiguous", "unknown-subscriber") \
                else "dim"
            table.add_row(s.incident_id, for_console(s.ip), for_console(s.subscriber_id or ""),
                          f"[{colour}]{s.code}[/]: {for_console(s.reason)}")
        out.print(table)
        held = sum(1 for s in result.skipped if s.held)
        out.print(f"{len(result.queued)} mails queued for "
                  f"{sum(len(q.incidents) for q in result.queued)} incidents; "
                  f"{held} held back (a later run can take them); "
                  + ", ".join(f"{code} {n}" for code, n in sorted(codes.items()) if code
                              not in HELD))
        for error in errors[:SHOWN_ERRORS]:
            err.print(f"[yellow]bad lease line[/] {for_console(error.location)}: "
                      f"{for_console(error.reason)}")
        if len(errors) > SHOWN_ERRORS:
            err.print(f"... and {len(errors) - SHOWN_ERRORS} more bad lines (--json lists all)")
    if errors or codes["ambiguous"] or codes["unknown-subscriber"]:
        raise typer.Exit(EXIT_FOUND)


@contextmanager
def _send_lock(db: Path) -> Iterator[None]:
    """One `send` at a time per database, so a row in `sending` means a run died."""
    real = db.resolve()  # a symlink or another spelling of the path: the same lock
    lock_path = real.with_name(real.name + ".send-lock")
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise fail(f"another `send` is running on {db}") from exc
        yield


@isp_side_app.command("send")
def send_command(
    sender: str = typer.Option(..., "--from", help="From: 'abuse@isp.example' or "
                               "'Name <abuse@isp.example>' (also the envelope sender)"),
    isp_name: str = typer.Option(..., "--isp-name", envvar="CLEANCENTER_ISP_NAME",
                                 help="the ISP's name, as the mail signs"),
    support: str = typer.Option(..., "--support", envvar="CLEANCENTER_ISP_SUPPORT",
                                help="the support contact the mail gives (web page, hours)"),
    smtp_host: str = typer.Option("127.0.0.1", "--smtp-host"),
    smtp_port: int = typer.Option(25, "--smtp-port", min=1, max=65535),
    starttls: bool = typer.Option(False, "--starttls", help="STARTTLS (required, verified)"),
    use_ssl: bool = typer.Option(False, "--ssl", help="implicit TLS (port 465)"),
    cafile: Path | None = typer.Option(None, "--cafile", help="trust this CA file (PEM) for "
                                       "the server's certificate instead of the system's"),
    smtp_user: str | None = typer.Option(None, "--smtp-user", help="AUTH user (needs TLS)"),
    password_env: str | None = typer.Option(None, "--smtp-password-env",
                                            help="the environment variable with the "
                                                 "password (never on the command line)"),
    helo: str | None = typer.Option(None, "--helo", help="EHLO name (default: the From "
                                                         "domain)"),
    timeout: float = typer.Option(30.0, "--timeout", min=1.0, help="seconds per SMTP step"),
    max_per_hour: int | None = typer.Option(None, "--max-per-hour", min=0,
                                            help="at most N mails sent in any hour"),
    max_attempts: int = typer.Option(8, "--max-attempts", min=1),
    backoff: float = typer.Option(60.0, "--backoff", min=0.0, help="seconds before the "
                                  "first retry; doubled per attempt, at most 6 h"),
    templates: Path | None = typer.Option(None, "--templates", help="a folder with "
                                          "ja/ and en/ subject.txt, body.txt, body.html "
                                          "overriding the built-in ones"),
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Send the due mails of the outbox over SMTP, oldest first.

    Exit code 0 when nothing is left to retry and nothing failed, 1 when some failed or
    wait for a retry or the hourly limit, 2 on a configuration error (authentication,
    TLS): nothing is marked then."""
    if starttls and use_ssl:
        raise fail("--starttls and --ssl exclude each other")
    password = None
    if smtp_user is not None:
        if password_env is None or password_env not in os.environ:
            raise fail("--smtp-user needs --smtp-password-env naming a set variable")
        if not (starttls or use_ssl) and smtp_host not in ("127.0.0.1", "localhost", "::1"):
            raise fail("AUTH over an unencrypted connection: add --starttls or --ssl")
        password = os.environ[password_env]
    try:
        from_address = parse_sender(sender)
        renderer = Renderer(isp_name=isp_name, support=support, templates=templates)
    except MailError as exc:
        raise fail(for_console(str(exc))) from exc
    settings = SmtpSettings(host=smtp_host, port=smtp_port,
                            security="starttls" if starttls else "ssl" if use_ssl else "none",
                            user=smtp_user, password=password, cafile=cafile,
                            timeout=timeout, helo=helo or from_address.domain)
    path = db if db is not None else default_db_path()
    conn = _open(path)
    with closing(conn), _send_lock(path):
        config_error = None
        with RichProgress(enabled=err.is_terminal and not as_json) as progress:
            try:
                result = send_due(conn, settings, from_address, renderer,
                                  max_per_hour=max_per_hour, max_attempts=max_attempts,
                                  backoff=backoff, progress=progress)
            except ConfigError as exc:
                config_error = str(exc)
        if config_error is not None:
            raise fail(for_console(config_error))
        left = waiting(conn)
    if as_json:
        print_json({"sent": len(result.sent), "failed": [
            {"notification": n, "error": e} for n, e in result.failed],
            "deferred": [{"notification": n, "error": e} for n, e in result.deferred],
            "throttled": result.throttled, "waiting": left, "stopped": result.stopped})
    else:
        out.print(f"{len(result.sent)} sent, {len(result.failed)} failed, "
                  f"{len(result.deferred)} to retry, {result.throttled} held by "
                  f"--max-per-hour; {left} waiting in the outbox")
        for nid, error in result.failed:
            err.print(f"[red]failed[/] mail {nid}: {for_console(error)}")
        for nid, error in result.deferred:
            err.print(f"[yellow]retry later[/] mail {nid}: {for_console(error)}")
        if result.throttled:
            err.print(f"[yellow]{result.throttled} mails wait for the hourly limit[/]")
    if result.failed or result.deferred or result.throttled or left:
        raise typer.Exit(EXIT_FOUND)


@isp_side_app.command("outbox")
def outbox_command(
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Mails per status, and each mail (codes and links are not shown)."""
    conn = _open(db)
    with closing(conn):
        report = outbox(conn)
    if as_json:
        print_json(report)
        return
    table = Table("mail", "subscriber", "lang", "status", "tries", "next try", "sent",
                  "incidents", "last error")
    for r in report["notifications"]:
        table.add_row(str(r["id"]), for_console(r["subscriber"]), r["lang"], r["status"],
                      str(r["attempts"]), r["next_attempt_at"] or "", r["sent_at"] or "",
                      str(len(r["incidents"])), for_console(r["last_error"] or ""))
    out.print(table)
    out.print(", ".join(f"{status} {n}" for status, n in report["counts"].items()))


@isp_side_app.command("sent-report")
def sent_report_command(
    out_file: Path = typer.Option(..., "--out", help="the file to give the center"),
    since: str | None = typer.Option(None, "--since", help="only mails sent since (ISO "
                                     "time or an age like 7d)"),
    db: Path | None = DB_OPTION,
) -> None:
    """Write what the center may know: per mail sent, its code, incident ids and time.

    Nothing about subscribers is in it."""
    conn = _open(db)
    with closing(conn):
        report = sent_report(conn, parse_when(since))
    write_atomically(out_file, (json.dumps(report, indent=2) + "\n").encode())
    out.print(f"{len(report['notifications'])} sent mails written to "
              f"{for_console(str(out_file))}")
