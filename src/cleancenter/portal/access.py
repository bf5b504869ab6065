"""Puts access control and the v1 APIs into the portal app (called by ``create_app``).

Middleware order, outermost first: security headers, rate limits (so a refused request
costs no database work), then who is asking and the CSRF check, then the routes.
"""

from __future__ import annotations

from fastapi import FastAPI

from cleancenter.center import Center
from cleancenter.portal import api_definitions, api_isp, api_samples
from cleancenter.portal.auth import routes as auth_routes
from cleancenter.portal.auth.deps import LoginRequired, login_redirect
from cleancenter.portal.auth.middleware import AccessMiddleware
from cleancenter.portal.auth.settings import AccessSettings
from cleancenter.portal.ratelimit import RateLimitMiddleware, default_rules


def install_access(app: FastAPI, center: Center, settings: AccessSettings) -> None:
    """Call before adding the security headers middleware (so it wraps these)."""
    app.state.access = settings
    app.add_middleware(AccessMiddleware, center=center, settings=settings)
    app.add_middleware(RateLimitMiddleware, rules=default_rules(settings),
                       enabled=settings.rate_limits)
    app.add_exception_handler(LoginRequired, login_redirect)
    app.include_router(auth_routes.router)
    app.include_router(api_samples.router)
    app.include_router(api_samples.upload_router, max_body_size=settings.upload_limit)
    app.include_router(api_definitions.router)
    app.include_router(api_isp.router)
    app.include_router(api_isp.upload_router, max_body_size=settings.sent_report_limit)
