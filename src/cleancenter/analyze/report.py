"""The analysis report: one per (sample, analyzer version), plain pydantic data.

Extractors fill the feature parts (identity, hashes, pe, elf, strings, iocs, yara);
conclusion steps fill packer, family and verdict, each with the evidence it used, so an
analyst can see why and argue. Bump `ANALYZER_VERSION` when a change alters results: a
report of the same version for the same sample is never computed twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ANALYZER_VERSION = "1"

Kind = Literal["pe", "elf", "script", "archive", "document", "data", "empty"]
Endianness = Literal["little", "big"]
VerdictValue = Literal["malicious", "suspicious", "clean", "unknown"]


class Identity(BaseModel):
    """What the file is. ``cpu`` uses one vocabulary for PE and ELF: x86, x86-64, arm,
    aarch64, mips, mipsel, mips64, mips64el, powerpc, powerpc64, sh4, sparc, sparc64,
    m68k, riscv64, s390x, ..."""

    kind: Kind
    subtype: str | None = None  # pe: exe|dll|driver; script: sh|ps1|vbs|js|bat|py|perl;
    # archive: zip|7z|rar|gzip|...; document: pdf|ole|rtf|ooxml|html
    description: str  # a readable one-liner, e.g. "PE32+ DLL x86-64 (.NET)"
    mime: str | None = None
    magic: str | None = None  # libmagic's description, when available
    cpu: str | None = None
    bits: int | None = None
    endianness: Endianness | None = None
    dotnet: bool = False


class Hashes(BaseModel):
    md5: str
    sha1: str
    sha256: str
    size: int
    ssdeep: str | None = None
    tlsh: str | None = None  # None when the file is too small or too uniform for TLSH
    imphash: str | None = None  # PE only


class Section(BaseModel):
    name: str
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int
    entropy: float  # Shannon entropy of the raw bytes, bits per byte (0-8)
    flags: list[str] = Field(default_factory=list)  # e.g. ["read", "write", "execute", "code"]
    md5: str | None = None
    sha256: str | None = None


class Resource(BaseModel):
    type: str
    name: str | None = None
    language: int | None = None
    offset: int | None = None
    size: int
    entropy: float
    sha256: str | None = None


class Overlay(BaseModel):
    offset: int
    size: int
    entropy: float


class PEInfo(BaseModel):
    machine: str  # the cpu vocabulary of `Identity`
    bits: int
    is_dll: bool
    is_driver: bool
    is_dotnet: bool
    compile_time: datetime | None  # from the COFF header (may be fake or zero)
    subsystem: str
    entry_point: int  # RVA
    image_base: int
    checksum_header: int
    checksum_actual: int | None = None
    sections: list[Section] = Field(default_factory=list)
    imports: dict[str, list[str]] = Field(default_factory=dict)  # dll -> names or ordinals
    import_count: int = 0
    exports: list[str] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    version_info: dict[str, str] = Field(default_factory=dict)
    has_signature: bool = False
    overlay: Overlay | None = None
    anomalies: list[str] = Field(default_factory=list)
    entry_bytes: str | None = None  # first 64 bytes at the entry point, hex (for signatures)
    parser: str = ""  # which library read it ("lief", "pefile")


class Segment(BaseModel):
    type: str
    offset: int
    virtual_address: int
    file_size: int
    memory_size: int
    flags: str  # e.g. "r-x"
    entropy: float


class ELFInfo(BaseModel):
    bits: int
    endianness: Endianness
    machine: str  # the cpu vocabulary of `Identity`
    type: str  # exec, dyn, rel, core
    static: bool
    stripped: bool
    interpreter: str | None = None
    entry_point: int
    needed: list[str] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    symbols: list[str] = Field(default_factory=list)  # capped; see symbol_count
    symbol_count: int = 0
    anomalies: list[str] = Field(default_factory=list)
    entry_bytes: str | None = None
    parser: str = ""


class Packer(BaseModel):
    """The packer conclusion: ``name`` None means "not packed"."""

    name: str | None = None
    packed: bool = False
    confidence: Literal["high", "medium", "low"] | None = None
    evidence: list[str] = Field(default_factory=list)


IocType = Literal[
    "url", "domain", "ipv4", "ipv6", "email", "registry", "path", "irc-server",
    "irc-channel", "irc-command", "command", "mutex", "filename",
]


class IOC(BaseModel):
    type: IocType
    value: str
    offset: int  # file offset where the IOC's own text starts
    encoding: Literal["ascii", "utf-16le", "decoded"] = "ascii"
    port: int | None = None
    context: str | None = None  # the string it came from, when useful (capped)


class StringsSummary(BaseModel):
    ascii: int = 0
    utf16: int = 0
    truncated: bool = False  # the byte or string cap was reached


class YaraMatch(BaseModel):
    rule: str
    pack: str  # the rule pack (folder) it came from
    namespace: str | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)  # author, reference, description, ...
    offsets: list[int] = Field(default_factory=list)  # of the first few string matches


class ConfigResult(BaseModel):
    """A bot configuration, in the MACO model (``config`` is `maco.model.ExtractorModel`
    as JSON)."""

    extractor: str
    family: str
    config: dict[str, Any]


class Family(BaseModel):
    name: str
    source: Literal["rule", "name", "config", "similarity", "analyst"]
    reason: str
    distance: int | None = None  # TLSH distance, for "similarity"


class Reason(BaseModel):
    kind: str  # "yara", "hash", "config", "packer", "feature", "analyst", ...
    detail: str
    weight: Literal["malicious", "suspicious", "clean"]


class Verdict(BaseModel):
    value: VerdictValue = "unknown"
    reasons: list[Reason] = Field(default_factory=list)


class StageError(BaseModel):
    stage: str
    message: str


class Report(BaseModel):
    sha256: str
    analyzer_version: str = ANALYZER_VERSION
    created: datetime
    identity: Identity
    hashes: Hashes
    pe: PEInfo | None = None
    elf: ELFInfo | None = None
    packer: Packer = Field(default_factory=Packer)
    unpacked: list[str] = Field(default_factory=list)  # sha256 of children stored
    strings: StringsSummary = Field(default_factory=StringsSummary)
    iocs: list[IOC] = Field(default_factory=list)
    yara: list[YaraMatch] = Field(default_factory=list)
    configs: list[ConfigResult] = Field(default_factory=list)
    family: Family | None = None
    verdict: Verdict = Field(default_factory=Verdict)
    errors: list[StageError] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
