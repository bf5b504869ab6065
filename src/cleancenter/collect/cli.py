"""`cleancenter ingest`: files, folders and archives; Cowrie logs; Dionaea databases.

``cleancenter ingest PATH...`` is short for ``cleancenter ingest files PATH...``.
Exit codes: 0 everything went in, 1 some items were bad or refused (the rest went in),
2 the command could not do its work.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from typer.core import TyperGroup

from cleancenter.center import Center
from cleancenter.collect.archives import DEFAULT_PASSWORD, ArchiveLimits
from cleancenter.collect.ingest import Ingestor, IngestReport
from cleancenter.console import EXIT_FOUND, RichProgress, out, print_json
from cleancenter.textsafe import for_console

MAX_ERRORS_SHOWN = 20


class _DefaultToFiles(TyperGroup):
    """Route ``ingest PATH...`` to the ``files`` command when PATH is not a sub-command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["files", *args]
        return super().parse_args(ctx, args)


ingest_app = typer.Typer(
    cls=_DefaultToFiles,
    help="Bring samples and honeypot records into the center.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="JSON report on stdout.")


ANALYZE = typer.Option(True, "--analyze/--no-analyze",
                       help="Analyze the new samples right after ingest.")


def _analyze(center: Center, report: IngestReport, analyze: bool, progress: RichProgress
             ) -> dict[str, Any] | None:
    """Static analysis of what this ingest brought (and anything else still pending)."""
    if not analyze or (report.samples_new == 0 and report.samples_known == 0):
        return None
    from cleancenter.analyze.cli import run_analysis

    return run_analysis(center, None, all_pending=True, progress=progress).to_dict()


def _show(report: IngestReport, as_json: bool, analysis: dict[str, Any] | None = None
          ) -> None:
    if as_json:
        data = report.to_dict()
        data["analysis"] = analysis
        print_json(data)
    else:
        out.print(
            f"files {report.files}, archive members {report.members}, "
            f"new samples {report.samples_new}, known samples {report.samples_known}, "
            f"events read {report.events_read}, new events {report.events_new}, "
            f"errors {report.error_count}"
        )
        for error in report.errors[:MAX_ERRORS_SHOWN]:
            out.print(f"[yellow]error[/] {for_console(error.location)}: "
                      f"{for_console(error.message)}")
        if report.error_count > MAX_ERRORS_SHOWN:
            out.print(f"... and {report.error_count - MAX_ERRORS_SHOWN} more "
                      "(all are in the catalog's ingest_error table; use --json)")
        if analysis is not None:
            out.print(f"analyzed {analysis['analyzed']}, failed {analysis['failed']}; "
                      "verdicts: " + ", ".join(f"{k} {v}" for k, v in
                                              sorted(analysis["verdicts"].items())))
    if report.error_count:
        raise typer.Exit(EXIT_FOUND)


@ingest_app.command("files")
def ingest_files(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files and folders (recursive)."),
    password: str = typer.Option(DEFAULT_PASSWORD, "--password",
                                 help="Password for encrypted zip/7z archives."),
    max_depth: int = typer.Option(ArchiveLimits.max_depth, "--max-depth", min=0,
                                  help="How deep to expand archives inside archives."),
    tag: list[str] = typer.Option([], "--tag", help="Tag every sample (repeatable)."),
    analyze: bool = ANALYZE,
    as_json: bool = JSON,
) -> None:
    """Store files, folders and the members of zip and 7z archives as samples."""
    center: Center = ctx.obj
    limits = ArchiveLimits(max_depth=max_depth)
    with RichProgress(enabled=not as_json) as progress:
        ingestor = Ingestor(center.catalog, center.blobs, password=password, limits=limits,
                            tags=tag, progress=progress)
        report = ingestor.ingest_paths(paths)
        analysis = _analyze(center, report, analyze, progress)
    _show(report, as_json, analysis)


@ingest_app.command("cowrie")
def ingest_cowrie(
    ctx: typer.Context,
    logs: list[Path] = typer.Argument(..., help="Cowrie JSON logs (cowrie.json*)."),
    downloads: Path | None = typer.Option(
        None, "--downloads", help="Cowrie's download dir (var/lib/cowrie/downloads).",
        exists=True, file_okay=False),
    sensor: str | None = typer.Option(None, "--sensor",
                                      help="Sensor name (default: the log's own)."),
    follow: bool = typer.Option(False, "--follow", "-f",
                                help="Keep reading as the log grows, until interrupted."),
    analyze: bool = typer.Option(True, "--analyze/--no-analyze",
                                 help="Analyze new samples when done (with --follow: when "
                                 "stopped)."),
    as_json: bool = JSON,
) -> None:
    """Ingest Cowrie's JSON log: every record becomes an event; downloads become samples.

    Re-running adds nothing new; a restarted run resumes where the last one stopped.
    """
    center: Center = ctx.obj
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if follow:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        with RichProgress(enabled=not as_json) as progress:
            ingestor = Ingestor(center.catalog, center.blobs, progress=progress)
            report = ingestor.ingest_cowrie(logs, downloads=downloads, sensor=sensor,
                                            follow=follow, stop=stop)
            analysis = _analyze(center, report, analyze, progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _show(report, as_json, analysis)


@ingest_app.command("dionaea")
def ingest_dionaea(
    ctx: typer.Context,
    database: Path = typer.Argument(..., help="Dionaea's SQLite log (dionaea.sqlite)."),
    binaries: Path | None = typer.Option(
        None, "--binaries", help="Dionaea's binaries dir (files named by md5).",
        exists=True, file_okay=False),
    sensor: str | None = typer.Option(None, "--sensor",
                                      help="Sensor name (default: the file's name)."),
    analyze: bool = ANALYZE,
    as_json: bool = JSON,
) -> None:
    """Ingest a Dionaea database: connections, logins, offers and downloads."""
    center: Center = ctx.obj
    with RichProgress(enabled=not as_json) as progress:
        ingestor = Ingestor(center.catalog, center.blobs, progress=progress)
        report = ingestor.ingest_dionaea(database, binaries=binaries, sensor=sensor)
        analysis = _analyze(center, report, analyze, progress)
    _show(report, as_json, analysis)
