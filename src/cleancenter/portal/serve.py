"""``cleancenter serve``: the portal under uvicorn, one process."""

from __future__ import annotations

import logging
import re

import typer

from cleancenter.center import Center
from cleancenter.console import err

# Tokens are in the landing URL, the download link and the typed code; a session's CSRF
# token can be on an upload form's action URL: the access log keeps none of them.
_TOKEN_IN_PATH = re.compile(r"(/n/)[^/?#\s]+")
_TOKEN_IN_QUERY = re.compile(r"([?&](?:t|code|csrf_token)=)[^&#\s]*")


def redact(path: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1[token]", _TOKEN_IN_PATH.sub(r"\1[token]", path))


class RedactTokens(logging.Filter):
    """Rewrites the request line of uvicorn's access log records."""

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
) -> None:
    """Run the portal: landing pages, cleaner downloads, cleaner reports, figures."""
    import uvicorn

    from cleancenter.portal.app import create_app

    center: Center = ctx.obj
    center.catalog  # noqa: B018  # open (and migrate) the catalog before listening
    app = create_app(center, funnel_ttl=funnel_cache)
    config = uvicorn.Config(app, host=host, port=port, server_header=False,
                            log_level="info")
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    err.print(f"cleancenter portal on http://{host}:{port}/ (data: {center.settings.data_dir})")
    uvicorn.Server(config).run()
