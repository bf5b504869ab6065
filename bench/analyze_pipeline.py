"""Benchmark: the whole static pipeline on the benign corpus, against a naive pipeline and
the bare library calls, measured in the same run.

Corpus: ``scripts/fetch-material`` (Debian libwine PE, pywin32/psutil wheel PE, ClamAV's
clam.exe packed ten ways, busybox for 9 CPUs, UPX-packed benign programs) plus about 300 ELF
files of this machine (/usr/bin and /usr/lib/x86_64-linux-gnu/*.so*, at most 32 MiB each).
Rules: the three community packs of the shared corpus (ReversingLabs, Elastic,
signature-base), compiled once into a cache folder before anything is timed. Unpacking is
excluded (``unpack=False``): nothing here runs ``upx``, and no sample is ever executed.

Measured, single process, file by file, the three in a rotating order so that drifting
load on a shared machine hits all of them alike:

1. our pipeline: one read, then ``StaticAnalyzer(scanner=rules, unpack=False).analyze``;
   samples/s, CPU and wall time, and each stage's share (``report.timings_ms`` summed per
   stage over the corpus, divided by the summed ``total``);
2. a naive pipeline: one read, ``lief.parse``, md5/sha1/sha256, ``ssdeep.hash``,
   ``tlsh.hash``, a yara-x scan per pack, ``re`` ASCII + UTF-16LE strings (4+), in sequence;
3. the bare library calls the pipeline makes, each timed alone on the same bytes: parse
   (``lief.parse``), hashes (the five above), YARA (one yara-x scanner per pack), strings
   (the two ``re.findall``); their sum is the floor the pipeline is held to (goal: pipeline
   within 1.2x of it). Also timed, for the reading only: LIEF with the pipeline's own
   ``ParserConfig``, and one yara-x scan with the three packs compiled into one ``Rules``.

Then on 2 cores: a ``ProcessPoolExecutor(2, mp_context=forkserver)`` running the service's
own task, ``service.init_worker`` + ``service.analyze_sample`` (read the file, analyze
under the alarm and memory limit, serialize the report to JSON) with the scanner rebuilt in
each worker from the parent's cache files (``RuleSet.from_refs``), as ``AnalysisService``
does; only the catalog writes are left out. Workers are started and initialized before the
clock starts (their start-up is reported apart).

    nice .venv/bin/python bench/analyze_pipeline.py [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import functools
import hashlib
import importlib.metadata as metadata
import json
import multiprocessing
import os
import pstats
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lief
import ssdeep
import tlsh
import yara_x

from cleancenter.analyze import elf as elf_module
from cleancenter.analyze import pe as pe_module
from cleancenter.analyze import service
from cleancenter.analyze.pipeline import StaticAnalyzer
from cleancenter.analyze.yara_rules import (
    COMPILE_OPTIONS,
    EXTERNALS,
    RulePack,
    RuleSet,
    load_pack,
    rule_files,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.material import (
    busybox_elfs,
    clamav_packed,
    ensure_material,
    libwine_pe,
    upx_packed,
    wheel_pe,
)

from common import corpus, machine, spread, system_elfs

PACKS = ("reversinglabs", "elastic", "signature-base")
ASCII = re.compile(rb"[\x20-\x7e]{4,}")
UTF16 = re.compile(rb"(?:[\x20-\x7e]\x00){4,}")
SYSTEM_ELFS = 300
TASK_TIMEOUT = service.DEFAULT_TIMEOUT
GOAL_RATE_2_CORES = 80.0
GOAL_RATIO_TO_BARE = 1.2
# the stages of `StaticAnalyzer.analyze`, grouped as the table shows them
STAGE_ROWS: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("identify (headers + libmagic)", ("identify",), None),
    ("parse (pe/elf + imphash)", ("pe", "elf", "imphash"), "parse"),
    ("hashes", ("hashes",), "hashes"),
    ("strings", ("strings",), "strings"),
    ("iocs", ("iocs",), None),
    ("yara", ("yara",), "yara"),
    ("packer", ("packer",), None),
    ("conclude (family, verdict)", ("conclude",), None),
)
BARE = ("parse", "hashes", "yara", "strings")
BARE_LABELS = {
    "parse": "`lief.parse`",
    "hashes": "md5+sha1+sha256+ssdeep+tlsh",
    "yara": "yara-x, 3 scanners",
    "strings": "`re` ASCII+UTF-16LE",
}
DISTRIBUTIONS = ("lief", "yara-x", "ssdeep", "py-tlsh", "python-magic", "pefile", "pyelftools")


@dataclass
class Sample:
    """One corpus file: where it came from and its format, size and sha256."""

    path: Path
    group: str
    kind: str  # "pe" or "elf"
    size: int
    sha256: str


@dataclass
class Clock:
    """Wall and CPU seconds summed over the files."""

    wall: float = 0.0
    cpu: float = 0.0

    def add(self, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn()
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu

    def to_dict(self) -> dict[str, float]:
        return {"wall_s": self.wall, "cpu_s": self.cpu}


@dataclass
class Measures:
    """Everything the single-process phase gathers."""

    pipeline_read: Clock = field(default_factory=Clock)
    pipeline_analyze: Clock = field(default_factory=Clock)
    pipeline_json: Clock = field(default_factory=Clock)  # the service's worker does this too
    stages_ms: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    stage_errors: Counter[str] = field(default_factory=Counter)
    naive: Clock = field(default_factory=Clock)
    naive_failures: list[str] = field(default_factory=list)
    bare_read: Clock = field(default_factory=Clock)
    bare: dict[str, Clock] = field(default_factory=dict)
    bare_failures: list[str] = field(default_factory=list)
    yara_matches: Counter[str] = field(default_factory=Counter)  # 3 scanners vs one Rules
    groups: dict[str, defaultdict[str, float]] = field(default_factory=dict)  # ms per group

    def bare_clock(self, name: str) -> Clock:
        return self.bare.setdefault(name, Clock())

    def group(self, sample: Sample, measure: str, seconds: float) -> None:
        self.groups.setdefault(sample.group, defaultdict(float))[measure] += seconds * 1000


# ---------------------------------------------------------------- corpus


def build_corpus(limit: int | None) -> list[Sample]:
    """Every group of the material, each capped at ``limit`` files for a quick run."""
    ensure_material()
    clam = clamav_packed()
    busybox = busybox_elfs()
    upx = sorted(upx_packed().values())
    groups: list[tuple[str, str, list[Path]]] = [
        ("libwine", "pe", libwine_pe()),
        ("wheels", "pe", wheel_pe()),
        ("clamav", "pe", [clam[k] for k in sorted(clam)]),
        ("upx-pe", "pe", [p for p in upx if "/pe/" in p.as_posix()]),
        ("upx-elf", "elf", [p for p in upx if "/elf/" in p.as_posix()]),
        ("busybox", "elf", [busybox[k] for k in sorted(busybox)]),
        ("system-elf", "elf", system_elfs(SYSTEM_ELFS)),
    ]
    samples: list[Sample] = []
    for group, kind, paths in groups:
        for p in spread(paths, limit) if limit else paths:
            data = p.read_bytes()  # also brings every file into the page cache
            samples.append(Sample(p, group, kind, len(data), hashlib.sha256(data).hexdigest()))
    return samples


# ---------------------------------------------------------------- rules


def load_rules(cache_dir: Path) -> tuple[RuleSet, list[dict[str, Any]]]:
    """The three community packs, compiled into (or loaded from) ``cache_dir``."""
    root = corpus() / "yara"
    packs: list[RulePack] = []
    for name in PACKS:
        if not (root / name).is_dir():
            raise SystemExit(f"no rule pack {root / name}: set CLEANCENTER_CORPUS")
        packs.append(load_pack(name, root / name, cache_dir))
    info = [{"pack": p.name, "files": p.file_count, "rules": p.rule_count,
             "broken_files": len(p.broken), "from_cache": p.from_cache,
             "load_s": round(p.load_seconds, 2)} for p in packs]
    return RuleSet(packs), info


def merged_rules(packs: list[RulePack]) -> yara_x.Rules:
    """The three packs compiled into one ``Rules`` (a namespace per pack and file, the same
    options and externals, the same broken files left out): one scan instead of three."""
    compiler = yara_x.Compiler(**COMPILE_OPTIONS)
    for name in EXTERNALS:
        compiler.define_global(name, "")
    for pack in packs:
        broken = {b.file for b in pack.broken}
        for path in rule_files(pack.folder):
            rel = path.relative_to(pack.folder).as_posix()
            if rel in broken:
                continue
            compiler.new_namespace(f"{pack.name}/{rel}")
            compiler.add_source(path.read_bytes().decode("utf-8-sig"), origin=rel)
    return compiler.build()


# ---------------------------------------------------------------- the three single-process runs


def hashes(data: bytes) -> tuple[str, ...]:
    return (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
            hashlib.sha256(data).hexdigest(), str(ssdeep.hash(data)), str(tlsh.hash(data)))


def strings(data: bytes) -> tuple[int, int]:
    return len(ASCII.findall(data)), len(UTF16.findall(data))


def scan_all(scanners: list[yara_x.Scanner], data: bytes) -> int:
    return sum(len(s.scan(data).matching_rules) for s in scanners)


def lief_pipeline_config(kind: str, data: bytes) -> Any:
    """LIEF as the pipeline calls it: its own ``ParserConfig`` (fewer parts parsed)."""
    if kind == "pe":
        return lief.PE.parse(data, pe_module._lief_config())
    return lief.ELF.parse(data, elf_module._lief_config())


class SingleProcess:
    """Our pipeline, the naive one and the bare calls, file by file, in this process."""

    def __init__(self, rules: RuleSet, merged: yara_x.Rules | None) -> None:
        self.analyzer = StaticAnalyzer(scanner=rules, unpack=False)
        self.scanners = [yara_x.Scanner(p.rules) for p in rules.packs]
        self.merged = yara_x.Scanner(merged) if merged is not None else None
        self.m = Measures()

    def pipeline(self, s: Sample) -> None:
        m = self.m
        data: bytes = m.pipeline_read.add(s.path.read_bytes)
        start = m.pipeline_analyze.wall
        outcome = m.pipeline_analyze.add(lambda: self.analyzer.analyze(data, name=s.path.name))
        m.group(s, "pipeline", m.pipeline_analyze.wall - start)
        m.pipeline_json.add(outcome.report.model_dump_json)
        report = outcome.report
        for stage, ms in report.timings_ms.items():
            m.stages_ms[stage] += ms
        for error in report.errors:
            m.stage_errors[error.stage] += 1

    def naive(self, s: Sample) -> None:
        def run() -> None:
            data = s.path.read_bytes()
            if lief.parse(data) is None:
                self.m.naive_failures.append(f"{s.group}:{s.path.name}: lief.parse: None")
            hashes(data)
            scan_all(self.scanners, data)
            strings(data)

        start = self.m.naive.wall
        self.m.naive.add(run)
        self.m.group(s, "naive", self.m.naive.wall - start)

    def bare(self, s: Sample) -> None:
        m = self.m
        data: bytes = m.bare_read.add(s.path.read_bytes)
        calls: list[tuple[str, Callable[[], Any]]] = [
            # each returns a plain value, so the library's objects die inside the clock
            ("parse", lambda: lief.parse(data) is not None or None),
            ("hashes", lambda: hashes(data)),
            ("yara", lambda: scan_all(self.scanners, data)),
            ("strings", lambda: strings(data)),
            ("parse, pipeline's LIEF config",
             lambda: lief_pipeline_config(s.kind, data) is not None or None),
        ]
        merged = self.merged
        if merged is not None:
            calls.append(("yara, 3 packs in one Rules",
                          lambda: len(merged.scan(data).matching_rules)))
        total = 0.0
        for name, fn in calls:
            clock = m.bare_clock(name)
            before = clock.wall
            try:
                result = clock.add(fn)
            except Exception as exc:
                m.bare_failures.append(f"{s.group}:{s.path.name}: {name}: "
                                       f"{type(exc).__name__}: {exc}")
                continue
            if result is None:  # lief says "not parsed" with None
                m.bare_failures.append(f"{s.group}:{s.path.name}: {name}: None")
            if name.startswith("yara"):
                m.yara_matches[name] += int(result)
            if name in BARE:
                total += clock.wall - before
        m.group(s, "bare", total)

    def run(self, samples: list[Sample]) -> Measures:
        for s in samples[:3]:  # warm-up, untimed: imports, libmagic, scanners, LIEF
            self.pipeline(s)
            self.naive(s)
            self.bare(s)
        self.m = Measures()
        steps = (self.pipeline, self.naive, self.bare)
        started = time.monotonic()
        for i, s in enumerate(samples):
            for k in range(3):
                steps[(i + k) % 3](s)
            if (i + 1) % 100 == 0:
                print(f"  single process: {i + 1}/{len(samples)} files, "
                      f"{time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        return self.m


# ---------------------------------------------------------------- 2 cores


def bench_worker_init(make_scanner: Any, workdir: str, memory_limit: int) -> None:
    """The service's initializer, then unpacking off (excluded from this benchmark)."""
    service.init_worker(make_scanner, workdir, memory_limit)
    analyzer = service._worker_analyzer
    assert analyzer is not None
    analyzer.unpack = False


def worker_ready(delay: float) -> int:
    time.sleep(delay)
    return os.getpid()


def two_cores(samples: list[Sample], rules: RuleSet, cache_dir: Path,
              workers: int) -> dict[str, Any]:
    """The service's task in a forkserver pool of ``workers``; wall time of the batch."""
    make_scanner = functools.partial(RuleSet.from_refs, rules.refs(), cache_dir)
    tmp_root = os.environ.get("BENCH_TMP", "/var/tmp")
    results: list[service.TaskResult] = []
    with tempfile.TemporaryDirectory(dir=tmp_root) as workdir:
        started = time.perf_counter()
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, initializer=bench_worker_init,
            mp_context=multiprocessing.get_context("forkserver"),
            initargs=(make_scanner, workdir, service.DEFAULT_MEMORY),
        ) as pool:
            delay = 0.5  # long enough that each warm-up task lands in its own worker
            pids = {f.result() for f in [pool.submit(worker_ready, delay)
                                         for _ in range(workers)]}
            startup = time.perf_counter() - started - delay
            wall, cpu = time.perf_counter(), time.process_time()
            futures = [pool.submit(service.analyze_sample, s.sha256, str(s.path), s.path.name,
                                   TASK_TIMEOUT) for s in samples]
            results.extend(f.result() for f in concurrent.futures.as_completed(futures))
            wall = time.perf_counter() - wall
            parent_cpu = time.process_time() - cpu
    stages: defaultdict[str, float] = defaultdict(float)
    errors = [r.error for r in results if r.error]
    for r in results:
        if r.report_json is not None:
            for stage, ms in json.loads(r.report_json)["timings_ms"].items():
                stages[stage] += ms
    return {
        "workers": workers, "distinct_worker_pids": len(pids),
        "startup_s": startup, "wall_s": wall, "parent_cpu_s": parent_cpu,
        "samples_per_s": len(samples) / wall, "task_errors": errors,
        "stages_ms": dict(stages),
    }


# ---------------------------------------------------------------- profile (attribution only)


def profile(samples: list[Sample], rules: RuleSet, top: int) -> list[dict[str, Any]]:
    """cProfile of ``analyze`` over the corpus, after the timed runs: which functions the
    stages' time goes to (the profiler's overhead inflates Python-heavy code)."""
    analyzer = StaticAnalyzer(scanner=rules, unpack=False)
    prof = cProfile.Profile()
    for s in samples:
        data = s.path.read_bytes()
        prof.runcall(functools.partial(analyzer.analyze, data, name=s.path.name))
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = (
        pstats.Stats(prof).stats)  # type: ignore[attr-defined]
    repo = str(Path(__file__).resolve().parent.parent) + "/"
    rows: list[dict[str, Any]] = []
    for (path, line, func), (_cc, calls, own, cum, _callers) in stats.items():
        where = path.replace(repo, "").split("site-packages/")[-1]
        rows.append({"function": f"{where}:{line}({func})" if line else func,
                     "calls": calls, "own_s": own, "cumulative_s": cum})
    rows.sort(key=lambda r: -float(r["own_s"]))
    return rows[:top]


# ---------------------------------------------------------------- report


def summarize(samples: list[Sample], m: Measures, pool: dict[str, Any]) -> dict[str, Any]:
    n = len(samples)
    total_ms = m.stages_ms["total"]
    rows = []
    for label, keys, bare in STAGE_ROWS:
        ms = sum(m.stages_ms[k] for k in keys)
        bare_ms = m.bare[bare].wall * 1000 if bare else None
        rows.append({"stage": label, "ms": ms, "share": ms / total_ms, "bare": bare,
                     "bare_ms": bare_ms, "ratio_to_bare": ms / bare_ms if bare_ms else None,
                     "pool_ms": sum(pool["stages_ms"].get(k, 0.0) for k in keys)})
    known = {k for _, keys, _ in STAGE_ROWS for k in keys} | {"total"}
    others = {k: v for k, v in m.stages_ms.items() if k not in known}
    rest = total_ms - sum(r["ms"] for r in rows) - sum(others.values())
    for stage, ms in others.items():  # a stage this table does not know yet
        rows.append({"stage": stage, "ms": ms, "share": ms / total_ms, "bare": None,
                     "bare_ms": None, "ratio_to_bare": None,
                     "pool_ms": pool["stages_ms"].get(stage, 0.0)})
    pool_rest = pool["stages_ms"].get("total", 0.0) - sum(r["pool_ms"] for r in rows)
    rows.append({"stage": "outside the stages (report model, timers)", "ms": rest,
                 "share": rest / total_ms, "bare": None, "bare_ms": None,
                 "ratio_to_bare": None, "pool_ms": pool_rest})
    bare_sum = sum(m.bare[b].wall for b in BARE)
    analyze = m.pipeline_analyze.wall
    single_wall = m.pipeline_read.wall + analyze
    return {
        "files": n,
        "stages": rows,
        "pipeline_single": {
            "read": m.pipeline_read.to_dict(), "analyze": m.pipeline_analyze.to_dict(),
            "report_json": m.pipeline_json.to_dict(),
            "samples_per_s": n / single_wall,
            "samples_per_s_cpu": n / (m.pipeline_read.cpu + m.pipeline_analyze.cpu),
            "stage_errors": dict(m.stage_errors),
        },
        "pipeline_2_cores": pool,
        "naive_single": {**m.naive.to_dict(), "samples_per_s": n / m.naive.wall,
                         "failures": m.naive_failures},
        "bare": {
            "read": m.bare_read.to_dict(),
            "calls": {k: c.to_dict() for k, c in m.bare.items()},
            "sum_s": bare_sum,
            "samples_per_s_of_sum": n / bare_sum,
            "failures": m.bare_failures,
            "yara_matches": dict(m.yara_matches),
        },
        "ratio_pipeline_to_bare_sum": analyze / bare_sum,
        "ratio_pipeline_to_bare_sum_pipeline_lief_config": analyze / (
            bare_sum - m.bare["parse"].wall + m.bare["parse, pipeline's LIEF config"].wall),
        "scaling_2_cores": pool["samples_per_s"] / (n / single_wall),
        "goals": {
            "samples_per_s_2_cores": {"goal": GOAL_RATE_2_CORES,
                                      "met": pool["samples_per_s"] >= GOAL_RATE_2_CORES},
            "ratio_to_bare_sum": {"goal": GOAL_RATIO_TO_BARE,
                                  "met": analyze / bare_sum <= GOAL_RATIO_TO_BARE},
        },
        "groups": {g: dict(c) for g, c in m.groups.items()},
    }


def tables(out: dict[str, Any], samples: list[Sample]) -> str:
    s = out["summary"]
    single, pool, naive, bare = (s["pipeline_single"], s["pipeline_2_cores"],
                                 s["naive_single"], s["bare"])
    n = s["files"]
    lines = [
        f"Corpus: {n} files, {sum(x.size for x in samples) / 2**20:,.0f} MiB; rules: "
        + ", ".join(f"{p['pack']} {p['rules']}" for p in out["rules"]) + ".",
        "",
        "| stage (our pipeline, 1 process) | ms, all files | share of total | "
        "bare call alone | bare ms | stage / bare | ms in the 2-core pool |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in s["stages"]:
        bare_label = BARE_LABELS.get(r["bare"], "-") if r["bare"] else "-"
        bare_ms = f"{r['bare_ms']:,.0f}" if r["bare_ms"] is not None else "-"
        ratio = f"{r['ratio_to_bare']:.2f}" if r["ratio_to_bare"] is not None else "-"
        lines.append(f"| {r['stage']} | {r['ms']:,.0f} | {r['share']:.1%} | {bare_label} "
                     f"| {bare_ms} | {ratio} | {r['pool_ms']:,.0f} |")
    analyze_ms = single["analyze"]["wall_s"] * 1000
    lines.append(f"| **total (`analyze`)** | **{analyze_ms:,.0f}** | 100% | sum of the 4 "
                 f"| {bare['sum_s'] * 1000:,.0f} | {s['ratio_pipeline_to_bare_sum']:.2f} "
                 f"| {pool['stages_ms'].get('total', 0.0):,.0f} |")
    calls = bare["calls"]
    rate2, ratio = pool["samples_per_s"], s["ratio_pipeline_to_bare_sum"]
    goals = s["goals"]
    lines += [
        "",
        "| measure | samples/s | wall s | CPU s | goal | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| our pipeline, 1 process (read + `analyze`) | {single['samples_per_s']:.1f} "
        f"| {single['read']['wall_s'] + single['analyze']['wall_s']:.1f} "
        f"| {single['read']['cpu_s'] + single['analyze']['cpu_s']:.1f} | - | - |",
        f"| our pipeline, 2 cores (forkserver pool, service task) | **{rate2:.1f}** "
        f"| {pool['wall_s']:.1f} | - | >= {GOAL_RATE_2_CORES:.0f} "
        f"| {'yes' if goals['samples_per_s_2_cores']['met'] else 'no'} |",
        f"| naive pipeline, 1 process | {naive['samples_per_s']:.1f} | {naive['wall_s']:.1f} "
        f"| {naive['cpu_s']:.1f} | - | - |",
        f"| sum of the bare calls (parse + hashes + YARA + strings), 1 process "
        f"| {bare['samples_per_s_of_sum']:.1f} | {bare['sum_s']:.1f} "
        f"| {sum(calls[b]['cpu_s'] for b in BARE):.1f} | - | - |",
        f"| pipeline `analyze` / sum of the bare calls | ratio **{ratio:.2f}** | - | - "
        f"| <= {GOAL_RATIO_TO_BARE} | {'yes' if goals['ratio_to_bare_sum']['met'] else 'no'} |",
        "",
        f"Also: reading the files {single['read']['wall_s']:.2f} s; the report's JSON "
        f"(done in the service's worker) {single['report_json']['wall_s']:.2f} s; 2-core pool "
        f"start-up {pool['startup_s']:.1f} s (not in its rate), scaling "
        f"{s['scaling_2_cores']:.2f}x over 1 process; ratio with LIEF under the pipeline's "
        f"`ParserConfig` as the parse floor: "
        f"{s['ratio_pipeline_to_bare_sum_pipeline_lief_config']:.2f}; rule matches found by "
        "the bare YARA calls: " + ", ".join(f"{k} {v:,}" for k, v in bare["yara_matches"].items())
        + ".",
        "",
        "| bare call alone | wall s | CPU s |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {k} | {c['wall_s']:.2f} | {c['cpu_s']:.2f} |" for k, c in calls.items()]
    if out.get("profile"):
        lines += ["", "| cProfile of `analyze`, by own time | calls | own s | cumulative s |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| `{r['function']}` | {r['calls']:,} | {r['own_s']:.2f} "
                  f"| {r['cumulative_s']:.2f} |" for r in out["profile"]]
    lines += ["", "| group | files | MiB | pipeline ms/file | naive ms/file | bare sum ms/file |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for group, ms in s["groups"].items():
        members = [x for x in samples if x.group == group]
        k = len(members)
        lines.append(f"| {group} | {k} | {sum(x.size for x in members) / 2**20:,.1f} "
                     f"| {ms['pipeline'] / k:.1f} | {ms['naive'] / k:.1f} "
                     f"| {ms['bare'] / k:.1f} |")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--limit", type=int, help="at most N files from each corpus group")
    parser.add_argument("--workers", type=int, default=2, help="pool size (default 2)")
    parser.add_argument("--cache-dir", type=Path, help="compiled-rules cache (default: "
                        "$BENCH_TMP or /var/tmp, cleancenter-bench/rules-cache)")
    parser.add_argument("--no-merged", action="store_true",
                        help="skip the one-Rules YARA measurement (and its compile)")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP",
                        help="after the timed runs, cProfile `analyze` over the corpus and "
                        "list the TOP functions by own time")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    lief.logging.disable()
    cache_dir = args.cache_dir or (Path(os.environ.get("BENCH_TMP", "/var/tmp"))
                                   / "cleancenter-bench" / "rules-cache")
    out: dict[str, Any] = {"machine": machine(), "versions": versions()}
    rules, out["rules"] = load_rules(cache_dir)
    merged = None
    if not args.no_merged:
        started = time.perf_counter()
        merged = merged_rules(rules.packs)
        out["merged_rules_compile_s"] = time.perf_counter() - started
    samples = build_corpus(args.limit)
    groups = Counter(s.group for s in samples)
    out["corpus"] = {g: {"files": groups[g], "bytes": sum(s.size for s in samples
                                                          if s.group == g)} for g in groups}
    print(f"corpus: {len(samples)} files: " + ", ".join(f"{g} {k}" for g, k in groups.items()),
          file=sys.stderr, flush=True)
    measures = SingleProcess(rules, merged).run(samples)
    print("  2 cores ...", file=sys.stderr, flush=True)
    pool = two_cores(samples, rules, cache_dir, args.workers)
    out["summary"] = summarize(samples, measures, pool)
    if args.profile:
        print("  profile ...", file=sys.stderr, flush=True)
        out["profile"] = profile(samples, rules, args.profile)
    out["machine"]["load_avg_at_end"] = os.getloadavg()
    md = tables(out, samples)
    out["table_md"] = md
    print(md)
    s = out["summary"]
    for what, failures in (("naive", s["naive_single"]["failures"]),
                           ("bare", s["bare"]["failures"]),
                           ("2-core tasks", s["pipeline_2_cores"]["task_errors"])):
        if failures:
            print(f"\n{what}: {len(failures)} failures, e.g. {failures[:3]}")
    if s["pipeline_single"]["stage_errors"]:
        print(f"\npipeline stage errors: {s['pipeline_single']['stage_errors']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
