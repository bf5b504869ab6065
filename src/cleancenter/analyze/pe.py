"""PE features: headers, sections, imports, exports, resources, overlay and anomalies.

The fixed-layout parts (DOS/COFF/optional headers, data directories, section table) are
read here with `struct`, exactly as they are in the file: nothing is clipped or "repaired",
so a section that runs past the end of a truncated file is seen as such, and whatever
library reads the rest, the same numbers come out. The variable structures (imports,
exports, resources, version info) are read with LIEF, and with pefile when LIEF cannot
read the file or finds no imports where pefile finds some (clamav's tiny ``clam.exe``).
``PEInfo.parser`` says which one did; "headers" when neither could.

Every entropy is `entropy.shannon` of the raw bytes in the file. Nothing here raises but
`PEError`, and only for input with no PE header to read (not MZ, no ``PE\\0\\0``, the COFF
header cut off); anything past that gives a `PEInfo` whose ``anomalies`` say what is wrong.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import lief
import ordlookup  # type: ignore[import-untyped]  # pefile's ordinal tables
import pefile

from cleancenter.analyze.entropy import RegionDigests, shannon_regions
from cleancenter.analyze.lief_options import without
from cleancenter.analyze.report import Overlay, PEInfo, Resource, Section

__all__ = ["PEError", "imphash", "parse_pe", "pe_checksum"]

lief.logging.disable()

MAX_SECTIONS = 256  # listed in the report; all of them count for anomalies and overlay
MAX_RESOURCES = 200
MAX_RESOURCE_NODES = 20_000  # nodes walked in a resource tree (loops, bombs)
MAX_IMPORT_SYMBOLS = 0x2000  # as pefile
MAX_EXPORTS = 0x2000  # as pefile
MAX_NAME = 512  # characters kept of any name read from the file
MAX_VERSION_KEYS = 64
MAX_VERSION_VALUE = 1024
ENTRY_BYTES = 64
TINY_IMPORTS = 5  # fewer imports than this in a native exe is an anomaly
FUTURE_SLACK = timedelta(days=1)
OVERLAP_FACTOR = 4  # sections mapping more than 4 times the file (+1 MiB) overlap a lot

_MACHINES = {
    0x014C: "x86", 0x8664: "x86-64", 0x01C0: "arm", 0x01C2: "arm", 0x01C4: "arm",
    0xAA64: "aarch64", 0xA641: "aarch64", 0xA64E: "aarch64", 0x0200: "ia64",
    0x0162: "mipsel", 0x0166: "mipsel", 0x0168: "mipsel", 0x0169: "mipsel",
    0x0266: "mipsel", 0x0366: "mipsel", 0x0466: "mipsel",
    0x01F0: "powerpc", 0x01F1: "powerpc", 0x01F2: "powerpc",
    0x01A2: "sh3", 0x01A3: "sh3", 0x01A6: "sh4", 0x01A8: "sh5",
    0x0184: "alpha", 0x0284: "alpha64", 0x5032: "riscv32", 0x5064: "riscv64",
    0x5128: "riscv128", 0x6232: "loongarch32", 0x6264: "loongarch64",
    0x0EBC: "ebc", 0x9041: "m32r", 0x01D3: "am33", 0x0000: "unknown",
}
_SIXTY_FOUR = {"x86-64", "aarch64", "ia64", "alpha64", "riscv64", "loongarch64"}
_SUBSYSTEMS = {
    0: "unknown", 1: "native", 2: "windows-gui", 3: "windows-cui", 5: "os2-cui",
    7: "posix-cui", 8: "native-windows", 9: "windows-ce-gui", 10: "efi-application",
    11: "efi-boot-service-driver", 12: "efi-runtime-driver", 13: "efi-rom", 14: "xbox",
    16: "windows-boot-application", 17: "xbox-code-catalog",
}
_RESOURCE_TYPES = {
    1: "RT_CURSOR", 2: "RT_BITMAP", 3: "RT_ICON", 4: "RT_MENU", 5: "RT_DIALOG",
    6: "RT_STRING", 7: "RT_FONTDIR", 8: "RT_FONT", 9: "RT_ACCELERATOR", 10: "RT_RCDATA",
    11: "RT_MESSAGETABLE", 12: "RT_GROUP_CURSOR", 14: "RT_GROUP_ICON", 16: "RT_VERSION",
    17: "RT_DLGINCLUDE", 19: "RT_PLUGPLAY", 20: "RT_VXD", 21: "RT_ANICURSOR",
    22: "RT_ANIICON", 23: "RT_HTML", 24: "RT_MANIFEST",
}
_SECTION_FLAGS = (
    (0x40000000, "read"), (0x80000000, "write"), (0x20000000, "execute"), (0x00000020, "code"),
    (0x00000040, "initialized-data"), (0x00000080, "uninitialized-data"),
    (0x10000000, "shared"), (0x02000000, "discardable"),
)
# Modules only kernel-mode code imports.
_KERNEL_MODULES = {
    "ntoskrnl.exe", "ntkrnlpa.exe", "ntkrnlmp.exe", "ntkrpamp.exe", "hal.dll", "ndis.sys",
    "wdfldr.sys", "fltmgr.sys", "tdi.sys", "videoprt.sys", "ks.sys", "classpnp.sys",
    "storport.sys", "scsiport.sys", "usbd.sys", "netio.sys", "ksecdd.sys", "wmilib.sys",
}
_IMAGE_FILE_DLL = 0x2000
_DLLCHAR_WDM_DRIVER = 0x2000
_DIR_IMPORT, _DIR_RESOURCE, _DIR_SECURITY, _DIR_CLR = 1, 2, 4, 14


class PEError(ValueError):
    """The input is not a PE file, or too little of one to read anything."""


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class _RawSection:
    name: str
    virtual_size: int
    virtual_address: int
    raw_size: int
    raw_offset: int
    characteristics: int

    def flags(self) -> list[str]:
        return [name for bit, name in _SECTION_FLAGS if self.characteristics & bit]

    def contains_rva(self, rva: int) -> bool:
        span = max(self.virtual_size, self.raw_size)
        return self.virtual_address <= rva < self.virtual_address + span


@dataclass
class _Headers:
    machine: int
    timestamp: int
    characteristics: int
    opt_offset: int
    magic: int | None = None
    entry_point: int = 0
    image_base: int = 0
    checksum: int = 0
    subsystem: int = 0
    dll_characteristics: int = 0
    size_of_headers: int = 0
    file_alignment: int = 0
    directories: list[tuple[int, int]] = field(default_factory=list)
    sections: list[_RawSection] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    def directory(self, index: int) -> tuple[int, int]:
        if index < len(self.directories):
            return self.directories[index]
        return (0, 0)

    def has_directory(self, index: int) -> bool:
        address, size = self.directory(index)
        return address != 0 and size != 0


def _u16(data: bytes, offset: int) -> int | None:
    return struct.unpack_from("<H", data, offset)[0] if offset + 2 <= len(data) else None


def _u32(data: bytes, offset: int) -> int | None:
    return struct.unpack_from("<I", data, offset)[0] if offset + 4 <= len(data) else None


def _u64(data: bytes, offset: int) -> int | None:
    return struct.unpack_from("<Q", data, offset)[0] if offset + 8 <= len(data) else None


def _text(value: str | bytes | None, limit: int = MAX_NAME) -> str:
    """A name from the file as safe text: bytes cut at NUL, undecodable bytes escaped."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace")
    return value[:limit]


def _read_headers(data: bytes) -> _Headers:
    if len(data) < 64:
        raise PEError(f"not a PE file: {len(data)} bytes, too short for a DOS header")
    if data[:2] != b"MZ":
        raise PEError("not a PE file: no MZ signature")
    e_lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    if e_lfanew + 24 > len(data):
        raise PEError(
            f"not a PE file: MZ header points to a PE header at {e_lfanew:#x}, past the end "
            f"({len(data)} bytes); a DOS program or a truncated file"
        )
    if data[e_lfanew : e_lfanew + 4] != b"PE\0\0":
        raise PEError(f"not a PE file: no PE signature at {e_lfanew:#x} (a DOS/NE/LE program?)")
    machine, nsections, timestamp, symtab, nsymbols, opt_size, characteristics = (
        struct.unpack_from("<HHIIIHH", data, e_lfanew + 4)
    )
    opt = e_lfanew + 24
    head = _Headers(machine, timestamp, characteristics, opt)
    head.magic = _u16(data, opt)
    wide = head.magic == 0x20B
    head.entry_point = _u32(data, opt + 16) or 0
    image_base = _u64(data, opt + 24) if wide else _u32(data, opt + 28)
    head.image_base = image_base or 0
    head.file_alignment = _u32(data, opt + 36) or 0
    head.size_of_headers = _u32(data, opt + 60) or 0
    head.checksum = _u32(data, opt + 64) or 0
    head.subsystem = _u16(data, opt + 68) or 0
    head.dll_characteristics = _u16(data, opt + 70) or 0
    dirs_at = opt + (112 if wide else 96)
    ndirs = _u32(data, dirs_at - 4) or 0
    for index in range(min(ndirs, 16)):
        at = dirs_at + 8 * index
        if at + 8 > len(data):
            break
        head.directories.append(struct.unpack_from("<II", data, at))
    if opt + max(opt_size, 2) > len(data):
        head.anomalies.append("truncated-headers")
    if head.magic not in (0x10B, 0x20B):
        head.anomalies.append("bad-optional-header-magic")
    table = opt + opt_size
    string_table = symtab + 18 * nsymbols if symtab else 0
    for index in range(nsections):
        at = table + 40 * index
        if at + 40 > len(data):
            if "truncated-headers" not in head.anomalies:
                head.anomalies.append("truncated-headers")
            break
        raw_name = data[at : at + 8]
        vsize, va, raw_size, raw_offset = struct.unpack_from("<IIII", data, at + 8)
        chars = struct.unpack_from("<I", data, at + 36)[0]
        head.sections.append(_RawSection(
            _section_name(data, raw_name, string_table), vsize, va, raw_size, raw_offset, chars
        ))
    if nsections == 0:
        head.anomalies.append("no-sections")
    elif nsections > 96:  # the limit of Windows XP; later ones load up to 65535
        head.anomalies.append("many-sections")
    return head


def _section_name(data: bytes, raw: bytes, string_table: int) -> str:
    """The 8-byte name, or the long name ``/123`` points to in the COFF string table."""
    name = raw.split(b"\0", 1)[0]
    if string_table and name[:1] == b"/" and name[1:].isdigit():
        at = string_table + int(name[1:])
        if at < len(data):
            end = data.find(b"\0", at, at + MAX_NAME)
            if end > at:
                name = data[at:end]
    return _text(name)


def _rva_to_offset(head: _Headers, rva: int) -> int | None:
    """Where the loader reads ``rva`` from: like pefile, a section's PointerToRawData is
    rounded down to 512 when FileAlignment is at least 512 (clam.exe's is 1)."""
    for section in head.sections:
        if section.contains_rva(rva):
            delta = rva - section.virtual_address
            start = section.raw_offset
            if head.file_alignment >= 0x200:
                start -= start % 0x200
            return start + delta if delta < section.raw_size else None
    first = min((s.virtual_address for s in head.sections), default=head.size_of_headers)
    return rva if rva < max(first, 1) else None


def _import_table_in_file(data: bytes, head: _Headers) -> bool:
    if not head.has_directory(_DIR_IMPORT):
        return False
    offset = _rva_to_offset(head, head.directory(_DIR_IMPORT)[0])
    return offset is not None and offset + 20 <= len(data)


def pe_checksum(data: bytes, checksum_offset: int) -> int:
    """The PE image checksum, as pefile's ``generate_checksum`` computes it.

    The file as little-endian dwords (zero-padded), without the one holding the CheckSum
    field, added with end-around carry, folded to 16 bits, plus the file's length.
    """
    pad = (-len(data)) % 4
    words = array("I")
    if words.itemsize != 4:  # pragma: no cover - no such platform in use
        words = array("L")
    words.frombytes(data + b"\0" * pad if pad else data)
    if sys.byteorder == "big":  # pragma: no cover
        words.byteswap()
    total = sum(words)
    skip = checksum_offset // 4
    if 0 <= skip < len(words):
        total -= words[skip]
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    folded = (total & 0xFFFF) + (total >> 16)
    folded = (folded + (folded >> 16)) & 0xFFFF
    return folded + len(data)


# ----------------------------------------------------------------- directories (libs)


@dataclass(frozen=True)
class _RawResource:
    type: str
    name: str | None
    language: int | None
    offset: int | None
    size: int


@dataclass
class _Directories:
    parser: str
    imports: list[tuple[str, list[str]]] = field(default_factory=list)  # file order
    exports: list[str] = field(default_factory=list)
    resources: list[_RawResource] = field(default_factory=list)
    version_info: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def import_count(self) -> int:
        return sum(len(names) for _, names in self.imports)


def _resource_label(ident: int | None, name: str | bytes | None, *, is_type: bool) -> str:
    if name:
        return _text(name)
    if ident is None:
        return ""
    return _RESOURCE_TYPES.get(ident, str(ident)) if is_type else str(ident)


def _add_version_entry(table: dict[str, str], key: str | bytes, value: str | bytes) -> None:
    key_text = _text(key, 128).strip()
    if key_text and key_text not in table and len(table) < MAX_VERSION_KEYS:
        table[key_text] = _text(value, MAX_VERSION_VALUE).strip().strip("\0").strip()


def _lief_config() -> lief.PE.ParserConfig:
    """Only what is used (the security directory's presence needs no signature parse);
    options an older LIEF lacks are left alone."""
    return without(lief.PE.ParserConfig(), "parse_signature", "parse_reloc",
                   "parse_exceptions", "parse_arm64x_binary")


def _with_lief(data: bytes) -> _Directories | None:
    try:
        binary = lief.PE.parse(data, _lief_config())
    except Exception:
        return None
    if binary is None:
        return None
    found = _Directories("lief")
    for part, reader in (
        ("imports", _lief_imports), ("exports", _lief_exports),
        ("resources", _lief_resources), ("version-info", _lief_version),
    ):
        try:
            reader(binary, found)
        except Exception:
            found.problems.append(f"unreadable-{part}")
    return found


def _lief_imports(binary: lief.PE.Binary, found: _Directories) -> None:
    total = 0
    for module in binary.imports:
        names: list[str] = []
        for entry in module.entries:
            if total >= MAX_IMPORT_SYMBOLS:
                break
            total += 1
            names.append(f"ord:{entry.ordinal}" if entry.is_ordinal else _text(entry.name))
        found.imports.append((_text(module.name), names))


def _lief_exports(binary: lief.PE.Binary, found: _Directories) -> None:
    export = binary.get_export()
    if export is None:
        return
    for entry in export.entries:
        if len(found.exports) >= MAX_EXPORTS:
            break
        found.exports.append(_text(entry.name) or f"ord:{entry.ordinal}")


def _lief_resources(binary: lief.PE.Binary, found: _Directories) -> None:
    root = binary.resources
    if root is None:
        return
    budget = MAX_RESOURCE_NODES
    stack: list[tuple[lief.PE.ResourceNode, tuple[str, ...]]] = [(root, ())]
    while stack and budget > 0 and len(found.resources) < MAX_RESOURCES:
        node, path = stack.pop()
        children = list(node.childs)
        budget -= len(children)
        for child in reversed(children):  # reversed: the stack pops them in tree order
            label = _resource_label(
                child.id, child.name if child.has_name else None, is_type=not path
            )
            if isinstance(child, lief.PE.ResourceData):
                found.resources.append(_RawResource(
                    type=path[0] if path else label,
                    name=path[1] if len(path) > 1 else None,
                    language=child.id if len(path) > 1 and not child.has_name else None,
                    offset=child.offset,
                    size=len(child.content),
                ))
            elif len(path) < 3:
                stack.append((child, (*path, label)))
    del found.resources[MAX_RESOURCES:]


def _lief_version(binary: lief.PE.Binary, found: _Directories) -> None:
    if not binary.has_resources:
        return
    manager = binary.resources_manager
    if not isinstance(manager, lief.PE.ResourcesManager) or not manager.has_version:
        return
    for version in manager.version:
        info = version.string_file_info
        if info is None:
            continue
        for table in info.children:
            for entry in table.entries:
                _add_version_entry(found.version_info, entry.key, entry.value)


def _pefile(data: bytes, *, imports_only: bool = False) -> _Directories | None:
    try:
        pe = pefile.PE(data=data, fast_load=True)
        if imports_only:
            pe.parse_data_directories(
                directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]]
            )
        else:
            pe.parse_data_directories()
    except Exception:
        return None
    found = _Directories("pefile")
    readers = [("imports", _pefile_imports)]
    if not imports_only:
        readers += [
            ("exports", _pefile_exports), ("resources", _pefile_resources),
            ("version-info", _pefile_version),
        ]
    for part, reader in readers:
        try:
            reader(pe, found)
        except Exception:
            found.problems.append(f"unreadable-{part}")
    return found


def _pefile_imports(pe: pefile.PE, found: _Directories) -> None:
    for module in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
        names = [
            f"ord:{symbol.ordinal}" if symbol.import_by_ordinal else _text(symbol.name)
            for symbol in module.imports
        ]
        found.imports.append((_text(module.dll), names))


def _pefile_exports(pe: pefile.PE, found: _Directories) -> None:
    export = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    for symbol in getattr(export, "symbols", [])[:MAX_EXPORTS]:
        found.exports.append(_text(symbol.name) or f"ord:{symbol.ordinal}")


def _pefile_resources(pe: pefile.PE, found: _Directories) -> None:
    root = getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None)
    if root is None:
        return
    budget = MAX_RESOURCE_NODES
    stack: list[tuple[object, tuple[str, ...]]] = [(root, ())]
    while stack and budget > 0 and len(found.resources) < MAX_RESOURCES:
        directory, path = stack.pop()
        entries = list(getattr(directory, "entries", []))
        budget -= len(entries)
        for entry in reversed(entries):
            name = entry.name.string if entry.name is not None else None
            label = _resource_label(entry.id, name, is_type=not path)
            if hasattr(entry, "data"):
                rva, size = entry.data.struct.OffsetToData, entry.data.struct.Size
                try:
                    offset: int | None = pe.get_offset_from_rva(rva)
                except Exception:
                    offset = None
                found.resources.append(_RawResource(
                    type=path[0] if path else label,
                    name=path[1] if len(path) > 1 else None,
                    language=entry.id if len(path) > 1 else None,
                    offset=offset,
                    size=size,
                ))
            elif hasattr(entry, "directory") and len(path) < 3:
                stack.append((entry.directory, (*path, label)))
    del found.resources[MAX_RESOURCES:]


def _pefile_version(pe: pefile.PE, found: _Directories) -> None:
    for infos in getattr(pe, "FileInfo", []):
        for info in infos:
            for table in getattr(info, "StringTable", []):
                for key, value in table.entries.items():
                    _add_version_entry(found.version_info, key, value)


# ------------------------------------------------------------------------ the report


def _regions(
    data: bytes, head: _Headers, found: _Directories
) -> tuple[list[Section], list[Resource], Overlay | None]:
    """Sections, resources and overlay, their entropies counted in one pass."""
    listed = head.sections[:MAX_SECTIONS]
    ends = [s.raw_offset + s.raw_size for s in head.sections if s.raw_size]
    overlay_at = max(ends) if ends and max(ends) < len(data) else None
    regions = [(s.raw_offset, s.raw_size) for s in listed]
    regions += [(r.offset if r.offset is not None else 0, r.size if r.offset is not None else 0)
                for r in found.resources]
    regions.append((overlay_at, len(data)) if overlay_at is not None else (0, 0))
    entropies = iter(round(e, 4) for e in shannon_regions(data, regions))
    digests = RegionDigests(data)
    sections = []
    for raw_section in listed:
        md5, sha256 = digests(raw_section.raw_offset, raw_section.raw_size)
        sections.append(Section(
            name=raw_section.name,
            virtual_address=raw_section.virtual_address,
            virtual_size=raw_section.virtual_size,
            raw_offset=raw_section.raw_offset,
            raw_size=raw_section.raw_size,
            entropy=next(entropies),
            flags=raw_section.flags(),
            md5=md5,
            sha256=sha256,
        ))
    resources = [
        Resource(
            type=res.type, name=res.name, language=res.language, offset=res.offset,
            size=res.size, entropy=next(entropies), sha256=digests(res.offset, res.size)[1],
        )
        for res in found.resources
    ]
    overlay_entropy = next(entropies)
    overlay = None
    if overlay_at is not None:
        overlay = Overlay(offset=overlay_at, size=len(data) - overlay_at, entropy=overlay_entropy)
    return sections, resources, overlay


def _machine(head: _Headers) -> tuple[str, int]:
    name = _MACHINES.get(head.machine, f"unknown-{head.machine:#06x}")
    if head.magic == 0x20B:
        bits = 64
    elif head.magic in (0x10B, 0x107):
        bits = 32
    else:
        bits = 64 if name in _SIXTY_FOUR else 32
    return name, bits


def _compile_time(timestamp: int) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def _collect_anomalies(
    data: bytes, head: _Headers, found: _Directories, info: PEInfo
) -> list[str]:
    anomalies = [*head.anomalies, *found.problems]
    for index, section in enumerate(head.sections):
        flags = section.flags()
        if "write" in flags and "execute" in flags:
            anomalies.append(f"wx-section:{section.name or f'#{index}'}")
    if any(
        s.raw_size and s.raw_offset + s.raw_size > len(data) for s in head.sections
    ):
        anomalies.append("section-beyond-eof")
    if not (info.is_dll and head.entry_point == 0):
        ep_section = next((s for s in head.sections if s.contains_rva(head.entry_point)), None)
        flags = ep_section.flags() if ep_section else []
        if "code" not in flags and "execute" not in flags:
            anomalies.append("entry-outside-code")
    if not info.is_dll and not info.is_dotnet and info.import_count < TINY_IMPORTS:
        anomalies.append("tiny-import-table")
    if info.checksum_header and info.checksum_actual is not None and (
        info.checksum_header != info.checksum_actual
    ):
        anomalies.append("checksum-mismatch")
    if info.compile_time is None:
        anomalies.append("zero-timestamp")
    elif info.compile_time > datetime.now(UTC) + FUTURE_SLACK:
        anomalies.append("future-timestamp")
    return anomalies


def parse_pe(data: bytes) -> PEInfo:
    """Read the PE features of ``data``; `PEError` when it has no PE header to read."""
    data = bytes(data)
    head = _read_headers(data)
    # LIEF copies each section's data: hundreds of sections that all span a big file
    # (a trick against analyzers) take it seconds to minutes; pefile does not mind.
    mapped = sum(
        max(0, min(s.raw_offset + s.raw_size, len(data)) - s.raw_offset) for s in head.sections
    )
    overlapping = mapped > OVERLAP_FACTOR * len(data) + (1 << 20)
    if overlapping:
        head.anomalies.append("overlapping-sections")
    found = None if overlapping else _with_lief(data)
    if found is None:
        found = _pefile(data)
    elif not found.imports and _import_table_in_file(data, head):
        # LIEF misses imports in some tiny hand-made files; pefile reads them. (Not
        # tried when the table is not in the file: a failing pefile.PE costs a full
        # gc.collect(), tens of ms in a big process.)
        check = _pefile(data, imports_only=True)
        if check is not None and check.imports:
            found = _pefile(data) or check
    if found is None:
        found = _Directories("headers", problems=["unreadable-directories"])

    machine, bits = _machine(head)
    imports: dict[str, list[str]] = {}
    for dll, names in found.imports:
        imports.setdefault(dll, []).extend(names)
    kernel = any(dll.lower() in _KERNEL_MODULES for dll in imports)
    checksum_at = head.opt_offset + 64
    entry_offset = _rva_to_offset(head, head.entry_point)
    is_dll = bool(head.characteristics & _IMAGE_FILE_DLL)
    sections, resources, overlay = _regions(data, head, found)
    info = PEInfo(
        machine=machine,
        bits=bits,
        is_dll=is_dll,
        is_driver=kernel
        or head.subsystem == 1
        or bool(head.dll_characteristics & _DLLCHAR_WDM_DRIVER),
        is_dotnet=head.has_directory(_DIR_CLR),
        compile_time=_compile_time(head.timestamp),
        subsystem=_SUBSYSTEMS.get(head.subsystem, f"unknown-{head.subsystem}"),
        entry_point=head.entry_point,
        image_base=head.image_base,
        checksum_header=head.checksum,
        checksum_actual=pe_checksum(data, checksum_at) if checksum_at + 4 <= len(data) else None,
        sections=sections,
        imports=imports,
        import_count=found.import_count,
        exports=found.exports,
        resources=resources,
        version_info=found.version_info,
        has_signature=head.has_directory(_DIR_SECURITY),
        overlay=overlay,
        entry_bytes=(
            data[entry_offset : entry_offset + ENTRY_BYTES].hex()
            if entry_offset is not None
            and entry_offset < len(data)
            and not (is_dll and head.entry_point == 0)
            else None
        ),
        parser=found.parser,
    )
    info.anomalies = _collect_anomalies(data, head, found, info)
    return info


def imphash(info: PEInfo) -> str | None:
    """The import hash (Mandiant), computed as pefile's ``get_imphash`` does; None when
    there are no imports (pefile says "").

    ``dll`` lowercased without a .dll/.ocx/.sys extension, "." and the function name
    lowercased (ordinals named from pefile's tables when known, else ``ordN``), joined
    by "," in import order, MD5. One limit of `PEInfo.imports` being a dict: a DLL
    imported by two descriptors apart (``a.dll, b.dll, a.dll``) has its names merged,
    so the order, and the hash, can differ from pefile's for such files.
    """
    parts = []
    for dll, names in info.imports.items():
        library = dll.lower()
        stem, dot, extension = library.rpartition(".")
        if dot and extension in ("dll", "ocx", "sys"):
            library = stem
        for name in names:
            if name.startswith("ord:") and name[4:].isdigit():
                looked_up = ordlookup.ordLookup(dll.lower().encode(), int(name[4:]), True)
                name = looked_up.decode() if isinstance(looked_up, bytes) else str(looked_up)
            if name:
                parts.append(f"{library}.{name.lower()}")
    if not parts:
        return None
    return hashlib.md5(",".join(parts).encode()).hexdigest()
