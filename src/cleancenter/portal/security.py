"""Headers every response carries, and the request-body limit of the JSON APIs.

Tokens travel in URLs (``/n/<token>``, ``?t=<token>``), so no page may leak its address:
``Referrer-Policy: no-referrer``. Pages load nothing but their own files: the CSP allows
``'self'`` only, with no inline script or style at all.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

# Pages and files reached with a token must not be kept by shared caches or indexed.
PRIVATE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


class SecurityHeadersMiddleware:
    """Pure ASGI (no buffering), so file downloads stream as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        # A NUL byte is never part of a name, hash or date we look up, and PostgreSQL
        # refuses it in text: one clear 400 here instead of a 500 deep in a query.
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"").upper():
            response = PlainTextResponse("a NUL byte is not allowed in a request",
                                         status_code=400)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to be larger than ``limit``.

    A declared Content-Length over the limit is refused before anything is read; a
    chunked body is counted while it arrives, so it is never held whole in memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "bad Content-Length")
        if int(declared) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
