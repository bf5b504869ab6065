"""``SHA256SUMS`` of the downloads folder, in the format ``sha256sum -c`` reads."""

from __future__ import annotations

import hashlib
import re
from contextlib import nullcontext
from pathlib import Path

from cleancenter.atomicfile import write_atomically
from cleancenter.folderlock import folder_lock

SUMS_NAME = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([^/\\]+)$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(path: Path) -> dict[str, str]:
    """name -> sha256 of a SHA256SUMS file (missing file: empty; odd lines are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    sums: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            sums[match.group(2)] = match.group(1)
    return sums


def update_sums(folder: Path, written: dict[str, str], *, locked: bool = False) -> Path:
    """Record ``written`` (name -> sha256) in ``folder/SHA256SUMS``, keep the entries of
    files still present, drop those of files that are gone; written atomically."""
    path = folder / SUMS_NAME
    # two publishes at once (the CLI and the analyst page): one read-modify-write at a time
    with nullcontext() if locked else folder_lock(folder):
        sums = {name: sha for name, sha in read_sums(path).items()
                if name != SUMS_NAME and (folder / name).is_file()}
        sums.update(written)
        body = "".join(f"{sha}  {name}\n" for name, sha in sorted(sums.items()))
        write_atomically(path, body.encode("utf-8"), mode=0o644)
    return path
