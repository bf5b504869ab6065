"""Access control of the portal: users, API tokens, sessions, roles.

    from cleancenter.portal.auth import Principal, require

`Principal` (who is asking) and `require` (a FastAPI dependency: ``Depends(require(
"analyst"))``) are the stable names; `current_principal` gives the caller or None.

The store (`cleancenter.portal.auth.store`) and the CLI do not load the web stack;
`require` and `current_principal` are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cleancenter.portal.auth.principal import Principal
from cleancenter.portal.auth.settings import AccessSettings

if TYPE_CHECKING:
    from cleancenter.portal.auth.deps import current_principal, require

__all__ = ["AccessSettings", "Principal", "current_principal", "require"]


def __getattr__(name: str) -> Any:
    if name in ("require", "current_principal"):
        from cleancenter.portal.auth import deps

        return getattr(deps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
