"""The analyst views of the portal (issue #6 section 2): signed-in analysts only.

Samples (search, one sample with its report, STIX/MISP exports), families, events,
infected hosts, definition releases (build, sign, publish) and uploads. Every route
depends on ``require("analyst")`` (admins pass too). Everything a sample or a log
controls is made inert before a template sees it (`common.inert`): control and bidi
characters shown as escapes, and Jinja's autoescape does the rest; nothing is ever
marked safe.

``install(app)`` includes the routers; the upload router gets the same body limit as
the samples API (``AccessSettings.upload_limit``).
"""

from __future__ import annotations

from fastapi import FastAPI

from cleancenter.portal.analyst.activity import router as activity_router
from cleancenter.portal.analyst.releases import router as releases_router
from cleancenter.portal.analyst.samples import router as samples_router
from cleancenter.portal.analyst.upload import router as upload_form_router
from cleancenter.portal.analyst.upload import upload_router
from cleancenter.portal.auth.settings import AccessSettings


def install(app: FastAPI) -> None:
    """Call after `install_access` (it sets ``app.state.access``)."""
    settings = getattr(app.state, "access", None)
    limit = settings.upload_limit if isinstance(settings, AccessSettings) \
        else AccessSettings().upload_limit
    app.include_router(samples_router)
    app.include_router(activity_router)
    app.include_router(releases_router)
    app.include_router(upload_form_router)
    app.include_router(upload_router, max_body_size=limit)
