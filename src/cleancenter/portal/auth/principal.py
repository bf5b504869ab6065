"""Who is asking: a signed-in user (session cookie) or an API token (bearer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cleancenter.portal.auth.store import ADMIN, ISP_PREFIX

ANY_ISP = "isp"  # require("isp"): any isp:NAME role


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``csrf`` is the session's CSRF token (users only)."""

    kind: Literal["user", "token"]
    name: str  # the user's name, or the token's name
    id: str  # the user's name, or the token's public id
    roles: frozenset[str]
    csrf: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def via_session(self) -> bool:
        return self.kind == "user"

    @property
    def isps(self) -> tuple[str, ...]:
        """The ISPs whose data this caller may see as that ISP (from its roles only)."""
        return tuple(sorted(r.removeprefix(ISP_PREFIX) for r in self.roles
                            if r.startswith(ISP_PREFIX)))

    def has_role(self, role: str) -> bool:
        """``admin`` passes every check; ``isp`` means any ``isp:NAME``."""
        if self.is_admin or role in self.roles:
            return True
        return role == ANY_ISP and bool(self.isps)

    def to_dict(self) -> dict[str, Any]:
        """What the caller may know about itself (no secrets)."""
        return {"kind": self.kind, "name": self.name, "id": self.id,
                "roles": sorted(self.roles)}
