"""Signing in and out of the portal, and ``GET /api/v1/me``."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cleancenter.portal.auth.deps import current_principal, require
from cleancenter.portal.auth.middleware import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    cookie_is_secure,
)
from cleancenter.portal.auth.principal import Principal
from cleancenter.portal.auth.settings import AccessSettings
from cleancenter.portal.auth.store import authenticate, create_session, end_session
from cleancenter.portal.render import render
from cleancenter.portal.security import PRIVATE_HEADERS
from cleancenter.portal.state import portal_state

router = APIRouter()
LOGIN_FORM_SECONDS = 3600


def access_settings(request: Request) -> AccessSettings:
    settings: AccessSettings = request.app.state.access
    return settings


def safe_next(value: str | None) -> str:
    """A path of this site to go to after signing in; anything else is ``/``."""
    if not value or len(value) > 2000 or not value.startswith("/") \
            or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n\t\\"):
        return "/"
    return value


def _login_page(request: Request, settings: AccessSettings, *, next_path: str,
                problem: str | None = None, status_code: int = 200) -> Response:
    csrf = secrets.token_urlsafe(32)
    principal = current_principal(request)
    response = render(request, "login.html", {
        "csrf": csrf, "next": next_path, "problem": problem,
        "signed_in": principal.name if principal and principal.via_session else None,
    }, status_code=status_code, headers=PRIVATE_HEADERS, switch_path="/login")
    response.set_cookie(LOGIN_COOKIE, csrf, max_age=LOGIN_FORM_SECONDS, path="/login",
                        secure=cookie_is_secure(request, settings), httponly=True,
                        samesite="strict")
    return response


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None,
               settings: AccessSettings = Depends(access_settings)) -> Response:
    return _login_page(request, settings, next_path=safe_next(next))


@router.post("/login", include_in_schema=False)
async def login(request: Request, settings: AccessSettings = Depends(access_settings)
                ) -> Response:
    """Constant-time checks; a wrong name and a wrong password read the same."""
    form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    next_path = safe_next(fields.get("next"))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    given = fields.get(CSRF_FIELD, "")
    if not cookie or not given or not hmac.compare_digest(cookie.encode("utf-8", "replace"),
                                                          given.encode("utf-8", "replace")):
        return _login_page(request, settings, next_path=next_path, problem="auth_expired",
                           status_code=403)
    portal = portal_state(request)
    name, password = fields.get("name", ""), fields.get("password", "")
    old = request.cookies.get(SESSION_COOKIE)

    def sign_in() -> str | None:
        with portal.center.catalog.transaction() as conn:
            user = authenticate(conn, name, password)
            if old:  # never keep a session id from before the login (fixation)
                end_session(conn, old)
            if user is None:
                return None
            session_id, _ = create_session(conn, user.name, idle=settings.session_idle)
            return session_id

    session_id = await run_in_threadpool(sign_in)
    if session_id is None:
        return _login_page(request, settings, next_path=next_path, problem="auth_failed",
                           status_code=401)
    response = RedirectResponse(next_path, status_code=303, headers=PRIVATE_HEADERS)
    secure = cookie_is_secure(request, settings)
    response.set_cookie(SESSION_COOKIE, session_id, path="/", secure=secure, httponly=True,
                        samesite="strict")
    response.delete_cookie(LOGIN_COOKIE, path="/login", secure=secure, httponly=True,
                           samesite="strict")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, settings: AccessSettings = Depends(access_settings)
                 ) -> Response:
    """Ends the session (the CSRF token was checked before this runs)."""
    principal = current_principal(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    if principal is None or not principal.via_session or not session_id:
        return RedirectResponse("/login", status_code=303, headers=PRIVATE_HEADERS)
    portal = portal_state(request)

    def sign_out() -> None:
        with portal.center.catalog.transaction() as conn:
            end_session(conn, session_id)

    await run_in_threadpool(sign_out)
    response = RedirectResponse("/", status_code=303, headers=PRIVATE_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=cookie_is_secure(request, settings),
                           httponly=True, samesite="strict")
    return response


@router.get("/api/v1/me", summary="Who the caller is (name, kind, roles)",
            responses={401: {"description": "no or bad credentials"}})
async def me(principal: Principal = Depends(require())) -> dict[str, Any]:
    return principal.to_dict()
