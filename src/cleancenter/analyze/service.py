"""Running analyses for the center: pick the samples, fan out, store the reports.

`analyze_sample` is the task: plain arguments in, plain data out, so it runs the same in
this process, in a process pool (the default: one worker per core) and, later, on remote
workers. A task that hangs or eats memory is stopped by its own limits (an alarm and an
address-space limit set in the worker) and recorded as that sample's error; a worker that
dies takes only its sample with it.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import resource
import signal
from collections.abc import Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, update

from cleancenter.analyze.pipeline import Outcome, StaticAnalyzer
from cleancenter.analyze.report import ANALYZER_VERSION, Report
from cleancenter.analyze.similarity import family_by_neighbour
from cleancenter.collect.filetype import HEAD_SIZE, sniff
from cleancenter.store.blobs import BlobError, BlobStore
from cleancenter.store.catalog import SAMPLE, SAMPLE_NAME, Catalog, NewSample, utcnow
from cleancenter.store.models import AnalysisReport, AnalystLabel, Ioc, SampleIoc

REPORT = cast(Table, AnalysisReport.__table__)
IOC = cast(Table, Ioc.__table__)
SAMPLE_IOC = cast(Table, SampleIoc.__table__)
LABEL = cast(Table, AnalystLabel.__table__)

DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY = 2 << 30
IN_PROCESS_BELOW = 4  # fewer samples than this are not worth starting a pool


class TaskTimeout(BaseException):
    """The per-sample alarm went off. A BaseException, like KeyboardInterrupt: the
    extractors' own ``except Exception`` guards must not swallow it and carry on."""


@dataclass
class TaskResult:
    sha256: str
    report_json: str | None = None
    children: list[tuple[bytes, str, str | None]] = field(default_factory=list)
    error: str | None = None


# -- the task -----------------------------------------------------------------------------
_worker_analyzer: StaticAnalyzer | None = None


def init_worker(make_scanner: Any, workdir: str, memory_limit: int) -> None:
    """Per worker process: its limits, its scanner (from the compiled-rules cache)."""
    global _worker_analyzer
    if memory_limit:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    scanner = make_scanner() if make_scanner is not None else None
    _worker_analyzer = StaticAnalyzer(scanner=scanner, workdir=Path(workdir))


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise TaskTimeout


def analyze_sample(sha256: str, path: str, name: str | None, timeout: float) -> TaskResult:
    """The task: read one blob, run the pipeline under a time limit, return plain data."""
    analyzer = _worker_analyzer or StaticAnalyzer()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        data = Path(path).read_bytes()
        outcome: Outcome = analyzer.analyze(data, name=name, sha256=sha256)
        return TaskResult(
            sha256=sha256, report_json=outcome.report.model_dump_json(),
            children=[(c.data, c.relation, c.name) for c in outcome.children],
        )
    except TaskTimeout:
        return TaskResult(sha256=sha256, error=f"analysis took longer than {timeout:.0f} s")
    except MemoryError:
        return TaskResult(sha256=sha256, error="analysis ran out of its memory limit")
    except Exception as exc:
        return TaskResult(sha256=sha256, error=f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the service --------------------------------------------------------------------------
@dataclass
class AnalyzeSummary:
    requested: int = 0
    analyzed: int = 0
    skipped: int = 0  # a report of this analyzer version existed already
    failed: int = 0
    children: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("requested", "analyzed", "skipped", "failed",
                                              "children", "verdicts", "errors")}


class AnalysisService:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        workdir: Path,
        *,
        make_scanner: Any = None,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        memory_limit: int = DEFAULT_MEMORY,
        progress: Any = None,
    ) -> None:
        self.catalog = catalog
        self.blobs = blobs
        self.workdir = workdir
        self.make_scanner = make_scanner
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.progress = progress

    def pending(self, sha256s: Iterable[str] | None = None, *, since: datetime | None = None
                ) -> list[str]:
        """Samples without a report of this analyzer version (all, or among ``sha256s``)."""
        done = select(REPORT.c.sha256).where(REPORT.c.analyzer_version == ANALYZER_VERSION)
        query = select(SAMPLE.c.sha256).where(SAMPLE.c.sha256.not_in(done))
        if since is not None:
            query = query.where(SAMPLE.c.first_seen >= since)
        with self.catalog.engine.connect() as conn:
            todo = list(conn.execute(query.order_by(SAMPLE.c.first_seen)).scalars())
        if sha256s is not None:
            wanted = set(sha256s)
            todo = [s for s in todo if s in wanted]
        return todo

    def run(self, sha256s: Sequence[str]) -> AnalyzeSummary:
        summary = AnalyzeSummary(requested=len(sha256s))
        queue = list(dict.fromkeys(sha256s))
        while queue:
            batch, queue = queue, []
            for result in self._execute(batch):
                children = self._store(result, summary)
                queue.extend(children)
        return summary

    def _execute(self, sha256s: list[str]) -> Iterable[TaskResult]:
        jobs = []
        for sha in sha256s:
            try:  # with an S3 store this fetches the blob: a failure is this sample's
                jobs.append((sha, str(self.blobs.readable_path(sha)), self._name(sha)))
            except BlobError as exc:
                yield TaskResult(sha256=sha, error=str(exc))
        if self.progress is not None:
            self.progress.start("analyzing", len(jobs))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if len(jobs) < IN_PROCESS_BELOW or self.workers == 1:
            init_worker(self.make_scanner, str(self.workdir), 0)
            for sha, path, name in jobs:
                yield analyze_sample(sha, path, name, self.timeout)
                self._advance()
            return
        pending = list(jobs)
        try:
            yield from self._pool(pending, self.workers)
        except BrokenProcessPool:
            # a worker died (a crash, or the kernel's OOM killer): find which sample did
            # it by running each unfinished one alone
            for job in list(pending):
                try:
                    yield from self._pool([job], 1)
                except BrokenProcessPool:
                    yield TaskResult(sha256=job[0], error="the analysis worker died on this "
                                     "sample (crash or killed)")
                    self._advance()

    def _pool(self, pending: list[tuple[str, str, str | None]], workers: int
              ) -> Iterable[TaskResult]:
        """Run ``pending`` in a pool; finished jobs are removed from it as they come."""
        # forkserver, not fork: yara-x's timeout thread does not survive a fork, and a
        # fresh interpreter per worker also keeps the parent's connections out of it
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, initializer=init_worker,
            mp_context=multiprocessing.get_context("forkserver"),
            initargs=(self.make_scanner, str(self.workdir), self.memory_limit),
        ) as pool:
            futures = {pool.submit(analyze_sample, *job, self.timeout): job for job in pending}
            for future in concurrent.futures.as_completed(futures):
                result = future.result()  # BrokenProcessPool propagates to the caller
                pending.remove(futures[future])
                yield result
                self._advance()

    def store(self, result: TaskResult) -> tuple[AnalyzeSummary, list[str]]:
        """Write one task's result as `run` does (for tasks run elsewhere, e.g. by Celery
        workers): the summary of this one result, and the sha256 of new children."""
        summary = AnalyzeSummary(requested=1)
        children = self._store(result, summary)
        return summary, children

    def _advance(self) -> None:
        if self.progress is not None:
            self.progress.advance()

    def _name(self, sha256: str) -> str | None:
        with self.catalog.engine.connect() as conn:
            return conn.execute(
                select(SAMPLE_NAME.c.name).where(SAMPLE_NAME.c.sha256 == sha256)
                .order_by(SAMPLE_NAME.c.id).limit(1)
            ).scalar_one_or_none()

    def _store(self, result: TaskResult, summary: AnalyzeSummary) -> list[str]:
        """Write one result; returns the sha256 of new children to analyze next."""
        if result.error is not None or result.report_json is None:
            summary.failed += 1
            summary.errors.append({"sha256": result.sha256, "message": result.error or "?"})
            with self.catalog.transaction() as conn:
                conn.execute(update(SAMPLE).where(SAMPLE.c.sha256 == result.sha256)
                             .values(analysis_state="error"))
                self.catalog.record_error(conn, "analyze", result.sha256, result.error or "?")
            return []
        report = Report.model_validate_json(result.report_json)
        summary.analyzed += 1
        summary.verdicts[report.verdict.value] = summary.verdicts.get(report.verdict.value,
                                                                      0) + 1
        new_children: list[str] = []
        self.blobs.begin_batch()
        try:
            stored = [(self.blobs.put_bytes(data), relation, name)
                      for data, relation, name in result.children]
            self.blobs.publish()
        finally:
            self.blobs.abort_batch()
            self.blobs.end_batch()
        report.unpacked = [digests.sha256 for digests, _, _ in stored]
        changed = bool(stored)
        if report.family is None and report.hashes.tlsh:
            with self.catalog.engine.connect() as conn:
                report.family = family_by_neighbour(conn, report.hashes.tlsh, report.sha256)
            changed = changed or report.family is not None
        body = report.model_dump_json() if changed else result.report_json
        with self.catalog.transaction() as conn:
            inserted = self._insert_report(conn, report, body)
            if not inserted:
                summary.analyzed -= 1
                summary.skipped += 1
                return []
            for digests, relation, name in stored:
                with self.blobs.open(digests.sha256) as fh:
                    file_type = sniff(fh.read(HEAD_SIZE))
                if self.catalog.add_samples(conn, [NewSample(
                        digests.sha256, digests.md5, digests.sha1, digests.size, file_type,
                        utcnow(), (name,) if name else (), ("unpacked",))]):
                    new_children.append(digests.sha256)
                self.catalog.add_relations(conn, [(report.sha256, digests.sha256, relation)])
            self._store_iocs(conn, report)
        summary.children += len(new_children)
        return new_children

    def _insert_report(self, conn: Connection, report: Report, body: str) -> bool:
        exists = conn.execute(select(func.count()).select_from(REPORT).where(
            REPORT.c.sha256 == report.sha256,
            REPORT.c.analyzer_version == report.analyzer_version)).scalar_one()
        if exists:
            return False
        conn.execute(REPORT.insert().values(
            sha256=report.sha256, analyzer_version=report.analyzer_version,
            created=report.created, kind=report.identity.kind, verdict=report.verdict.value,
            family=report.family.name if report.family else None,
            packer=report.packer.name, duration_ms=report.timings_ms.get("total", 0.0),
            error_count=len(report.errors), body=body,
        ))
        verdict: str | None = report.verdict.value
        family = report.family.name if report.family else None
        label = latest_label(conn, report.sha256)
        if label is not None:  # the analyst's word wins over the automatic one
            verdict = label.verdict or verdict
            family = label.family or family
        conn.execute(update(SAMPLE).where(SAMPLE.c.sha256 == report.sha256).values(
            analysis_state="done", ssdeep=report.hashes.ssdeep, tlsh=report.hashes.tlsh,
            imphash=report.hashes.imphash, verdict=verdict, family=family,
        ))
        return True

    def _store_iocs(self, conn: Connection, report: Report) -> None:
        if not report.iocs:
            return
        pairs = {(i.type, i.value[:2048]): i.offset for i in report.iocs}
        conn.execute(self.catalog._insert_ignore(IOC, ["type", "value"]),
                     [{"type": t, "value": v} for t, v in pairs])
        ids = dict(((t, v), i) for i, t, v in conn.execute(
            select(IOC.c.id, IOC.c.type, IOC.c.value).where(
                IOC.c.value.in_([v for _, v in pairs]))))
        rows = [{"sha256": report.sha256, "ioc_id": ids[key], "offset": offset}
                for key, offset in pairs.items() if key in ids]
        if rows:
            conn.execute(self.catalog._insert_ignore(SAMPLE_IOC, ["sha256", "ioc_id"]), rows)


@dataclass(frozen=True)
class Label:
    verdict: str | None
    family: str | None
    note: str | None
    author: str
    created: datetime


def latest_label(conn: Connection, sha256: str) -> Label | None:
    row = conn.execute(
        select(LABEL.c.verdict, LABEL.c.family, LABEL.c.note, LABEL.c.author, LABEL.c.created)
        .where(LABEL.c.sha256 == sha256).order_by(LABEL.c.id.desc()).limit(1)
    ).first()
    return Label(*row) if row else None


def set_label(catalog: Catalog, sha256: str, *, verdict: str | None, family: str | None,
              note: str | None, author: str) -> Label:
    """Record an analyst's verdict/family (kept with who and when) and apply it."""
    now = utcnow()
    with catalog.transaction() as conn:
        previous = latest_label(conn, sha256)
        verdict = verdict or (previous.verdict if previous else None)
        family = family or (previous.family if previous else None)
        conn.execute(LABEL.insert().values(sha256=sha256, verdict=verdict, family=family,
                                           note=note, author=author, created=now))
        values: dict[str, Any] = {}
        if verdict:
            values["verdict"] = verdict
        if family:
            values["family"] = family
        if values:
            conn.execute(update(SAMPLE).where(SAMPLE.c.sha256 == sha256).values(**values))
    return Label(verdict, family, note, author, now)


def report_for(catalog: Catalog, sha256: str) -> Report | None:
    """The newest report of a sample (this analyzer version first)."""
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(REPORT.c.analyzer_version, REPORT.c.body)
                            .where(REPORT.c.sha256 == sha256)
                            .order_by(REPORT.c.created.desc())).all()
    if not rows:
        return None
    best = next((r for r in rows if r.analyzer_version == ANALYZER_VERSION), rows[0])
    return Report.model_validate(json.loads(best.body))

