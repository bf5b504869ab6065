"""`store verify`: does every blob still hash to its name, and do blobs and catalog agree?"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from cleancenter.store.blobs import BlobProblem, BlobStore
from cleancenter.store.catalog import SAMPLE, Catalog


@dataclass
class VerifyReport:
    blobs_checked: int = 0
    samples_in_catalog: int = 0
    problems: list[BlobProblem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # catalog rows whose blob is gone

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blobs_checked": self.blobs_checked,
            "samples_in_catalog": self.samples_in_catalog,
            "problems": [{**asdict(p), "path": str(p.path)} for p in self.problems],
            "missing": self.missing,
        }


def verify_store(
    blobs: BlobStore, catalog: Catalog, advance: Callable[[], None] | None = None
) -> VerifyReport:
    report = VerifyReport()
    with catalog.engine.connect() as conn:
        known = set(conn.execute(select(SAMPLE.c.sha256)).scalars())
    report.samples_in_catalog = len(known)
    seen: set[str] = set()
    for name, problems in blobs.audit():
        report.blobs_checked += 1
        report.problems.extend(problems)
        if name is not None:
            seen.add(name)
            if name not in known:
                where = blobs.location(name)
                report.problems.append(
                    BlobProblem("orphan", where, "blob has no catalog row (interrupted ingest?)")
                )
        if advance:
            advance()
    report.missing = sorted(known - seen)
    return report
