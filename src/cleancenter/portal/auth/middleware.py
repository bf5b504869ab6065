"""Who is asking, for every request, and the CSRF check of cookie-authenticated writes.

A request with ``Authorization: Bearer <token>`` is that token's (or nobody's, if the token
is unknown or revoked: no fall-back to a cookie). Otherwise a session cookie names a
signed-in user. A request without credentials costs nothing here: no database work.

Every unsafe request (POST, PUT, PATCH, DELETE) authenticated by the cookie must carry the
session's CSRF token: an ``X-CSRF-Token`` header, a ``csrf_token`` field of a urlencoded
form, or, for a multipart form (a browser cannot set headers), ``?csrf_token=`` on the
form's action URL. Otherwise it is refused with 403 before any route sees it. Bearer
requests are exempt: a browser never adds that header by itself.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from anyio import to_thread
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cleancenter.center import Center
from cleancenter.portal.auth.principal import Principal
from cleancenter.portal.auth.settings import AccessSettings
from cleancenter.portal.auth.store import session_lookup, token_lookup
from cleancenter.portal.render import render

SESSION_COOKIE = "cc_session"
LOGIN_COOKIE = "cc_login"  # the login form's double-submit CSRF value (before a session)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATH = "/login"  # checks its own pre-session token
MAX_FORM_BYTES = 64 * 1024
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


def cookie_is_secure(request: Request, settings: AccessSettings) -> bool:
    if settings.secure_cookies != "auto":
        return settings.secure_cookies == "always"
    host = (request.headers.get("host") or "").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return not (request.url.scheme == "http" and name in LOOPBACK_HOSTS)


def deny(request: Request, status: int, detail: str,
         headers: dict[str, str] | None = None) -> Response:
    """JSON under /api/, the error page elsewhere; never the request's own text."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    return render(request, "error.html", {"status": status}, switch_path="/",
                  status_code=status, headers=headers)


class AccessMiddleware:
    """Sets ``request.state.principal`` (a `Principal` or None); enforces CSRF."""

    def __init__(self, app: ASGIApp, center: Center, settings: AccessSettings) -> None:
        self.app = app
        self.center = center
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal = await self._principal(request)
        scope.setdefault("state", {})["principal"] = principal
        if (principal is not None and principal.via_session and scope["method"] in UNSAFE
                and scope["path"] != LOGIN_PATH):
            given, receive = await self._csrf_token(request, receive)
            if given is None or principal.csrf is None or not hmac.compare_digest(
                    given.encode("utf-8", "replace"), principal.csrf.encode()):
                await deny(request, 403, "CSRF token missing or wrong")(scope, receive, send)
                return
        if principal is None:
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            # what a signed-in caller sees (a CSRF token in a page, too) is no cache's
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                headers.add_vary_header("Cookie")
                headers.add_vary_header("Authorization")
            await send(message)

        await self.app(scope, receive, send_private)

    async def _principal(self, request: Request) -> Principal | None:
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return None
            return await to_thread.run_sync(self._from_token, value.strip())
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            return await to_thread.run_sync(self._from_session, session_id)
        return None

    def _from_token(self, text: str) -> Principal | None:
        with self.center.catalog.transaction() as conn:
            token = token_lookup(conn, text)
        if token is None:
            return None
        return Principal("token", token.name, token.id, frozenset({token.role}))

    def _from_session(self, session_id: str) -> Principal | None:
        with self.center.catalog.transaction() as conn:
            session = session_lookup(conn, session_id, idle=self.settings.session_idle,
                                     max_age=self.settings.session_max)
        if session is None:
            return None
        return Principal("user", session.user, session.user, frozenset(session.roles),
                         csrf=session.csrf)

    async def _csrf_token(self, request: Request, receive: Receive
                          ) -> tuple[str | None, Receive]:
        header = request.headers.get(CSRF_HEADER)
        if header:
            return header, receive
        media = Headers(scope=request.scope).get("content-type", "").split(";")[0]
        media = media.strip().lower()
        if media == "multipart/form-data":
            return QueryParams(request.scope.get("query_string", b"")).get(CSRF_FIELD), receive
        if media != "application/x-www-form-urlencoded":
            return None, receive
        body, replay = await _buffer(receive, MAX_FORM_BYTES)
        if body is None:
            return None, replay
        values = parse_qs(body.decode("latin-1"), max_num_fields=200).get(CSRF_FIELD)
        return (values[0] if values else None), replay


async def _buffer(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read a small body whole and hand back a receive that replays it (None: too big)."""
    chunks: list[bytes] = []
    total = 0
    more = True
    messages: list[Message] = []
    while more:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        total += len(chunk)
        chunks.append(chunk)
        more = bool(message.get("more_body", False))
        if total > limit:
            break
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return (b"".join(chunks) if total <= limit else None), replay
