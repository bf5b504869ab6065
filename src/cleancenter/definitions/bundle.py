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
MAX_TOTAL = 1 << 30
MAX_MANIFEST = 16 << 20


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
    """Open and verify a bundle; raises `BundleError` on any fault.

    Only the manifest and the signature are read before the signature is checked (both
    small, capped): an unsigned bundle cannot make us inflate anything. Then only the
    members the signed manifest lists are read, each and all together within a cap."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: not a readable bundle: {exc}") from exc
    with zf:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if info.filename in infos:
                raise BundleError(f"{info.filename}: appears twice in the bundle")
            infos[info.filename] = info
        if MANIFEST not in infos or SIGNATURE not in infos:
            raise BundleError("unsigned bundle: manifest or signature missing")
        manifest_bytes = _member(zf, infos[MANIFEST], MAX_MANIFEST)
        signature = _member(zf, infos[SIGNATURE], 1024)
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
        members = {}
        total = 0
        for name in sorted((set(infos) - {MANIFEST, SIGNATURE}) | set(listed)):
            if name not in listed:
                raise BundleError(f"{name}: in the bundle but not in the signed manifest")
            if name not in infos:
                raise BundleError(f"{name}: in the manifest but missing from the bundle")
            total += infos[name].file_size
            if total > MAX_TOTAL:
                raise BundleError(f"the bundle expands past {MAX_TOTAL >> 20} MB")
            members[name] = _member(zf, infos[name], MAX_MEMBER)
            if hashlib.sha256(members[name]).hexdigest() != listed[name]:
                raise BundleError(f"{name}: content differs from the signed manifest")
    bundle = Bundle(manifest=manifest, files=members)
    if not_older_than is not None and bundle.version < not_older_than:
        raise BundleError(f"version {bundle.version} is older than {not_older_than} "
                          "(rollback refused)")
    return bundle


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """One member, refusing to inflate past ``cap`` whatever its header declares."""
    if info.file_size > cap:
        raise BundleError(f"{info.filename}: too large for a definitions file")
    try:
        with zf.open(info) as member:
            data = member.read(cap + 1)
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as exc:
        raise BundleError(f"{info.filename}: unreadable: {exc}") from exc
    if len(data) > cap:
        raise BundleError(f"{info.filename}: inflates past its declared size")
    return data
