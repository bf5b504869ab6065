"""One scan: run the chosen checks, tie their findings together, act if asked, report.

The checks are independent (files, processes, persistence, network) and each reads the
machine through its view; a check that cannot run is an error in the report (exit 2
only when nothing was found), never a crash that hides what the others found.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleancenter.cleaner import CLEANER_VERSION
from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.files import FileScanner, FileScanOptions
from cleancenter.cleaner.findings import Evidence, Finding
from cleancenter.cleaner.remediate import CleanTools, clean, correlate
from cleancenter.cleaner.report import ScanReport
from cleancenter.cleaner.rules import (
    CompiledRules,
    compile_definitions,
    is_trait_rule,
    new_scanner,
    rule_evidence,
)
from cleancenter.cleaner.scancache import ScanCache
from cleancenter.cleaner.state import CleanerHome

CHECKS = ("files", "processes", "persistence", "network")


@dataclass
class ScanPlan:
    roots: list[Path]
    checks: tuple[str, ...] = CHECKS
    files: FileScanOptions | None = None
    use_cache: bool = True
    system_root: Path = Path("/")  # persistence on a mounted image: its root
    homes: list[Path] | None = None
    offline_root: Path | None = None  # a mounted Windows volume
    hives: list[Path] = field(default_factory=list)
    proc_root: Path = Path("/proc")
    snapshot: Path | None = None  # a recorded process listing instead of the live one
    scan_memory: bool = False
    memory_cap: int = 64 << 20
    resolve_domains: bool = False
    clean: bool = False


class Progress:
    """Callbacks the CLI turns into Rich progress; the default does nothing."""

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, files: int, size: int) -> None:
        pass


class PlanError(ValueError):
    """The scan was asked for something it must not do."""


def check_plan(plan: ScanPlan) -> None:
    """``--clean`` acts on this machine only: never on a recording or a mounted image,
    whose pids and paths are not this machine's."""
    if plan.clean and (plan.snapshot or plan.offline_root or plan.hives):
        raise PlanError("--clean works on the running machine only, not with --snapshot, "
                        "--offline-root or --hive: remove what those show by hand")


def run_scan(plan: ScanPlan, defs: Definitions, home: CleanerHome,
             progress: Progress | None = None) -> ScanReport:
    check_plan(plan)
    progress = progress or Progress()
    report = ScanReport(CLEANER_VERSION, defs.version, roots=[str(r) for r in plan.roots],
                        checks=list(plan.checks))
    rules = compile_definitions(defs, home.rules_cache)
    report.stats["rules"] = {"compiled": rules.count, "left_out": rules.broken}
    cache = ScanCache(home.cache_db, f"{defs.version}:{defs.bundle_sha256}") \
        if plan.use_cache else None
    findings: list[Finding] = []
    try:
        if "files" in plan.checks:
            findings += _guard("files", report,
                               lambda: _files(plan, defs, rules, home, cache, report, progress))
        if "processes" in plan.checks:
            findings += _guard("processes", report,
                               lambda: _processes(plan, defs, rules, report, progress))
        if "persistence" in plan.checks:
            findings += _guard("persistence", report,
                               lambda: _persistence(plan, defs, report, progress))
        if "network" in plan.checks:
            findings += _guard("network", report,
                               lambda: _network(plan, defs, report, progress))
        correlate(findings)
        if plan.clean:
            progress.stage("cleaning")
            clean(findings, _tools(plan, home, cache))
            report.cleaned = True
    finally:
        if cache is not None:
            cache.close()
    order = {"malicious": 0, "suspicious": 1, "info": 2}
    report.findings = sorted(findings, key=lambda f: (order[f.severity], f.check, f.where))
    report.finish()
    return report


def _guard(check: str, report: ScanReport, run: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return run()
    except Exception as exc:  # one failed check must not hide the others' findings
        report.errors.append({"check": check, "error": f"{type(exc).__name__}: {exc}",
                              "fatal": "yes"})
        return []


def _files(plan: ScanPlan, defs: Definitions, rules: CompiledRules, home: CleanerHome,
           cache: ScanCache | None, report: ScanReport, progress: Progress) -> list[Finding]:
    options = plan.files or FileScanOptions(plan.roots)
    with FileScanner(defs, rules, options, cache=cache,
                     never=(str(home.path) + os.sep,)) as scanner:
        if cache is None or cache.empty():  # a first scan: workers load rules meanwhile
            scanner.start_workers()
        progress.stage("listing files")
        items = scanner.collect()
        progress.stage("scanning files", len(items))
        found = scanner.scan(items, progress.advance)
    report.stats["files"] = scanner.stats.to_dict()
    report.errors += [{"check": "files", **e} for e in scanner.stats.errors]
    missing = [e for e in scanner.stats.errors if e["error"].startswith("cannot read root")]
    if missing and len(missing) == len(options.roots):
        report.errors.append({"check": "files", "error": "no root could be read",
                              "fatal": "yes"})
    return found


def _memory_scanner(rules: CompiledRules) -> Callable[[bytes], list[Evidence]] | None:
    loaded = rules.load()
    if loaded is None:
        return None
    scanner = new_scanner(loaded)

    def scan(data: bytes) -> list[Evidence]:
        return rule_evidence(scanner.scan(data).matching_rules, "process memory")
    return scan


def _process_view(plan: ScanPlan) -> Any:
    from cleancenter.cleaner import processes

    if plan.snapshot is not None:
        return processes.SnapshotView(plan.snapshot)
    if sys.platform.startswith("linux"):
        return processes.ProcView(plan.proc_root)
    return processes.PsutilView()


def _processes(plan: ScanPlan, defs: Definitions, rules: CompiledRules, report: ScanReport,
               progress: Progress) -> list[Finding]:
    from cleancenter.cleaner import processes

    progress.stage("checking processes")
    view = _process_view(plan)
    found = processes.check_processes(
        view, defs, scan_memory=_memory_scanner(rules) if plan.scan_memory else None,
        memory_cap=plan.memory_cap, is_trait=is_trait_rule)
    report.errors += [{"check": "processes", "error": str(e)} for e in view.errors]
    return found


def _persistence(plan: ScanPlan, defs: Definitions, report: ScanReport,
                 progress: Progress) -> list[Finding]:
    from cleancenter.cleaner.persistence import judge, linux, paths, registry, windows

    progress.stage("checking autostart entries")
    entries = []
    errors: list[str] = []
    if plan.offline_root is not None or plan.hives:
        views, view_errors = windows.offline_views(plan.offline_root) \
            if plan.offline_root is not None else ({}, [])
        errors += view_errors
        for hive in plan.hives:
            try:
                name, view = windows.hive_view(hive)
                views[name] = view
            except registry.RegistryError as exc:  # a corrupted hive: its message names it
                errors.append(str(exc))
        found, more = windows.windows_entries(views, plan.offline_root)
        entries += found
        errors += more
        reader_root = plan.offline_root or plan.system_root
    elif sys.platform == "win32":  # the running Windows: its live registry and drive
        drive = Path(os.environ.get("SYSTEMDRIVE", "C:") + "\\")
        found, more = windows.windows_entries(registry.live_views(), drive)
        entries += found
        errors += more
        reader_root = drive
    else:
        found, more = linux.linux_entries(plan.system_root, plan.homes)
        entries += found
        errors += more
        reader_root = plan.system_root
    report.stats["persistence"] = {"entries": len(entries)}
    report.errors += [{"check": "persistence", "error": e} for e in errors]
    result: list[Finding] = judge.judge(entries, defs, paths.root_reader(reader_root))
    return result


def _network(plan: ScanPlan, defs: Definitions, report: ScanReport,
             progress: Progress) -> list[Finding]:
    from cleancenter.cleaner import network

    progress.stage("checking connections")
    view: Any
    if plan.snapshot is not None:
        view = _process_view(plan)
    elif sys.platform.startswith("linux"):
        view = network.ProcNetView(plan.proc_root)
    else:
        view = network.PsutilNetView()
    conns = view.connections()
    report.errors += [{"check": "network", "error": str(e)} for e in view.errors]
    resolve = network.system_resolver if plan.resolve_domains else None
    return network.check_connections(conns, defs, resolve=resolve)


def _tools(plan: ScanPlan, home: CleanerHome, cache: ScanCache | None) -> CleanTools:
    from cleancenter.cleaner import processes

    view = _process_view(plan)

    def exe_of(pid: int) -> str | None:
        info = view.process(pid)
        return info.exe if info is not None else None

    return CleanTools(
        quarantine=home.quarantine(), read_image=view.read_executable,
        image_stat=view.stat_executable, exe_of=exe_of,
        stop=lambda pid, start: processes.stop_process(pid, start, proc_root=plan.proc_root),
        cache=cache)
