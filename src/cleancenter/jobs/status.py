"""What the workers are doing: job counts from the catalog, queue depths from the broker."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from kombu.connection import Connection
from sqlalchemy import func, select

from cleancenter.center import Center
from cleancenter.jobs.app import QUEUES, is_redis, queue_name, safe_broker_url
from cleancenter.jobs.tasks import JOB

STATES = ("queued", "running", "failed", "done")
LISTED = 50


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lines(conn: Any, state: str) -> list[JobLine]:
    order = JOB.c.finished.desc() if state == "failed" else JOB.c.started
    rows = conn.execute(select(JOB.c.id, JOB.c.sha256, JOB.c.queue, JOB.c.attempts,
                               JOB.c.worker, JOB.c.error, JOB.c.enqueued, JOB.c.started,
                               JOB.c.finished)
                        .where(JOB.c.state == state).order_by(order, JOB.c.id).limit(LISTED))
    return [JobLine(*row) for row in rows]


def queue_status(center: Center, *, broker_timeout: float = 3.0) -> QueueStatus:
    with center.catalog.engine.connect() as conn:
        counts = dict.fromkeys(STATES, 0)
        for state, n in conn.execute(select(JOB.c.state, func.count()).group_by(JOB.c.state)):
            counts[state] = n
        status = QueueStatus(counts=counts, failures=_lines(conn, "failed"),
                             running=_lines(conn, "running"))
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
