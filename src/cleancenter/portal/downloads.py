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

CLEANER_NAME = re.compile(r"^cleancenter[-_]cleaner[^/\\]*\.(pyz|whl)$")
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


class Downloads:
    """The downloads folder, with sha256 sums cached by (name, size, mtime)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sums: dict[tuple[str, int, int], str] = {}
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
