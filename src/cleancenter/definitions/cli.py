"""`cleancenter keys` and `cleancenter definitions`: sign what the center knows."""

from __future__ import annotations

from pathlib import Path

import typer

from cleancenter.center import Center
from cleancenter.console import EXIT_ERROR, fail, out, print_json
from cleancenter.definitions.build import build_release
from cleancenter.definitions.bundle import BundleError, read_bundle
from cleancenter.definitions.keys import PUBLIC_NAME, KeyProblem, init_keys, load_public
from cleancenter.textsafe import for_console

keys_app = typer.Typer(help="The Ed25519 key that signs definitions.", no_args_is_help=True)
definitions_app = typer.Typer(help="Signed definitions for the cleaner.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="JSON output.")


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
    as_json: bool = JSON,
) -> None:
    """Build and sign a new release (its version is one more than the last)."""
    center: Center = ctx.obj
    try:
        built = build_release(
            center.catalog, keys_dir=keys_dir(center),
            rules_registry=center.settings.data_dir / "rules", out=out_file,
            releases_dir=center.settings.data_dir / "releases")
    except KeyProblem as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(built.to_dict())
    else:
        out.print(f"definitions version {built.version}: {built.path} (sha256 {built.sha256})")
        out.print(", ".join(f"{k} {v}" for k, v in built.counts.items()))


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
