"""Signed definitions bundles for the cleaner's tests, written with the center's own writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleancenter.definitions.behaviour import behaviour_rules
from cleancenter.definitions.bundle import write_bundle
from cleancenter.definitions.keys import PublicKey, public_of


def make_bundle(path: Path, key: Ed25519PrivateKey, *, version: int = 1,
                hashes: dict[str, str | None] | None = None,
                iocs: dict[str, list[str]] | None = None,
                rules: dict[str, str] | None = None,
                min_cleaner_version: str = "0.1.0") -> Path:
    """A bundle like `definitions build` makes: ``hashes`` maps sha256 to family."""
    lines = "".join(json.dumps({"sha256": sha, "size": None, "family": family}) + "\n"
                    for sha, family in sorted((hashes or {}).items()))
    files: dict[str, bytes] = {
        "hashes.jsonl": lines.encode(),
        "iocs.json": json.dumps(iocs or {}).encode(),
        "behaviour.json": json.dumps(behaviour_rules()).encode(),
    }
    for name, text in (rules or {}).items():
        files[f"rules/{name}"] = text.encode()
    manifest: dict[str, Any] = {"version": version, "created": "2026-11-25T00:00:00+00:00",
                                "min_cleaner_version": min_cleaner_version,
                                "counts": {"hashes": len(hashes or {})}}
    write_bundle(path, manifest, files, key)
    return path


def new_key() -> tuple[Ed25519PrivateKey, PublicKey]:
    key = Ed25519PrivateKey.generate()
    return key, public_of(key)
