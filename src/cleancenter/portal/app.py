"""The application factory: one FastAPI app for the whole portal.

Routes come in routers (``pages``: public HTML, ``api``: JSON). A later part adds
analyst views behind a login as routers of their own; the route inventory test lists
which routes are public.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from cleancenter import __version__
from cleancenter.center import Center
from cleancenter.config import Settings
from cleancenter.portal import analyst, api, pages
from cleancenter.portal.access import install_access
from cleancenter.portal.auth.settings import AccessSettings
from cleancenter.portal.downloads import Downloads
from cleancenter.portal.render import make_templates, render
from cleancenter.portal.security import SecurityHeadersMiddleware
from cleancenter.portal.state import FunnelCache, PortalState
from cleancenter.store.blobs import BlobError

STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/"
# No route takes a larger body yet; a later upload route raises its own limit.
MAX_BODY_BYTES = 64 * 1024


def downloads_dir(settings: Settings) -> Path:
    return settings.data_dir / "downloads"


def create_app(center_or_settings: Center | Settings, *, funnel_ttl: float = 30.0,
               access: AccessSettings | None = None) -> FastAPI:
    """The portal for a center. Given `Settings`, the app opens the center itself and
    closes it at shutdown; a given `Center` stays the caller's to close. ``access``:
    sessions, body and rate limits (default: `AccessSettings.from_env`)."""
    owned = isinstance(center_or_settings, Settings)
    center = Center(center_or_settings) if isinstance(center_or_settings, Settings) \
        else center_or_settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                center.close()

    app = FastAPI(
        title="cleancenter portal",
        version=__version__,
        summary="The public site and APIs of a cleancenter bot countermeasure center.",
        # Swagger UI and ReDoc load their scripts from a CDN: not here. The schema stays.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.portal = PortalState(center=center,
                                   downloads=Downloads(downloads_dir(center.settings)),
                                   funnel=FunnelCache(funnel_ttl))
    app.state.templates = make_templates()
    install_access(app, center, access or AccessSettings.from_env())  # logins, v1 APIs
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(BlobError, _blob_store_down)  # type: ignore[arg-type]
    app.include_router(pages.router)
    app.include_router(api.router)
    analyst.install(app)  # analyst views (login required)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def route_inventory(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers; a mount shows as ("MOUNT", path)."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        methods = route.methods
        if methods is None:
            found.add(("MOUNT", path))
        else:
            found.update((method, path) for method in methods)
    return found


async def _blob_store_down(request: Request, exc: BlobError) -> Response:
    """The blob store (an S3 bucket, say) failed: 503, the details in the server's log
    only (they name internal hosts)."""
    logging.getLogger("cleancenter.portal").error("blob store: %s", exc)
    return await _http_error(request, HTTPException(503, "sample storage is unavailable; "
                                                         "try again later"))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """JSON under /api/, a page in the visitor's language elsewhere; never the raw URL."""
    headers = dict(exc.headers or {})
    if request.url.path.startswith(API_PREFIX):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=headers)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return render(request, "error.html", {"status": exc.status_code}, switch_path="/",
                  status_code=exc.status_code, headers=headers)
