"""What the routes share: the center, the downloads folder, cached figures, templates."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from cleancenter.center import Center
from cleancenter.notify.funnel import FunnelFigures, funnel
from cleancenter.portal.downloads import Downloads


class FunnelCache:
    """The funnel figures, recomputed at most every ``ttl`` seconds.

    `funnel` looks at every notice, so the public pages do not run it on each hit. A step
    recorded by this process clears the cache at once; another worker's steps show after
    ``ttl`` at most."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: list[FunnelFigures] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self, center: Center) -> list[FunnelFigures]:
        with self._lock:
            if self._value is not None and time.monotonic() - self._at < self.ttl:
                return self._value
            with center.catalog.engine.connect() as conn:
                self._value = funnel(conn)
            self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None


@dataclass
class PortalState:
    center: Center
    downloads: Downloads
    funnel: FunnelCache
    extra: dict[str, Any] = field(default_factory=dict)  # for later parts of the portal


def portal_state(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state
