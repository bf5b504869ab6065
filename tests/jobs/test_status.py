"""`jobs submit` and `jobs status`, the job table, and the task run in this process (the
same `JobRunner` a worker runs, without a broker round trip)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cleancenter.analyze.service import REPORT
from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.config import ConfigError, load_settings
from cleancenter.jobs.app import (
    PRIORITY_SUBMISSION,
    JobsError,
    WorkerOptions,
    celery_app,
    celery_config,
    safe_broker_url,
)
from cleancenter.jobs.submit import enqueue
from cleancenter.jobs.tasks import MAX_ATTEMPTS, JobRunner
from tests.jobs.helper import BROKERS, JOB, Cluster, cluster, text_samples

runner = CliRunner()


def cli(c: Cluster, *args: str, broker: str | None = None) -> tuple[int, str]:
    env = {**c.env(), "CLEANCENTER_BROKER_URL": broker or c.broker_url, "COLUMNS": "300"}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def run_here(c: Cluster, job_id: int, sha256: str) -> str:
    """Run one job as a worker would, in this process (no memory limit here)."""
    return JobRunner(c.settings, WorkerOptions(memory_limit=0)).run(
        celery_app(c.settings), job_id, sha256, "here@test")


@pytest.mark.postgres
def test_status_counts_queue_depths_failures_and_exit_codes(
        tmp_path: Path, pg_url: str, broker_url: str) -> None:
    with cluster(tmp_path, pg_url, broker_url) as c:
        shas = c.ingest(text_samples(tmp_path / "s", 4))
        blob = c.center.blobs.path_for(shas[3])
        os.chmod(blob.parent, stat.S_IRWXU)
        blob.unlink()

        code, output = cli(c, "jobs", "submit", "--all", "--json")
        assert code == 0, output
        submitted = json.loads(output)
        assert (submitted["pending"], submitted["queued"]) == (4, 4)
        code, output = cli(c, "jobs", "submit", shas[0], "--priority", "submission")
        assert code == 0 and "queued 1 of 1" in output  # a higher priority job is added
        code, output = cli(c, "jobs", "submit", "--all")
        assert code == 0 and "queued 0 of 4" in output  # all have an active job

        code, output = cli(c, "jobs", "status", "--json")
        assert code == 0, output
        status = json.loads(output)
        assert status["counts"] == {"queued": 5, "running": 0, "failed": 0, "done": 0}
        assert status["queue_depth"] == {f"{c.prefix}submissions": 1, f"{c.prefix}backlog": 4}
        assert status["broker_error"] is None

        ids = {j["sha256"]: j["id"] for j in c.jobs() if j["priority"] == 0}
        assert run_here(c, ids[shas[1]], shas[1]) == "done"
        assert run_here(c, ids[shas[3]], shas[3]) == "failed"
        code, output = cli(c, "jobs", "status", "--json")
        status = json.loads(output)
        assert status["counts"] == {"queued": 3, "running": 0, "failed": 1, "done": 1}
        (failure,) = status["failures"]
        assert failure["sha256"] == shas[3] and "is missing from the blob store" in failure[
            "error"]
        code, output = cli(c, "jobs", "status")
        assert code == 0
        assert "queued 3, running 0, failed 1, done 1" in output
        assert "4 waiting" in output and "missing from the blob store" in output

        # a broker that cannot be reached: the catalog's counts still, and exit code 0
        code, output = cli(c, "jobs", "status", "--json", broker="redis://127.0.0.1:9/0")
        assert code == 0
        status = json.loads(output)
        assert status["queue_depth"] is None and status["broker_error"]
        assert status["counts"]["failed"] == 1


def test_status_exit_code_2_when_the_catalog_cannot_be_read(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "--database-url",
                                 "postgresql+psycopg://nobody@127.0.0.1:9/none",
                                 "jobs", "status"], env={"CLEANCENTER_BROKER_URL": ""})
    assert result.exit_code == 2
    assert "cannot open catalog" in result.output


def test_submit_without_a_broker_is_a_clear_error(sqlite_center: Center, tmp_path: Path
                                                   ) -> None:
    result = runner.invoke(app, ["--data-dir", str(sqlite_center.settings.data_dir), "jobs",
                                 "submit", "--all"], env={"CLEANCENTER_BROKER_URL": ""})
    assert result.exit_code == 2
    assert "no broker_url is set" in result.output


def test_the_task_is_idempotent_and_gives_up_on_a_sample_that_kills_workers(
        tmp_path: Path, database_url: str) -> None:
    broker = BROKERS["redis"]
    with cluster(tmp_path, database_url, broker) as c:
        shas = c.ingest(text_samples(tmp_path / "s", 2))
        first, second = enqueue(c.center, shas)
        assert run_here(c, first, shas[0]) == "done"
        # the same message delivered again (a worker lost after storing): a no-op
        assert run_here(c, first, shas[0]) == "skipped"
        with c.center.catalog.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(REPORT)).scalar_one() == 1
        job = c.jobs()[0]
        # its row is settled: the second delivery does not touch it
        assert (job["state"], job["attempts"], job["worker"]) == ("done", 1, "here@test")

        # a sample whose worker died MAX_ATTEMPTS times is failed, not retried forever
        with c.center.catalog.transaction() as conn:
            conn.execute(update(JOB).where(JOB.c.id == second).values(attempts=MAX_ATTEMPTS))
        assert run_here(c, second, shas[1]) == "failed"
        job = c.jobs()[1]
        assert job["state"] == "failed" and "died 3 times" in job["error"]


def test_settings_and_delivery_guarantees(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path)}, environ={
        "CLEANCENTER_BROKER_URL": "redis://:secret@127.0.0.1:6379/0",
        "CLEANCENTER_BROKER_VISIBILITY_TIMEOUT": "300"})
    conf = celery_config(settings, WorkerOptions(timeout=100))
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_time_limit"] == 260
    assert conf["broker_transport_options"]["visibility_timeout"] == 300
    assert conf["broker_transport_options"]["queue_order_strategy"] == "priority"
    assert [q.name for q in conf["task_queues"]] == ["cleancenter.submissions",
                                                     "cleancenter.backlog"]
    assert safe_broker_url(settings.broker_url or "") == "redis://:***@127.0.0.1:6379/0"
    amqp = load_settings(overrides={"data_dir": str(tmp_path)}, environ={
        "CLEANCENTER_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"})
    assert celery_config(amqp, WorkerOptions())["broker_transport_options"] == {}
    with pytest.raises(JobsError, match="no broker_url"):
        celery_config(load_settings(overrides={"data_dir": str(tmp_path)}, environ={}),
                      WorkerOptions())
    with pytest.raises(ConfigError, match="broker_visibility_timeout"):
        load_settings(environ={"CLEANCENTER_BROKER_VISIBILITY_TIMEOUT": "soon"})
    assert PRIORITY_SUBMISSION > 0
