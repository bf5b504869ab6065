"""Handing samples to the workers: a ``job`` row (queued) first, then the broker message.

`enqueue` is what `cleancenter jobs submit` runs; `enqueue_submissions` is for ingest of
uploads and analyst submissions (the portal): the same, at submission priority.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from cleancenter.center import Center
from cleancenter.jobs.app import (
    PRIORITY_BACKLOG,
    PRIORITY_SUBMISSION,
    TASK_ANALYZE,
    JobsError,
    celery_app,
    queue_for,
    safe_broker_url,
)
from cleancenter.jobs.tasks import ACTIVE, JOB
from cleancenter.store.catalog import utcnow

CHUNK = 500


def enqueue(center: Center, sha256s: Sequence[str], *, priority: int = PRIORITY_BACKLOG,
            skip_active: bool = True) -> list[int]:
    """Queue an analysis job per sample; returns the new job ids.

    A sample that already has a queued or running job of at least this priority is
    skipped (a second one would only be a no-op), unless ``skip_active`` is false.
    """
    return enqueue_with(celery_app(center.settings), center, sha256s, priority=priority,
                        skip_active=skip_active)


def enqueue_submissions(center: Center, sha256s: Sequence[str]) -> list[int]:
    """Uploads and submissions: ahead of the honeypot backlog."""
    return enqueue(center, sha256s, priority=PRIORITY_SUBMISSION)


def enqueue_with(app: Any, center: Center, sha256s: Sequence[str], *, priority: int,
                 skip_active: bool = True) -> list[int]:
    wanted = list(dict.fromkeys(sha256s))
    if skip_active and wanted:
        busy: set[str] = set()
        with center.catalog.engine.connect() as conn:
            for i in range(0, len(wanted), CHUNK):
                busy.update(conn.execute(select(JOB.c.sha256).where(
                    JOB.c.sha256.in_(wanted[i:i + CHUNK]), JOB.c.state.in_(ACTIVE),
                    JOB.c.priority >= priority)).scalars())
        wanted = [s for s in wanted if s not in busy]
    if not wanted:
        return []
    queue = queue_for(center.settings, priority)
    now = utcnow()
    with center.catalog.transaction() as conn:
        ids = list(conn.execute(JOB.insert().returning(JOB.c.id, sort_by_parameter_order=True),
                                [{"sha256": s, "kind": "analyze", "priority": priority,
                                  "queue": queue, "state": "queued", "attempts": 0,
                                  "enqueued": now} for s in wanted]).scalars())
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for job_id, sha256 in zip(ids, wanted, strict=True):
                app.send_task(TASK_ANALYZE, args=[job_id, sha256], queue=queue,
                              routing_key=queue, producer=producer)
                sent += 1
    except Exception as exc:
        message = (f"could not hand the job to the broker "
                   f"{safe_broker_url(str(app.conf.broker_url))}: {type(exc).__name__}: {exc}")
        with center.catalog.transaction() as conn:
            conn.execute(update(JOB).where(JOB.c.id.in_(ids[sent:])).values(
                state="failed", error=message[:1000], finished=utcnow()))
        raise JobsError(message) from exc
    return ids

