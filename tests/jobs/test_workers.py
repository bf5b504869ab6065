"""Celery workers on the real brokers: the task path, failures, priorities."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cleancenter.center import Center
from cleancenter.jobs.app import PRIORITY_SUBMISSION
from cleancenter.jobs.submit import enqueue, enqueue_submissions
from tests.jobs.helper import (
    Cluster,
    add_rules,
    in_process_reports,
    mixed_samples,
    text_samples,
)

pytestmark = pytest.mark.postgres


def test_workers_analyse_like_the_in_process_pool_and_a_missing_blob_fails_alone(
        pg_cluster: Cluster, sqlite_center: Center, tmp_path: Path) -> None:
    paths = mixed_samples(tmp_path / "samples", 6)
    add_rules(pg_cluster.center, tmp_path / "rules")
    add_rules(sqlite_center, tmp_path / "rules")
    shas = pg_cluster.ingest(paths)
    # one more sample whose blob is gone (a data dir that is not shared, a lost disk)
    lost = text_samples(tmp_path / "lost", 1, tag="lost")
    (lost_sha,) = pg_cluster.ingest(lost)
    blob = pg_cluster.center.blobs.path_for(lost_sha)
    os.chmod(blob.parent, stat.S_IRWXU)
    blob.unlink()

    ids = enqueue(pg_cluster.center, [*shas[:4], lost_sha, *shas[4:]])
    assert len(ids) == len(shas) + 1
    assert enqueue(pg_cluster.center, shas) == []  # already queued: not twice
    pg_cluster.start_worker("a")
    pg_cluster.wait_finished(len(ids), 60)

    jobs = {j["sha256"]: j for j in pg_cluster.jobs()}
    failed = jobs.pop(lost_sha)
    assert failed["state"] == "failed"
    assert "blob" in failed["error"] and "missing" in failed["error"]
    assert {j["state"] for j in jobs.values()} == {"done"}
    assert all(j["attempts"] == 1 and j["worker"].startswith("a@") for j in jobs.values())

    expected = in_process_reports(sqlite_center, paths)
    assert pg_cluster.reports() == expected
    assert {v[0] for v in expected.values()} == {"malicious", "suspicious", "unknown"}


def test_a_submission_overtakes_the_backlog(pg_cluster: Cluster, tmp_path: Path) -> None:
    shas = pg_cluster.ingest(text_samples(tmp_path / "s", 52))
    warm, backlog, submission = shas[0], shas[1:51], shas[51]
    # a busy single worker: every task takes 50 ms more than it would
    pg_cluster.start_worker("busy", helper=True, extra_env={"CCTEST_DELAY": "0.05"})
    enqueue(pg_cluster.center, [warm])
    pg_cluster.wait_finished(1, 60)  # the worker is up and consuming

    enqueue(pg_cluster.center, backlog)
    (sub_id,) = enqueue_submissions(pg_cluster.center, [submission])
    pg_cluster.wait_finished(52, 60)

    jobs = [j for j in pg_cluster.jobs() if j["sha256"] != warm]
    assert {j["state"] for j in jobs} == {"done"}
    order = [j["id"] for j in sorted(jobs, key=lambda j: j["started"])]
    rank = order.index(sub_id)
    submitted = next(j for j in jobs if j["id"] == sub_id)
    assert submitted["priority"] == PRIORITY_SUBMISSION
    assert submitted["queue"].endswith("submissions")
    print(f"\nthe submission ran after {rank} of 50 backlog tasks")
    assert rank <= 5, f"the submission ran after {rank} of 50 backlog tasks"
