"""The task a worker runs: one job, one sample, the same code as the in-process pool.

``run_job`` marks the job running, skips a sample whose report of this analyzer version
exists (a task delivered twice is a no-op), runs `analyze_sample` under the same time and
memory limits as the pool, stores the result with the service's own store step and marks
the job done or failed. Each worker process opens its own center from the settings (data
dir, database URL, blob store): on several machines the blobs are in S3 or on a shared path.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, exists, select, update
from sqlalchemy.exc import IntegrityError

from cleancenter.analyze.report import ANALYZER_VERSION
from cleancenter.analyze.service import (
    REPORT,
    AnalysisService,
    TaskResult,
    analyze_sample,
    init_worker,
)
from cleancenter.center import Center
from cleancenter.config import Settings
from cleancenter.jobs.app import TASK_ANALYZE, WorkerOptions
from cleancenter.store.blobs import BlobError
from cleancenter.store.catalog import RELATION, SAMPLE_NAME, utcnow
from cleancenter.store.models import Job

JOB = cast(Table, Job.__table__)
ACTIVE = ("queued", "running")
SETTLED = ("done", "failed")
MAX_ATTEMPTS = 3  # a sample whose worker died this often is failed, not retried forever

log = logging.getLogger(__name__)


@dataclass
class _ProcessState:
    pid: int
    center: Center
    service: AnalysisService


class JobRunner:
    """Runs jobs in one worker process; the center is opened once per process (after the
    prefork pool forked it), never shared across a fork."""

    def __init__(self, settings: Settings, options: WorkerOptions) -> None:
        self.settings = settings
        self.options = options
        self._state: _ProcessState | None = None

    def _process(self) -> _ProcessState:
        if self._state is None or self._state.pid != os.getpid():
            from cleancenter.analyze.cli import scanner_factory

            center = Center(self.settings)
            make_scanner, _ = scanner_factory(center)
            workdir = self.settings.work_dir / "unpack"
            workdir.mkdir(parents=True, exist_ok=True)
            init_worker(make_scanner, str(workdir), self.options.memory_limit)
            service = AnalysisService(center.catalog, center.blobs, workdir,
                                      make_scanner=make_scanner, workers=1,
                                      timeout=self.options.timeout,
                                      memory_limit=self.options.memory_limit)
            self._state = _ProcessState(os.getpid(), center, service)
        return self._state

    def run(self, app: Any, job_id: int, sha256: str, worker: str) -> str:
        """One job; returns its final state (``done``, ``skipped``, ``failed``)."""
        state = self._process()
        catalog, blobs = state.center.catalog, state.center.blobs
        with catalog.transaction() as conn:  # one round of queries before the work
            row = conn.execute(select(JOB.c.attempts, JOB.c.priority, JOB.c.state)
                               .where(JOB.c.id == job_id)).first()
            attempts = (row.attempts if row else 0) + 1
            priority = row.priority if row else 0
            taken = conn.execute(update(JOB).where(JOB.c.id == job_id,
                                                   JOB.c.state.not_in(SETTLED)).values(
                state="running", attempts=attempts, worker=worker[:255], started=utcnow(),
                finished=None, error=None)).rowcount
            if row is not None and not taken:
                # delivered again after it was finished, or failed and requeued as a new
                # job (`jobs requeue-stale`) even while we looked: the outcome stands
                return "skipped"
            reported = conn.execute(select(REPORT.c.id).where(
                REPORT.c.sha256 == sha256, REPORT.c.analyzer_version == ANALYZER_VERSION
            ).limit(1)).first() is not None
            name = conn.execute(select(SAMPLE_NAME.c.name).where(SAMPLE_NAME.c.sha256 == sha256)
                                .order_by(SAMPLE_NAME.c.id).limit(1)).scalar_one_or_none()
        if reported:  # a task delivered again: done already
            self._finish(app, state, job_id, sha256, priority, None)
            return "skipped"
        error: str | None = None
        path = blobs.path_for(sha256)
        if attempts > MAX_ATTEMPTS:
            error = (f"the worker died {attempts - 1} times on this sample (crash, memory or "
                     "killed); not retried again")
        else:
            try:
                path = blobs.readable_path(sha256)  # from the bucket, with an S3 store
            except BlobError as exc:
                error = str(exc)
            else:
                if not path.is_file():
                    error = (f"the blob of sample {sha256} is missing from the blob store "
                             f"{blobs.location(sha256)} (with workers on several machines "
                             "the blobs must be in S3 or on a shared path)")
        if error is not None:
            state.service.store(TaskResult(sha256=sha256, error=error))
            self._finish(app, state, job_id, sha256, priority, error)
            return "failed"
        result = analyze_sample(sha256, str(path), name, self.options.timeout)
        error = result.error
        try:
            state.service.store(result)
        except IntegrityError:
            # another worker stored this report at the same moment (a task delivered twice):
            # the unique report key kept one, which is what we want
            log.info("report of %s was stored by another worker", sha256)
        except BlobError as exc:
            # the unpacked children could not be stored (the blob store is down): no report
            # was stored, the job fails with the reason and can be submitted again
            error = f"storing the unpacked children failed: {exc}"
        self._finish(app, state, job_id, sha256, priority, error)
        return "failed" if error is not None else "done"

    def _finish(self, app: Any, state: _ProcessState, job_id: int, sha256: str,
                priority: int, error: str | None) -> None:
        """Mark the job; queue the unpacked children that have neither a report nor an
        active job (also when this task is a re-run of one killed after its store)."""
        children: list[str] = []
        with state.center.catalog.transaction() as conn:
            if error is None:
                children = list(conn.execute(
                    select(RELATION.c.child_sha256).where(RELATION.c.parent_sha256 == sha256)
                    .where(~exists().where(and_(
                        REPORT.c.sha256 == RELATION.c.child_sha256,
                        REPORT.c.analyzer_version == ANALYZER_VERSION)))).scalars())
        if children:
            from cleancenter.jobs.submit import enqueue_with

            enqueue_with(app, state.center, children, priority=priority)
        with state.center.catalog.transaction() as conn:
            # only a running row: one failed meanwhile as stale keeps its "requeued as"
            conn.execute(update(JOB).where(JOB.c.id == job_id, JOB.c.state == "running")
                         .values(state="done" if error is None else "failed", error=error,
                                 finished=utcnow()))


def register(app: Any, settings: Settings, options: WorkerOptions) -> None:
    """Put the analysis task on ``app`` (acknowledged late, given back on worker loss)."""
    runner = JobRunner(settings, options)

    @app.task(name=TASK_ANALYZE, bind=True, acks_late=True, reject_on_worker_lost=True,
              ignore_result=True)  # type: ignore[untyped-decorator]
    def analyze(self: Any, job_id: int, sha256: str) -> str:
        worker = f"{self.request.hostname or '?'} pid {os.getpid()}"
        return runner.run(app, job_id, sha256, worker)
