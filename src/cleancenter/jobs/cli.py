"""`cleancenter worker` and `cleancenter jobs`: run analyses on Celery workers, watch them.

Exit codes of `jobs status`: 0 the status was read (failed jobs are listed, they are not
an error of the command), 2 the catalog could not be read.
"""

from __future__ import annotations

import os
import socket

import typer

from cleancenter.analyze.cli import resolve_references
from cleancenter.analyze.service import AnalysisService
from cleancenter.center import Center
from cleancenter.console import EXIT_ERROR, fail, out, parse_when, print_json
from cleancenter.jobs.app import (
    PRIORITIES,
    QUEUES,
    JobsError,
    WorkerOptions,
    celery_app,
    database_label,
    queue_name,
)
from cleancenter.jobs.status import STATES, queue_status
from cleancenter.jobs.submit import enqueue
from cleancenter.store.catalog import CatalogError
from cleancenter.textsafe import for_console

jobs_app = typer.Typer(help="Analysis jobs on Celery workers: submit, status.",
                       no_args_is_help=True)
JSON = typer.Option(False, "--json", help="JSON output.")


def worker_command(
    ctx: typer.Context,
    queues: str = typer.Option(",".join(QUEUES), "--queues", "-Q",
                               help="Queues to take jobs from, in order (submissions, "
                               "backlog); the job_queue_prefix setting is added."),
    concurrency: int = typer.Option(os.cpu_count() or 1, "--concurrency", "-c", min=1,
                                    help="Worker processes (default: one per core)."),
    pool: str = typer.Option("prefork", "--pool", help="prefork (a process per slot) or "
                             "solo (in this process)."),
    timeout: float = typer.Option(120.0, "--timeout", min=1, help="Seconds per sample."),
    memory: int = typer.Option(2048, "--memory", min=0, help="MiB of address space per "
                               "worker process (0 = no limit)."),
    hostname: str | None = typer.Option(None, "--hostname", "-n",
                                        help="Worker name (default: cleancenter-PID@host)."),
    loglevel: str = typer.Option("info", "--loglevel", "-l"),
) -> None:
    """Run analysis jobs from the broker (broker_url setting) until stopped.

    Each worker process opens the center from the settings (data dir + database URL): on
    several machines the data dir must be a shared path and the catalog PostgreSQL.
    """
    center: Center = ctx.obj
    if pool not in ("prefork", "solo"):
        raise fail("--pool must be prefork or solo (the per-sample alarm needs a process "
                   "of its own)")
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if not names or unknown:
        raise fail(f"--queues takes {', '.join(QUEUES)}; not {', '.join(unknown) or 'nothing'}")
    settings = center.settings
    try:
        app = celery_app(settings, WorkerOptions(timeout=timeout, memory_limit=memory << 20))
    except JobsError as exc:
        raise fail(str(exc)) from exc
    center.catalog.migrate()  # the job table exists before the first task
    center.close()  # no connection crosses the fork into the pool
    name = hostname or f"cleancenter-{os.getpid()}@{socket.gethostname()}"
    out.print(f"worker {name}: queues {', '.join(queue_name(settings, q) for q in names)}, "
              f"{concurrency} x {pool}; catalog {database_label(settings)}; "
              f"blobs {settings.blobs_dir}")
    app.worker_main(argv=[
        "worker", "--queues", ",".join(queue_name(settings, q) for q in names),
        "--concurrency", str(concurrency), "--pool", pool, "--hostname", name,
        "--loglevel", loglevel, "--without-gossip", "--without-mingle",
    ])


@jobs_app.command("submit")
def jobs_submit(
    ctx: typer.Context,
    samples: list[str] = typer.Argument(None, help="sha256 (or md5/sha1/prefix) of samples."),
    all_pending: bool = typer.Option(False, "--all", help="Every sample without a report of "
                                     "this analyzer version."),
    since: str | None = typer.Option(None, "--since", help="Samples first seen since (date "
                                     "or 7d) without a report."),
    priority: str = typer.Option("backlog", "--priority",
                                 help="submission (ahead of the backlog) or backlog."),
    as_json: bool = JSON,
) -> None:
    """Queue analyses for the workers instead of running them here."""
    center: Center = ctx.obj
    if priority not in PRIORITIES:
        raise fail(f"--priority must be one of {', '.join(PRIORITIES)}")
    if not samples and not all_pending and not since:
        raise fail("name samples, or use --all or --since")
    service = AnalysisService(center.catalog, center.blobs, center.settings.work_dir)
    if samples:
        todo = service.pending(resolve_references(center, samples))
    else:
        todo = service.pending(since=parse_when(since))
    try:
        ids = enqueue(center, todo, priority=PRIORITIES[priority])
    except JobsError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json({"pending": len(todo), "queued": len(ids), "jobs": ids})
    else:
        out.print(f"queued {len(ids)} of {len(todo)} pending samples ({priority}); "
                  f"{len(todo) - len(ids)} already had a job")


@jobs_app.command("status")
def jobs_status(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Queued, running, failed and done jobs; failures with their error; queue depths.

    Exit code 0 when the status was read, 2 when the catalog could not be read.
    """
    center: Center = ctx.obj
    try:
        status = queue_status(center)
    except CatalogError as exc:
        raise fail(str(exc), EXIT_ERROR) from exc
    if as_json:
        print_json(status.to_dict())
        return
    out.print(", ".join(f"{state} {status.counts[state]}" for state in STATES))
    if status.broker:
        if status.queue_depth is not None:
            out.print(f"broker {status.broker}: " + ", ".join(
                f"{for_console(q)} {n} waiting" for q, n in status.queue_depth.items()))
        else:
            out.print(f"broker {status.broker}: [yellow]unreachable[/] "
                      f"({for_console(status.broker_error or '?')})")
    else:
        out.print("broker: none set (broker_url)")
    for line in status.running:
        started = line.started.isoformat(timespec="seconds") if line.started else "-"
        out.print(f"running job {line.id} {line.sha256} on {for_console(line.worker or '-')} "
                  f"since {started} (attempt {line.attempts})")
    for line in status.failures:
        out.print(f"[red]failed[/] job {line.id} {line.sha256} (attempts {line.attempts}): "
                  f"{for_console(line.error or '?')}", soft_wrap=True)
