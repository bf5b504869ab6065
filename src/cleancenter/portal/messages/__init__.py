"""The portal's texts, one module per area of the site, each with ``JA`` and ``EN`` dicts.

A new area adds its module to `AREAS`; `cleancenter.portal.i18n` merges them and refuses
a key defined twice.
"""

from __future__ import annotations

from types import ModuleType

from cleancenter.portal.messages import analyst, auth, public, public_figures

AREAS: tuple[ModuleType, ...] = (public, auth, public_figures, analyst)
