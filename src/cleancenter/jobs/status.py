"""What the workers are doing: job counts from the catalog, queue depths from the broker.

A running job is *stale* when its ``started`` is older than any task can legitimately
take: its message was lost (a Redis restart without persistence, a purged queue, a worker
machine gone for good) and no worker will ever finish it. `jobs requeue-stale` fixes those
(`cleancenter.jobs.recover`).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kombu.connection import Connection
from sqlalchemy import ColumnElement, func, select

from cleancenter.center import Center
from cleancenter.config import Settings
from cleancenter.jobs.app import QUEUES, WorkerOptions, is_redis, queue_name, safe_broker_url
from cleancenter.jobs.tasks import JOB
from cleancenter.store.catalog import utcnow

STATES = ("queued", "running", "failed", "done")
LISTED = 50
STALE_MARGIN = 60.0  # seconds on top of the longest legitimate run (store step, clock skew)


def hard_time_limit(options: WorkerOptions) -> int:
    """Celery's ``task_time_limit`` for these options (as in `celery_config`)."""
    return int(options.timeout * 2 + 60)


def default_stale_after(settings: Settings, options: WorkerOptions | None = None) -> float:
    """Seconds after which a running job is stale.

    No task runs longer than the hard time limit, and on Redis the task of a dead worker
    comes back (and its row is marked running again) only after the visibility timeout;
    calling a job stale before either would requeue work that is still on its way.
    """
    limit = float(hard_time_limit(options or WorkerOptions()))
    if settings.broker_url and is_redis(settings.broker_url):
        limit = max(limit, settings.broker_visibility_timeout)
    return limit + STALE_MARGIN


def stale_cutoff(stale_after: float) -> datetime:
    """Running jobs started before this are stale."""
    if stale_after <= 0:
        raise ValueError(f"stale_after must be a positive number of seconds, not {stale_after}")
    return utcnow() - timedelta(seconds=stale_after)


@dataclass
class JobLine:
    id: int
    sha256: str
    queue: str
    attempts: int
    worker: str | None
    error: str | None
    enqueued: datetime
    started: datetime | None
    finished: datetime | None


@dataclass
class QueueStatus:
    counts: dict[str, int]
    failures: list[JobLine] = field(default_factory=list)
    running: list[JobLine] = field(default_factory=list)
    broker: str | None = None
    broker_error: str | None = None
    queue_depth: dict[str, int] | None = None
    stale_after: float = 0.0  # seconds: running jobs started longer ago are stale
    stale_count: int = 0
    stale: list[JobLine] = field(default_factory=list)  # oldest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lines(conn: Any, state: str, *extra: Any) -> list[JobLine]:
    order = JOB.c.finished.desc() if state == "failed" else JOB.c.started
    rows = conn.execute(select(JOB.c.id, JOB.c.sha256, JOB.c.queue, JOB.c.attempts,
                               JOB.c.worker, JOB.c.error, JOB.c.enqueued, JOB.c.started,
                               JOB.c.finished)
                        .where(JOB.c.state == state, *extra).order_by(order, JOB.c.id)
                        .limit(LISTED))
    return [JobLine(*row) for row in rows]


def stale_condition(cutoff: datetime) -> ColumnElement[bool]:
    """The rows that are stale at ``cutoff`` (running, started before it)."""
    return (JOB.c.state == "running") & (JOB.c.started < cutoff)


def queue_status(center: Center, *, broker_timeout: float = 3.0,
                 stale_after: float | None = None) -> QueueStatus:
    """Counts and lists from the catalog, queue depths from the broker (when reachable).

    ``stale_after`` defaults to `default_stale_after` of the center's settings.
    """
    if stale_after is None:
        stale_after = default_stale_after(center.settings)
    cutoff = stale_cutoff(stale_after)
    with center.catalog.engine.connect() as conn:
        counts = dict.fromkeys(STATES, 0)
        for state, n in conn.execute(select(JOB.c.state, func.count()).group_by(JOB.c.state)):
            counts[state] = n
        stale_count = conn.execute(select(func.count()).select_from(JOB)
                                   .where(stale_condition(cutoff))).scalar_one()
        status = QueueStatus(counts=counts, failures=_lines(conn, "failed"),
                             running=_lines(conn, "running"), stale_after=stale_after,
                             stale_count=stale_count,
                             stale=_lines(conn, "running", stale_condition(cutoff)))
    url = center.settings.broker_url
    if url:
        status.broker = safe_broker_url(url)
        try:
            status.queue_depth = broker_depths(url, [queue_name(center.settings, q)
                                                     for q in QUEUES], broker_timeout)
        except Exception as exc:
            status.broker_error = f"{type(exc).__name__}: {exc}"[:500]
    return status


def broker_depths(url: str, queues: list[str], timeout: float) -> dict[str, int]:
    """Messages waiting in each queue (not counting those a worker holds)."""
    depths: dict[str, int] = {}
    with Connection(url, connect_timeout=timeout,  # type: ignore[no-untyped-call]
                    transport_options={"socket_timeout": timeout} if is_redis(url) else {}
                    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
        if is_redis(url):
            client = conn.default_channel.client
            for name in queues:
                depths[name] = int(client.llen(name))
            return depths
        for name in queues:
            channel = conn.channel()
            try:
                _, count, _ = channel.queue_declare(queue=name, passive=True)
                depths[name] = int(count)
            except conn.channel_errors:
                depths[name] = 0  # not declared yet: no worker or job has used it
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return depths
