"""Updating the definitions safely: verify before install, never go backwards.

A new bundle is fetched (from the portal's URL or a file) into a temporary file, checked
against the pinned key, refused if it is older than what is installed (rollback) or needs
a newer cleaner, and only then swapped in: the installed bundle becomes ``previous`` and
the new one ``current``, each by an atomic rename. Any failure leaves the installed
definitions in force.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cleancenter.cleaner.definitions import Definitions, load_definitions
from cleancenter.cleaner.state import CleanerHome
from cleancenter.definitions.bundle import BundleError
from cleancenter.definitions.keys import PublicKey

MAX_DOWNLOAD = 512 << 20
TIMEOUT = 60


@dataclass
class UpdateResult:
    before: int | None
    after: int
    changed: bool
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"before": self.before, "after": self.after, "changed": self.changed,
                "message": self.message}


def is_url(source: str) -> bool:
    return source.startswith(("https://", "http://"))


def fetch(source: str, folder: Path) -> Path:
    """Copy the bundle into ``folder`` as a temporary file; nothing is trusted yet."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".ccdef", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            if is_url(source):
                request = urllib.request.Request(
                    source, headers={"User-Agent": "cleancenter-cleaner"})
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    _copy_capped(response, out)
            else:
                with open(source, "rb") as handle:
                    _copy_capped(handle, out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _copy_capped(source: BinaryIO, out: BinaryIO) -> None:
    total = 0
    while True:
        block = source.read(1 << 20)
        if not block:
            return
        total += len(block)
        if total > MAX_DOWNLOAD:
            raise BundleError(f"download larger than {MAX_DOWNLOAD >> 20} MB: refused")
        out.write(block)


def open_definitions(source: str, home: CleanerHome, key: PublicKey) -> Definitions:
    """Load definitions for one scan from a file or URL, verified, without installing."""
    if not is_url(source):
        return load_definitions(Path(source), key)
    tmp = fetch(source, home.definitions_dir)
    try:
        return load_definitions(tmp, key)
    finally:
        tmp.unlink(missing_ok=True)


def update(source: str, home: CleanerHome, key: PublicKey) -> UpdateResult:
    """Fetch, verify and install; raises `BundleError` (or OSError) and keeps the old set."""
    installed, _problems = home.installed(key)
    before = installed.version if installed else None
    try:
        tmp = fetch(source, home.definitions_dir)
    except OSError as exc:
        raise BundleError(f"cannot fetch {source}: {exc}") from exc
    try:
        fresh = load_definitions(tmp, key, not_older_than=before)
        if installed is not None and fresh.bundle_sha256 == installed.bundle_sha256:
            return UpdateResult(before, fresh.version, False, "already up to date")
        if installed is not None and fresh.version == installed.version:
            raise BundleError(f"version {fresh.version} is installed with other contents; "
                              "a new release must carry a new version")
        if home.current.exists():
            shutil.copy2(home.current, home.previous.with_suffix(".tmp"))
            os.replace(home.previous.with_suffix(".tmp"), home.previous)
        os.replace(tmp, home.current)
    finally:
        tmp.unlink(missing_ok=True)
    digest = hashlib.sha256(home.current.read_bytes()).hexdigest()[:16]
    return UpdateResult(before, fresh.version, True,
                        f"installed definitions v{fresh.version} ({digest}...)")
