"""``cleancenter serve``: the portal under uvicorn, in one process or several.

With ``--workers N`` uvicorn starts N processes on the same socket; each builds the app
from the parent's resolved settings, handed down whole as one JSON variable (so a
``--config`` file or ``--data-dir`` option reaches every process, and nothing else does).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import typer

from cleancenter.center import Center
from cleancenter.config import ENV_PREFIX, Settings, load_settings
from cleancenter.console import err

FUNNEL_TTL_VAR = ENV_PREFIX + "PORTAL_FUNNEL_CACHE"
SETTINGS_VAR = ENV_PREFIX + "SERVE_SETTINGS"  # JSON: the parent's settings, resolved

# Tokens are in the landing URL, the download link and the typed code; a session's CSRF
# token can be on an upload form's action URL: the access log keeps none of them.
_TOKEN_IN_PATH = re.compile(r"(/n/)[^/?#\s]+")
_TOKEN_IN_QUERY = re.compile(r"([?&](?:t|code|csrf_token)=)[^&#\s]*")


def redact(path: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1[token]", _TOKEN_IN_PATH.sub(r"\1[token]", path))


class RedactTokens(logging.Filter):
    """Rewrites the request line of uvicorn's access log records."""

    @classmethod
    def install(cls) -> None:
        access = logging.getLogger("uvicorn.access")
        if not any(isinstance(f, cls) for f in access.filters):
            access.addFilter(cls())

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="address to listen on (behind a proxy: "
                                              "keep loopback)"),
    port: int = typer.Option(8080, min=1, max=65535, help="TCP port"),
    funnel_cache: float = typer.Option(30.0, min=0, help="seconds the public figures are "
                                                          "kept before they are recounted"),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64, help=(
        "server processes on the one socket (about one per core; rate limits and caches "
        "are per process)")),
) -> None:
    """Run the portal: landing pages, cleaner downloads, cleaner reports, figures."""
    import uvicorn

    from cleancenter.portal.app import create_app

    center: Center = ctx.obj
    center.catalog  # noqa: B018  # open (and migrate) the catalog before listening
    err.print(f"cleancenter portal on http://{host}:{port}/ (data: {center.settings.data_dir}"
              + (f", {workers} processes)" if workers > 1 else ")"))
    if workers > 1:
        center.close()
        _hand_down(center, funnel_cache)
        uvicorn.run("cleancenter.portal.serve:app_from_environment", factory=True,
                    host=host, port=port, workers=workers, server_header=False,
                    log_level="info")
        return
    app = create_app(center, funnel_ttl=funnel_cache)
    config = uvicorn.Config(app, host=host, port=port, server_header=False,
                            log_level="info")
    RedactTokens.install()
    uvicorn.Server(config).run()


def _hand_down(center: Center, funnel_cache: float) -> None:
    """The parent's resolved settings, whole, for the server processes: a settings file
    in their working folder or an empty value must not give them other settings."""
    values = {f.name: getattr(center.settings, f.name)
              for f in dataclasses.fields(center.settings) if f.name != "sources"}
    values["data_dir"] = str(values["data_dir"])
    os.environ[SETTINGS_VAR] = json.dumps(values)
    os.environ[FUNNEL_TTL_VAR] = str(funnel_cache)


def settings_from_environment() -> Settings:
    raw = os.environ.get(SETTINGS_VAR)
    if not raw:
        return load_settings()
    values = json.loads(raw)
    values["data_dir"] = Path(values["data_dir"])
    return Settings(**values)


def app_from_environment() -> object:
    """The app factory of each server process of ``serve --workers``."""
    from cleancenter.portal.app import create_app

    RedactTokens.install()
    funnel = float(os.environ.get(FUNNEL_TTL_VAR, "30"))
    return create_app(settings_from_environment(), funnel_ttl=funnel)
