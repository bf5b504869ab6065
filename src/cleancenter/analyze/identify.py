"""Identify: what kind of file this is, from its own headers (and libmagic's opinion).

PE and ELF are read from their headers with `struct` (a few dozen bytes, no parser), so
identification never fails on a damaged body; libmagic adds its description and MIME type
when it is installed.
"""

from __future__ import annotations

import re
import struct
from functools import cache
from typing import Any

from cleancenter.analyze.report import Endianness, Identity

# PE machine -> cpu
PE_MACHINES = {
    0x14C: "x86", 0x8664: "x86-64", 0x1C0: "arm", 0x1C2: "arm", 0x1C4: "arm",
    0xAA64: "aarch64", 0x200: "ia64", 0x166: "mipsel", 0x1F0: "powerpc", 0x5064: "riscv64",
}
# ELF e_machine -> cpu (bits and endianness refine some)
ELF_MACHINES = {
    2: "sparc", 3: "x86", 4: "m68k", 8: "mips", 10: "mips", 18: "sparc", 20: "powerpc",
    21: "powerpc64", 22: "s390x", 40: "arm", 42: "sh4", 43: "sparc64", 50: "ia64",
    62: "x86-64", 183: "aarch64", 243: "riscv", 258: "loongarch64", 92: "openrisc",
    164: "hexagon", 106: "blackfin", 94: "xtensa", 83: "avr", 36: "v850", 87: "arc",
}
IMAGE_FILE_DLL = 0x2000
SUBSYSTEM_NATIVE = 1
CLR_DIRECTORY = 14

_ARCHIVES = (
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"), (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"), (b"MSCF", "cab"), (b"\x60\xea", "arj"),
    (b"070701", "cpio"), (b"070707", "cpio"), (b"\xc7\x71", "cpio"), (b"\x71\xc7", "cpio"),
)
_DOCUMENTS = (
    (b"%PDF-", "pdf"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"), (b"{\\rt", "rtf"),
)
_SHEBANG = re.compile(rb"^#!\s*(?:/usr)?(?:/local)?/(?:s?bin/)?(?:env\s+)?([\w.+-]+)")
_SCRIPT_HINTS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("ps1", re.compile(rb"(?i)(?:\$env:|\bInvoke-(?:Expression|WebRequest)\b|\bNew-Object\b|"
                       rb"\bSet-ExecutionPolicy\b|\bparam\s*\(|\bWrite-Host\b)")),
    # JavaScript before VBScript: JScript droppers call WScript too, but VBScript has no
    # "var x =" and writes Function with a capital
    ("js", re.compile(rb"(?:\bActiveXObject\s*\(|\bvar\s+\w+\s*=|\bfunction\s*\w*\s*\(|"
                      rb"\bdocument\.write\s*\(|\beval\s*\()")),
    ("vbs", re.compile(rb"(?i)(?:\bSet\s+\w+\s*=\s*(?:W?Script\.)?CreateObject\s*\(|"
                       rb"\bDim\s+\w+|\bEnd\s+(?:Sub|Function)\b|\bOn Error Resume Next\b)")),
    ("bat", re.compile(rb"(?im)(?:^\s*@echo\s+off|^\s*set\s+\w+=|%~dp0|^\s*goto\s+:?\w+|"
                       rb"^\s*rem\s)")),
    ("sh", re.compile(rb"(?m)(?:^\s*(?:cd|chmod|wget|curl|busybox|rm|echo)\s[^\n]*(?:;|&&|\|)|"
                      rb"\bchmod\s+\+?[0-7x]+\b)")),
)
_SHELLS = {"sh": "sh", "bash": "sh", "dash": "sh", "ash": "sh", "zsh": "sh", "ksh": "sh",
           "busybox": "sh", "python": "py", "python3": "py", "python2": "py", "perl": "perl",
           "ruby": "ruby", "php": "php", "node": "js", "pwsh": "ps1", "powershell": "ps1"}


def identify(data: bytes) -> Identity:
    """Name the file's kind, subtype, CPU and a readable description."""
    magic_text, mime = _libmagic(data)
    if not data:
        return Identity(kind="empty", description="empty file", magic=magic_text, mime=mime)
    if data.startswith(b"MZ"):
        pe = _pe_identity(data, magic_text, mime)
        if pe is not None:
            return pe
    if data.startswith(b"\x7fELF"):
        elf = _elf_identity(data, magic_text, mime)
        if elf is not None:
            return elf
    for head, name in _ARCHIVES:
        if data.startswith(head):
            if name == "zip" and b"[Content_Types].xml" in data[:4096]:
                return Identity(kind="document", subtype="ooxml",
                                description="Office Open XML document", magic=magic_text,
                                mime=mime)
            return Identity(kind="archive", subtype=name, description=f"{name} archive",
                            magic=magic_text, mime=mime)
    for head, name in _DOCUMENTS:
        if data.startswith(head):
            return Identity(kind="document", subtype=name, description=f"{name} document",
                            magic=magic_text, mime=mime)
    head = data[:65536]
    if re.match(rb"(?is)\s*(?:<!doctype\s+html|<html|<script)", head[:1024]):
        return Identity(kind="document", subtype="html", description="HTML document",
                        magic=magic_text, mime=mime)
    script = _script_kind(head)
    if script is not None:
        return Identity(kind="script", subtype=script, description=f"{script} script",
                        magic=magic_text, mime=mime)
    if data.startswith(b"MZ"):
        return Identity(kind="data", subtype="mz", description="MS-DOS executable (no PE)",
                        magic=magic_text, mime=mime)
    return Identity(kind="data", description=magic_text or "data", magic=magic_text, mime=mime)


def _pe_identity(data: bytes, magic_text: str | None, mime: str | None) -> Identity | None:
    if len(data) < 0x40:
        return None
    (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if e_lfanew + 24 > len(data) or data[e_lfanew : e_lfanew + 4] != b"PE\0\0":
        return None
    machine, _, _, _, _, _, characteristics = struct.unpack_from(
        "<HHIIIHH", data, e_lfanew + 4)
    opt = e_lfanew + 24
    magic = struct.unpack_from("<H", data, opt)[0] if opt + 2 <= len(data) else 0
    bits = {0x10B: 32, 0x20B: 64}.get(magic)
    subsystem = 0
    dotnet = False
    if bits is not None:
        sub_at = opt + 68
        dirs_at = opt + (96 if bits == 32 else 112)
        if sub_at + 2 <= len(data):
            (subsystem,) = struct.unpack_from("<H", data, sub_at)
        clr = dirs_at + CLR_DIRECTORY * 8
        count_at = dirs_at - 4
        if clr + 8 <= len(data) and count_at + 4 <= len(data):
            (count,) = struct.unpack_from("<I", data, count_at)
            if count > CLR_DIRECTORY:
                rva, size = struct.unpack_from("<II", data, clr)
                dotnet = rva != 0 and size != 0
    cpu = PE_MACHINES.get(machine, f"pe-machine-{machine:#x}")
    if subsystem == SUBSYSTEM_NATIVE:
        # kernel drivers (export drivers carry the DLL flag too); native user-mode
        # programs (smss.exe) look the same from the headers alone
        subtype = "driver"
    elif characteristics & IMAGE_FILE_DLL:
        subtype = "dll"
    else:
        subtype = "exe"
    fmt = "PE32+" if bits == 64 else "PE32"
    words = {"exe": "executable", "dll": "DLL", "driver": "driver"}[subtype]
    description = f"{fmt} {words} {cpu}" + (" (.NET)" if dotnet else "")
    return Identity(kind="pe", subtype=subtype, description=description, magic=magic_text,
                    mime=mime, cpu=cpu, bits=bits, endianness="little", dotnet=dotnet)


def _elf_identity(data: bytes, magic_text: str | None, mime: str | None) -> Identity | None:
    if len(data) < 20:
        return None
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        return None
    bits = 32 if ei_class == 1 else 64
    endian: Endianness = "little" if ei_data == 1 else "big"
    fmt = "<" if endian == "little" else ">"
    e_type, e_machine = struct.unpack_from(fmt + "HH", data, 16)
    cpu = ELF_MACHINES.get(e_machine, f"elf-machine-{e_machine}")
    if cpu == "mips":
        cpu = ("mips64" if bits == 64 else "mips") + ("el" if endian == "little" else "")
    elif cpu == "powerpc64" and endian == "little":
        cpu = "powerpc64le"
    elif cpu == "riscv":
        cpu = f"riscv{bits}"
    elif cpu == "sparc" and bits == 64:
        cpu = "sparc64"
    kind_name = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core"}.get(
        e_type, "ELF")
    subtype = {1: "rel", 2: "exec", 3: "dyn", 4: "core"}.get(e_type)
    description = f"ELF {bits}-bit {'LSB' if endian == 'little' else 'MSB'} {kind_name} {cpu}"
    return Identity(kind="elf", subtype=subtype, description=description, magic=magic_text,
                    mime=mime, cpu=cpu, bits=bits, endianness=endian)


def _script_kind(head: bytes) -> str | None:
    if b"\0" in head[:4096]:
        return None
    shebang = _SHEBANG.match(head)
    if shebang:
        interpreter = shebang.group(1).decode("ascii", "replace").rstrip("0123456789.")
        return _SHELLS.get(interpreter, "sh" if interpreter.endswith("sh") else interpreter)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return None
    for name, pattern in _SCRIPT_HINTS:
        if pattern.search(head):
            return name
    return None


@cache
def _magic_handles() -> tuple[Any, Any] | None:
    try:
        import magic
    except ImportError:  # libmagic is optional: our own headers decide anyway
        return None
    try:
        return magic.Magic(), magic.Magic(mime=True)
    except Exception:
        return None


def _libmagic(data: bytes) -> tuple[str | None, str | None]:
    handles = _magic_handles()
    if handles is None:
        return None, None
    describe, mime = handles
    try:
        return str(describe.from_buffer(data[:1 << 20])), str(mime.from_buffer(data[:1 << 20]))
    except Exception:
        return None, None
