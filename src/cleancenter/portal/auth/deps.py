"""FastAPI dependencies: who is asking, and may they.

    from cleancenter.portal.auth import Principal, require

    @router.get("/analyst/")
    def page(principal: Principal = Depends(require("analyst"))) -> Response: ...

    router = APIRouter(dependencies=[Depends(require("analyst"))])

Anonymous: 401 for API requests (and for anything but a GET/HEAD of a page), a 303 to
``/login?next=<this page>`` for a page. Signed in but without the role: 403. ``admin``
passes every check; ``isp`` accepts any ``isp:NAME`` (which ISP it is comes from the role;
see `cleancenter.portal.api_isp.scoped_isp`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from cleancenter.portal.auth.principal import Principal

API_PREFIX = "/api/"


class LoginRequired(HTTPException):
    """An anonymous visitor of a page: sent to the login form (see `login_redirect`)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(303, "sign in first",
                         headers={"Location": "/login?" + urlencode({"next": next_path})})


def current_principal(request: Request) -> Principal | None:
    """The caller, as `AccessMiddleware` found it (None: anonymous, or no middleware)."""
    principal = getattr(request.state, "principal", None)
    return principal if isinstance(principal, Principal) else None


def wants_page(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and not request.url.path.startswith(API_PREFIX)


def require(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency giving the caller if it has one of ``roles`` (any caller if none)."""
    wanted = tuple(roles)

    async def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal is None:
            if wants_page(request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRequired(target)
            raise HTTPException(401, "authentication required",
                                headers={"WWW-Authenticate": 'Bearer realm="cleancenter"'})
        if wanted and not any(principal.has_role(role) for role in wanted):
            raise HTTPException(403, "not allowed for this role")
        return principal

    dependency.__name__ = "require_" + "_or_".join(r.replace(":", "_") for r in wanted or ("any",))
    return dependency


async def login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse((exc.headers or {})["Location"], status_code=303,
                            headers={"Cache-Control": "no-store"})
