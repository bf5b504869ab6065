"""The definitions bundle: a zip of plain files, a manifest naming each file's sha256,
and an Ed25519 signature over the manifest.

Signing the manifest signs everything: a file that differs from its manifest hash, a file
the manifest does not name, or a manifest whose signature fails is a refused bundle. The
zip is written deterministically (sorted names, fixed times) so one content gives one
bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleancenter.atomicfile import write_atomically
from cleancenter.definitions.keys import PublicKey, public_of

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)
MAX_MEMBER = 512 << 20


class BundleError(Exception):
    """The bundle is not to be trusted; the message says why."""


@dataclass
class Bundle:
    """A bundle's contents once verified (or before signing)."""

    manifest: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    def json(self, name: str) -> Any:
        return json.loads(self.files[name])

    def jsonl(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.files[name].splitlines() if line.strip()]


def write_bundle(path: Path, manifest: dict[str, Any], files: dict[str, bytes],
                 key: Ed25519PrivateKey) -> str:
    """Sign and write a bundle atomically; returns its sha256."""
    for name in files:
        _check_name(name)
    manifest = dict(manifest, format=FORMAT, key_fingerprint=public_of(key).fingerprint,
                    files={name: hashlib.sha256(data).hexdigest()
                           for name, data in sorted(files.items())})
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    signature = key.sign(manifest_bytes)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [(MANIFEST, manifest_bytes), (SIGNATURE, signature),
                           *sorted(files.items())]:
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o444 << 16
            zf.writestr(info, data)
    data = buffer.getvalue()
    write_atomically(path, data)
    return hashlib.sha256(data).hexdigest()


def _check_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    if not name or name.startswith("/") or ".." in parts or "\\" in name or \
            name in (MANIFEST, SIGNATURE):
        raise BundleError(f"bad file name in bundle: {name!r}")


def read_bundle(path: Path, public_key: PublicKey, *, not_older_than: int | None = None
                ) -> Bundle:
    """Open and verify a bundle; raises `BundleError` on any fault."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: not a readable bundle: {exc}") from exc
    with zf:
        members = {}
        for info in zf.infolist():
            if info.file_size > MAX_MEMBER:
                raise BundleError(f"{info.filename}: too large for a definitions file")
            if info.filename in members:
                raise BundleError(f"{info.filename}: appears twice in the bundle")
            try:
                members[info.filename] = zf.read(info)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise BundleError(f"{info.filename}: unreadable: {exc}") from exc
    manifest_bytes = members.pop(MANIFEST, None)
    signature = members.pop(SIGNATURE, None)
    if manifest_bytes is None or signature is None:
        raise BundleError("unsigned bundle: manifest or signature missing")
    if not public_key.verify(signature, manifest_bytes):
        raise BundleError("signature does not match the pinned public key "
                          f"({public_key.fingerprint[:16]}...): tampered, or another key")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:  # signed garbage: still refuse
        raise BundleError(f"manifest is not JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BundleError(f"bundle format {manifest.get('format')!r} is not {FORMAT}")
    listed: dict[str, str] = manifest.get("files", {})
    for name in sorted(set(members) | set(listed)):
        if name not in listed:
            raise BundleError(f"{name}: in the bundle but not in the signed manifest")
        if name not in members:
            raise BundleError(f"{name}: in the manifest but missing from the bundle")
        if hashlib.sha256(members[name]).hexdigest() != listed[name]:
            raise BundleError(f"{name}: content differs from the signed manifest")
    bundle = Bundle(manifest=manifest, files=members)
    if not_older_than is not None and bundle.version < not_older_than:
        raise BundleError(f"version {bundle.version} is older than {not_older_than} "
                          "(rollback refused)")
    return bundle
