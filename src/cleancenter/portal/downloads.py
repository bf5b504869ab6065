"""What the download page offers: the files in ``<data_dir>/downloads/``.

A later stage builds the cleaner there (``cleancenter-cleaner-<version>.pyz`` or a wheel,
whose name has ``cleancenter_cleaner``); definitions bundles and the public key may sit
beside it. Only plain files directly in the folder are offered: no links, no sub-folders,
no hidden files, so nothing outside the folder can be served through it.
"""

from __future__ import annotations

import hashlib
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from cleancenter.definitions.bundle import BundleError, read_bundle
from cleancenter.definitions.keys import PUBLIC_NAME, KeyProblem, PublicKey

CLEANER_NAME = re.compile(r"^cleancenter[-_]cleaner[^/\\]*\.(pyz|whl)$")
DEFINITIONS_NAME = re.compile(r"^definitions-(\d{1,9})\.ccdef$")
SUMS_NAME = "SHA256SUMS"
MAX_KEY_FILE = 4096
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$")


@dataclass(frozen=True)
class Artifact:
    name: str
    path: Path
    size: int
    mtime: float
    sha256: str

    @property
    def is_cleaner(self) -> bool:
        return bool(CLEANER_NAME.match(self.name))


@dataclass(frozen=True)
class DefinitionsInfo:
    """The newest published definitions bundle and what its signature check said."""

    artifact: Artifact
    version: int
    created: str | None
    status: str  # "verified" (center key), "verified-published" (published key), "bad", "no-key"
    problem: str | None = None


@dataclass(frozen=True)
class KeyInfo:
    """The published ``definitions.pub``: its fingerprint, and whether it is the center's."""

    artifact: Artifact
    fingerprint: str | None  # None: not a readable key
    matches_center: bool | None  # None: the center has no key to compare with


class Downloads:
    """The downloads folder, with sha256 sums cached by (name, size, mtime)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sums: dict[tuple[str, int, int], str] = {}
        self._checked: dict[tuple[str, str, int, str, str], DefinitionsInfo] = {}
        self._lock = threading.Lock()

    def artifacts(self) -> list[Artifact]:
        """Every offered file, newest first (then by name)."""
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return []
        found = []
        for path in entries:
            if not _SAFE_NAME.match(path.name):
                continue
            try:
                info = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue  # links, folders, devices: never served
            sha = self._sha256(path, info.st_size, info.st_mtime_ns)
            if sha is None:
                continue
            found.append(Artifact(path.name, path, info.st_size, info.st_mtime, sha))
        return sorted(found, key=lambda a: (-a.mtime, a.name))

    def cleaner(self) -> Artifact | None:
        """The newest cleaner build, or None when none has been built yet."""
        return next((a for a in self.artifacts() if a.is_cleaner), None)

    def find(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts() if a.name == name), None)

    def newest(self, suffix: str) -> Artifact | None:
        """The newest cleaner build ending in ``suffix`` (``.pyz`` or ``.whl``)."""
        return next((a for a in self.artifacts() if a.is_cleaner and a.name.endswith(suffix)),
                    None)

    def published_key(self, center_key: PublicKey | None) -> KeyInfo | None:
        artifact = self.find(PUBLIC_NAME)
        if artifact is None:
            return None
        key = read_key(artifact.path)
        return KeyInfo(artifact, key.fingerprint if key else None,
                       None if center_key is None or key is None else key == center_key)

    def definitions(self, center_key: PublicKey | None) -> DefinitionsInfo | None:
        """The highest-numbered ``definitions-<N>.ccdef``, its signature checked against
        the center's key (else the published key). Checked once per file version."""
        found = [(int(m.group(1)), a) for a in self.artifacts()
                 if (m := DEFINITIONS_NAME.match(a.name))]
        if not found:
            return None
        version, artifact = max(found, key=lambda item: item[0])
        key, status = center_key, "verified"
        if key is None:
            published = self.find(PUBLIC_NAME)
            key = read_key(published.path) if published else None
            status = "verified-published"
        if key is None:
            return DefinitionsInfo(artifact, version, None, "no-key")
        cache_key = ("definitions", artifact.name, artifact.size, artifact.sha256,
                     key.fingerprint)
        with self._lock:
            cached = self._checked.get(cache_key)
        if cached is not None:
            return cached
        try:
            bundle = read_bundle(artifact.path, key)
            info = DefinitionsInfo(artifact, bundle.version,
                                   str(bundle.manifest.get("created") or "") or None, status)
        except BundleError as exc:
            info = DefinitionsInfo(artifact, version, None, "bad", str(exc))
        with self._lock:
            self._checked[cache_key] = info
        return info

    def _sha256(self, path: Path, size: int, mtime_ns: int) -> str | None:
        key = (path.name, size, mtime_ns)
        with self._lock:
            if key in self._sums:
                return self._sums[key]
        digest = hashlib.sha256()
        try:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return None
        value = digest.hexdigest()
        with self._lock:
            self._sums[key] = value
        return value


def read_key(path: Path) -> PublicKey | None:
    try:
        with path.open("rb") as fh:
            return PublicKey.parse(fh.read(MAX_KEY_FILE).decode("ascii"))
    except (OSError, UnicodeDecodeError, KeyProblem):
        return None
