"""Paths of the scanned system mapped onto this machine.

The scanned root may be a mounted image: an absolute symlink in it (``/etc/crontab ->
/etc/shadow``) means a path *inside the image*, so links are followed by hand, never by
the OS, and never out of the root. Windows paths (``C:\\Windows\\...``) map onto an
offline root too, case-insensitively, as NTFS does.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

MAX_LINKS = 40  # as the kernel's ELOOP limit
MAX_CONFIG_BYTES = 4 << 20  # crontabs, profiles, units: anything larger is read in part
MAX_HASH_BYTES = 256 << 20  # program files hashed by the judge

FileReader = Callable[[str], bytes | None]


def in_root(root: Path, path: str) -> Path:
    """The real path of ``path`` (absolute, as seen on the scanned system) under ``root``.

    Symlinks are resolved inside ``root``, so the path returned holds none; a loop
    raises OSError(ELOOP) as the kernel would (on ``/`` itself, realpath does the work).
    """
    if root == Path("/"):
        return Path(os.path.realpath(path))
    parts = list(PurePosixPath(path).parts[1:])
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        real = root.joinpath(*done, part)
        if real.is_symlink():
            hops += 1
            if hops > MAX_LINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(real)
            if target.startswith("/"):
                done = []
            parts = list(PurePosixPath(target).parts) + parts
            if target.startswith("/"):
                parts = parts[1:]
            continue
        done.append(part)
    return root.joinpath(*done)


def virtual(root: Path, real: Path) -> str:
    """The path a person knows ``real`` by on the scanned system."""
    if root == Path("/"):
        return str(real)
    try:
        return "/" + real.relative_to(root).as_posix()
    except ValueError:
        return str(real)


def read_text(root: Path, path: str, errors: list[str],
              limit: int = MAX_CONFIG_BYTES) -> str | None:
    """A config file's text, or None (missing: silently; unreadable: noted in ``errors``)."""
    try:
        with in_root(root, path).open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None
    except OSError as exc:
        errors.append(f"{path}: cannot read: {exc.strerror or exc}")
        return None
    if len(data) > limit:
        errors.append(f"{path}: larger than {limit >> 20} MiB; only its start was read")
        data = data[:limit]
    return data.decode("utf-8", errors="replace")


def list_dir(root: Path, path: str, errors: list[str]) -> list[str]:
    """Sorted names in a folder; a missing folder is empty, an unreadable one an error."""
    try:
        return sorted(os.listdir(in_root(root, path)))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        errors.append(f"{path}: cannot list: {exc.strerror or exc}")
        return []


def windows_in_root(root: Path, path: str) -> Path | None:
    """Map ``C:\\Dir\\file.exe`` onto ``root/Dir/file.exe`` (each part matched without case).

    Only drive paths are mapped (the offline root stands for the system drive); None
    when the path is relative, a UNC path, or a part does not exist.
    """
    text = path.strip().strip('"')
    match = re.match(r"^(?:\\\\\?\\|\\\?\?\\)?[A-Za-z]:[\\/](.*)$", text)
    if not match:
        return None
    current = root
    for part in re.split(r"[\\/]+", match.group(1)):
        if part in ("", "."):
            continue
        if part == "..":  # never climb out of the mounted volume
            return None
        candidate = current / part
        if candidate.is_symlink():  # a link on an image points into the host: not followed
            return None
        if candidate.exists():
            current = candidate
            continue
        try:
            names = os.listdir(current)
        except OSError:
            return None
        lowered = part.lower()
        found = next((name for name in names if name.lower() == lowered), None)
        if found is None:
            return None
        current = current / found
    return current


def root_reader(root: Path, max_bytes: int = MAX_HASH_BYTES) -> FileReader:
    """A ``file_reader`` for `judge`: a program path (POSIX or ``C:\\...``) read under ``root``.

    Returns None for what is not a regular file, is larger than ``max_bytes`` or cannot
    be read, so the judge simply skips the hash check for it.
    """

    def read(program: str) -> bytes | None:
        try:
            if program.startswith("/"):
                real: Path | None = in_root(root, program)
            else:
                real = windows_in_root(root, program)
            if real is None:
                return None
            info = real.stat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
                return None
            return real.read_bytes()
        except OSError:
            return None

    return read
