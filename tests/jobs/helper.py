"""Helpers of the worker tests: brokers, harmless samples, worker subprocesses.

Every test gets queues of its own (a unique ``job_queue_prefix``), a fresh PostgreSQL
schema and its own data dir, so parallel runs and leftovers of killed runs never meet.
Workers are started in sessions of their own and stopped by their process group id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from kombu.connection import Connection
from sqlalchemy import Table, func, select

from cleancenter.analyze.report import ANALYZER_VERSION
from cleancenter.analyze.service import REPORT, SAMPLE_IOC
from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor
from cleancenter.config import Settings, load_settings
from cleancenter.demo import eicar
from cleancenter.jobs.app import QUEUES, is_redis
from cleancenter.store.blobs import digest_bytes
from cleancenter.store.models import Job
from tests.conftest import IN_CI, REPO

JOB = cast(Table, Job.__table__)
BROKERS = {
    "redis": os.environ.get("CLEANCENTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("CLEANCENTER_TEST_AMQP_URL",
                               "amqp://guest:guest@127.0.0.1:5672//"),
}
VISIBILITY = "4"  # Redis gives a dead worker's task to another after this many seconds


def broker_problem(url: str) -> str | None:
    try:
        with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        return f"broker {url} unreachable: {exc}"
    return None


def require_broker(url: str) -> None:
    problem = broker_problem(url)
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)


def cleanup_broker(url: str, prefix: str) -> None:
    """Drop this test's queues and exchange (and everything waiting in them)."""
    names = [prefix + q for q in QUEUES]
    with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
        if is_redis(url):
            client = conn.default_channel.client
            client.delete(*names, f"_kombu.binding.{prefix}jobs",
                          f"_kombu.binding_permanent.{prefix}jobs")
            return
        for name in names:
            channel = conn.channel()
            with contextlib.suppress(*conn.channel_errors):
                channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.close()
        channel = conn.channel()
        with contextlib.suppress(*conn.channel_errors):
            channel.exchange_delete(prefix + "jobs")
        with contextlib.suppress(Exception):
            channel.close()


# -- harmless samples ---------------------------------------------------------------------
def text_samples(folder: Path, n: int, tag: str = "") -> list[Path]:
    """``n`` tiny text files, each unique, sharing a few IOCs (so IOC rows are contended)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"note-{tag}{i:04d}.txt"
        path.write_text(f"harmless test note {tag}{i} {uuid.uuid4().hex}\n"
                        f"see http://updates{i % 7}.example.net/pkg{i % 3}.tar and "
                        f"irc.example{i % 5}.org port 6667\n")
        paths.append(path)
    return paths


def mixed_samples(folder: Path, n_text: int) -> list[Path]:
    """Text notes, EICAR, and two small system ELF files with a byte appended."""
    paths = text_samples(folder, n_text)
    (folder / "eicar.com").write_bytes(eicar())
    paths.append(folder / "eicar.com")
    for name in ("true", "false"):
        source = Path(shutil.which(name) or f"/usr/bin/{name}").resolve()
        copy = folder / f"{name}.elf"
        copy.write_bytes(source.read_bytes() + b"\x00")
        paths.append(copy)
    return paths


RULES = """
rule EICAR_Test_File_Job { strings: $a = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE" condition: $a }
rule SUSP_Test_Note_IRC { strings: $a = "irc.example3.org" condition: $a }
"""


def add_rules(center: Center, folder: Path) -> None:
    """A small YARA pack (EICAR malicious, one note in five suspicious), registered in the
    center's data dir as `cleancenter rules add` does."""
    from cleancenter.analyze.cli import rules_dirs
    from cleancenter.analyze.yara_rules import add_pack, load_pack

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.yar").write_text(RULES)
    registry, cache = rules_dirs(center)
    add_pack(registry, "jobtest", folder)
    assert load_pack("jobtest", folder, cache).rule_count == 2


def sha256_of(path: Path) -> str:
    return digest_bytes(path.read_bytes()).sha256


# -- a center, its broker queues and its workers -----------------------------------------
@dataclass
class Cluster:
    tmp: Path
    database_url: str
    broker_url: str
    prefix: str = field(default_factory=lambda: f"cctest-{uuid.uuid4().hex[:10]}.")
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.tmp / "cluster-data"
        self.settings: Settings = load_settings(environ=self.env())
        self.center = Center(self.settings)

    def env(self) -> dict[str, str]:
        return {"CLEANCENTER_DATA_DIR": str(self.data_dir),
                "CLEANCENTER_DATABASE_URL": self.database_url,
                "CLEANCENTER_BROKER_URL": self.broker_url,
                "CLEANCENTER_JOB_QUEUE_PREFIX": self.prefix,
                "CLEANCENTER_BROKER_VISIBILITY_TIMEOUT": VISIBILITY}

    def ingest(self, paths: list[Path]) -> list[str]:
        report = Ingestor(self.center.catalog, self.center.blobs).ingest_paths(paths)
        assert report.error_count == 0
        return [sha256_of(p) for p in paths]

    def start_worker(self, name: str, *, helper: bool = False, concurrency: int = 1,
                     extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``cleancenter worker`` in a subprocess (``helper``: through the test-only entry
        point that can slow tasks down)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANCENTER_")}
        env.update(self.env())
        env.update(extra_env or {})
        env["PYTHONUNBUFFERED"] = "1"
        entry = ["-m", "tests.jobs.slow_worker"] if helper else ["-m", "cleancenter"]
        log = (self.tmp / f"worker-{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *entry, "worker", "--pool", "prefork", "--concurrency",
             str(concurrency), "--hostname", f"{name}@{self.prefix}test", "--loglevel",
             os.environ.get("CCTEST_WORKER_LOGLEVEL", "warning"), "--timeout", "60"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Signal the worker and its pool processes (its own process group) by id."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(proc, signal.SIGKILL)
                proc.wait(timeout=10)
            # the pool processes of a worker killed by SIGKILL are in its group too
            self.kill(proc, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.tmp.glob("worker-*.log")))

    def close(self) -> None:
        self.stop_workers()
        cleanup_broker(self.broker_url, self.prefix)
        self.center.close()

    # -- what the catalog says --------------------------------------------------------
    def job_counts(self) -> dict[str, int]:
        with self.center.catalog.engine.connect() as conn:
            return dict(conn.execute(select(JOB.c.state, func.count()).group_by(JOB.c.state))
                        .all())

    def jobs(self) -> list[dict[str, Any]]:
        with self.center.catalog.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(JOB).order_by(JOB.c.id)).mappings()]

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for proc in self.workers:
                if proc.poll() not in (None, -signal.SIGKILL):
                    raise AssertionError(f"a worker exited ({proc.returncode}):\n{self.logs()}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; jobs {self.job_counts()}\n"
                             f"{self.logs()}")

    def wait_finished(self, n: int, timeout: float) -> None:
        def finished() -> bool:
            counts = self.job_counts()
            return counts.get("done", 0) + counts.get("failed", 0) >= n
        self.wait(finished, timeout, f"{n} finished jobs")

    def reports(self) -> Verdicts:
        return reports_of(self.center)

    def sample_iocs(self) -> list[tuple[str, int]]:
        with self.center.catalog.engine.connect() as conn:
            return sorted(conn.execute(select(SAMPLE_IOC.c.sha256, SAMPLE_IOC.c.ioc_id))
                          .all())


Verdicts = dict[str, tuple[str, str | None, str]]


def reports_of(center: Center) -> Verdicts:
    """sha256 -> (verdict, family, kind) of this analyzer version's reports; asserts that
    no sample has two."""
    with center.catalog.engine.connect() as conn:
        rows = conn.execute(select(REPORT.c.sha256, REPORT.c.verdict, REPORT.c.family,
                                   REPORT.c.kind)
                            .where(REPORT.c.analyzer_version == ANALYZER_VERSION)).all()
    found: Verdicts = {}
    for sha, verdict, family, kind in rows:
        assert sha not in found, f"two reports of {sha}"
        found[sha] = (verdict, family, kind)
    return found


def in_process_reports(center: Center, paths: list[Path]) -> Verdicts:
    """The same samples analysed by the in-process path, for comparison."""
    from cleancenter.analyze.cli import run_analysis

    Ingestor(center.catalog, center.blobs).ingest_paths(paths)
    summary = run_analysis(center, None, all_pending=True, workers=1)
    assert summary.failed == 0
    return reports_of(center)


@contextlib.contextmanager
def cluster(tmp: Path, database_url: str, broker_url: str) -> Iterator[Cluster]:
    require_broker(broker_url)
    c = Cluster(tmp, database_url, broker_url)
    cleanup_broker(broker_url, c.prefix)
    try:
        yield c
    finally:
        c.close()
