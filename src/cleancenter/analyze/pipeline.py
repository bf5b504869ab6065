"""One sample in, one report out: the static pipeline, with no database in sight.

Each stage runs under `_Stages.run`, which times it and turns any exception into a
`StageError` in the report, so a parser that chokes on one hostile file costs that stage,
not the sample and not the batch. Extractors (identify, pe/elf, hashes, strings, iocs,
yara) come first; conclusions (packer, family, verdict) are drawn from what they found.
The same function serves the in-process pool and, later, remote workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from cleancenter.analyze import family as family_rules
from cleancenter.analyze import verdict as verdict_rules
from cleancenter.analyze.configs import extract_configs
from cleancenter.analyze.elf import ELFError, parse_elf
from cleancenter.analyze.hashes import compute_hashes
from cleancenter.analyze.identify import identify
from cleancenter.analyze.iocs import find_iocs
from cleancenter.analyze.packers import detect_elf_packer, detect_pe_packer
from cleancenter.analyze.pe import PEError, imphash, parse_pe
from cleancenter.analyze.report import (
    ELFInfo,
    PEInfo,
    Report,
    StageError,
    YaraMatch,
)
from cleancenter.analyze.strings import scan_strings
from cleancenter.analyze.unpack import looks_like_upx, unpack_upx
from cleancenter.analyze.yara_rules import thor_filetype

T = TypeVar("T")


class Scanner(Protocol):
    """What the pipeline needs of a YARA rule set (see `yara_rules`)."""

    def scan(self, data: bytes, *, filename: str | None = None, filepath: str | None = None,
             filetype: str = "", owner: str = "") -> list[YaraMatch]: ...


@dataclass
class Child:
    """A file the analysis produced (an unpacked body), to be stored and analyzed in turn."""

    data: bytes
    relation: str  # "unpacked"
    name: str | None = None


@dataclass
class Outcome:
    report: Report
    children: list[Child] = field(default_factory=list)


class _Stages:
    def __init__(self, report_errors: list[StageError], timings: dict[str, float]) -> None:
        self.errors = report_errors
        self.timings = timings

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(
                self.timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000, 3)

    def run(self, stage: str, fn: Callable[[], T]) -> T | None:
        with self.timed(stage):
            try:
                return fn()
            except (PEError, ELFError) as exc:
                self.errors.append(StageError(stage=stage, message=str(exc)))
            except Exception as exc:  # a hostile file must cost one stage, not the run
                self.errors.append(StageError(
                    stage=stage, message=f"{type(exc).__name__}: {exc}"[:1000]))
        return None


@dataclass
class StaticAnalyzer:
    """Settings of the pipeline; `analyze` is pure apart from the unpacker's temp files."""

    scanner: Scanner | None = None
    workdir: Path | None = None  # where the unpacker may write (inside the data dir)
    unpack: bool = True
    min_string: int = 4

    def analyze(self, data: bytes, *, name: str | None = None,
                sha256: str | None = None) -> Outcome:
        errors: list[StageError] = []
        timings: dict[str, float] = {}
        stages = _Stages(errors, timings)
        started = time.perf_counter()

        with stages.timed("identify"):
            identity = identify(data)
        pe: PEInfo | None = None
        elf: ELFInfo | None = None
        if identity.kind == "pe":
            pe = stages.run("pe", lambda: parse_pe(data))
        elif identity.kind == "elf":
            elf = stages.run("elf", lambda: parse_elf(data))
        imp = stages.run("imphash", lambda: imphash(pe)) if pe is not None else None
        with stages.timed("hashes"):
            hashes = compute_hashes(data, imp)
        report = Report(
            sha256=sha256 or hashes.sha256, created=datetime.now(UTC), identity=identity,
            hashes=hashes, pe=pe, elf=elf, errors=errors, timings_ms=timings,
        )
        table = stages.run("strings", lambda: scan_strings(data, self.min_string))
        if table is not None:
            report.strings = table.summary()
            report.iocs = stages.run("iocs", lambda: find_iocs(table)) or []
        if self.scanner is not None:
            scanner = self.scanner
            filetype = thor_filetype(identity.kind, identity.subtype)  # signature-base's words
            report.yara = stages.run("yara", lambda: scanner.scan(
                data, filename=name, filepath=name, filetype=filetype)) or []
        # our own trigger rules run even with no packs registered
        report.configs = stages.run("configs", lambda: extract_configs(
            data, yara=report.yara, kind=identity.kind)) or []

        children: list[Child] = []
        with stages.timed("packer"):
            if pe is not None:
                report.packer = detect_pe_packer(pe, data)
            elif elf is not None:
                report.packer = detect_elf_packer(elf, data, looks_like_upx(data))
        if self.unpack and report.packer.name == "UPX" and self.workdir is not None:
            workdir = self.workdir
            result = stages.run("unpack", lambda: unpack_upx(data, workdir=workdir))
            if result is not None:
                if result.ok and result.data:
                    children.append(Child(result.data, "unpacked",
                                          f"{name}.unpacked" if name else None))
                    report.packer.evidence.append("unpacked with upx -d" + (
                        f" after repairing {', '.join(result.repaired)}"
                        if result.repaired else ""))
                else:
                    errors.append(StageError(stage="unpack", message=result.message))

        with stages.timed("conclude"):
            report.family = (family_rules.family_from_rules(report.yara)
                             or family_rules.family_from_configs(report.configs))
            report.verdict = verdict_rules.decide(report)
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        # the model copied these when it was made; hand it the final ones
        report.errors = errors
        report.timings_ms = timings
        return Outcome(report, children)
