"""Safe expansion of zip and 7z archives into the blob store.

Archives from the wild are hostile. Members are never written under their own names:
each one streams straight into a `BlobWriter` (a temp file inside the blob root, renamed
to its sha256 when complete), so no path in an archive can reach outside the data dir.
On top of that we refuse, with a reason:

- members whose names escape the archive (``../``, absolute paths, drive letters) and
  symbolic links: that member is refused, the rest go on;
- too many members, too much expanded data, a compression ratio no honest archive has
  (a 42.zip-style bomb): the whole archive is refused before anything is expanded, from
  the sizes its headers declare; the bytes actually written are counted too, because
  headers can lie;
- a wrong or missing password: the archive is stored, its members cannot be read.

One `ExtractionBudget` is shared by an archive and everything nested inside it, so a bomb
of nested archives runs out of budget instead of multiplying.
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import py7zr
import py7zr.exceptions
import pyzipper
from py7zr.io import Py7zIO, WriterFactory

from cleancenter.collect.records import RecordError
from cleancenter.store.blobs import CHUNK, BlobStore, BlobTooLarge, BlobWriter, Digests

DEFAULT_PASSWORD = "infected"
MiB = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000  # per top-level input, nested members included
    max_member_size: int = 512 * MiB
    max_total_size: int = 2048 * MiB  # expanded bytes per top-level input
    max_ratio: float = 100.0  # expanded / compressed ...
    ratio_floor: int = 16 * MiB  # ... checked once the expansion is bigger than this
    max_depth: int = 4  # archive inside archive inside ...


class ArchiveRefused(Exception):
    """The whole archive is refused; the message says why."""


class ExtractionBudget:
    """Members and bytes left for one top-level input and all its nested archives.

    Once one of its archives goes over a limit (a bomb, most likely), the input is done:
    no further archive of it is expanded, so a bomb costs one refusal per level of
    nesting, not one per archive it holds.
    """

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.members_left = limits.max_members
        self.bytes_left = limits.max_total_size
        self.exhausted: str | None = None  # why the input stopped being expanded

    def refuse(self, message: str) -> ArchiveRefused:
        """The refusal to raise for going over a limit; it ends the input's expansion."""
        if self.exhausted is None:
            self.exhausted = message
        return ArchiveRefused(message)

    def check_open(self, where: str) -> None:
        """Refuse to start on another archive of an input that went over its limits."""
        if self.exhausted is not None:
            raise ArchiveRefused(
                f"{where}: not expanded: an archive of the same input went over the limits "
                "before (archive bomb?)"
            )

    def reserve(self, declared_members: int, declared_bytes: int, where: str) -> None:
        if declared_members > self.members_left:
            raise self.refuse(
                f"{where}: too many members ({declared_members}; "
                f"{self.members_left} left of the limit {self.limits.max_members})"
            )
        if declared_bytes > self.bytes_left:
            raise self.refuse(
                f"{where}: expands to {declared_bytes} bytes, more than the "
                f"{self.bytes_left} left of the limit {self.limits.max_total_size} "
                "(archive bomb?)"
            )
        self.members_left -= declared_members

    def spend_bytes(self, n: int) -> None:
        self.bytes_left -= n


@dataclass(frozen=True)
class ExtractedMember:
    name: str
    digests: Digests


def _unsafe_name(name: str) -> str | None:
    """Why a member name is refused, or None when it stays inside the archive."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(normalized).parts:
        return "path escapes the archive (..)"
    if "\0" in name:
        return "NUL byte in name"
    return None


def _check_ratio(budget: ExtractionBudget, expanded: int, compressed: int, where: str) -> None:
    limits = budget.limits
    if expanded > limits.ratio_floor and expanded > limits.max_ratio * max(compressed, 1):
        raise budget.refuse(
            f"{where}: compression ratio {expanded / max(compressed, 1):.0f}:1 exceeds "
            f"{limits.max_ratio:.0f}:1 for {expanded} bytes (archive bomb?)"
        )


def extract(
    path: Path,
    kind: str,
    store: BlobStore,
    *,
    password: str | None,
    budget: ExtractionBudget,
    label: str,
) -> Iterator[ExtractedMember | RecordError]:
    """Expand one archive's regular members into ``store``.

    Raises `ArchiveRefused` for whole-archive refusals; yields a `RecordError` for each
    refused member and goes on.
    """
    budget.check_open(label)
    if kind == "zip":
        yield from _extract_zip(path, store, password, budget, label)
    elif kind == "7z":
        yield from _extract_7z(path, store, password, budget, label)
    else:
        raise ArchiveRefused(f"{label}: not an archive type we expand ({kind})")


# -- zip --------------------------------------------------------------------------------
# pyzipper has a BadZipFile of its own, not a subclass of zipfile's
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    pyzipper.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def _extract_zip(
    path: Path, store: BlobStore, password: str | None, budget: ExtractionBudget, label: str
) -> Iterator[ExtractedMember | RecordError]:
    limits = budget.limits
    try:
        zf = pyzipper.AESZipFile(path)
    except _ZIP_ERRORS as exc:
        raise ArchiveRefused(f"{label}: not a readable zip archive: {exc}") from exc
    with zf:
        infos: list[zipfile.ZipInfo] = zf.infolist()
        regular: list[zipfile.ZipInfo] = []
        refused: list[RecordError] = []
        for info in infos:
            where = f"{label}!{info.filename}"
            if info.is_dir():
                continue
            reason = _unsafe_name(info.filename)
            if reason is None and _zip_is_symlink(info):
                reason = "symbolic link"
            if reason:
                refused.append(RecordError(where, f"member refused: {reason}"))
                continue
            if info.file_size > limits.max_member_size:
                refused.append(
                    RecordError(where, f"member refused: {info.file_size} bytes is more than "
                                f"the member limit {limits.max_member_size}")
                )
                continue
            _check_ratio(budget, info.file_size, info.compress_size, where)
            regular.append(info)
        declared = sum(i.file_size for i in regular)
        _check_ratio(budget, declared, path.stat().st_size, label)
        budget.reserve(len(regular), declared, label)
        yield from refused
        if password is not None:
            zf.setpassword(password.encode())
        for info in regular:
            where = f"{label}!{info.filename}"
            limit = min(limits.max_member_size, budget.bytes_left)
            writer = store.writer(limit)
            try:
                with zf.open(info) as member:
                    while chunk := member.read(CHUNK):
                        writer.write(chunk)
                digests = writer.commit()
            except RuntimeError as exc:  # zipfile's way to say "password"
                writer.abort()
                message = str(exc)
                if "password" in message.lower():
                    raise ArchiveRefused(
                        f"{label}: wrong or missing password for encrypted members "
                        f"(tried {'none' if password is None else repr(password)})"
                    ) from exc
                yield RecordError(where, f"member unreadable: {message}")
                continue
            except BlobTooLarge as exc:
                writer.abort()
                raise budget.refuse(
                    f"{where}: expands past its declared size and the limit ({exc}); "
                    "archive bomb?"
                ) from exc
            except _ZIP_ERRORS as exc:
                writer.abort()
                yield RecordError(where, f"member unreadable: {exc}")
                continue
            except BaseException:
                writer.abort()
                raise
            budget.spend_bytes(digests.size)
            yield ExtractedMember(info.filename, digests)


# -- 7z ---------------------------------------------------------------------------------
class _BlobIO(Py7zIO):
    """py7zr writes one member here, straight into a `BlobWriter`.

    py7zr calls `close` once the member is complete and its CRC checked; the blob is
    committed then, so one temp file is open at a time however many members there are.
    """

    def __init__(self, writer: BlobWriter) -> None:
        self.writer = writer
        self.digests: Digests | None = None

    def write(self, s: bytes | bytearray) -> int:
        return self.writer.write(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.writer.size

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.writer.size

    def close(self) -> None:
        if self.digests is None:
            self.digests = self.writer.commit()


class _BlobFactory(WriterFactory):
    def __init__(self, store: BlobStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.created: dict[str, list[_BlobIO]] = {}  # by the name py7zr gives
        self.all: list[_BlobIO] = []

    def create(self, filename: str) -> Py7zIO:
        io = _BlobIO(self.store.writer(self.limit))
        self.created.setdefault(filename, []).append(io)
        self.all.append(io)
        return io

    def take(self, name: str) -> _BlobIO | None:
        ios = self.created.get(name)
        return ios.pop(0) if ios else None

    def abort_uncommitted(self) -> None:
        for io in self.all:
            if io.digests is None:
                io.writer.abort()


def _factory_names(names: list[str]) -> list[str]:
    """The name py7zr hands the writer factory for each member, as it does: a repeated
    name gets ``_0``, ``_1``... appended, and the path is normalized (``./a`` is ``a``)."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        if name in seen:
            given = f"{name}_{seen[name]}"
            seen[name] += 1
        else:
            given = name
            seen[name] = 0
        out.append(PurePosixPath(given).as_posix())
    return out


def _extract_7z(
    path: Path, store: BlobStore, password: str | None, budget: ExtractionBudget, label: str
) -> Iterator[ExtractedMember | RecordError]:
    limits = budget.limits
    try:
        archive = py7zr.SevenZipFile(path, password=password)
    except py7zr.exceptions.PasswordRequired as exc:
        raise ArchiveRefused(f"{label}: encrypted headers need a password") from exc
    except Exception as exc:  # py7zr raises many types for a bad file or a wrong password
        if password is not None and _headers_need_password(path):
            raise ArchiveRefused(
                f"{label}: wrong password for its encrypted headers (tried {password!r})"
            ) from exc
        raise ArchiveRefused(f"{label}: not a readable 7z archive: {exc}") from exc
    with archive:
        encrypted = _members_encrypted(archive)
        regular: list[Any] = []
        refused: list[RecordError] = []
        for f in archive.files:
            where = f"{label}!{f.filename}"
            if f.is_directory:
                continue
            reason = _unsafe_name(f.filename)
            if reason is None and f.is_symlink:
                reason = "symbolic link"
            if reason:
                refused.append(RecordError(where, f"member refused: {reason}"))
                continue
            size = int(f.uncompressed or 0)
            if size > limits.max_member_size:
                refused.append(
                    RecordError(where, f"member refused: {size} bytes is more than the "
                                f"member limit {limits.max_member_size}")
                )
                continue
            regular.append(f)
        declared = sum(int(f.uncompressed or 0) for f in regular)
        _check_ratio(budget, declared, path.stat().st_size, label)
        budget.reserve(len(regular), declared, label)
        yield from refused
        if not regular:
            return
        names: list[str] = [f.filename for f in regular]
        factory = _BlobFactory(store, min(limits.max_member_size, budget.bytes_left))
        failure: ArchiveRefused | None = None
        cause: BaseException | None = None
        try:
            archive.extract(targets=names, factory=factory)
        except py7zr.exceptions.PasswordRequired as exc:
            failure, cause = ArchiveRefused(f"{label}: encrypted, and no password was given"), exc
        except BlobTooLarge as exc:
            failure, cause = budget.refuse(
                f"{label}: expands past its declared sizes and the limit ({exc}); archive bomb?"
            ), exc
        except Exception as exc:
            cause = exc
            if encrypted:
                failure = ArchiveRefused(
                    f"{label}: wrong password or corrupt data "
                    f"(tried {'none' if password is None else repr(password)}): {exc}"
                )
            else:
                failure = ArchiveRefused(f"{label}: corrupt 7z data: {exc}")
        produced = [(name, factory.take(given))
                    for name, given in zip(names, _factory_names(names), strict=True)]
        try:
            if failure is None:
                for _, io in produced:
                    if io is not None:
                        io.close()  # commits, if py7zr did not close it
        finally:
            factory.abort_uncommitted()
        # members completed before a failure are good: keep them (and no orphan blobs)
        leftovers = [(given, io) for given, ios in factory.created.items() for io in ios]
        for name, maybe in [*produced, *leftovers]:
            if maybe is None or maybe.digests is None:
                if failure is None:
                    yield RecordError(f"{label}!{name}", "member was not produced by 7z")
                continue
            budget.spend_bytes(maybe.digests.size)
            yield ExtractedMember(name, maybe.digests)
        if failure is not None:
            raise failure from cause


def _members_encrypted(archive: py7zr.SevenZipFile) -> bool:
    """Whether the 7z's data is encrypted (py7zr's `needs_password` is true whenever a
    password was given, and we always give one)."""
    try:
        return "7zAES" in archive.archiveinfo().method_names
    except Exception:  # an unknown method: extraction will say so
        return False


def _headers_need_password(path: Path) -> bool:
    """Whether the 7z's headers are encrypted: a wrong password fails in many ways
    (CRC, LZMA, "unknown field"), and so does a corrupt file; only this tells them apart."""
    try:
        py7zr.SevenZipFile(path).close()
    except py7zr.exceptions.PasswordRequired:
        return True
    except Exception:
        return False
    return False
