"""`cleancenter keys` and `cleancenter definitions`: sign what the center knows."""

from __future__ import annotations

from pathlib import Path

import typer

from cleancenter.center import Center
from cleancenter.console import EXIT_ERROR, RichProgress, fail, out, print_json
from cleancenter.definitions import clamav
from cleancenter.definitions.build import BuildProblem, BuiltRelease, build_release
from cleancenter.definitions.bundle import BundleError, read_bundle
from cleancenter.definitions.goodware import (
    DEFAULT_MAX_SIZE,
    GoodwareError,
    GoodwareIndex,
    build_index,
    index_path,
    load_index,
)
from cleancenter.definitions.keys import PUBLIC_NAME, KeyProblem, init_keys, load_public
from cleancenter.textsafe import for_console

keys_app = typer.Typer(help="The Ed25519 key that signs definitions.", no_args_is_help=True)
definitions_app = typer.Typer(help="Signed definitions for the cleaner.", no_args_is_help=True)
goodware_app = typer.Typer(help="The index of benign strings that rule generation avoids.",
                           no_args_is_help=True)
definitions_app.add_typer(goodware_app, name="goodware")
JSON = typer.Option(False, "--json", help="JSON output.")
MAX_REFUSALS_SHOWN = 20


def keys_dir(center: Center) -> Path:
    return center.settings.data_dir / "keys"


@keys_app.command("init")
def keys_init(ctx: typer.Context, force: bool = typer.Option(
        False, "--force", help="Replace an existing key (cleaners pinned the old one!)."),
        as_json: bool = JSON) -> None:
    """Make the signing key pair (private key mode 0600 in the data dir)."""
    try:
        public = init_keys(keys_dir(ctx.obj), force=force)
    except KeyProblem as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json({"public_key": public.text(), "fingerprint": public.fingerprint})
    else:
        out.print(f"public key: {public.text()}\nfingerprint (sha256): {public.fingerprint}")


@keys_app.command("show")
def keys_show(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The public key and its fingerprint, to publish and to pin in cleaners."""
    try:
        public = load_public(keys_dir(ctx.obj) / PUBLIC_NAME)
    except KeyProblem as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json({"public_key": public.text(), "fingerprint": public.fingerprint})
    else:
        out.print(f"public key: {public.text()}\nfingerprint (sha256): {public.fingerprint}")


@definitions_app.command("build")
def definitions_build(
    ctx: typer.Context,
    out_file: Path | None = typer.Option(None, "--out", help="Where to write the bundle."),
    no_generate: bool = typer.Option(False, "--no-generate",
                                     help="Do not generate rules for uncovered families."),
    as_json: bool = JSON,
) -> None:
    """Build and sign a new release (its version is one more than the last).

    Families no registered pack detects get a generated rule when a goodware index exists
    (see `definitions goodware build`); the coverage report says which did and why not.
    """
    center: Center = ctx.obj
    try:
        goodware = None if no_generate else load_index(center.settings.data_dir)
        with RichProgress(enabled=not as_json) as progress:
            built = build_release(
                center.catalog, keys_dir=keys_dir(center),
                rules_registry=center.settings.data_dir / "rules", out=out_file,
                releases_dir=center.settings.data_dir / "releases", blobs=center.blobs,
                goodware=goodware, generate=not no_generate, progress=progress)
    except (KeyProblem, GoodwareError, BuildProblem) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(built.to_dict())
    else:
        out.print(f"definitions version {built.version}: {built.path} (sha256 {built.sha256})")
        out.print(", ".join(f"{k} {v}" for k, v in built.counts.items()))
        _print_coverage(built)


def _print_coverage(built: BuiltRelease) -> None:
    coverage = built.coverage
    if coverage is None:
        return
    out.print(f"coverage: {coverage.families} families, {len(coverage.by_packs)} by rule "
              f"packs, {len(coverage.generated)} by generated rules, {len(coverage.refused)} "
              f"refused, {len(coverage.uncovered)} uncovered"
              + (f"; {coverage.without_family} malicious samples without a family"
                 if coverage.without_family else ""))
    if coverage.generation != "ran":
        out.print(f"rule generation did not run: {for_console(coverage.generation)}")
    if built.generation is not None:
        gen = built.generation
        out.print(f"rule generation: {gen.seconds:.1f} s, {gen.goodware_files} goodware files "
                  f"x {gen.goodware_passes} pass(es)"
                  + (f", {gen.goodware_missing} gone since indexing"
                     if gen.goodware_missing else ""))
        for rule in gen.rules:
            out.print(f"  [green]generated[/] {for_console(rule.family)}: {rule.name} "
                      f"({len(rule.strings)} strings, {rule.threshold} needed, "
                      f"{len(rule.members)} members)")
    for refusal in coverage.refused[:MAX_REFUSALS_SHOWN]:
        out.print(f"  [yellow]refused[/] {for_console(refusal.family)}: "
                  f"{for_console(refusal.reason)}")
    if len(coverage.refused) > MAX_REFUSALS_SHOWN:
        out.print(f"  ... and {len(coverage.refused) - MAX_REFUSALS_SHOWN} more refused "
                  "(see --json)")


@definitions_app.command("export-clamav")
def definitions_export_clamav(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="A definitions bundle (.ccdef)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for cleancenter.hsb/.ndb "
                                 "(load it with clamscan -d)."),
    public_key: Path | None = typer.Option(None, "--public-key",
                                           help="Pinned key (default: this center's)."),
    as_json: bool = JSON,
) -> None:
    """Verify a bundle, then write its ClamAV .hsb/.ndb files to a folder.

    Each file is written atomically; exit 2 on any fault (nothing is written then).
    """
    try:
        key = load_public(public_key or keys_dir(ctx.obj) / PUBLIC_NAME)
        verified = read_bundle(bundle, key)
        missing = [n for n in (clamav.BUNDLE_HSB, clamav.BUNDLE_NDB) if n not in verified.files]
        if missing:
            raise clamav.ExportProblem(f"the bundle has no {', '.join(missing)} (built by an "
                                       "older center?); build a new release")
        exported = clamav.export_files(
            {clamav.HSB_NAME: verified.files[clamav.BUNDLE_HSB],
             clamav.NDB_NAME: verified.files[clamav.BUNDLE_NDB]}, out_dir)
    except (KeyProblem, BundleError, clamav.ExportProblem, OSError) as exc:
        if as_json:
            print_json({"ok": False, "error": str(exc)})
            raise typer.Exit(EXIT_ERROR) from exc
        raise fail(str(exc)) from exc
    data = {"ok": True, "version": verified.version, **exported.to_dict()}
    if as_json:
        print_json(data)
    else:
        out.print(f"[green]OK[/]: version {verified.version} -> {for_console(str(out_dir))}: "
                  f"{exported.files[clamav.HSB_NAME]} hash signatures, "
                  f"{exported.files[clamav.NDB_NAME]} byte patterns "
                  f"(clamscan -d {for_console(str(out_dir))} ...)")


@goodware_app.command("build")
def goodware_build(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files and folders of benign programs."),
    max_size: int = typer.Option(DEFAULT_MAX_SIZE >> 20, "--max-size", min=1,
                                 help="Skip files larger than this many MiB."),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Worker processes (default: one per core)."),
    as_json: bool = JSON,
) -> None:
    """Index the strings of benign files (replaces the center's index).

    Unreadable files are listed as errors and the rest is indexed; exit 1 then.
    """
    center: Center = ctx.obj
    with RichProgress(enabled=not as_json) as progress:
        index = build_index(paths, max_size=max_size << 20, workers=workers, progress=progress)
    path = index_path(center.settings.data_dir)
    try:
        index.save(path)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc}") from exc
    _show_index(index, path, as_json)
    if index.errors:
        raise typer.Exit(1)


@goodware_app.command("show")
def goodware_show(ctx: typer.Context, as_json: bool = JSON) -> None:
    """What the center's goodware index holds."""
    center: Center = ctx.obj
    path = index_path(center.settings.data_dir)
    try:
        index = GoodwareIndex.load(path)
    except GoodwareError as exc:
        raise fail(str(exc)) from exc
    _show_index(index, path, as_json)


def _show_index(index: GoodwareIndex, path: Path, as_json: bool) -> None:
    summary = {"path": str(path), **index.summary()}
    if as_json:
        print_json(summary)
        return
    out.print(f"goodware index {for_console(str(path))}: {len(index.files)} files, "
              f"{index.total_bytes / 1e6:.1f} MB, {len(index.hashes)} distinct strings, "
              f"built in {index.seconds:.1f} s")
    if index.skipped:
        out.print("skipped: " + ", ".join(f"{k} {v}" for k, v in index.skipped.items()))
    for error in index.errors[:MAX_REFUSALS_SHOWN]:
        out.print(f"[yellow]error[/] {for_console(error.path)}: {for_console(error.message)}")
    if len(index.errors) > MAX_REFUSALS_SHOWN:
        out.print(f"... and {len(index.errors) - MAX_REFUSALS_SHOWN} more errors (see --json)")


@definitions_app.command("verify")
def definitions_verify(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="A definitions bundle (.ccdef)."),
    public_key: Path | None = typer.Option(None, "--public-key",
                                           help="Pinned key (default: this center's)."),
    as_json: bool = JSON,
) -> None:
    """Check the signature and every file; exit 2 on any fault."""
    try:
        key = load_public(public_key or keys_dir(ctx.obj) / PUBLIC_NAME)
        verified = read_bundle(bundle, key)
    except (KeyProblem, BundleError) as exc:
        if as_json:
            print_json({"ok": False, "error": str(exc)})
            raise typer.Exit(EXIT_ERROR) from exc
        raise fail(str(exc)) from exc
    data = {"ok": True, "version": verified.version, "counts": verified.manifest["counts"],
            "key_fingerprint": key.fingerprint, "files": len(verified.files)}
    if as_json:
        print_json(data)
    else:
        out.print(f"[green]OK[/]: version {verified.version}, {len(verified.files)} files, "
                  f"signed by {for_console(key.fingerprint)}")
