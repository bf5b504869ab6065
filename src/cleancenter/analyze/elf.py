"""ELF features: header, segments, sections, dynamic libraries, symbols and anomalies.

The ELF header and the program and section header tables are read here with `struct`,
exactly as they are in the file (LIEF clips a segment's file size to what a truncated
file holds, which would hide the truncation). The dynamic section (DT_NEEDED) and the
symbol tables are read with LIEF, with pyelftools when LIEF cannot; ``ELFInfo.parser``
says which, "headers" when neither could.

Every entropy is `entropy.shannon` of the raw bytes in the file. Nothing here raises but
`ELFError`, and only for input that is not ELF or whose ELF header is cut off; anything
past that gives an `ELFInfo` whose ``anomalies`` say what is wrong.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import lief
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from cleancenter.analyze.entropy import RegionDigests, shannon_regions
from cleancenter.analyze.lief_options import without
from cleancenter.analyze.report import ELFInfo, Endianness, Section, Segment

__all__ = ["ELFError", "parse_elf"]

lief.logging.disable()

MAX_SECTIONS = 512  # listed in the report; all of them count for anomalies
MAX_SEGMENTS = 256
MAX_TABLE = 0x10000  # entries read from a header table at most
MAX_SYMBOLS = 500
MAX_NAME = 512
ENTRY_BYTES = 64
OVERLAP_FACTOR = 4  # sections and segments mapping more than 4 times the file (+1 MiB)

_TYPES = {0: "none", 1: "rel", 2: "exec", 3: "dyn", 4: "core"}
_SEGMENT_TYPES = {
    0: "NULL", 1: "LOAD", 2: "DYNAMIC", 3: "INTERP", 4: "NOTE", 5: "SHLIB", 6: "PHDR",
    7: "TLS", 0x6474E550: "GNU_EH_FRAME", 0x6474E551: "GNU_STACK", 0x6474E552: "GNU_RELRO",
    0x6474E553: "GNU_PROPERTY", 0x6474E554: "GNU_SFRAME", 0x65041580: "PAX_FLAGS",
    0x65A3DBE6: "OPENBSD_RANDOMIZE", 0x65A3DBE7: "OPENBSD_WXNEEDED",
}
_SECTION_FLAGS = (
    (0x1, "write"), (0x2, "alloc"), (0x4, "execute"), (0x10, "merge"), (0x20, "strings"),
    (0x400, "tls"),
)
# e_machine -> cpu (the vocabulary of `report.Identity`); None: depends on class/data.
_MACHINES: dict[int, str | None] = {
    2: "sparc", 3: "x86", 4: "m68k", 6: "x86", 8: None, 10: "mipsel", 15: "parisc",
    18: "sparc", 20: "powerpc", 21: "powerpc64", 22: None, 40: "arm", 41: "alpha",
    42: "sh4", 43: "sparc64", 45: "arc", 50: "ia64", 62: "x86-64", 75: "vax", 76: "cris",
    83: "avr", 88: "m32r", 92: "openrisc", 93: "arc", 94: "xtensa", 105: "msp430",
    113: "nios2", 164: "hexagon", 183: "aarch64", 189: "microblaze", 195: "arc",
    243: None, 247: "bpf", 252: "csky", 258: None, 0x9026: "alpha",
}
_SHT_NULL, _SHT_SYMTAB, _SHT_NOBITS = 0, 2, 8
_PT_LOAD, _PT_INTERP = 1, 3
_SKIPPED_SYMBOL_TYPES = (3, 4)  # STT_SECTION, STT_FILE


class ELFError(ValueError):
    """The input is not an ELF file, or too little of one to read anything."""


@dataclass(frozen=True)
class _Program:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class _SectionHeader:
    name_offset: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int


@dataclass
class _Header:
    bits: int
    endianness: Endianness
    order: str  # struct byte order: "<" or ">"
    type: int
    machine: int
    entry: int
    phoff: int
    shoff: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int
    programs: list[_Program] = field(default_factory=list)
    sections: list[_SectionHeader] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)


def _text(value: str | bytes | None, limit: int = MAX_NAME) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace")
    return value[:limit]


def _read_header(data: bytes) -> _Header:
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise ELFError("not an ELF file: no \\x7fELF signature")
    klass, encoding = data[4], data[5]
    if klass not in (1, 2):
        raise ELFError(f"not a readable ELF file: unknown class {klass}")
    if encoding not in (1, 2):
        raise ELFError(f"not a readable ELF file: unknown data encoding {encoding}")
    bits = 32 if klass == 1 else 64
    order = "<" if encoding == 1 else ">"
    layout = order + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH")
    if len(data) < 16 + struct.calcsize(layout):
        raise ELFError(f"truncated ELF file: {len(data)} bytes, the ELF header is cut off")
    (e_type, machine, _version, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
     shentsize, shnum, shstrndx) = struct.unpack_from(layout, data, 16)
    return _Header(
        bits=bits, endianness="little" if encoding == 1 else "big", order=order,
        type=e_type, machine=machine, entry=entry, phoff=phoff, shoff=shoff,
        phentsize=phentsize, phnum=phnum, shentsize=shentsize, shnum=shnum,
        shstrndx=shstrndx,
    )


def _read_sections(data: bytes, head: _Header) -> None:
    layout = head.order + ("IIIIIIIIII" if head.bits == 32 else "IIQQQQIIQQ")
    size = struct.calcsize(layout)
    if head.shoff == 0:
        return
    if head.shentsize < size:
        head.anomalies.append("bad-section-header-size")
        return
    count = head.shnum
    if count == 0 and head.shoff + size <= len(data):  # > 0xff00 sections: count in [0]
        count = struct.unpack_from(layout, data, head.shoff)[5]
    for index in range(min(count, MAX_TABLE)):
        at = head.shoff + index * head.shentsize
        if at + size > len(data):
            head.anomalies.append("truncated-section-table")
            break
        name, sh_type, flags, addr, offset, sh_size, link, info, _align, _entsize = (
            struct.unpack_from(layout, data, at)
        )
        head.sections.append(_SectionHeader(name, sh_type, flags, addr, offset, sh_size,
                                            link, info))
    strndx = head.shstrndx
    if strndx == 0xFFFF and head.sections:  # SHN_XINDEX: the index is in [0].sh_link
        strndx = head.sections[0].link
    table = head.sections[strndx] if 0 < strndx < len(head.sections) else None
    for section in head.sections:
        name = ""
        if table is not None and table.type != _SHT_NOBITS and section.name_offset < table.size:
            start = table.offset + section.name_offset
            end = data.find(b"\0", start, min(start + MAX_NAME, table.offset + table.size))
            name = _text(data[start:end] if end >= start else data[start : start + MAX_NAME])
        head.names.append(name)


def _read_programs(data: bytes, head: _Header) -> None:
    layout = head.order + ("IIIIIIII" if head.bits == 32 else "IIQQQQQQ")
    size = struct.calcsize(layout)
    if head.phoff == 0 or head.phnum == 0:
        return
    if head.phentsize < size:
        head.anomalies.append("bad-program-header-size")
        return
    count = head.phnum
    if count == 0xFFFF and head.sections:  # PN_XNUM: the count is in [0].sh_info
        count = head.sections[0].info
    for index in range(min(count, MAX_TABLE)):
        at = head.phoff + index * head.phentsize
        if at + size > len(data):
            head.anomalies.append("truncated-program-headers")
            break
        fields = struct.unpack_from(layout, data, at)
        if head.bits == 32:
            p_type, offset, vaddr, _paddr, filesz, memsz, flags, _align = fields
        else:
            p_type, flags, offset, vaddr, _paddr, filesz, memsz, _align = fields
        head.programs.append(_Program(p_type, flags, offset, vaddr, filesz, memsz))


def _machine(head: _Header) -> str:
    name = _MACHINES.get(head.machine, f"unknown-{head.machine}")
    if name is not None:
        return name
    wide = head.bits == 64
    if head.machine == 8:  # EM_MIPS: one number for the four of them
        return ("mips64" if wide else "mips") + ("el" if head.endianness == "little" else "")
    if head.machine == 22:  # EM_S390
        return "s390x" if wide else "s390"
    if head.machine == 243:  # EM_RISCV
        return "riscv64" if wide else "riscv32"
    return "loongarch64" if wide else "loongarch32"  # 258, EM_LOONGARCH


def _flags_text(flags: int) -> str:
    return ("r" if flags & 4 else "-") + ("w" if flags & 2 else "-") + ("x" if flags & 1 else "-")


def _vaddr_to_offset(head: _Header, address: int) -> int | None:
    for program in head.programs:
        if program.type == _PT_LOAD and program.vaddr <= address < program.vaddr + program.filesz:
            return program.offset + (address - program.vaddr)
    return None


# --------------------------------------------------------------- dynamic and symbols


@dataclass
class _Dynamic:
    parser: str
    needed: list[str] = field(default_factory=list)
    # unique names, dynamic ones first; no file (source name) or section symbols
    symbols: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _lief_config() -> lief.ELF.ParserConfig:
    """Only what is used; options an older LIEF lacks are left alone."""
    return without(lief.ELF.ParserConfig(), "parse_relocations", "parse_symbol_versions",
                   "parse_notes", "parse_overlay")


def _with_lief(data: bytes) -> _Dynamic | None:
    try:
        binary = lief.ELF.parse(data, _lief_config())
    except Exception:
        return None
    if not isinstance(binary, lief.ELF.Binary):
        return None
    found = _Dynamic("lief")
    try:
        found.needed = [
            _text(entry.name) for entry in binary.dynamic_entries
            if isinstance(entry, lief.ELF.DynamicEntryLibrary)
        ]
    except Exception:
        found.problems.append("unreadable-dynamic")
    try:
        # st_info's low nibble is the type; LIEF's enum warns on OS-specific ones
        names = dict.fromkeys(
            _text(s.name) for s in binary.dynamic_symbols
            if s.information & 0xF not in _SKIPPED_SYMBOL_TYPES
        )
        names.update(dict.fromkeys(
            _text(s.name) for s in binary.symtab_symbols
            if s.information & 0xF not in _SKIPPED_SYMBOL_TYPES
        ))
        names.pop("", None)
        found.symbols = list(names)
    except Exception:
        found.problems.append("unreadable-symbols")
    return found


def _with_pyelftools(data: bytes) -> _Dynamic | None:
    try:
        elf = ELFFile(io.BytesIO(data))
    except Exception:
        return None
    found = _Dynamic("pyelftools")
    try:
        tables: list[DynamicSection | DynamicSegment] = [
            s for s in elf.iter_sections() if isinstance(s, DynamicSection)
        ]
        if not tables:
            tables = [s for s in elf.iter_segments() if isinstance(s, DynamicSegment)]
        for table in tables[:1]:
            found.needed = [
                _text(getattr(tag, "needed", None)) for tag in table.iter_tags("DT_NEEDED")
            ]
    except Exception:
        found.problems.append("unreadable-dynamic")
    try:
        dynamic_names: dict[str, None] = {}
        other_names: dict[str, None] = {}
        for section in elf.iter_sections():
            if isinstance(section, SymbolTableSection):
                target = dynamic_names if section.name == ".dynsym" else other_names
                target.update(dict.fromkeys(
                    _text(s.name) for s in section.iter_symbols()
                    if s["st_info"]["type"] not in ("STT_FILE", "STT_SECTION")
                ))
        dynamic_names.update(other_names)
        dynamic_names.pop("", None)
        found.symbols = list(dynamic_names)
    except Exception:
        found.problems.append("unreadable-symbols")
    return found


# ------------------------------------------------------------------------ the report


def _sections_and_segments(data: bytes, head: _Header) -> tuple[list[Section], list[Segment]]:
    pairs = enumerate(zip(head.sections, head.names, strict=True))
    listed = [  # without the null entry [0], which is no section
        (section, name) for index, (section, name) in pairs
        if index or section.type != _SHT_NULL
    ][:MAX_SECTIONS]
    programs = head.programs[:MAX_SEGMENTS]
    regions = [(s.offset, s.size if s.type != _SHT_NOBITS else 0) for s, _ in listed]
    regions += [(p.offset, p.filesz) for p in programs]
    entropies = iter(shannon_regions(data, regions))
    digests = RegionDigests(data)
    sections = []
    for section, name in listed:
        in_file = section.type != _SHT_NOBITS
        md5, sha256 = digests(section.offset, section.size) if in_file else (None, None)
        flags = [text for bit, text in _SECTION_FLAGS if section.flags & bit]
        if not in_file:
            flags.append("nobits")
        sections.append(Section(
            name=name,
            virtual_address=section.addr,
            virtual_size=section.size if section.flags & 0x2 else 0,
            raw_offset=section.offset,
            raw_size=section.size if in_file else 0,
            entropy=round(next(entropies), 4),
            flags=flags,
            md5=md5,
            sha256=sha256,
        ))
    segments = [
        Segment(
            type=_SEGMENT_TYPES.get(p.type, f"{p.type:#x}"),
            offset=p.offset,
            virtual_address=p.vaddr,
            file_size=p.filesz,
            memory_size=p.memsz,
            flags=_flags_text(p.flags),
            entropy=round(next(entropies), 4),
        )
        for p in programs
    ]
    return sections, segments


def _interpreter(data: bytes, head: _Header) -> str | None:
    for program in head.programs:
        if program.type == _PT_INTERP and program.filesz:
            raw = data[program.offset : program.offset + min(program.filesz, 4096)]
            return _text(raw) or None
    return None


def _anomalies(data: bytes, head: _Header) -> list[str]:
    anomalies = list(head.anomalies)
    loadable = head.type in (2, 3)  # exec, dyn
    if loadable and not any(s.type != _SHT_NULL for s in head.sections):
        anomalies.append("no-sections")
    if loadable and not head.programs:
        anomalies.append("no-segments")
    if loadable and head.entry and head.programs and not any(
        p.type == _PT_LOAD and p.vaddr <= head.entry < p.vaddr + p.memsz for p in head.programs
    ):
        anomalies.append("entry-outside-segments")
    if any(
        s.type != _SHT_NOBITS and s.size and s.offset + s.size > len(data)
        for s in head.sections
    ):
        anomalies.append("section-beyond-eof")
    if any(p.filesz and p.offset + p.filesz > len(data) for p in head.programs):
        anomalies.append("segment-beyond-eof")
    if any(p.type == _PT_LOAD and p.flags & 2 and p.flags & 1 for p in head.programs):
        anomalies.append("wx-segment")
    return anomalies


def parse_elf(data: bytes) -> ELFInfo:
    """Read the ELF features of ``data``; `ELFError` when it has no ELF header to read."""
    data = bytes(data)
    head = _read_header(data)
    _read_sections(data, head)
    _read_programs(data, head)
    # LIEF copies the data of every section and segment: thousands of them that all span a
    # big file (a trick against analyzers) take it seconds; pyelftools reads lazily.
    mapped = sum(
        max(0, min(offset + size, len(data)) - offset)
        for offset, size in [(s.offset, s.size) for s in head.sections if s.type != _SHT_NOBITS]
        + [(p.offset, p.filesz) for p in head.programs]
    )
    overlapping = mapped > OVERLAP_FACTOR * len(data) + (1 << 20)
    if overlapping:
        head.anomalies.append("overlapping-regions")
    found = (None if overlapping else _with_lief(data)) or _with_pyelftools(data)
    if found is None:
        found = _Dynamic("headers", problems=["unreadable-dynamic", "unreadable-symbols"])
    interpreter = _interpreter(data, head)
    entry_offset = _vaddr_to_offset(head, head.entry) if head.entry else None
    sections, segments = _sections_and_segments(data, head)
    return ELFInfo(
        bits=head.bits,
        endianness=head.endianness,
        machine=_machine(head),
        type=_TYPES.get(head.type, f"unknown-{head.type:#x}"),
        static=interpreter is None and not found.needed,
        stripped=not any(s.type == _SHT_SYMTAB for s in head.sections),
        interpreter=interpreter,
        entry_point=head.entry,
        needed=found.needed,
        sections=sections,
        segments=segments,
        symbols=found.symbols[:MAX_SYMBOLS],
        symbol_count=len(found.symbols),
        anomalies=_anomalies(data, head) + found.problems,
        entry_bytes=(
            data[entry_offset : entry_offset + ENTRY_BYTES].hex()
            if entry_offset is not None and entry_offset < len(data)
            else None
        ),
        parser=found.parser,
    )
