"""`cleancenter analyze` and `cleancenter rules`: run the static pipeline, manage rule packs."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select

from cleancenter.analyze.family import canonical
from cleancenter.analyze.service import AnalysisService, AnalyzeSummary, set_label
from cleancenter.analyze.similarity import similar
from cleancenter.analyze.yara_rules import (
    RulesError,
    RuleSet,
    add_pack,
    get_pack,
    list_packs,
    load_pack,
    load_registered,
    remove_pack,
    test_pack,
)
from cleancenter.center import Center
from cleancenter.console import EXIT_FOUND, RichProgress, fail, out, parse_when, print_json
from cleancenter.store.catalog import SAMPLE
from cleancenter.textsafe import for_console

VERDICTS = ("malicious", "suspicious", "clean", "unknown")
rules_app = typer.Typer(help="YARA rule packs used by the analysis.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="JSON output.")


def rules_dirs(center: Center) -> tuple[Path, Path]:
    """(registry folder, compiled-rules cache) inside the data dir."""
    return center.settings.data_dir / "rules", center.settings.data_dir / "rules-cache"


def scanner_factory(center: Center) -> tuple[Callable[[], RuleSet] | None, int]:
    """A picklable way for each worker to get the registered rules, and their rule count.

    The parent compiles (or finds in the cache) once; workers read the cache files.
    """
    registry, cache = rules_dirs(center)
    if not list_packs(registry):
        return None, 0
    rules = load_registered(registry, cache)
    return functools.partial(RuleSet.from_refs, rules.refs(), cache), rules.rule_count


def run_analysis(center: Center, sha256s: list[str] | None, *, all_pending: bool = False,
                 since: str | None = None, workers: int | None = None,
                 timeout: float = 120.0, progress: Any = None) -> AnalyzeSummary:
    make_scanner, _ = scanner_factory(center)
    service = AnalysisService(
        center.catalog, center.blobs, center.settings.work_dir / "unpack",
        make_scanner=make_scanner, workers=workers, timeout=timeout, progress=progress,
    )
    if sha256s:
        todo = service.pending(resolve_references(center, sha256s))
    elif all_pending or since:
        todo = service.pending(since=parse_when(since))
    else:
        todo = []
    return service.run(todo)


def resolve_references(center: Center, references: list[str]) -> list[str]:
    """The sha256 of each md5, sha1, sha256 or unique prefix; a clear error for the first
    that matches nothing."""
    from cleancenter.store.queries import get_sample

    found = []
    with center.catalog.engine.connect() as conn:
        for ref in references:
            sample = get_sample(conn, ref)
            if sample is None:
                raise fail(f"no sample matches {ref!r}")
            found.append(sample.sha256)
    return found


def analyze_command(
    ctx: typer.Context,
    samples: list[str] = typer.Argument(None, help="sha256 (or md5/sha1/prefix) of samples."),
    all_pending: bool = typer.Option(False, "--all", help="Every sample without a report of "
                                     "this analyzer version."),
    since: str | None = typer.Option(None, "--since", help="Samples first seen since (date "
                                     "or 7d) without a report."),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Worker processes (default: one per core)."),
    timeout: float = typer.Option(120.0, "--timeout", min=1, help="Seconds per sample."),
    as_json: bool = JSON,
) -> None:
    """Analyze samples statically (never running them); a report per analyzer version.

    Exit code 0 when every sample was analyzed, 1 when some failed (see the errors).
    """
    center: Center = ctx.obj
    if not samples and not all_pending and not since:
        raise fail("name samples, or use --all or --since")
    with RichProgress(enabled=not as_json) as progress:
        summary = run_analysis(center, samples, all_pending=all_pending, since=since,
                               workers=workers, timeout=timeout, progress=progress)
    if as_json:
        print_json(summary.to_dict())
    else:
        out.print(f"analyzed {summary.analyzed}, already done {summary.skipped}, failed "
                  f"{summary.failed}, unpacked children {summary.children}; verdicts: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(summary.verdicts.items())))
        for error in summary.errors[:20]:
            out.print(f"[yellow]error[/] {error['sha256']}: {for_console(error['message'])}")
    if summary.failed:
        raise typer.Exit(EXIT_FOUND)


@rules_app.command("add")
def rules_add(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of .yar files."),
    name: str = typer.Option(..., "--name", help="A name for the pack."),
    as_json: bool = JSON,
) -> None:
    """Register a folder of YARA rules and compile it (broken files are reported, skipped)."""
    center: Center = ctx.obj
    registry, cache = rules_dirs(center)
    try:
        add_pack(registry, name, folder)
        pack = load_pack(name, folder, cache)
    except RulesError as exc:
        raise fail(str(exc)) from exc
    data = {"name": pack.name, "folder": str(pack.folder), "files": pack.file_count,
            "rules": pack.rule_count, "broken": [{"file": b.file, "message": b.message}
                                                 for b in pack.broken]}
    if as_json:
        print_json(data)
        return
    out.print(f"pack {for_console(name)}: {pack.rule_count} rules from {pack.file_count} files")
    for broken in pack.broken:
        out.print(f"[yellow]skipped[/] {for_console(broken.file)}: {for_console(broken.message)}")


@rules_app.command("list")
def rules_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The registered packs, with rule counts and broken files."""
    center: Center = ctx.obj
    registry, cache = rules_dirs(center)
    rows: list[dict[str, Any]] = []
    for entry in list_packs(registry):
        pack = load_pack(entry.name, entry.folder, cache)
        rows.append({"name": entry.name, "folder": str(entry.folder), "files": pack.file_count,
                     "rules": pack.rule_count, "broken": len(pack.broken)})
    if as_json:
        print_json(rows)
        return
    table = Table("pack", "rules", "files", "broken", "folder")
    for row in rows:
        table.add_row(for_console(row["name"]), str(row["rules"]), str(row["files"]),
                      str(row["broken"]), for_console(row["folder"]))
    out.print(table)


@rules_app.command("remove")
def rules_remove(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Unregister a pack (its folder is left alone)."""
    registry, _ = rules_dirs(ctx.obj)
    try:
        remove_pack(registry, name)
    except RulesError as exc:
        raise fail(str(exc)) from exc


@rules_app.command("test")
def rules_test(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A registered pack."),
    files: list[Path] = typer.Argument(..., exists=True, help="Files or folders to scan."),
    as_json: bool = JSON,
) -> None:
    """Scan files with one pack and show what matches (exit 1 when anything matched)."""
    center: Center = ctx.obj
    registry, cache = rules_dirs(center)
    try:
        entry = get_pack(registry, name)
        pack = load_pack(entry.name, entry.folder, cache)
    except RulesError as exc:
        raise fail(str(exc)) from exc
    results = test_pack(pack, files)
    hits = [(str(path), matches) for path, matches in results if matches]
    if as_json:
        print_json([{"file": f, "matches": [m.model_dump() for m in ms]} for f, ms in hits])
    else:
        for path, matches in hits:
            out.print(f"{for_console(path)}: " + ", ".join(for_console(m.rule) for m in matches))
        out.print(f"{len(hits)} of {len(results)} files matched")
    if hits:
        raise typer.Exit(EXIT_FOUND)


def mark_command(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="sha256 (or md5/sha1/prefix)."),
    verdict: str | None = typer.Option(None, "--verdict",
                                       help="malicious, suspicious, clean or unknown."),
    family: str | None = typer.Option(None, "--family"),
    note: str | None = typer.Option(None, "--note"),
    author: str = typer.Option(os.environ.get("USER", "analyst"), "--author"),
    as_json: bool = JSON,
) -> None:
    """Set an analyst's verdict and/or family; it wins over automatic results."""
    if verdict is not None and verdict not in VERDICTS:
        raise fail(f"--verdict must be one of {', '.join(VERDICTS)}")
    if verdict is None and family is None:
        raise fail("give --verdict and/or --family")
    center: Center = ctx.obj
    (sha256,) = resolve_references(center, [reference])
    label = set_label(center.catalog, sha256, verdict=verdict,
                      family=canonical(family) if family else None, note=note, author=author)
    data = {"sha256": sha256, "verdict": label.verdict, "family": label.family,
            "note": label.note, "author": label.author, "created": label.created.isoformat()}
    if as_json:
        print_json(data)
    else:
        out.print(f"{sha256}: verdict {label.verdict or '-'}, family "
                  f"{for_console(label.family) or '-'} (by {for_console(author)})")


def similar_command(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="sha256 (or md5/sha1/prefix)."),
    limit: int = typer.Option(10, "--limit", min=1, max=1000),
    as_json: bool = JSON,
) -> None:
    """The samples nearest by TLSH distance (0 = same; under ~70 = close relatives)."""
    center: Center = ctx.obj
    (sha256,) = resolve_references(center, [reference])
    with center.catalog.engine.connect() as conn:
        digest = conn.execute(select(SAMPLE.c.tlsh).where(SAMPLE.c.sha256 == sha256)
                              ).scalar_one_or_none()
        if not digest:
            raise fail(f"{sha256} has no TLSH digest (not analyzed yet, or too small)")
        found = similar(conn, digest, limit=limit, exclude=sha256)
    if as_json:
        print_json([{"sha256": n.sha256, "distance": n.distance, "family": n.family,
                     "verdict": n.verdict} for n in found])
        return
    table = Table("sha256", "TLSH distance", "family", "verdict")
    for n in found:
        table.add_row(n.sha256, str(n.distance), for_console(n.family) or "-", n.verdict or "-")
    out.print(table)
