"""Stale running jobs: fail the row of a job whose message was lost, queue a fresh one.

A job stays ``running`` forever when the broker lost its message while a worker held it
(Redis restarted without persistence, a worker machine gone and its queue purged, a
visibility-timeout redelivery that never came): no worker will ever finish it. After
`default_stale_after` seconds nothing can still be working on it, so `requeue_stale` marks
the old row failed (saying why and which job replaced it) and queues one new job for the
sample at the same priority.

A row is only taken by a conditional UPDATE (still running, still started before the
cutoff): a job a worker finished (or got again) a moment before is left alone, and two
runs of `requeue-stale` never both take a row. A sample that already has another queued
(or running, not stale) job gets no second one. Should the lost message come back after
all, or the worker turn out alive, the task sees its row settled and leaves it alone.

The broker can lose waiting messages too: `resend_lost_queued` sends again the message of
a job queued for longer than any task takes, in a queue the broker says is empty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from cleancenter.center import Center
from cleancenter.jobs.app import (
    QUEUES,
    TASK_ANALYZE,
    JobsError,
    celery_app,
    queue_name,
    safe_broker_url,
)
from cleancenter.jobs.status import (
    broker_depths,
    default_stale_after,
    stale_condition,
    stale_cutoff,
)
from cleancenter.jobs.submit import enqueue_with
from cleancenter.jobs.tasks import JOB
from cleancenter.store.catalog import utcnow

STALE_PREFIX = "no word from worker"  # how the error of a row failed here starts
REQUEUED = "requeued as job"
MAX_REQUEUES = 3  # a sample whose jobs went stale this often is not requeued again


@dataclass
class Requeued:
    """One stale job that was taken: its old row (now failed) and the job replacing it."""

    old_id: int
    sha256: str
    priority: int
    worker: str | None
    started: datetime | None
    new_id: int | None  # None: not requeued, ``error`` says why
    error: str  # what the old row's error now says

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequeueError(JobsError):
    """The broker failed part-way; ``done`` holds the jobs that were taken before."""

    def __init__(self, message: str, done: list[Requeued]) -> None:
        super().__init__(message)
        self.done = done


def recover_stale(center: Center, stale_after: float | None = None, *,
                  app: Any = None, broker_timeout: float = 5.0) -> list[Requeued]:
    """Fail every stale running job and queue one new job per sample; returns what was taken.

    Raises `JobsError` when no broker is set or it cannot be reached (checked before any
    row is touched), `RequeueError` when it fails part-way.
    """
    if stale_after is None:
        stale_after = default_stale_after(center.settings)
    cutoff = stale_cutoff(stale_after)
    app = app if app is not None else celery_app(center.settings)  # JobsError: no broker_url
    queue_depths(center, app, broker_timeout)  # reachable, before any row is touched
    with center.catalog.engine.connect() as conn:
        # the highest priority first: of two stale jobs of one sample, that one is requeued
        candidates = conn.execute(
            select(JOB.c.id, JOB.c.sha256, JOB.c.priority, JOB.c.worker, JOB.c.started)
            .where(stale_condition(cutoff))
            .order_by(JOB.c.priority.desc(), JOB.c.started, JOB.c.id)).all()
    by_sample: dict[str, list[Any]] = {}
    for row in candidates:
        by_sample.setdefault(row.sha256, []).append(row)
    done: list[Requeued] = []
    for sha256, rows in by_sample.items():
        try:
            done.extend(_recover_sample(app, center, sha256, rows, cutoff))
        except JobsError as exc:
            raise RequeueError(str(exc), done) from exc
    return done


def requeue_stale(center: Center, stale_after: float | None = None, *,
                  app: Any = None) -> list[int]:
    """`recover_stale`, returning only the ids of the new jobs."""
    return [r.new_id for r in recover_stale(center, stale_after, app=app)
            if r.new_id is not None]


def queue_depths(center: Center, app: Any, timeout: float) -> dict[str, int]:
    """Messages waiting in each of the center's queues; `JobsError` when the broker
    cannot be reached."""
    url = str(app.conf.broker_url)
    try:
        return broker_depths(url, [queue_name(center.settings, q) for q in QUEUES], timeout)
    except Exception as exc:
        raise JobsError(f"the broker {safe_broker_url(url)} cannot be reached: "
                        f"{type(exc).__name__}: {exc}") from exc


def resend_lost_queued(center: Center, stale_after: float | None = None, *,
                       app: Any = None, broker_timeout: float = 5.0) -> list[int]:
    """Send again the message of every job queued longer than ``stale_after`` in a queue
    the broker says is empty: its message was lost (Redis restarted without persistence,
    a queue purged by hand). Returns the ids of the jobs sent again.

    An empty queue and a job older than any task can take means no worker holds the
    message either (a worker reserves at most one message per process ahead). Were it
    held after all, the second delivery finds its row taken or settled and does nothing.
    """
    if stale_after is None:
        stale_after = default_stale_after(center.settings)
    cutoff = stale_cutoff(stale_after)
    app = app if app is not None else celery_app(center.settings)
    depths = queue_depths(center, app, broker_timeout)
    empty = [name for name, depth in depths.items() if depth == 0]
    if not empty:
        return []
    with center.catalog.engine.connect() as conn:
        lost = conn.execute(select(JOB.c.id, JOB.c.sha256, JOB.c.queue).where(
            JOB.c.state == "queued", JOB.c.queue.in_(empty), JOB.c.enqueued < cutoff)
            .order_by(JOB.c.priority.desc(), JOB.c.id)).all()
    sent: list[int] = []
    try:
        with app.producer_or_acquire() as producer:
            for row in lost:
                app.send_task(TASK_ANALYZE, args=[row.id, row.sha256], queue=row.queue,
                              routing_key=row.queue, producer=producer)
                sent.append(row.id)
    except Exception as exc:
        raise JobsError(f"sending lost jobs again failed after {len(sent)} of {len(lost)}: "
                        f"{type(exc).__name__}: {exc}") from exc
    return sent


def _active_job(conn: Connection, sha256: str, cutoff: datetime) -> int | None:
    """A queued job of the sample, or a running one that is not stale."""
    return conn.execute(select(JOB.c.id).where(
        JOB.c.sha256 == sha256,
        or_(JOB.c.state == "queued",
            and_(JOB.c.state == "running",
                 or_(JOB.c.started.is_(None), JOB.c.started >= cutoff))))
        .order_by(JOB.c.id).limit(1)).scalar_one_or_none()


def _set_error(center: Center, job_id: int, error: str) -> None:
    """The final word on the old row, unless a late delivery of its task revived it."""
    with center.catalog.transaction() as conn:
        conn.execute(update(JOB).where(JOB.c.id == job_id, JOB.c.state == "failed")
                     .values(error=error[:1000]))


def _lost(taken: Requeued) -> str:
    since = taken.started.isoformat(timespec="seconds") if taken.started else "?"
    return f"{STALE_PREFIX} {taken.worker or '?'} since {since}"


def _recover_sample(app: Any, center: Center, sha256: str, rows: list[Any],
                    cutoff: datetime) -> list[Requeued]:
    """Claim the stale rows of one sample (highest priority first) and queue one new job
    at the priority of the first, unless the sample has another active job."""
    claimed: list[Requeued] = []
    with center.catalog.transaction() as conn:
        other = _active_job(conn, sha256, cutoff)
        earlier = conn.execute(select(func.count()).select_from(JOB).where(
            JOB.c.sha256 == sha256, JOB.c.state == "failed",
            JOB.c.error.like(f"{STALE_PREFIX} %; {REQUEUED} %"))).scalar_one()
        for row in rows:
            taken = Requeued(old_id=row.id, sha256=sha256, priority=row.priority,
                             worker=row.worker, started=row.started, new_id=None, error="")
            if other is not None:
                taken.error = (f"{_lost(taken)}; not requeued: job {other} of this sample "
                               "is queued or running")
            elif earlier >= MAX_REQUEUES:
                taken.error = (f"{_lost(taken)}; not requeued: {earlier} earlier jobs of this "
                               "sample went stale (see its failed jobs)")
            else:
                taken.error = f"{_lost(taken)}; requeueing"
            # the claim: only a row that is still running and still stale; a worker that
            # finished it a moment ago, or another requeue-stale run, wins instead
            if conn.execute(update(JOB).where(JOB.c.id == row.id, stale_condition(cutoff))
                            .values(state="failed", error=taken.error[:1000],
                                    finished=utcnow())).rowcount:
                claimed.append(taken)
    if not claimed or other is not None or earlier >= MAX_REQUEUES:
        return claimed
    first = claimed[0]
    try:
        # skip_active: a job queued by someone else since the check above is enough
        ids = enqueue_with(app, center, [sha256], priority=first.priority)
    except JobsError as exc:
        for taken in claimed:
            taken.error = f"{_lost(taken)}; requeueing failed: {exc}"
            _set_error(center, taken.old_id, taken.error)
        raise
    if ids:
        first.new_id = ids[0]
        first.error = f"{_lost(first)}; {REQUEUED} {ids[0]}"
        for taken in claimed[1:]:
            taken.error = (f"{_lost(taken)}; not requeued: job {first.old_id} of this sample "
                           f"was, as job {ids[0]}")
    else:
        with center.catalog.engine.connect() as conn:
            other = _active_job(conn, sha256, cutoff)
        for taken in claimed:
            taken.error = (f"{_lost(taken)}; not requeued: job {other or '?'} of this sample "
                           "is queued or running")
    for taken in claimed:
        _set_error(center, taken.old_id, taken.error)
    return claimed
