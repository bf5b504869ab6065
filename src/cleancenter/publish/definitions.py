"""Publish the newest signed definitions release into the downloads folder.

The bundle is verified against the center's public key before anything is written, and
the copy written is verified again before it is renamed into place: a bundle that does
not verify is never published. The folder gets ``definitions-<N>.ccdef``, the same bytes
as ``definitions-latest.ccdef`` (a copy: the portal never serves links), and the public
key as ``definitions.pub``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cleancenter.atomicfile import write_atomically
from cleancenter.definitions.bundle import BundleError, read_bundle
from cleancenter.definitions.keys import PUBLIC_NAME, PublicKey
from cleancenter.folderlock import folder_lock
from cleancenter.publish import PublishError
from cleancenter.publish.sums import update_sums

RELEASE_NAME = re.compile(r"^definitions-(\d{1,9})\.ccdef$")
LATEST_NAME = "definitions-latest.ccdef"


@dataclass(frozen=True)
class PublishedDefinitions:
    version: int
    created: str
    source: Path
    path: Path
    latest: Path
    key_path: Path
    sha256: str
    size: int
    key_fingerprint: str
    sums: Path

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "created": self.created, "source": str(self.source),
                "path": str(self.path), "latest": str(self.latest),
                "public_key": str(self.key_path), "sha256": self.sha256, "size": self.size,
                "key_fingerprint": self.key_fingerprint, "sums": str(self.sums)}


def releases(folder: Path) -> list[tuple[int, Path]]:
    """``definitions-<N>.ccdef`` files of a folder, highest version last."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    found = [(int(m.group(1)), p) for p in entries
             if (m := RELEASE_NAME.match(p.name)) and p.is_file() and not p.is_symlink()]
    return sorted(found)


def newest_release(folder: Path) -> Path:
    found = releases(folder)
    if not found:
        raise PublishError(f"no definitions release in {folder}; run "
                           "`cleancenter definitions build` first")
    return found[-1][1]


def _write_verified(data: bytes, target: Path, key: PublicKey) -> None:
    """Write ``data`` beside ``target``, verify the written file, then rename it."""
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".ccdef", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)
            os.fsync(fh.fileno())
        read_bundle(tmp, key)
        os.replace(tmp, target)
    except BundleError as exc:
        raise PublishError(f"the copy of the bundle does not verify: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def publish_definitions(key: PublicKey, out: Path, *, releases_dir: Path,
                        bundle: Path | None = None) -> PublishedDefinitions:
    """Verify and publish ``bundle`` (default: the newest release in ``releases_dir``)."""
    source = bundle or newest_release(releases_dir)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise PublishError(f"cannot read {source}: {exc.strerror}") from exc
    out.mkdir(parents=True, exist_ok=True)
    # verify exactly the bytes we are going to publish
    fd, probe_name = tempfile.mkstemp(prefix=".tmp-", suffix=".ccdef", dir=out)
    probe = Path(probe_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        verified = read_bundle(probe, key)
    except BundleError as exc:
        raise PublishError(f"refused {source.name}: {exc}") from exc
    finally:
        probe.unlink(missing_ok=True)
    version = verified.version
    with folder_lock(out):  # the rollback check and the writes, as one step
        published = [v for v, _ in releases(out)]
        if published and max(published) > version:
            raise PublishError(f"version {version} is older than the published version "
                               f"{max(published)}; cleaners would refuse it as a rollback")
        target = out / f"definitions-{version}.ccdef"
        latest = out / LATEST_NAME
        _write_verified(data, target, key)
        _write_verified(data, latest, key)
        key_path = out / PUBLIC_NAME
        write_atomically(key_path, (key.text() + "\n").encode("ascii"), mode=0o644)
        sha = hashlib.sha256(data).hexdigest()
        key_sha = hashlib.sha256(key_path.read_bytes()).hexdigest()
        sums = update_sums(out, {target.name: sha, latest.name: sha, key_path.name: key_sha},
                           locked=True)
    return PublishedDefinitions(
        version=version, created=str(verified.manifest.get("created", "")), source=source,
        path=target, latest=latest, key_path=key_path, sha256=sha, size=len(data),
        key_fingerprint=key.fingerprint, sums=sums)
