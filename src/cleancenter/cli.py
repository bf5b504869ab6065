"""The `cleancenter` command: one Typer app, one sub-command group per stage of the loop."""

from __future__ import annotations

from pathlib import Path

import typer

from cleancenter import __version__
from cleancenter.analyze.cli import analyze_command, mark_command, rules_app, similar_command
from cleancenter.center import Center
from cleancenter.collect.cli import ingest_app
from cleancenter.config import SETTINGS, ConfigError, load_settings
from cleancenter.console import EXIT_ERROR, err, out, print_json
from cleancenter.definitions.cli import definitions_app, keys_app
from cleancenter.demo import demo_command
from cleancenter.jobs.cli import jobs_app, worker_command
from cleancenter.notify.cli import isp_app, notify_app
from cleancenter.notify.isp.cli import isp_side_app
from cleancenter.portal.auth.cli import tokens_app, users_app
from cleancenter.portal.serve import serve_command
from cleancenter.publish.cli import publish_app
from cleancenter.share.cli import share_app
from cleancenter.store.blobs import BlobError
from cleancenter.store.catalog import CatalogError
from cleancenter.store.cli import events_app, samples_app, store_app
from cleancenter.textsafe import printable

app = typer.Typer(
    name="cleancenter",
    help="A bot countermeasure center: collect bots and attacks, store and analyse them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"cleancenter {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML settings file (default: $CLEANCENTER_CONFIG or "
        "./cleancenter.toml)", exists=True, dir_okay=False),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data folder."),
    database_url: str | None = typer.Option(None, "--database-url", help="Catalog URL."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    try:
        settings = load_settings(config, {"data_dir": data_dir, "database_url": database_url})
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    center = Center(settings)
    ctx.obj = center
    ctx.call_on_close(center.close)


@config_app.command("show")
def config_show(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """Print each setting, its value and where the value came from."""
    center: Center = ctx.obj
    rows = [center.settings.sources[name] for name in SETTINGS]
    if as_json:
        print_json({s.name: {"value": s.value, "source": s.source} for s in rows})
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("setting", "value", "source", "meaning")
    for s in rows:  # Text, not markup: values and help hold brackets ("s3://B[/P]")
        table.add_row(*(Text(printable(str(cell))) for cell in
                        (s.name, s.value, s.source, SETTINGS[s.name])))
    out.print(table)


app.add_typer(config_app, name="config")
app.add_typer(store_app, name="store")
app.add_typer(samples_app, name="samples")
app.add_typer(events_app, name="events")
app.add_typer(ingest_app, name="ingest")
app.command("analyze")(analyze_command)
app.add_typer(rules_app, name="rules")
app.add_typer(keys_app, name="keys")
app.add_typer(definitions_app, name="definitions")
app.add_typer(notify_app, name="notify")
app.add_typer(isp_app, name="isp")
app.add_typer(isp_side_app, name="isp-side")
app.add_typer(publish_app, name="publish")
app.add_typer(share_app, name="share")
samples_app.command("mark")(mark_command)
samples_app.command("similar")(similar_command)
app.command("demo")(demo_command)
app.command("serve")(serve_command)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.command("worker")(worker_command)
app.add_typer(jobs_app, name="jobs")


def main() -> None:
    try:
        app()
    except (CatalogError, ConfigError, BlobError) as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        raise SystemExit(EXIT_ERROR) from exc
