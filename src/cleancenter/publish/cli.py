"""`cleancenter publish`: put the cleaner and the definitions where the portal serves them."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cleancenter.center import Center
from cleancenter.console import err, fail, out, print_json
from cleancenter.definitions.keys import PUBLIC_NAME, KeyProblem, PublicKey, load_public
from cleancenter.publish import PublishError
from cleancenter.publish.definitions import publish_definitions
from cleancenter.publish.sums import update_sums
from cleancenter.publish.wheel import build_wheel
from cleancenter.publish.zipapp import build_zipapp

publish_app = typer.Typer(help="Build the cleaner and publish it and the definitions into "
                          "the downloads folder the portal serves.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="JSON summary on stdout.")
OUT = typer.Option(None, "--out", help="Folder to publish into (default: "
                   "<data_dir>/downloads).", file_okay=False)


def downloads_dir(center: Center) -> Path:
    return center.settings.data_dir / "downloads"


def _center_key(center: Center) -> Path:
    return center.settings.data_dir / "keys" / PUBLIC_NAME


def _key(center: Center, key_file: Path | None, required: bool) -> PublicKey | None:
    path = key_file or _center_key(center)
    if key_file is None and not path.exists() and not required:
        return None
    try:
        return load_public(path)
    except KeyProblem as exc:
        raise fail(str(exc)) from exc


class _Steps:
    """A Rich progress bar counting the build's steps, on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn(), console=err, disable=not enabled)
        self.task = self.progress.add_task("starting", total=total)
        self.started = False

    def __call__(self, label: str) -> None:
        if self.started:
            self.progress.advance(self.task)
        self.started = True
        self.progress.update(self.task, description=label)

    def __enter__(self) -> _Steps:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.progress.update(self.task, completed=self.progress.tasks[0].total,
                                 description="done")
        self.progress.stop()


@publish_app.command("cleaner")
def publish_cleaner(
    ctx: typer.Context,
    out_dir: Path | None = OUT,
    key_file: Path | None = typer.Option(
        None, "--key", help="Public key to build in as the cleaner's pinned key (default: "
        "the center's <data_dir>/keys/definitions.pub, if there is one).", dir_okay=False),
    no_key: bool = typer.Option(False, "--no-key", help="Build in no key: users must "
                                "`pin` one themselves."),
    no_zipapp: bool = typer.Option(False, "--no-zipapp", help="Build the wheel only."),
    work: Path | None = typer.Option(
        None, "--work", help="Keep the wheelhouse and staging folder here (a second build "
        "reuses the wheelhouse); default: a temporary folder.", file_okay=False),
    as_json: bool = JSON,
) -> None:
    """Build the cleaner's wheel and single-file zipapp, update SHA256SUMS."""
    center: Center = ctx.obj
    target = out_dir or downloads_dir(center)
    key = None if no_key else _key(center, key_file, required=key_file is not None)
    if key is None and not as_json:
        err.print("[yellow]warning:[/] no key built in; users must pin the center's key "
                  "with `cleancenter-cleaner pin definitions.pub`")
    started = time.monotonic()
    try:
        target.mkdir(parents=True, exist_ok=True)
        with _Steps(1 if no_zipapp else 4, enabled=not as_json) as step:
            step("building the wheel")
            wheel = build_wheel(target, key)
            written = {wheel.name: wheel.sha256}
            sums = update_sums(target, written)  # right away: the zipapp may still fail
            zipapp = None
            if not no_zipapp:
                if work is not None:
                    zipapp = build_zipapp(wheel.path, target, work, step=step)
                else:
                    with tempfile.TemporaryDirectory(prefix="cleancenter-publish-") as tmp:
                        zipapp = build_zipapp(wheel.path, target, Path(tmp), step=step)
                written[zipapp.name] = zipapp.sha256
            sums = update_sums(target, written)
    except (PublishError, OSError) as exc:
        raise fail(str(exc)) from exc
    summary = {"wheel": wheel.to_dict(), "zipapp": zipapp.to_dict() if zipapp else None,
               "key_fingerprint": key.fingerprint if key else None, "sums": str(sums),
               "seconds": round(time.monotonic() - started, 1)}
    if as_json:
        print_json(summary)
        return
    for item in (wheel, zipapp):
        if item is not None:
            out.print(f"{item.path}  {item.size:,} bytes  sha256 {item.sha256}")
    out.print(f"requires: {', '.join(wheel.requires)}")
    out.print(f"pinned key: {key.fingerprint if key else 'none'}")
    out.print(f"{sums} updated ({summary['seconds']} s)")


@publish_app.command("definitions")
def publish_definitions_command(
    ctx: typer.Context,
    out_dir: Path | None = OUT,
    bundle: Path | None = typer.Option(None, "--bundle", help="Publish this bundle "
                                       "(default: the newest in <data_dir>/releases).",
                                       exists=True, dir_okay=False),
    key_file: Path | None = typer.Option(None, "--key", help="Verify with this public key "
                                         "(default: the center's).", dir_okay=False),
    as_json: bool = JSON,
) -> None:
    """Verify the newest release and publish it with the public key; update SHA256SUMS."""
    center: Center = ctx.obj
    key = _key(center, key_file, required=True)
    assert key is not None
    try:
        published = publish_definitions(
            key, out_dir or downloads_dir(center),
            releases_dir=center.settings.data_dir / "releases", bundle=bundle)
    except (PublishError, OSError) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(published.to_dict())
        return
    out.print(f"definitions version {published.version} ({published.created}): "
              f"{published.path} and {published.latest.name}, sha256 {published.sha256}")
    out.print(f"public key {published.key_path.name}: fingerprint {published.key_fingerprint}")
    out.print(f"{published.sums} updated")
