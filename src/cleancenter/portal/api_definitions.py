"""The signed definitions releases, for cleaners and anyone who checks them (public).

Releases are ``<data_dir>/releases/definitions-<N>.ccdef`` (``cleancenter definitions
build``); the signing key's public half is ``<data_dir>/keys/definitions.pub``. The
signature is inside the bundle (``manifest.sig`` over ``manifest.json``), so a bundle is
all a cleaner needs besides the pinned key.

``GET /api/v1/definitions/latest`` is what every cleaner asks first: its answer is kept
in memory and made again only when the releases folder or the newest bundle changes
(modification time and size), so the route does two ``stat`` calls and no database work.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException

from cleancenter.definitions.bundle import MANIFEST, SIGNATURE, BundleError
from cleancenter.definitions.keys import PUBLIC_NAME, KeyProblem, PublicKey, load_public
from cleancenter.portal.state import portal_state

router = APIRouter()

_RELEASE = re.compile(r"^definitions-([0-9]{1,9})\.ccdef$")
MAX_MANIFEST = 16 << 20
MANIFEST_KEYS = ("version", "created", "counts", "coverage", "min_cleaner_version",
                 "center_version", "format", "key_fingerprint")


def releases_dir(data_dir: Path) -> Path:
    return data_dir / "releases"


def keys_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


@dataclass(frozen=True)
class Release:
    version: int
    path: Path
    sha256: str
    size: int
    manifest: dict[str, Any]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_release(path: Path, version: int, public: PublicKey | None) -> Release:
    """The manifest of a bundle, its signature checked; no key means nothing is served
    (a bundle that cannot be verified is never offered as the center's)."""
    if public is None:
        raise BundleError("the center's public key is missing or unreadable: "
                          "nothing can be verified")
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(MANIFEST)
            if info.file_size > MAX_MANIFEST:
                raise BundleError("manifest too large")
            manifest_bytes = zf.read(MANIFEST)
            signature = zf.read(SIGNATURE)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path.name}: not a readable bundle ({type(exc).__name__})") from exc
    if not public.verify(signature, manifest_bytes):
        raise BundleError(f"{path.name}: signature does not match the center's key")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise BundleError(f"{path.name}: manifest is not JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != version:
        raise BundleError(f"{path.name}: manifest version differs from the file name")
    return Release(version, path, _file_sha256(path), path.stat().st_size, manifest)


class ReleaseCache:
    """The newest release and the bundles served, each re-read only when it changed."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = releases_dir(data_dir)
        self.key_path = keys_dir(data_dir) / PUBLIC_NAME
        self._lock = threading.Lock()
        self._listing: tuple[tuple[int, int], int | None] | None = None  # dir stamp, newest
        # keyed by the bundle's stamp and the key's: a new key re-verifies everything
        self._releases: dict[int, tuple[object, Release]] = {}
        self._latest_body: tuple[object, bytes] | None = None
        self._key: tuple[tuple[int, int], PublicKey | None] | None = None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def public_key(self) -> PublicKey | None:
        stamp = self._stamp(self.key_path)
        if stamp is None:
            return None
        cached = self._key
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            key: PublicKey | None = load_public(self.key_path)
        except (KeyProblem, OSError):
            key = None
        self._key = (stamp, key)
        return key

    def newest_version(self) -> int | None:
        stamp = self._stamp(self.folder)
        if stamp is None:
            return None
        listing = self._listing
        if listing is not None and listing[0] == stamp:
            return listing[1]
        versions = [int(m.group(1)) for entry in os.scandir(self.folder)
                    if (m := _RELEASE.match(entry.name)) and entry.is_file(follow_symlinks=False)]
        newest = max(versions, default=None)
        self._listing = (stamp, newest)
        return newest

    def release(self, version: int) -> Release | None:
        path = self.folder / f"definitions-{version}.ccdef"
        if path.is_symlink():
            return None
        stamp = self._stamp(path)
        if stamp is None:
            return None
        both = (stamp, self._stamp(self.key_path))
        cached = self._releases.get(version)
        if cached is not None and cached[0] == both:
            return cached[1]
        with self._lock:
            found = read_release(path, version, self.public_key())
            self._releases[version] = (both, found)
            return found

    def latest_body(self) -> bytes | None:
        """The JSON of ``GET /api/v1/definitions/latest``, ready to send."""
        version = self.newest_version()
        if version is None:
            return None
        bundle_stamp = self._stamp(self.folder / f"definitions-{version}.ccdef")
        stamp = None if bundle_stamp is None else (bundle_stamp, self._stamp(self.key_path))
        cached = self._latest_body
        if cached is not None and stamp is not None and cached[0] == stamp:
            return cached[1]
        release = self.release(version)
        if release is None or stamp is None:
            return None
        manifest = release.manifest
        body = {key: manifest.get(key) for key in MANIFEST_KEYS}
        body.update({"sha256": release.sha256, "size": release.size,
                     "files": len(manifest.get("files", {})),
                     "bundle": f"/api/v1/definitions/{version}/bundle",
                     "key": "/api/v1/definitions/key"})
        data = json.dumps(body, sort_keys=True, ensure_ascii=True).encode()
        self._latest_body = (stamp, data)
        return data


def release_cache(request: Request) -> ReleaseCache:
    portal = portal_state(request)
    cache = portal.extra.get("releases")
    if not isinstance(cache, ReleaseCache):
        cache = ReleaseCache(portal.center.settings.data_dir)
        portal.extra["releases"] = cache
    return cache


def _bundle(release: Release) -> Response:
    return FileResponse(release.path, filename=release.path.name,
                        media_type="application/octet-stream",
                        headers={"X-Content-SHA256": release.sha256,
                                 "Cache-Control": "public, max-age=300"})


def _broken(exc: BundleError) -> HTTPException:
    return HTTPException(503, f"the release cannot be served: {exc}")


@router.get("/api/v1/definitions/latest",
            summary="The newest definitions release: version, counts, sha256, key fingerprint",
            responses={404: {"description": "no release yet"},
                       503: {"description": "the newest bundle does not verify"}})
async def latest(request: Request) -> Response:
    try:
        body = release_cache(request).latest_body()
    except BundleError as exc:
        raise _broken(exc) from exc
    if body is None:
        raise HTTPException(404, "no definitions release yet")
    return Response(body, media_type="application/json",
                    headers={"Cache-Control": "public, max-age=60"})


@router.get("/api/v1/definitions/latest/bundle", summary="The newest bundle (.ccdef)",
            response_class=FileResponse, responses={404: {"description": "no release yet"}})
async def latest_bundle(request: Request) -> Response:
    cache = release_cache(request)
    version = cache.newest_version()
    try:
        release = cache.release(version) if version is not None else None
    except BundleError as exc:
        raise _broken(exc) from exc
    if release is None:
        raise HTTPException(404, "no definitions release yet")
    return _bundle(release)


@router.get("/api/v1/definitions/key",
            summary="The public key that signs the bundles, and its fingerprint",
            responses={404: {"description": "no signing key yet"}})
async def public_key(request: Request) -> dict[str, str]:
    key = release_cache(request).public_key()
    if key is None:
        raise HTTPException(404, "no signing key yet")
    return {"public_key": key.text(), "fingerprint": key.fingerprint,
            "algorithm": "ed25519", "fingerprint_of": "sha256 of the raw 32-byte key"}


@router.get("/api/v1/definitions/{version}/bundle", summary="One release's bundle (.ccdef)",
            response_class=FileResponse, responses={404: {"description": "no such release"}})
async def bundle(request: Request, version: int) -> Response:
    if not 1 <= version <= 999_999_999:
        raise HTTPException(404, "no such release")
    try:
        release = release_cache(request).release(version)
    except BundleError as exc:
        raise _broken(exc) from exc
    if release is None:
        raise HTTPException(404, "no such release")
    return _bundle(release)
