"""Unpack UPX-packed PE and ELF files with the real ``upx -d``, never running the sample.

Why this exists: a packed file shows analysis only its decompressor stub, so strings,
IOCs and family rules see nothing. Most IoT bots (Mirai and its descendants, Mozi, ...)
ship UPX-packed and tamper with the UPX headers so that a plain ``upx -d`` refuses; the
tampering is cosmetic to the stub, so the original headers can be rebuilt from data that is
still in the file. Other packers are *reported* by the packer step, never "unpacked" here.

UPX layout, as far as the repair needs it (all from the format, see UPX ``packhead.cpp``
and ``p_lx_elf.cpp``):

- ELF: right after the program headers sits ``l_info`` {l_checksum, l_magic ``UPX!``,
  l_lsize (te16), l_version, l_format} and then ``p_info`` {p_progid, p_filesize,
  p_blocksize} (te32 = the ELF's own byte order). Compressed blocks follow, each with a
  12-byte ``b_info`` {sz_unc, sz_cpr, method, ftid, cto8, unused}; the chain ends with the
  marker {0, ``UPX!``, 0}. The file ends with the 32-byte ``PackHeader`` {``UPX!``,
  version, format, method, level, adlers, u_len, c_len, u_file_size, filter, cto, mru,
  checksum} and the te32 ``overlay_offset`` (the offset of ``p_info``).
- PE: the PackHeader sits at the end of the headers, just before the raw data of the second
  section, and ``upx -d`` only looks for it when the first section's name starts ``UPX``.

Mirai-style tampering we undo: the ``UPX!`` magic overwritten (l_info, end marker,
PackHeader), ``p_filesize`` / ``p_blocksize`` zeroed (restored from the PackHeader's
``u_file_size``, which is covered by the PackHeader's own checksum), a zeroed
``overlay_offset``; for PE, a renamed first section. The PackHeader is found by its
structure and checksum, not by its magic.

Safety (DESIGN.md section 9): ``upx`` runs in a subprocess with CPU, address-space,
file-size and open-file limits set by a tiny wrapper before ``exec`` (not ``preexec_fn``,
which is unsafe in threaded programs), an empty environment, a private 0700 directory, a
wall-clock timeout and, when ``unshare --net`` works (root / CAP_SYS_ADMIN), no network.
Only ``upx`` itself runs; the input is written 0600 and never made executable.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "UnpackResult",
    "looks_like_upx",
    "network_isolation_available",
    "repair_upx_header",
    "unpack_upx",
]

MiB = 1024 * 1024
GiB = 1024 * MiB

UPX_MAGIC = b"UPX!"
_PACKHEADER_SIZE = 32  # version >= 10, every format but the DOS ones
_ELF_TAIL_WINDOW = 40  # upx looks for the PackHeader just before the trailing zeros
_PE_SEARCH_LEN = 1024  # upx reads 1024 bytes from (2nd section raw data - 64)
_MAX_BLOCKS = 100_000  # bound on the b_info chain walk
_INFO_STRING = b"$Info: This file is packed with the UPX"
_ID_STRING = b"$Id: UPX"

# UPX_F_* format codes (UPX conf.h) that the repair understands.
_ELF_FORMATS = {
    10: "linux.exec/i386",
    12: "linux/i386",
    20: "linux.elfi/i386",
    22: "linux/amd64",
    23: "linux/arm",
    24: "bsd/i386",
    25: "bsd.elf/i386",
    30: "linux/mipsel",
    39: "linux/ppc64le",
    42: "linux/arm64",
    132: "linux/ppc32",
    133: "linux/armeb",
    137: "linux/mips",
    140: "linux/ppc64",
}
_PE_FORMATS = {9: "win32/pe", 21: "wince/arm", 36: "win64/pe"}
_METHODS = {
    2: "NRV2B",
    3: "NRV2B",
    4: "NRV2B",
    5: "NRV2D",
    6: "NRV2D",
    7: "NRV2D",
    8: "NRV2E",
    9: "NRV2E",
    10: "NRV2E",
    14: "LZMA",
    15: "deflate",
}

# upx prints "upx: <file>: <Exception>: <text>"; these mean "memory", not "format".
_MEMORY_WORDS = ("out of memory", "outofmemory", "bad_alloc", "cannot allocate memory")
_WRAPPER_EXIT = 125  # the limit wrapper could not exec


@dataclass
class UnpackResult:
    """The outcome of one unpack: the body (only when ``ok``), what was repaired, and a
    message a person can read for every outcome, success or failure."""

    ok: bool
    data: bytes | None
    repaired: list[str] = field(default_factory=list)
    message: str = ""
    network_isolated: bool = False
    seconds: float = 0.0


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _PackHeader:
    offset: int
    magic: bytes
    version: int
    format: int
    method: int
    level: int
    u_len: int
    c_len: int
    u_file_size: int

    @property
    def format_name(self) -> str:
        return _ELF_FORMATS.get(self.format) or _PE_FORMATS.get(self.format) or str(self.format)


@dataclass(frozen=True)
class _Elf:
    big: bool
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shnum: int
    load_ends: tuple[int, ...]  # p_offset + p_filesz of every PT_LOAD

    @property
    def te(self) -> str:
        return ">" if self.big else "<"

    @property
    def phdr_end(self) -> int:
        return self.phoff + self.phnum * self.phentsize


@dataclass(frozen=True)
class _PeSection:
    table_offset: int  # where the 40-byte entry starts in the file
    name: bytes
    raw_size: int
    raw_ptr: int


def _u32(data: bytes | bytearray, offset: int, te: str = "<") -> int:
    value: int = struct.unpack_from(te + "I", data, offset)[0]
    return value


def _parse_packheader(
    data: bytes | bytearray, p: int, formats: dict[int, str]
) -> _PackHeader | None:
    """A PackHeader at ``p`` judged by structure and checksum, whatever its magic says."""
    if p < 0 or p + _PACKHEADER_SIZE > len(data):
        return None
    version, fmt, method, level = data[p + 4], data[p + 5], data[p + 6], data[p + 7]
    if not 10 <= version <= 15 or fmt not in formats or method not in _METHODS:
        return None
    if not 1 <= level <= 10:
        return None
    if sum(data[p + 4 : p + _PACKHEADER_SIZE - 1]) % 251 != data[p + _PACKHEADER_SIZE - 1]:
        return None
    if fmt < 128:
        u_len, c_len = _u32(data, p + 16), _u32(data, p + 20)
        u_file_size = _u32(data, p + 24)
    else:  # big-endian targets store the sizes big-endian (packhead.cpp)
        u_len, c_len = _u32(data, p + 8, ">"), _u32(data, p + 12, ">")
        u_file_size = _u32(data, p + 24, ">")
    if c_len < 2 or u_len < 2 or c_len > u_len or u_file_size < 2:
        return None
    return _PackHeader(
        offset=p,
        magic=bytes(data[p : p + 4]),
        version=version,
        format=fmt,
        method=method,
        level=level,
        u_len=u_len,
        c_len=c_len,
        u_file_size=u_file_size,
    )


def _parse_elf(data: bytes | bytearray) -> _Elf | None:
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    big, is64 = data[5] == 2, data[4] == 2
    te = ">" if big else "<"
    if not is64:
        phoff, shoff = _u32(data, 28, te), _u32(data, 32, te)
        phentsize, phnum, _, shnum = struct.unpack_from(te + "HHHH", data, 42)
    else:
        if len(data) < 64:
            return None
        phoff, shoff = struct.unpack_from(te + "QQ", data, 32)
        phentsize, phnum, _, shnum = struct.unpack_from(te + "HHHH", data, 54)
    load_ends = []
    if phentsize >= (56 if is64 else 32):
        for k in range(min(phnum, 64)):
            ph = phoff + k * phentsize
            if ph + phentsize > len(data):
                break
            if _u32(data, ph, te) != 1:  # PT_LOAD
                continue
            if is64:
                offset, filesz = (
                    struct.unpack_from(te + "Q", data, ph + 8)[0],
                    struct.unpack_from(te + "Q", data, ph + 32)[0],
                )
            else:
                offset, filesz = _u32(data, ph + 4, te), _u32(data, ph + 16, te)
            load_ends.append(offset + filesz)
    return _Elf(big, phoff, phentsize, phnum, shoff, shnum, tuple(load_ends))


def _pe_sections(data: bytes | bytearray) -> list[_PeSection] | None:
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None
    pe = _u32(data, 0x3C)
    if pe + 24 > len(data) or data[pe : pe + 4] != b"PE\x00\x00":
        return None
    (nsec,) = struct.unpack_from("<H", data, pe + 6)
    (opt_size,) = struct.unpack_from("<H", data, pe + 20)
    table = pe + 24 + opt_size
    sections = []
    for k in range(min(nsec, 96)):
        entry = table + 40 * k
        if entry + 40 > len(data):
            break
        name, raw_size, raw_ptr = (
            data[entry : entry + 8],
            _u32(data, entry + 16),
            _u32(data, entry + 20),
        )
        sections.append(_PeSection(entry, bytes(name), raw_size, raw_ptr))
    return sections


def _last_nonzero(data: bytes | bytearray, end: int) -> int:
    """Index of the last non-zero byte before ``end`` (-1 when all zero)."""
    while end > 0:
        start = max(0, end - 4096)
        chunk = bytes(data[start:end]).rstrip(b"\x00")
        if chunk:
            return start + len(chunk) - 1
        end = start
    return -1


def _elf_packheader(data: bytes | bytearray) -> _PackHeader | None:
    """Where ``upx -d`` looks: just before the trailing zeros (the PackHeader's own version
    and format bytes are non-zero, so it starts at or before the last non-zero byte)."""
    last = _last_nonzero(data, len(data))
    found: _PackHeader | None = None
    for p in range(max(0, last - _ELF_TAIL_WINDOW), last + 1):
        ph = _parse_packheader(data, p, _ELF_FORMATS)
        if ph is not None and (found is None or ph.magic == UPX_MAGIC or found.magic != UPX_MAGIC):
            found = ph
    return found


def _pe_packheader(data: bytes | bytearray, sections: list[_PeSection]) -> _PackHeader | None:
    """Where ``upx -d`` looks for PE: before section 2's raw data, or (old UPX) in section 3."""
    starts = []
    if len(sections) >= 2:
        starts.append(sections[1].raw_ptr - 64)
    if len(sections) >= 3:
        starts.append(sections[2].raw_ptr)
    for start in starts:
        lo = max(0, start)
        hi = min(len(data) - _PACKHEADER_SIZE, start + _PE_SEARCH_LEN - _PACKHEADER_SIZE)
        for p in range(lo, hi + 1):
            ph = _parse_packheader(data, p, _PE_FORMATS)
            if ph is not None:
                return ph
    return None


def _locate_linfo(data: bytes | bytearray, elf: _Elf, ph: _PackHeader) -> int | None:
    """l_info: where overlay_offset says (minus 12), else right after the program headers."""
    candidates = []
    if ph.offset + _PACKHEADER_SIZE + 4 <= len(data):
        candidates.append(_u32(data, ph.offset + _PACKHEADER_SIZE, elf.te) - 12)
    candidates.append(elf.phdr_end)
    for off in candidates:
        if off <= 0 or off + 24 > ph.offset:
            continue
        if data[off + 4 : off + 8] == UPX_MAGIC or (data[off + 10], data[off + 11]) == (
            ph.version,
            ph.format,
        ):
            return off
    return None


def _walk_blocks(
    data: bytes | bytearray, te: str, start: int, limit: int, max_unc: int
) -> tuple[int, int] | None:
    """Follow b_info headers from ``start``; return (offset of the first header with
    sz_unc == 0, total sz_unc before it), or None when the chain breaks first."""
    pos, total = start, 0
    for _ in range(_MAX_BLOCKS):
        if pos < 0 or pos + 12 > limit:
            return None
        sz_unc, sz_cpr = _u32(data, pos, te), _u32(data, pos + 4, te)
        if sz_unc == 0:
            return pos, total
        if not 0 < sz_cpr <= sz_unc or sz_unc > max_unc:
            return None
        total += sz_unc
        pos += 12 + sz_cpr
    return None


def _find_end_marker(
    data: bytes | bytearray, elf: _Elf, ph: _PackHeader, pinfo_end: int, mangled: set[bytes]
) -> int | None:
    """Offset of the b_info end marker {0, magic, 0, ...}, or None.

    UPX 4.x writes it after the compressed "gap" blocks, which start at the first 4-aligned
    offset after the packed PT_LOAD (compressed body + loader), just before the PackHeader.
    UPX 3.x writes it right after the compressed blocks that follow p_info. Either way
    ``upx -d`` insists on ``UPX!`` in it. Walking the chains finds it exactly, even when the
    magic was zeroed.
    """
    zero4 = b"\x00\x00\x00\x00"
    p = ph.offset

    def marker_like(pos: int) -> bool:
        return pos + 12 <= p and data[pos : pos + 4] == zero4 and data[pos + 8 : pos + 12] == zero4

    # 1. UPX 4.x: the gap chain from the end of a PT_LOAD lands right before the PackHeader.
    for end in sorted(set(elf.load_ends)):
        walked = _walk_blocks(data, elf.te, (end + 3) & ~3, p, ph.u_file_size)
        if walked and p - 15 <= walked[0] <= p - 12 and marker_like(walked[0]):
            return walked[0]
    # 2. UPX 3.x: the chain from p_info ends with the marker (and covers the whole file).
    walked = _walk_blocks(data, elf.te, pinfo_end, p, ph.u_file_size)
    if walked and marker_like(walked[0]):
        magic = bytes(data[walked[0] + 4 : walked[0] + 8])
        if magic == UPX_MAGIC or magic in mangled or walked[1] == ph.u_len:
            return walked[0]
    # 3. Fallback: the one {0, X, 0} + zero padding right before the PackHeader.
    matches = []
    for t in range(p - 12, max(-1, p - 16), -1):
        if data[t : t + 4] != zero4 or any(data[t + 8 : p]):
            continue
        magic = bytes(data[t + 4 : t + 8])
        if magic == UPX_MAGIC:
            return t
        if magic != zero4 or magic in mangled:
            matches.append(t)
    return matches[0] if len(matches) == 1 else None


# --------------------------------------------------------------------------- evidence


def looks_like_upx(data: bytes) -> list[str]:
    """Why we think ``data`` is UPX-packed (empty: no sign of UPX). Pure byte checks.

    Includes tampered files: a PackHeader whose structure and checksum are right but whose
    magic is not ``UPX!`` is the Mirai-style signature itself.
    """
    evidence: list[str] = []
    hits: list[int] = []
    i = data.find(UPX_MAGIC)
    while i >= 0 and len(hits) < 64:
        hits.append(i)
        i = data.find(UPX_MAGIC, i + 1)
    if hits:
        shown = ", ".join(f"0x{h:x}" for h in hits[:6])
        more = f" (+{len(hits) - 6} more)" if len(hits) > 6 else ""
        evidence.append(f"'UPX!' magic at {shown}{more}")

    ph: _PackHeader | None = None
    elf = _parse_elf(data)
    sections = None if elf else _pe_sections(data)
    if elf is not None:
        ph = _elf_packheader(data)
        l_magic = elf.phdr_end + 4
        if data[l_magic : l_magic + 4] == UPX_MAGIC:
            evidence.append(
                f"UPX l_info ('UPX!') right after the ELF program headers (0x{l_magic:x})"
            )
        if elf.shnum == 0 and elf.shoff == 0 and hits:
            evidence.append("ELF without section headers, with UPX! marks")
    elif sections is not None:
        ph = _pe_packheader(data, sections)
        names = [s.name.rstrip(b"\x00").decode("latin-1") for s in sections]
        upx_names = [n for n in names if n.startswith("UPX")]
        if upx_names:
            evidence.append(f"PE section names {', '.join(upx_names)}")
    else:
        for h in hits:
            ph = _parse_packheader(data, h, {**_ELF_FORMATS, **_PE_FORMATS})
            if ph is not None:
                break
    if ph is not None:
        what = (
            f"UPX PackHeader at 0x{ph.offset:x}: {ph.format_name}, "
            f"{_METHODS.get(ph.method, ph.method)}, level {ph.level}, "
            f"original size {ph.u_file_size}"
        )
        if ph.magic != UPX_MAGIC:
            what += f"; magic altered to {ph.magic!r} (header tampering, Mirai-style)"
        evidence.append(what)
    if _INFO_STRING in data:
        evidence.append("'$Info: This file is packed with the UPX executable packer' string")
    if _ID_STRING in data:
        evidence.append("'$Id: UPX ...' version string")
    return evidence


# --------------------------------------------------------------------------- repair


def _set_magic(buf: bytearray, offset: int, what: str, changes: list[str]) -> None:
    old = bytes(buf[offset : offset + 4])
    if old != UPX_MAGIC:
        buf[offset : offset + 4] = UPX_MAGIC
        changes.append(f"{what} magic at 0x{offset:x}: {old!r} -> b'UPX!'")


def _repair_elf(buf: bytearray, elf: _Elf) -> list[str]:
    ph = _elf_packheader(buf)
    if ph is None:
        return []
    changes: list[str] = []
    mangled = {m for m in (ph.magic,) if m != UPX_MAGIC}
    linfo = _locate_linfo(buf, elf, ph)
    if linfo is not None and buf[linfo + 4 : linfo + 8] != UPX_MAGIC:
        mangled.add(bytes(buf[linfo + 4 : linfo + 8]))

    _set_magic(buf, ph.offset, "PackHeader", changes)
    if linfo is None:
        return changes
    _set_magic(buf, linfo + 4, "l_info", changes)

    te = elf.te
    ov_at = ph.offset + _PACKHEADER_SIZE
    pinfo = linfo + 12
    if ov_at + 4 <= len(buf) and _u32(buf, ov_at, te) != pinfo:
        changes.append(f"overlay_offset at 0x{ov_at:x}: {_u32(buf, ov_at, te)} -> {pinfo}")
        struct.pack_into(te + "I", buf, ov_at, pinfo)

    size = ph.u_file_size
    filesize, blocksize = _u32(buf, pinfo + 4, te), _u32(buf, pinfo + 8, te)
    if filesize != size:
        struct.pack_into(te + "I", buf, pinfo + 4, size)
        changes.append(f"p_filesize at 0x{pinfo + 4:x}: {filesize} -> {size} (from PackHeader)")
    if blocksize == 0 or blocksize > size:
        struct.pack_into(te + "I", buf, pinfo + 8, size)
        changes.append(f"p_blocksize at 0x{pinfo + 8:x}: {blocksize} -> {size} (from PackHeader)")

    marker = _find_end_marker(buf, elf, ph, pinfo + 12, mangled)
    if marker is not None:
        _set_magic(buf, marker + 4, "b_info end marker", changes)
    return changes


def _repair_pe(buf: bytearray, sections: list[_PeSection]) -> list[str]:
    ph = _pe_packheader(buf, sections)
    if ph is None:
        return []
    changes: list[str] = []
    _set_magic(buf, ph.offset, "PackHeader", changes)
    first = sections[0]
    if not first.name.startswith(b"UPX") and first.raw_size == 0:
        buf[first.table_offset : first.table_offset + 8] = b"UPX0\x00\x00\x00\x00"
        changes.append(f"first section name {first.name.rstrip(bytes(1))!r} -> b'UPX0'")
    return changes


def repair_upx_header(data: bytes) -> tuple[bytes, list[str]]:
    """Undo Mirai-style UPX header tampering so ``upx -d`` accepts the file again.

    Returns the repaired bytes and what was changed (empty, and ``data`` unchanged, when
    nothing needed repair or the file is not recognisably UPX). Never raises on junk.
    """
    buf = bytearray(data)
    changes: list[str] = []
    elf = _parse_elf(buf)
    if elf is not None:
        changes = _repair_elf(buf, elf)
    else:
        sections = _pe_sections(buf)
        if sections:
            changes = _repair_pe(buf, sections)
    return (bytes(buf) if changes else data), changes


# --------------------------------------------------------------------------- running upx

# Runs as `python -I -S -c WRAPPER cpu mem fsize nofile -- cmd...`: sets the limits in
# the child, then execs. Kept tiny and stdlib-only.
_WRAPPER = """
import os, resource, signal, sys
cpu, mem, fsize, nofile = (int(v) for v in sys.argv[1:5])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over max_output: EFBIG, upx says so and stops
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
limits = ((resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_AS, mem, mem),
          (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_NOFILE, nofile, nofile),
          (resource.RLIMIT_CORE, 0, 0))
try:
    for res, soft, hard in limits:
        resource.setrlimit(res, (soft, hard))
    os.execv(sys.argv[6], sys.argv[6:])
except (OSError, ValueError) as exc:
    sys.stderr.write(f"cleancenter-wrapper: cannot run {sys.argv[6]}: {exc}\\n")
    os._exit(EXIT)
""".replace("EXIT", str(_WRAPPER_EXIT))


@functools.cache
def _unshare_prefix() -> tuple[str, ...]:
    """``unshare --net --`` when it works here (needs root or CAP_SYS_ADMIN), else ()."""
    unshare, true = shutil.which("unshare"), shutil.which("true")
    if not unshare or not true:
        return ()
    try:
        probe = subprocess.run(
            [unshare, "--net", "--", true],
            env={},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    return (unshare, "--net", "--") if probe.returncode == 0 else ()


def network_isolation_available() -> bool:
    """Whether upx will run in a fresh network namespace (no network at all)."""
    return bool(_unshare_prefix())


@dataclass
class _Run:
    ok: bool
    data: bytes | None
    message: str
    format_error: bool = False  # upx said the file is bad: a header repair may help


def _upx_error_text(stderr: str, src_name: str) -> tuple[str, bool]:
    """(message, said by upx itself about our file). Anything else -- the dynamic loader
    failing under the memory limit, unshare refusing -- means upx never looked at it."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    prefix = f"upx: {src_name}: "
    for line in reversed(lines):
        if line.startswith(prefix):
            # "upx: a.in: CantUnpackException: p_info corrupted" -> drop our file name
            return line[len(prefix) :], True
    return (lines[-1] if lines else "no message"), False


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _run_upx(
    upx: str,
    data: bytes,
    tmp: Path,
    tag: str,
    *,
    timeout: float,
    max_output: int,
    max_memory: int,
) -> _Run:
    """One ``upx -d`` in the jail; never returns partial output."""
    src, dst = tmp / f"{tag}.in", tmp / f"{tag}.out"
    try:
        _write_private(src, data)
    except OSError as exc:
        return _Run(False, None, f"could not write the input for upx: {exc}")
    cpu = max(1, math.ceil(timeout)) + 1
    cmd = [
        sys.executable, "-I", "-S", "-c", _WRAPPER,
        str(cpu), str(max_memory), str(max_output), "32", "--",
        *_unshare_prefix(),
        upx, "-d", "-q", "--no-color", "-o", dst.name, src.name,
    ]  # fmt: skip
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env={},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return _Run(False, None, f"could not start upx: {exc}")
    try:
        _, err = proc.communicate(timeout=max(timeout, 0.001))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # our own session: wrapper/unshare/upx
        proc.communicate()
        return _Run(False, None, f"timed out after {timeout:g} s (wall clock); upx was killed")
    stderr = err.decode("utf-8", "replace")
    rc = proc.returncode
    if rc < 0:
        return _Run(False, None, _signal_message(-rc, cpu, max_output, max_memory))
    if rc == _WRAPPER_EXIT and "cleancenter-wrapper:" in stderr:
        text = stderr.strip().split("cleancenter-wrapper: ", 1)[1]
        hint = " (memory limit too small?)" if "memory" in text.lower() else ""
        return _Run(False, None, f"could not start upx under the limits: {text}{hint}")
    if rc != 0:
        text, from_upx = _upx_error_text(stderr, src.name)
        lowered = text.lower()
        if "file too large" in lowered:
            return _Run(
                False,
                None,
                f"output exceeded max_output ({max_output} bytes): upx stopped at the "
                f"file-size limit ({text}); no partial output returned",
            )
        if any(word in lowered for word in _MEMORY_WORDS):
            return _Run(False, None, f"memory limit ({max_memory} bytes) exceeded: upx: {text}")
        if not from_upx:
            hint = f" (memory limit {max_memory} bytes too small?)" if "map" in lowered else ""
            return _Run(False, None, f"upx could not run (exit {rc}): {text}{hint}")
        return _Run(False, None, f"upx -d failed: {text}", format_error=True)
    try:
        size = dst.stat().st_size
    except FileNotFoundError:
        return _Run(False, None, "upx reported success but wrote no output")
    if size == 0 or size > max_output:
        return _Run(False, None, f"upx output has an unusable size ({size} bytes)")
    return _Run(True, dst.read_bytes(), "unpacked")


def _signal_message(signum: int, cpu: int, max_output: int, max_memory: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGXFSZ:
        return (
            f"output exceeded max_output ({max_output} bytes): upx was stopped by the "
            "file-size limit; no partial output returned"
        )
    if signum == signal.SIGXCPU:
        return f"upx was killed by {name}: CPU time limit ({cpu} s) exceeded"
    if signum == signal.SIGKILL:
        return f"upx was killed by {name} (CPU hard limit of {cpu + 1} s, or out of memory)"
    if signum in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
        return f"upx crashed with {name} (memory limit {max_memory} bytes may be too small)"
    return f"upx was killed by {name}"


def unpack_upx(
    data: bytes,
    *,
    workdir: Path,
    timeout: float = 30,
    max_output: int = 256 * MiB,
    max_memory: int = 1 * GiB,
    upx: str | None = None,
) -> UnpackResult:
    """Unpack a UPX-packed PE/ELF with ``upx -d`` in a limited subprocess.

    On a format error (e.g. "not packed by UPX", CantUnpackException) the Mirai-style header
    repair is tried once. ``timeout`` is the wall-clock budget for the whole call. The
    private temp dir under ``workdir`` is always removed; ``data`` is only set when ``ok``.
    ``upx`` overrides the binary (default: ``upx`` on PATH).
    """
    started = time.monotonic()
    isolated = network_isolation_available()

    def done(ok: bool, body: bytes | None, repaired: list[str], message: str) -> UnpackResult:
        return UnpackResult(
            ok, body, repaired, message, isolated, round(time.monotonic() - started, 3)
        )

    upx_path = upx if upx is not None else shutil.which("upx")
    if not upx_path or not os.path.isfile(upx_path) or not os.access(upx_path, os.X_OK):
        return done(False, None, [], f"upx is not installed ({upx_path or 'not on PATH'})")
    upx_path = os.path.abspath(upx_path)  # the jail has an empty environment, no PATH
    if not data:
        return done(False, None, [], "empty input: nothing to unpack")

    try:
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="unpack-", dir=workdir))  # mode 0700
    except OSError as exc:
        return done(False, None, [], f"cannot create a private directory in {workdir}: {exc}")
    try:
        limits = {"max_output": max_output, "max_memory": max_memory}
        first = _run_upx(upx_path, data, tmp, "a", timeout=timeout, **limits)
        if first.ok:
            return done(True, first.data, [], "unpacked with upx -d")
        if not first.format_error:
            return done(False, None, [], first.message)
        repaired, changes = repair_upx_header(data)
        if not changes:
            return done(False, None, [], first.message)
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            return done(False, None, changes, f"{first.message}; no time left to retry")
        second = _run_upx(upx_path, repaired, tmp, "b", timeout=left, **limits)
        if second.ok:
            msg = f"unpacked with upx -d after repairing {len(changes)} header field(s)"
            return done(True, second.data, changes, msg)
        return done(False, None, changes, f"{first.message}; after repair: {second.message}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
