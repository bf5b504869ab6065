"""Quarantine and the action journal: every change the cleaner makes can be undone.

Journal first: an action is appended (and fsynced) to ``journal.jsonl`` as *planned*
before it is taken and as *done* or *failed* after, so an interrupted clean leaves a
record of what it was doing. A quarantined file is stored encoded (zlib, then XOR with a
random key kept in its metadata) with mode 0400: it cannot run and a virus scanner on the
same machine does not keep finding it. Its metadata keeps the original path, mode, owner
and times, so `restore` puts back the same bytes with the same attributes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cleancenter.atomicfile import atomic_output, write_atomically

ITEM_DATA = "data"
ITEM_META = "meta.json"


class QuarantineError(Exception):
    """An item cannot be quarantined or restored; the message says why."""


@dataclass
class QuarantineItem:
    id: str
    original_path: str
    folder_real: str  # the original folder with links resolved, to notice a swapped path
    sha256: str
    size: int
    mode: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    quarantined_at: str
    reason: str
    kind: str  # file, running-image, persistence-file, backup
    key: str  # hex XOR key of the encoded data
    restored_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("key")
        return data


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _xor(data: bytes, key: bytes) -> bytes:
    """XOR with a repeating key, fast through one big-integer operation."""
    if not data:
        return data
    stream = (key * (len(data) // len(key) + 1))[:len(data)]
    value = int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")
    return value.to_bytes(len(data), "little")


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder; its renames are durable enough
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def opened_beneath(path: str) -> Iterator[tuple[BinaryIO, Callable[[], None]]]:
    """Open ``path`` for reading without following a symlink in any of its components;
    yields the file and a function that unlinks exactly that file (same inode) from the
    folder it was opened in."""
    if not (os.open in os.supports_dir_fd and os.unlink in os.supports_dir_fd):
        with open(path, "rb") as plain:  # Windows: no dir_fd; junctions are its own matter
            yield plain, lambda: os.unlink(path)
        return
    parts = Path(path).parts
    if len(parts) < 2 or not Path(path).is_absolute():
        raise QuarantineError(f"{path}: not an absolute file path")
    nofollow = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    dir_fd = os.open(parts[0], os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[1:-1]:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=dir_fd)
            except OSError as exc:
                raise QuarantineError(f"{part}: not a plain folder (a link?): {exc.strerror}"
                                      ) from exc
            os.close(dir_fd)
            dir_fd = next_fd
        name = parts[-1]
        fd = os.open(name, os.O_RDONLY | nofollow | os.O_NONBLOCK, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(handle.fileno())

            def unlink() -> None:
                now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
                    raise QuarantineError("replaced while being quarantined; not removed")
                os.unlink(name, dir_fd=dir_fd)

            yield handle, unlink
    finally:
        os.close(dir_fd)


def _euid() -> int | None:
    geteuid = getattr(os, "geteuid", None)  # not on Windows
    return int(geteuid()) if geteuid else None


class Journal:
    """Append-only JSON lines; each line is fsynced before the action it announces."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": _now(), **record}, sort_keys=True) + "\n"
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):  # a torn last line from a crash
                found.append(json.loads(line))
        return found


class Quarantine:
    def __init__(self, folder: Path, journal: Journal) -> None:
        self.folder = folder
        self.journal = journal
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- putting things in --------------------------------------------------------------

    def store(self, original_path: str, data: bytes, st: os.stat_result, *, reason: str,
              kind: str) -> QuarantineItem:
        """Keep ``data`` (the file's bytes) encoded with the attributes of ``st``."""
        key = secrets.token_bytes(16)
        item = QuarantineItem(
            id=datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + secrets.token_hex(4),
            original_path=original_path,
            folder_real=os.path.realpath(os.path.dirname(original_path)),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data), mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid,
            atime_ns=st.st_atime_ns, mtime_ns=st.st_mtime_ns, quarantined_at=_now(),
            reason=reason, kind=kind, key=key.hex())
        folder = self.folder / item.id
        folder.mkdir(mode=0o700)
        write_atomically(folder / ITEM_DATA, _xor(zlib.compress(data, 6), key), mode=0o400)
        meta = json.dumps(asdict(item), indent=1).encode()
        write_atomically(folder / ITEM_META, meta, mode=0o400)
        _fsync_dir(folder)
        if self.read(item.id) != data:  # never remove the original on a bad copy
            raise QuarantineError(f"{item.id}: stored copy does not read back")
        return item

    def quarantine_file(self, path: str, *, reason: str, kind: str = "file",
                        remove: bool = True, expected_sha256: str | None = None
                        ) -> QuarantineItem:
        """Journal, copy in, verify, then remove the original (unless ``remove`` is off).

        The file is opened without following a symlink anywhere on its path, and, when
        the scan's ``expected_sha256`` is given, must still hold those bytes: a path that
        was swapped since the scan (a folder replaced by a link) is refused, never removed.
        """
        self.journal.write({"action": "quarantine", "state": "planned", "path": path,
                            "reason": reason})
        try:
            with opened_beneath(path) as (handle, unlink):
                st = os.fstat(handle.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise QuarantineError("not a regular file any more")
                data = handle.read()
                if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
                    raise QuarantineError("changed since the scan; not touched")
                item = self.store(path, data, st, reason=reason, kind=kind)
                if remove:
                    unlink()
        except (OSError, QuarantineError) as exc:
            self.journal.write({"action": "quarantine", "state": "failed", "path": path,
                                "error": str(exc)})
            raise QuarantineError(f"{path}: {exc}") from exc
        self.journal.write({"action": "quarantine", "state": "done", "path": path,
                            "id": item.id, "sha256": item.sha256})
        return item

    # -- reading and restoring ------------------------------------------------------------

    def item(self, item_id: str) -> QuarantineItem:
        if not item_id or "/" in item_id or item_id.startswith("."):
            raise QuarantineError(f"{item_id!r} is not a quarantine id")
        try:
            meta = json.loads((self.folder / item_id / ITEM_META).read_text())
        except FileNotFoundError as exc:
            raise QuarantineError(f"no quarantined item {item_id}") from exc
        except (OSError, ValueError) as exc:
            raise QuarantineError(f"{item_id}: metadata unreadable: {exc}") from exc
        return QuarantineItem(**meta)

    def read(self, item_id: str) -> bytes:
        item = self.item(item_id)
        encoded = (self.folder / item_id / ITEM_DATA).read_bytes()
        try:
            data = zlib.decompress(_xor(encoded, bytes.fromhex(item.key)))
        except zlib.error as exc:
            raise QuarantineError(f"{item_id}: stored data is damaged: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != item.sha256:
            raise QuarantineError(f"{item_id}: stored data does not match its sha256")
        return data

    def items(self) -> list[QuarantineItem]:
        found = []
        for folder in sorted(self.folder.iterdir()) if self.folder.exists() else []:
            if (folder / ITEM_META).is_file():
                with contextlib.suppress(QuarantineError):
                    found.append(self.item(folder.name))
        return found

    def restore(self, item_id: str, *, to: str | None = None,
                overwrite: bool = False) -> QuarantineItem:
        """Put the bytes back with their mode, owner and times; journaled like any action."""
        item = self.item(item_id)
        target = Path(to or item.original_path)
        data = self.read(item_id)
        if to is None and os.path.realpath(target.parent) != item.folder_real:
            raise QuarantineError(f"{target.parent} now leads to "
                                  f"{os.path.realpath(target.parent)}, not to "
                                  f"{item.folder_real} as when it was quarantined (a "
                                  "swapped link?); restore with --to")
        # a backup is the whole file an entry was cut out of: it replaces what is there now
        if target.exists() and not (overwrite or item.kind == "backup"):
            raise QuarantineError(f"{target} exists; restore elsewhere (--to) or "
                                  "--overwrite")
        self.journal.write({"action": "restore", "state": "planned", "id": item_id,
                            "path": str(target)})
        try:
            with atomic_output(target, mode=item.mode, prefix=".restore-") as out:
                out.write(data)
                if _euid() in (0, item.uid):
                    with contextlib.suppress(PermissionError):
                        os.fchown(out.fileno(), item.uid, item.gid)
            # times last: nothing writes to the file after this
            os.utime(target, ns=(item.atime_ns, item.mtime_ns), follow_symlinks=False)
        except OSError as exc:
            self.journal.write({"action": "restore", "state": "failed", "id": item_id,
                                "error": str(exc)})
            raise QuarantineError(f"{target}: {exc}") from exc
        item.restored_at = _now()
        meta_path = self.folder / item_id / ITEM_META
        meta_path.chmod(0o600)
        write_atomically(meta_path, json.dumps(asdict(item), indent=1).encode(), mode=0o400)
        self.journal.write({"action": "restore", "state": "done", "id": item_id,
                            "path": str(target)})
        return item
