"""Hashes: the cryptographic ones, and the fuzzy ones that relate variants.

ssdeep comes from its C library (the `ssdeep` binding, built against Debian's
libfuzzy-dev); the pure-Python alternative measured about 75x slower, so without the
binding the report simply has no ssdeep (and says so). TLSH needs at least 50 bytes with
some variety; below that it is None.
"""

from __future__ import annotations

import hashlib
from functools import cache
from types import ModuleType

import tlsh

from cleancenter.analyze.report import Hashes


@cache
def _ssdeep() -> ModuleType | None:
    try:
        import ssdeep
    except ImportError:
        return None
    module: ModuleType = ssdeep
    return module


def ssdeep_available() -> bool:
    return _ssdeep() is not None


def fuzzy_hashes(data: bytes) -> tuple[str | None, str | None]:
    """(ssdeep, tlsh) of ``data``; either may be None."""
    module = _ssdeep()
    ssdeep_digest = str(module.hash(data)) if module is not None and data else None
    tlsh_digest: str | None = None
    if len(data) >= 50:
        digest = tlsh.hash(data)
        tlsh_digest = digest if digest and digest != "TNULL" else None
    return ssdeep_digest, tlsh_digest


def compute_hashes(data: bytes, imphash: str | None = None) -> Hashes:
    ssdeep_digest, tlsh_digest = fuzzy_hashes(data)
    return Hashes(
        md5=hashlib.md5(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        ssdeep=ssdeep_digest,
        tlsh=tlsh_digest,
        imphash=imphash,
    )


def tlsh_distance(a: str, b: str) -> int:
    """TLSH distance (0 = same; under ~50-100 = close relatives)."""
    return int(tlsh.diff(a, b))
