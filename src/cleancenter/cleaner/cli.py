"""``cleancenter-cleaner``: the command a person runs on a machine the center warned about.

By default it only looks and reports; ``--clean`` acts, and every action can be undone
with ``restore``. Exit codes: 0 nothing found, 1 something found, 2 the command could not
do its work.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cleancenter.cleaner import CLEANER_VERSION
from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.files import DEFAULT_MAX_SIZE, FileScanOptions
from cleancenter.cleaner.quarantine import QuarantineError
from cleancenter.cleaner.report import EXIT_ERROR, ScanReport, print_summary
from cleancenter.cleaner.scan import CHECKS, PlanError, ScanPlan, check_plan, run_scan
from cleancenter.cleaner.scan import Progress as ScanProgress
from cleancenter.cleaner.state import CleanerHome, default_home
from cleancenter.cleaner.update import open_definitions, update
from cleancenter.definitions.behaviour import behaviour_rules
from cleancenter.definitions.bundle import BundleError
from cleancenter.definitions.keys import KeyProblem, PublicKey
from cleancenter.textsafe import display_path, for_console

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
quarantine_app = typer.Typer(help="What the cleaner has put away.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

HomeOption = Annotated[Path | None, typer.Option(
    "--home", help="the cleaner's own folder (key, definitions, quarantine, journal); "
    "default $CLEANCENTER_CLEANER_HOME or a per-system folder")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")]
REPORT_URL_PATH = "/api/v1/cleaner-reports"


def main() -> None:
    """Any unexpected failure is exit 2 with one line, never a scanner's "found" (1)."""
    try:
        app()  # usage errors exit 2 already; typer.Exit carries the scan's code
    except Exception as exc:
        err.print(f"[red]error:[/] {for_console(f'{type(exc).__name__}: {exc}')}")
        raise SystemExit(EXIT_ERROR) from None


def _home(path: Path | None) -> CleanerHome:
    return CleanerHome((path or default_home()).absolute())


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[red]error:[/] {for_console(message)}")
    return typer.Exit(code)


def _definitions(home: CleanerHome, source: str | None, *,
                 behaviour_only: bool = False) -> Definitions:
    """The definitions to scan with. ``behaviour_only``: with none installed, the listing
    commands still run on the built-in behaviour rules (no hashes, rules or IOCs)."""
    try:
        key = home.pinned_key()
    except KeyProblem as exc:
        if behaviour_only and not source:
            return _builtin(str(exc))
        raise _fail(str(exc)) from exc
    if source:
        try:
            return open_definitions(source, home, key)
        except (BundleError, OSError) as exc:
            raise _fail(f"definitions refused: {exc}") from exc
    installed, problems = home.installed(key)
    for problem in problems:
        err.print(f"[yellow]warning:[/] {for_console(problem)}")
    if installed is None and behaviour_only:
        return _builtin("no definitions installed")
    if installed is None:
        raise _fail("no definitions installed: run `cleancenter-cleaner update SOURCE` or "
                    "pass --definitions FILE|URL")
    return installed


def _builtin(why: str) -> Definitions:
    err.print(f"[yellow]warning:[/] {for_console(why)}: checking with the built-in "
              "behaviour rules only (no hashes, rules or IOCs)")
    return Definitions(version=0, created="", source="built-in behaviour rules",
                       bundle_sha256="0" * 64, manifest={}, behaviour=behaviour_rules())


class _RichScanProgress(ScanProgress):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total or 1,
                                 total=self.progress.tasks[-1].total or 1)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, files: int, size: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, files)


def _run(plan: ScanPlan, home: CleanerHome, defs: Definitions, quiet: bool) -> ScanReport:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    try:
        check_plan(plan)
    except PlanError as exc:
        raise _fail(str(exc)) from exc
    with Progress(*columns, console=err, disable=quiet, transient=True) as progress:
        return run_scan(plan, defs, home, _RichScanProgress(progress))


def _finish(report: ScanReport, home: CleanerHome, as_json: bool, report_path: Path | None,
            token: str | None, center: str | None, show_info: bool) -> None:
    saved = home.reports_dir / f"scan-{report.started.replace(':', '')}-{os.getpid()}.jsonl"
    for path in (saved, report_path):
        if path is not None:
            try:
                report.write_jsonl(path)
            except OSError as exc:
                err.print(f"[yellow]warning:[/] report not written to {path}: {exc}")
    if as_json:
        sys.stdout.write("\n".join(report.lines()) + "\n")
    else:
        print_summary(report, out, show_info=show_info)
        for error in report.errors[:10]:
            err.print(f"[yellow]could not check:[/] {for_console(json.dumps(error))}")
        out.print(f"[dim]report: {for_console(str(saved))}[/]")
    if token:
        _send_summary(report, token, center)
    raise typer.Exit(report.exit_code)


def _send_summary(report: ScanReport, token: str, center: str | None) -> None:
    """The anonymous summary for the notification funnel: counts, no paths or names."""
    if not center:
        err.print("[yellow]warning:[/] --token needs --center URL; summary not sent")
        return
    body = json.dumps({"token": token, **report.summary()}).encode()
    request = urllib.request.Request(center.rstrip("/") + REPORT_URL_PATH, data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            response.read()
    except OSError as exc:
        err.print(f"[yellow]warning:[/] summary not sent to the center: {exc}")


@app.command()
def scan(
    roots: Annotated[list[Path] | None, typer.Argument(
        help="files and folders to scan (default: your home and the temp folders)")] = None,
    definitions: Annotated[str | None, typer.Option(
        "--definitions", "-d", help="a bundle file or URL to scan with (verified with the "
        "pinned key) instead of the installed one")] = None,
    clean: Annotated[bool, typer.Option(
        "--clean", help="quarantine malicious files, stop the bot's processes and remove "
        "its autostart entries (all undoable)")] = False,
    checks: Annotated[str, typer.Option(
        help=f"comma-separated checks out of {','.join(CHECKS)}")] = ",".join(CHECKS),
    exclude: Annotated[list[str] | None, typer.Option(
        help="glob on the full path to leave out (repeatable)")] = None,
    max_size: Annotated[int, typer.Option(
        help="skip files larger than this many MB")] = DEFAULT_MAX_SIZE >> 20,
    all_filesystems: Annotated[bool, typer.Option(
        "--all-filesystems", help="cross into other mounted file systems")] = False,
    workers: Annotated[int, typer.Option(help="scanning processes (0: one per core)")] = 0,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="scan every file even if unchanged since the last scan")] = False,
    system_root: Annotated[Path, typer.Option(
        "--root", help="the root of the system whose autostart entries are checked "
        "(a mounted image)")] = Path("/"),
    user_home: Annotated[list[Path] | None, typer.Option(
        "--user-home", help="home folders to check (default: all on the system)")] = None,
    offline_root: Annotated[Path | None, typer.Option(
        help="a mounted Windows volume: read its hives and tasks without Windows")] = None,
    hive: Annotated[list[Path] | None, typer.Option(
        help="an offline registry hive file to check (repeatable)")] = None,
    snapshot: Annotated[Path | None, typer.Option(
        help="a recorded process listing (JSON) instead of the live one")] = None,
    scan_memory: Annotated[bool, typer.Option(
        "--scan-memory", help="also run the rules over process memory")] = False,
    resolve_domains: Annotated[bool, typer.Option(
        "--resolve-domains", help="resolve IOC domains to compare connections (sends "
        "DNS queries)")] = False,
    report_path: Annotated[Path | None, typer.Option(
        "--report", help="also write the JSON Lines report here")] = None,
    token: Annotated[str | None, typer.Option(
        help="the token from the center's mail: sends an anonymous summary")] = None,
    center: Annotated[str | None, typer.Option(help="the center's address for --token")] = None,
    show_info: Annotated[bool, typer.Option(
        "--show-info", help="list every autostart entry, not only suspicious ones")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Scan files, processes, autostart entries and connections."""
    chosen = tuple(c.strip() for c in checks.split(",") if c.strip())
    unknown = set(chosen) - set(CHECKS)
    if unknown:
        raise _fail(f"unknown check(s): {', '.join(sorted(unknown))}")
    where = _home(home)
    defs = _definitions(where, definitions)
    # resolved: the walk then follows no link, and --clean can refuse any path that
    # gained one since
    targets = [root.resolve() for root in roots or _default_roots()]
    plan = ScanPlan(
        roots=targets, checks=chosen,
        files=FileScanOptions(targets, exclude or [], max_size << 20, not all_filesystems,
                              workers),
        use_cache=not no_cache, system_root=system_root, homes=user_home,
        offline_root=offline_root, hives=hive or [], snapshot=snapshot,
        scan_memory=scan_memory, resolve_domains=resolve_domains, clean=clean)
    report = _run(plan, where, defs, quiet=as_json)
    _finish(report, where, as_json, report_path, token, center, show_info)


def _default_roots() -> list[Path]:
    if sys.platform == "win32":
        return [Path.home(), Path(str(Path.home() / "AppData" / "Local" / "Temp"))]
    roots = [Path.home(), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
    return [r for r in roots if r.exists()]


@app.command()
def processes(
    definitions: Annotated[str | None, typer.Option("--definitions", "-d")] = None,
    snapshot: Annotated[Path | None, typer.Option(
        help="a recorded process listing (JSON) instead of the live one")] = None,
    scan_memory: Annotated[bool, typer.Option("--scan-memory")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check running processes and their connections (no files, no changes)."""
    where = _home(home)
    defs = _definitions(where, definitions, behaviour_only=True)
    plan = ScanPlan(roots=[], checks=("processes", "network"), snapshot=snapshot,
                    scan_memory=scan_memory, use_cache=False)
    report = _run(plan, where, defs, quiet=as_json)
    _finish(report, where, as_json, None, None, None, False)


@app.command()
def persistence(
    definitions: Annotated[str | None, typer.Option("--definitions", "-d")] = None,
    system_root: Annotated[Path, typer.Option("--root")] = Path("/"),
    user_home: Annotated[list[Path] | None, typer.Option("--user-home")] = None,
    offline_root: Annotated[Path | None, typer.Option(
        help="a mounted Windows volume")] = None,
    hive: Annotated[list[Path] | None, typer.Option(
        help="an offline registry hive file (repeatable)")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List every autostart entry and flag the suspicious ones (no changes)."""
    where = _home(home)
    defs = _definitions(where, definitions, behaviour_only=True)
    plan = ScanPlan(roots=[], checks=("persistence",), system_root=system_root,
                    homes=user_home, offline_root=offline_root, hives=hive or [],
                    use_cache=False)
    report = _run(plan, where, defs, quiet=as_json)
    _finish(report, where, as_json, None, None, None, True)


@quarantine_app.command("list")
def quarantine_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """What is in quarantine, and whether it was restored."""
    items = _home(home).quarantine().items()
    if as_json:
        sys.stdout.write(json.dumps([i.to_dict() for i in items], indent=2) + "\n")
        return
    table = Table("id", "kind", "original path", "size", "quarantined", "restored")
    for item in items:
        table.add_row(item.id, item.kind, escape(display_path(item.original_path)),
                      f"{item.size:,}",
                      item.quarantined_at, item.restored_at or "")
    out.print(table if items else "Quarantine is empty.")


@app.command()
def restore(
    item_id: Annotated[str, typer.Argument(metavar="ID", help="from `quarantine list`")],
    to: Annotated[Path | None, typer.Option(help="restore to this path instead")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a file now at the path")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put a quarantined file back, byte-identical, with its mode, owner and times."""
    try:
        item = _home(home).quarantine().restore(item_id, to=str(to) if to else None,
                                                overwrite=overwrite)
    except QuarantineError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(item.to_dict(), indent=2) + "\n")
    else:
        out.print(f"restored {escape(display_path(str(to or item.original_path)))} "
                  f"(sha256 {item.sha256[:16]}...)")


@app.command("update")
def update_command(
    source: Annotated[str | None, typer.Argument(
        help="the bundle's URL (from the center's download page) or a file; default: "
        "the last source used")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch new definitions, check their signature and install them."""
    where = _home(home)
    remembered = where.path / "update-source"
    source = source or (remembered.read_text().strip() if remembered.exists() else None)
    if not source:
        raise _fail("no update source: give the bundle's URL or file")
    try:
        result = update(source, where, where.pinned_key())
    except (BundleError, KeyProblem, OSError) as exc:
        raise _fail(f"update refused, the installed definitions stay in force: {exc}") \
            from exc
    remembered.write_text(source + "\n")
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    else:
        out.print(result.message)


@app.command()
def pin(
    key: Annotated[str, typer.Argument(help="the center's definitions.pub file, or its text "
                                             "'ed25519:...'")],
    force: Annotated[bool, typer.Option(help="replace a different pinned key")] = False,
    home: HomeOption = None,
) -> None:
    """Trust this public key for definitions (compare its fingerprint with the center's)."""
    text = Path(key).read_text() if Path(key).is_file() else key
    try:
        public = PublicKey.parse(text)
        target = _home(home).pin(public, force=force)
    except KeyProblem as exc:
        raise _fail(str(exc)) from exc
    out.print(f"pinned {public.fingerprint} in {for_console(str(target))}")


@app.command()
def status(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """The cleaner's version, pinned key and installed definitions."""
    where = _home(home)
    info: dict[str, object] = {"cleaner_version": CLEANER_VERSION, "home": str(where.path)}
    try:
        key = where.pinned_key()
        info["key_fingerprint"] = key.fingerprint
        installed, problems = where.installed(key)
        info["definitions_version"] = installed.version if installed else None
        info["definitions_created"] = installed.created if installed else None
        info["problems"] = problems
    except KeyProblem as exc:
        info["problems"] = [str(exc)]
    info["quarantined"] = len(where.quarantine().items())
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        for name, value in info.items():
            out.print(f"{name}: {for_console(str(value))}")
    if info.get("problems") and not info.get("definitions_version"):
        raise typer.Exit(EXIT_ERROR)

