"""A first look at a file's type from its leading bytes, for the catalog's ``type``.

This is the quick sniff done at the door; `analyze/` identifies files in depth later.
"""

from __future__ import annotations

import struct

HEAD_SIZE = 4096

ARCHIVE_TYPES = frozenset({"zip", "7z"})


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty zip
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"%PDF-", "pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"#!", "script"),
)


def sniff(head: bytes) -> str:
    """Name the type of a file from its first bytes (at least 1 KiB for PE files)."""
    if not head:
        return "empty"
    if head.startswith(b"MZ"):
        return _pe_kind(head)
    if head.startswith(b"\x7fELF"):
        return "elf64" if head[4:5] == b"\x02" else "elf32"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "text" if _looks_textual(head) else "data"


def _pe_kind(head: bytes) -> str:
    if len(head) < 0x40:
        return "mz"
    (pe_offset,) = struct.unpack_from("<I", head, 0x3C)
    if pe_offset + 26 > len(head) or head[pe_offset : pe_offset + 4] != b"PE\0\0":
        return "mz"
    (magic,) = struct.unpack_from("<H", head, pe_offset + 24)
    return {0x10B: "pe32", 0x20B: "pe32+"}.get(magic, "pe")


def _looks_textual(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still text
        if exc.start < len(head) - 4:
            return False
    return sum(1 for b in head if b < 9 or 13 < b < 32) * 20 < len(head)
