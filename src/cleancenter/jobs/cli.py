"""`cleancenter worker` and `cleancenter jobs`: run analyses on Celery workers, watch them.

Exit codes of `jobs status`: 0 the status was read (failed and stale jobs are listed, they
are not an error of the command), 2 the catalog could not be read. `jobs requeue-stale`: 0
done (also when nothing was stale), 2 the catalog or the broker could not be reached.
"""

from __future__ import annotations

import os
import socket

import typer
from sqlalchemy.exc import SQLAlchemyError

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
from cleancenter.jobs.recover import Requeued, RequeueError, recover_stale, resend_lost_queued
from cleancenter.jobs.status import STATES, default_stale_after, queue_status
from cleancenter.jobs.submit import enqueue
from cleancenter.store.catalog import CatalogError
from cleancenter.textsafe import for_console

jobs_app = typer.Typer(help="Analysis jobs on Celery workers: submit, status, "
                       "requeue-stale.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="JSON output.")
STALE_AFTER = typer.Option(
    None, "--stale-after", min=1, help="Seconds after which a running job is stale (default: "
    "Celery's hard time limit for the default 120 s timeout, 300 s, or on Redis the "
    "visibility timeout if longer, plus 60 s).")


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

    Each worker process opens the center from the settings (data dir, database URL, blob
    store): on several machines the catalog must be PostgreSQL and the blobs in S3
    (blob_url) or on a shared path (docs/operations.md).
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
def jobs_status(ctx: typer.Context, stale_after: float | None = STALE_AFTER,
                as_json: bool = JSON) -> None:
    """Queued, running, failed and done jobs; failures with their error; stale running
    jobs; queue depths.

    Exit code 0 when the status was read, 2 when the catalog could not be read.
    """
    center: Center = ctx.obj
    try:
        status = queue_status(center, stale_after=stale_after)
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
    if status.stale_count:
        out.print(f"[yellow]stale {status.stale_count}[/]: running, no word for more than "
                  f"{status.stale_after:g} s (the broker lost their message); "
                  "`cleancenter jobs requeue-stale` fails and requeues them")
    stale = {line.id for line in status.stale}
    for line in status.running:
        started = line.started.isoformat(timespec="seconds") if line.started else "-"
        mark = "[yellow]stale[/] " if line.id in stale else ""
        out.print(f"{mark}running job {line.id} {line.sha256} on "
                  f"{for_console(line.worker or '-')} since {started} "
                  f"(attempt {line.attempts})")
    for line in status.failures:
        out.print(f"[red]failed[/] job {line.id} {line.sha256} (attempts {line.attempts}): "
                  f"{for_console(line.error or '?')}", soft_wrap=True)


@jobs_app.command("requeue-stale")
def jobs_requeue_stale(ctx: typer.Context, stale_after: float | None = STALE_AFTER,
                       as_json: bool = JSON) -> None:
    """Fail the stale running jobs (their message was lost) and queue each sample again;
    send again the messages of jobs queued that long in a queue the broker says is empty.

    A sample that already has a queued or running job is not queued twice. Exit code 0
    when done (also when nothing was stale), 2 when the catalog or the broker could not be
    reached.
    """
    center: Center = ctx.obj
    after = stale_after if stale_after is not None else default_stale_after(center.settings)
    try:
        taken = recover_stale(center, after)
        resent = resend_lost_queued(center, after)
    except RequeueError as exc:
        _print_requeued(exc.done, [], after, as_json)
        raise fail(str(exc)) from exc
    except (JobsError, CatalogError) as exc:
        raise fail(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise fail(f"the catalog {database_label(center.settings)} failed: "
                   f"{type(exc).__name__}: {exc}") from exc
    _print_requeued(taken, resent, after, as_json)


def _print_requeued(taken: list[Requeued], resent: list[int], stale_after: float,
                    as_json: bool) -> None:
    requeued = [t for t in taken if t.new_id is not None]
    if as_json:
        print_json({"stale_after": stale_after, "stale": len(taken),
                    "requeued": len(requeued), "jobs": [t.to_dict() for t in taken],
                    "resent": resent})
        return
    out.print(f"{len(taken)} stale running jobs (no word for more than {stale_after:g} s); "
              f"{len(requeued)} requeued")
    if resent:
        out.print(f"{len(resent)} jobs queued for longer than that in an empty queue (their "
                  f"message was lost) sent again: {', '.join(map(str, resent[:20]))}"
                  + (" ..." if len(resent) > 20 else ""), soft_wrap=True)
    for t in taken:
        what = (f"requeued as job {t.new_id}" if t.new_id is not None
                else f"[yellow]failed, not requeued[/]: {for_console(t.error)}")
        out.print(f"job {t.old_id} {t.sha256}: {what}", soft_wrap=True)
