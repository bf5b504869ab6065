"""Token buckets in the process, for the public endpoints that anyone can hit.

Each rule covers a path prefix (and methods) and keys its buckets by the client address
of the TCP connection, or by the bearer token. ``X-Forwarded-For`` and friends are not
trusted: any client can send them. Behind a reverse proxy every request comes from the
proxy's address, so all clients share one bucket per rule; limit at the proxy instead
(and raise or turn off these limits), or run the portal where it sees client addresses.

Buckets live in one process: with N workers a client gets up to N times the rate. A
refused request gets 429 with ``Retry-After`` (whole seconds).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cleancenter.portal.auth.middleware import deny
from cleancenter.portal.auth.settings import AccessSettings

MAX_KEYS = 100_000  # buckets kept per rule before idle ones are dropped


def client_key(address: str) -> str:
    """The bucket of a client address: IPv6 by its /64 (one subscriber's whole LAN can
    take any address of it), IPv4 by the address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@dataclass(frozen=True)
class Rule:
    name: str
    prefix: str
    per_minute: float
    burst: float
    methods: frozenset[str] | None = None  # None: every method
    key: Literal["address", "token"] = "address"

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.prefix) and (self.methods is None or method in self.methods)


class Buckets:
    """Token buckets of one rule: ``burst`` tokens, refilled at ``per_minute``."""

    def __init__(self, per_minute: float, burst: float, max_keys: int = MAX_KEYS) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, now: float) -> float:
        """0 if a token was taken, else the seconds until one is there."""
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            if key not in self._buckets and len(self._buckets) >= self.max_keys:
                self._prune(now)
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Drop buckets that are full again (nobody used them lately), else the oldest."""
        full = [k for k, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[
                    : len(self._buckets) // 2]:
                del self._buckets[key]


def default_rules(settings: AccessSettings) -> list[Rule]:
    return [
        Rule("login", "/login", settings.login_per_minute, max(1.0, settings.login_per_minute),
             frozenset({"POST"})),
        Rule("landing", "/n/", settings.landing_per_minute,
             max(1.0, settings.landing_per_minute / 2)),
        Rule("cleaner-reports", "/api/v1/cleaner-reports", settings.reports_per_minute,
             max(1.0, settings.reports_per_minute / 2)),
        Rule("token", "/api/", settings.token_per_minute,
             max(1.0, settings.token_per_minute / 6), key="token"),
    ]


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, rules: Sequence[Rule], *, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.enabled = enabled
        self.clock = clock
        self.rules = [(rule, Buckets(rule.per_minute, rule.burst)) for rule in rules]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        for rule, buckets in self.rules:
            if not rule.matches(method, path):
                continue
            key = self._key(rule, scope)
            if key is None:
                continue
            wait = buckets.take(key, self.clock())
            if wait > 0:
                response = deny(Request(scope), 429, "too many requests; slow down",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _key(rule: Rule, scope: Scope) -> str | None:
        if rule.key == "token":
            authorization = Headers(scope=scope).get("authorization")
            if not authorization:
                return None
            # as the auth middleware reads it: scheme in any case, value without spaces,
            # so that "Bearer  t" and "bearer t" share the bucket of "Bearer t"
            scheme, _, value = authorization.partition(" ")
            normal = f"{scheme.lower()} {value.strip()}"
            return hashlib.sha256(normal.encode("utf-8", "replace")).hexdigest()
        client = scope.get("client")
        return client_key(str(client[0])) if client else "unknown"
