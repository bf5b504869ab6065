"""Stale running jobs (their broker message was lost): `jobs status` reports them,
`jobs requeue-stale` fails the old row and queues one new job a real worker then runs.

A lost message is made by writing the job row as a worker would (running, with a worker
name and an old ``started``) without any message on the broker: exactly what a Redis
restart without persistence leaves behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cleancenter.analyze.service import REPORT
from cleancenter.cli import app
from cleancenter.config import Settings, load_settings
from cleancenter.jobs.app import (
    PRIORITY_SUBMISSION,
    WorkerOptions,
    celery_app,
    celery_config,
    queue_for,
)
from cleancenter.jobs.recover import (
    MAX_REQUEUES,
    RequeueError,
    recover_stale,
    requeue_stale,
    resend_lost_queued,
)
from cleancenter.jobs.status import default_stale_after, hard_time_limit, queue_status
from cleancenter.jobs.submit import enqueue, enqueue_submissions
from cleancenter.store.catalog import utcnow
from tests.jobs.helper import BROKERS, JOB, Cluster, cluster, text_samples

pytestmark = pytest.mark.postgres

runner = CliRunner()
GONE = "gone@lost-machine pid 4242"
HOUR = 3600.0


def cli(c: Cluster, *args: str, broker: str | None = None) -> tuple[int, str]:
    env = {**c.env(), "COLUMNS": "300",
           "CLEANCENTER_BROKER_URL": c.broker_url if broker is None else broker}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def lost_job(c: Cluster, sha256: str, *, ago: float, priority: int = 0,
             worker: str = GONE) -> int:
    """A job row as a worker leaves it when it took the task ``ago`` seconds ago, with no
    message left on the broker."""
    now = utcnow()
    with c.center.catalog.transaction() as conn:
        return int(conn.execute(JOB.insert().returning(JOB.c.id).values(
            sha256=sha256, kind="analyze", priority=priority,
            queue=queue_for(c.settings, priority), state="running", attempts=1,
            worker=worker, enqueued=now - timedelta(seconds=ago + 5),
            started=now - timedelta(seconds=ago))).scalar_one())


def report_count(c: Cluster, sha256: str | None = None) -> int:
    query = select(func.count()).select_from(REPORT)
    if sha256 is not None:
        query = query.where(REPORT.c.sha256 == sha256)
    with c.center.catalog.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def redis_cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    """A PostgreSQL center with queues of its own on Redis (enough where no worker runs)."""
    with cluster(tmp_path, pg_url, BROKERS["redis"]) as c:
        yield c


def test_the_default_threshold_is_past_the_hard_time_limit_and_the_visibility_timeout(
        tmp_path: Path) -> None:
    def settings(url: str, visibility: str = "600") -> Settings:
        return load_settings(overrides={"data_dir": str(tmp_path)}, environ={
            "CLEANCENTER_BROKER_URL": url, "CLEANCENTER_BROKER_VISIBILITY_TIMEOUT": visibility})

    amqp = settings(BROKERS["rabbitmq"])
    assert hard_time_limit(WorkerOptions()) == celery_config(
        amqp, WorkerOptions())["task_time_limit"] == 300
    assert hard_time_limit(WorkerOptions(timeout=30)) == celery_config(
        amqp, WorkerOptions(timeout=30))["task_time_limit"]
    assert default_stale_after(amqp) == 360
    assert default_stale_after(settings(BROKERS["redis"])) == 660
    assert default_stale_after(settings(BROKERS["redis"], "4")) == 360


def test_a_long_silent_running_job_is_stale_and_a_fresh_one_is_not(
        redis_cluster: Cluster, tmp_path: Path) -> None:
    c = redis_cluster
    old_sha, new_sha = c.ingest(text_samples(tmp_path / "s", 2))
    old = lost_job(c, old_sha, ago=HOUR)
    fresh = lost_job(c, new_sha, ago=10, worker="busy@here pid 1")

    status = queue_status(c.center, stale_after=600)
    assert status.counts["running"] == 2
    assert status.stale_count == 1 and [s.id for s in status.stale] == [old]
    assert {r.id for r in status.running} == {old, fresh}
    assert queue_status(c.center, stale_after=5).stale_count == 2
    assert queue_status(c.center).stale_count == 1  # the default: 360 s here

    code, output = cli(c, "jobs", "status", "--json", "--stale-after", "600")
    assert code == 0, output
    doc = json.loads(output)
    assert set(doc) >= {"counts", "running", "failures", "broker", "broker_error",
                        "queue_depth", "stale_after", "stale_count", "stale"}
    assert doc["counts"] == {"queued": 0, "running": 2, "failed": 0, "done": 0}
    assert (doc["stale_after"], doc["stale_count"]) == (600, 1)
    assert [(s["id"], s["sha256"], s["worker"]) for s in doc["stale"]] == [(old, old_sha, GONE)]
    code, output = cli(c, "jobs", "status", "--stale-after", "600")
    assert code == 0, output
    assert "stale 1: running, no word for more than 600 s" in output
    assert f"stale running job {old} {old_sha} on {GONE}" in output
    assert f"running job {fresh} {new_sha}" in output
    assert f"stale running job {fresh}" not in output


def test_requeue_fails_the_old_job_and_a_worker_analyses_the_sample_once(
        pg_cluster: Cluster, tmp_path: Path) -> None:
    c = pg_cluster
    lost_sha, busy_sha = c.ingest(text_samples(tmp_path / "s", 2))
    lost = lost_job(c, lost_sha, ago=HOUR, priority=PRIORITY_SUBMISSION)
    # a sample queued again by someone else (at a higher priority: `jobs submit` skips a
    # sample with a running job of the same priority, stale or not): not queued twice
    busy_old = lost_job(c, busy_sha, ago=HOUR)
    assert enqueue(c.center, [busy_sha]) == []
    (busy_queued,) = enqueue_submissions(c.center, [busy_sha])

    taken = recover_stale(c.center, 600)
    assert [(t.old_id, t.new_id is not None) for t in taken] == [(lost, True), (busy_old, False)]
    new = taken[0].new_id
    jobs = {j["id"]: j for j in c.jobs()}
    assert jobs[lost]["state"] == "failed" and jobs[lost]["finished"] is not None
    assert jobs[lost]["error"].startswith(f"no word from worker {GONE} since ")
    assert jobs[lost]["error"].endswith(f"; requeued as job {new}")
    assert jobs[busy_old]["state"] == "failed"
    assert jobs[busy_old]["error"].endswith(
        f"; not requeued: job {busy_queued} of this sample is queued or running")
    assert (jobs[new]["sha256"], jobs[new]["state"], jobs[new]["priority"],
            jobs[new]["attempts"]) == (lost_sha, "queued", PRIORITY_SUBMISSION, 0)
    assert jobs[new]["queue"].endswith("submissions")
    assert len(jobs) == 4
    assert requeue_stale(c.center, 600) == []  # twice: nothing more is queued

    c.start_worker("a")
    c.wait(lambda: {j["id"]: j["state"] for j in c.jobs()} == {
        lost: "failed", busy_old: "failed", new: "done", busy_queued: "done"}, 60,
        "the requeued job and the other queued one to be done")
    job = next(j for j in c.jobs() if j["id"] == new)
    assert job["attempts"] == 1 and job["worker"].startswith("a@")
    assert report_count(c, lost_sha) == 1 and report_count(c) == 2
    assert set(c.reports()) == {lost_sha, busy_sha}
    code, output = cli(c, "jobs", "status", "--json", "--stale-after", "600")
    assert code == 0 and json.loads(output)["stale_count"] == 0


def test_a_job_that_finished_or_came_back_after_the_status_read_is_not_requeued(
        redis_cluster: Cluster, tmp_path: Path) -> None:
    c = redis_cluster
    finished_sha, revived_sha = c.ingest(text_samples(tmp_path / "s", 2))
    finished = lost_job(c, finished_sha, ago=HOUR)
    revived = lost_job(c, revived_sha, ago=HOUR)
    assert {s.id for s in queue_status(c.center, stale_after=600).stale} == {finished, revived}
    with c.center.catalog.transaction() as conn:  # what workers do in the meantime
        conn.execute(update(JOB).where(JOB.c.id == finished).values(
            state="done", finished=utcnow()))
        conn.execute(update(JOB).where(JOB.c.id == revived).values(  # delivered again
            started=utcnow(), attempts=2, worker="back@here pid 2"))

    assert recover_stale(c.center, 600) == []
    jobs = c.jobs()
    assert [(j["id"], j["state"], j["error"]) for j in jobs] == [
        (finished, "done", None), (revived, "running", None)]


def test_requeue_stale_cli_json_twice_and_the_error_exits(
        redis_cluster: Cluster, tmp_path: Path) -> None:
    c = redis_cluster
    sha, other_sha = c.ingest(text_samples(tmp_path / "s", 2))
    low = lost_job(c, sha, ago=HOUR)
    high = lost_job(c, sha, ago=HOUR, priority=PRIORITY_SUBMISSION)

    # a broker that cannot be reached: exit 2, and no row is touched
    code, output = cli(c, "jobs", "requeue-stale", "--stale-after", "600",
                       broker="redis://127.0.0.1:9/0")
    assert code == 2 and "cannot be reached" in output, output
    assert {j["state"] for j in c.jobs()} == {"running"}
    code, output = cli(c, "jobs", "requeue-stale", broker="")
    assert code == 2 and "no broker_url is set" in output, output

    code, output = cli(c, "jobs", "requeue-stale", "--stale-after", "600", "--json")
    assert code == 0, output
    doc = json.loads(output)
    assert set(doc) == {"stale_after", "stale", "requeued", "jobs", "resent"}
    assert doc["resent"] == []
    assert (doc["stale_after"], doc["stale"], doc["requeued"]) == (600, 2, 1)
    first, second = doc["jobs"]
    assert set(first) == {"old_id", "sha256", "priority", "worker", "started", "new_id",
                          "error"}
    # two stale jobs of one sample: the higher priority one is requeued, and only once
    assert (first["old_id"], first["priority"], first["worker"]) == (
        high, PRIORITY_SUBMISSION, GONE)
    assert first["error"].endswith(f"requeued as job {first['new_id']}")
    assert (second["old_id"], second["new_id"]) == (low, None)
    assert second["error"].endswith(
        f"; not requeued: job {high} of this sample was, as job {first['new_id']}")
    active = [j for j in c.jobs() if j["state"] in ("queued", "running")]
    assert [j["id"] for j in active] == [first["new_id"]]

    code, output = cli(c, "jobs", "requeue-stale", "--stale-after", "600", "--json")
    assert code == 0 and json.loads(output) == {"stale_after": 600, "stale": 0,
                                                "requeued": 0, "jobs": [], "resent": []}
    assert len(c.jobs()) == 3

    # rich output; and a sample whose jobs went stale too often is not queued again
    with c.center.catalog.transaction() as conn:
        conn.execute(JOB.insert(), [{
            "sha256": other_sha, "kind": "analyze", "priority": 0, "queue": "q",
            "state": "failed", "attempts": 1, "enqueued": utcnow(), "finished": utcnow(),
            "error": f"no word from worker {GONE} since 2020-01-01T00:00:00+00:00; "
                     f"requeued as job {n}"} for n in range(MAX_REQUEUES)])
    given_up = lost_job(c, other_sha, ago=HOUR)
    code, output = cli(c, "jobs", "requeue-stale", "--stale-after", "600")
    assert code == 0, output
    assert "1 stale running jobs (no word for more than 600 s); 0 requeued" in output
    assert f"job {given_up} {other_sha}: failed, not requeued" in output
    assert f"{MAX_REQUEUES} earlier jobs of this sample went stale" in output
    assert not [j for j in c.jobs() if j["sha256"] == other_sha and j["state"] != "failed"]


def test_requeue_stale_exit_code_2_when_the_catalog_cannot_be_read(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "--database-url",
                                 "postgresql+psycopg://nobody@127.0.0.1:9/none",
                                 "jobs", "requeue-stale"],
                           env={"CLEANCENTER_BROKER_URL": BROKERS["redis"]})
    assert result.exit_code == 2
    assert "cannot open catalog" in result.output


def test_a_broker_failing_part_way_fails_the_row_and_says_what_was_done(
        redis_cluster: Cluster, tmp_path: Path) -> None:
    c = redis_cluster
    sha, next_sha = c.ingest(text_samples(tmp_path / "s", 2))
    old = lost_job(c, sha, ago=HOUR, priority=PRIORITY_SUBMISSION)
    lost_job(c, next_sha, ago=HOUR)
    real = celery_app(c.settings)

    class BrokenSend:
        """The broker answers the check, then fails the send (it went down meanwhile)."""

        conf = real.conf

        def producer_or_acquire(self) -> object:
            raise ConnectionError("connection reset")

    with pytest.raises(RequeueError, match="could not hand the job to the broker") as info:
        recover_stale(c.center, 600, app=BrokenSend())
    assert info.value.done == []
    jobs = c.jobs()
    assert jobs[0]["id"] == old and jobs[0]["state"] == "failed"
    assert "; requeueing failed: could not hand the job" in jobs[0]["error"]
    assert jobs[1]["state"] == "running"  # the next sample is left for the next run
    assert (jobs[2]["sha256"], jobs[2]["state"]) == (sha, "failed")  # the send that failed


def test_a_late_delivery_of_a_requeued_job_leaves_its_row_alone(
        redis_cluster: Cluster, tmp_path: Path) -> None:
    """The lost message comes back after all (or the silent worker wakes up): the old row
    keeps its "requeued as" outcome, the new job stays the one that runs."""
    from cleancenter.jobs.tasks import JobRunner

    c = redis_cluster
    (sha,) = c.ingest(text_samples(tmp_path / "late", 1))
    old = lost_job(c, sha, ago=2 * HOUR)
    (new,) = requeue_stale(c.center, HOUR)
    before = next(j for j in c.jobs() if j["id"] == old)
    job_runner = JobRunner(c.settings, WorkerOptions(timeout=60, memory_limit=0))
    assert job_runner.run(celery_app(c.settings), old, sha, "late@test") == "skipped"
    after = next(j for j in c.jobs() if j["id"] == old)
    assert after == before and after["state"] == "failed" and f"job {new}" in after["error"]
    assert report_count(c, sha) == 0


def test_a_queued_job_whose_message_was_lost_is_sent_again_once(
        redis_cluster: Cluster, tmp_path: Path) -> None:
    """Redis restarted without persistence: the queue is empty, the row says queued. Only
    rows older than the threshold in an empty queue are sent again; a worker runs it."""
    c = redis_cluster
    old_sha, new_sha = c.ingest(text_samples(tmp_path / "lost", 2))
    old = lost_job(c, old_sha, ago=2 * HOUR)
    young = lost_job(c, new_sha, ago=60)
    with c.center.catalog.transaction() as conn:
        conn.execute(update(JOB).where(JOB.c.id.in_([old, young]))
                     .values(state="queued", started=None, attempts=0, worker=None))
    assert resend_lost_queued(c.center, HOUR) == [old]
    # the message is waiting now: the queue is not empty, nothing is sent twice
    assert resend_lost_queued(c.center, HOUR) == []
    c.start_worker("w1")
    c.wait(lambda: c.job_counts().get("done", 0) == 1, 60, "the resent job done")
    assert report_count(c, old_sha) == 1 and report_count(c, new_sha) == 0
    assert {j["id"]: j["state"] for j in c.jobs()} == {old: "done", young: "queued"}
