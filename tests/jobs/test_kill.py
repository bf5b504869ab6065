"""The kill test: a worker killed with SIGKILL in the middle of a task loses nothing, and
nothing is stored twice.

Two workers share the queue of a PostgreSQL center. One task is made slow by the test-only
worker entry point (tests/jobs/slow_worker.py); the worker that picks it up is killed, with
its pool process, by SIGKILL while it holds that task, after other tasks were done. The
broker gives the task to the other worker (RabbitMQ at once when the connection drops,
Redis after the visibility timeout), and in the end every sample has exactly one report.

``CLEANCENTER_TEST_KILL_SAMPLES`` sets the number of samples (default 300, to keep the
default run short; the test was run with 500 too).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cleancenter.analyze.report import ANALYZER_VERSION
from cleancenter.analyze.service import REPORT
from cleancenter.jobs.submit import enqueue
from tests.jobs.helper import JOB, Cluster, in_process_reports, text_samples

N = int(os.environ.get("CLEANCENTER_TEST_KILL_SAMPLES", "300"))

pytestmark = [pytest.mark.postgres, pytest.mark.long]


def test_a_worker_killed_mid_task_loses_nothing_and_nothing_runs_twice(
        pg_cluster: Cluster, sqlite_center: object, tmp_path: Path) -> None:
    paths = text_samples(tmp_path / "samples", N)
    shas = pg_cluster.ingest(paths)
    slow = shas[N // 3]
    mark = tmp_path / "slow.mark"
    started = time.monotonic()
    ids = enqueue(pg_cluster.center, shas)
    assert len(ids) == N
    env = {"CCTEST_SLOW_SHA256": slow, "CCTEST_SLOW_MARK": str(mark)}
    workers = [pg_cluster.start_worker(name, helper=True, extra_env=env)
               for name in ("one", "two")]

    pg_cluster.wait(mark.exists, 120, "a worker to take the slow task")
    victim = next(w for w in workers if w.pid == int(mark.read_text()))
    done_before = pg_cluster.job_counts().get("done", 0)
    pg_cluster.kill(victim)  # SIGKILL to the worker and its pool process
    victim.wait(timeout=10)
    killed_at = time.monotonic()
    assert done_before > 0

    pg_cluster.wait_finished(N, 180)
    elapsed = time.monotonic() - started
    survivor = next(w for w in workers if w is not victim)
    assert survivor.poll() is None

    jobs = pg_cluster.jobs()
    assert len(jobs) == N
    assert {j["state"] for j in jobs} == {"done"}
    by_sha = {j["sha256"]: j for j in jobs}
    # killed once, run again by the other worker (on a loaded machine Redis may hand a task
    # out once more when a worker held it past the visibility timeout: still one report)
    assert by_sha[slow]["attempts"] >= 2
    assert by_sha[slow]["worker"].startswith("two@" if victim is workers[0] else "one@")
    assert sum(j["attempts"] for j in jobs) >= N + 1
    # exactly one report per sha256 + analyzer version, none missing
    reports = pg_cluster.reports()
    assert set(reports) == set(shas)
    with pg_cluster.center.catalog.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(REPORT)).scalar_one() == N
        assert conn.execute(select(func.count()).select_from(REPORT).where(
            REPORT.c.analyzer_version != ANALYZER_VERSION)).scalar_one() == 0
        assert conn.execute(select(func.count(func.distinct(JOB.c.sha256)))).scalar_one() == N
    # the same reports and IOC links as the in-process analysis of the same files
    assert reports == in_process_reports(sqlite_center, paths)  # type: ignore[arg-type]
    links = pg_cluster.sample_iocs()
    assert len(links) == len(set(links))
    assert {sha for sha, _ in links} == set(shas)
    print(f"\nkill test: {N} samples, 2 workers, {pg_cluster.broker_url.split(':')[0]}: "
          f"{elapsed:.1f} s from enqueue to all done; killed after {done_before} done, "
          f"{time.monotonic() - killed_at:.1f} s from the kill to the end")
