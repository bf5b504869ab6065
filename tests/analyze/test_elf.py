"""parse_elf on real ELF files (this system's programs, a static build, a UPX-packed copy,
busybox for many CPUs from the material folder when present) and on damaged copies.

Nothing is executed: programs are only read; gcc and upx only write files.
"""

from __future__ import annotations

import io
import os
import platform
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from cleancenter.analyze.elf import ELFError, parse_elf
from tests.analyze.mutate import damaged

MATERIAL = Path(os.environ.get("CLEANCENTER_MATERIAL") or "/var/cache/cleancenter/material")
PROGRAMS = ("ls", "cat", "gzip", "sed", "tar")
X86_64 = platform.machine() in ("x86_64", "AMD64")
# Debian architecture -> (cpu, endianness, bits)
DEBIAN_ARCHES = {
    "amd64": ("x86-64", "little", 64), "i386": ("x86", "little", 32),
    "arm64": ("aarch64", "little", 64), "armel": ("arm", "little", 32),
    "armhf": ("arm", "little", 32), "mipsel": ("mipsel", "little", 32),
    "mips64el": ("mips64el", "little", 64), "ppc64el": ("powerpc64", "little", 64),
    "ppc64": ("powerpc64", "big", 64), "powerpc": ("powerpc", "big", 32),
    "s390x": ("s390x", "big", 64), "riscv64": ("riscv64", "little", 64),
    "sparc64": ("sparc64", "big", 64), "m68k": ("m68k", "big", 32),
    "sh4": ("sh4", "little", 32), "alpha": ("alpha", "little", 64),
    "hppa": ("parisc", "big", 32), "loong64": ("loongarch64", "little", 64),
    "mips": ("mips", "big", 32), "mips64": ("mips64", "big", 64),
}
BUSYBOXES = sorted(p for p in MATERIAL.glob("busybox/*/busybox") if p.is_file())


def _program(name: str) -> Path:
    which = shutil.which(name)
    if not which:
        pytest.skip(f"{name} not installed")
    path = Path(which).resolve()
    if path.read_bytes()[:4] != b"\x7fELF":
        pytest.skip(f"{path} is not an ELF file")
    return path


def _pyelftools_truth(data: bytes) -> tuple[list[str], set[str]]:
    """DT_NEEDED and the symbol names, as pyelftools reads them."""
    elf = ELFFile(io.BytesIO(data))
    dynamic = elf.get_section_by_name(".dynamic")
    needed = []
    if isinstance(dynamic, DynamicSection):
        needed = [getattr(t, "needed", "") for t in dynamic.iter_tags("DT_NEEDED")]
    names = {
        sym.name for section in elf.iter_sections() if isinstance(section, SymbolTableSection)
        for sym in section.iter_symbols()
        if sym.name and sym["st_info"]["type"] not in ("STT_FILE", "STT_SECTION")
    }
    return needed, names


@pytest.mark.skipif(not X86_64, reason="expectations written for an x86-64 Linux host")
@pytest.mark.parametrize("name", PROGRAMS)
def test_system_programs(name: str) -> None:
    data = _program(name).read_bytes()
    info = parse_elf(data)
    assert (info.machine, info.bits, info.endianness) == ("x86-64", 64, "little")
    assert info.type in ("dyn", "exec")  # PIE programs are "dyn"
    assert info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert not info.static and "libc.so.6" in info.needed
    assert info.parser == "lief"
    assert info.anomalies == []
    needed, names = _pyelftools_truth(data)
    assert info.needed == needed
    assert set(info.symbols) <= names and info.symbol_count == len(names)
    assert info.symbols and len(info.symbols) <= 500
    assert info.entry_bytes is not None and len(info.entry_bytes) == 128
    assert info.stripped == (".symtab" not in {s.name for s in info.sections})
    text = next(s for s in info.sections if s.name == ".text")
    assert {"alloc", "execute"} <= set(text.flags) and 5.0 < text.entropy < 7.5
    assert text.sha256 and text.raw_size > 0
    bss = next((s for s in info.sections if s.name == ".bss"), None)
    if bss is not None:
        assert "nobits" in bss.flags and bss.raw_size == 0 and bss.sha256 is None
    loads = [s for s in info.segments if s.type == "LOAD"]
    assert any(s.flags == "r-x" for s in loads) and all(0 < s.entropy <= 8 for s in loads)
    assert {"INTERP", "DYNAMIC"} <= {s.type for s in info.segments}
    assert all(s.name for s in info.sections)  # the null section [0] is left out


def test_static_build(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc not installed")
    source = tmp_path / "tiny.c"
    source.write_text("int main(void) { return 0; }\n")
    binary = tmp_path / "tiny"
    result = subprocess.run([gcc, "-static", "-O1", "-o", str(binary), str(source)],
                            capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        pytest.skip(f"gcc -static failed (no static libc?): {result.stderr[-300:]!r}")
    info = parse_elf(binary.read_bytes())  # only read, never run
    assert info.static and info.interpreter is None and info.needed == []
    assert not info.stripped and info.symbol_count > len(info.symbols) == 500
    assert not any(name.endswith(".o") for name in info.symbols)  # no file symbols
    assert info.type in ("exec", "dyn") and info.anomalies == []


def test_upx_packed(tmp_path: Path) -> None:
    upx = shutil.which("upx") or shutil.which("upx-ucl")
    if not upx:
        pytest.skip("upx not installed")
    packed = tmp_path / "ls.upx"
    result = subprocess.run([upx, "-q", "-q", "-o", str(packed), str(_program("ls"))],
                            capture_output=True, timeout=120, check=False)
    if result.returncode != 0 or not packed.exists():
        pytest.skip(f"upx could not pack ls: {result.stderr[-300:]!r}")
    info = parse_elf(packed.read_bytes())
    assert "no-sections" in info.anomalies and info.sections == []
    assert max(s.entropy for s in info.segments if s.type == "LOAD") > 7.0
    assert info.static and info.interpreter is None and info.stripped
    assert "entry-outside-segments" not in info.anomalies and info.entry_bytes


@pytest.mark.skipif(not BUSYBOXES, reason=f"no busybox in {MATERIAL}/busybox (fetch-material)")
@pytest.mark.parametrize("path", BUSYBOXES, ids=[p.parent.name for p in BUSYBOXES])
def test_busybox_cpus(path: Path) -> None:
    info = parse_elf(path.read_bytes())
    expected = DEBIAN_ARCHES.get(path.parent.name)
    if expected is None:
        pytest.skip(f"no expectation for Debian architecture {path.parent.name}")
    assert (info.machine, info.endianness, info.bits) == expected
    assert info.static and info.needed == [] and info.interpreter is None
    assert info.entry_bytes and "entry-outside-segments" not in info.anomalies
    assert info.anomalies == []


def test_busybox_covers_both_byte_orders() -> None:
    seen = {DEBIAN_ARCHES[p.parent.name][1] for p in BUSYBOXES if p.parent.name in DEBIAN_ARCHES}
    if len(seen) < 2:
        pytest.skip("the material folder has no big- and little-endian busybox pair")
    assert seen == {"little", "big"}


# ------------------------------------------------------------- damaged and crafted


@pytest.mark.parametrize("data", [
    b"", b"\x7fEL", b"\x7fELF", b"MZ" + b"\0" * 100, random.Random(1).randbytes(4096),
    b"\x7fELF\x03\x01\x01" + b"\0" * 100,  # unknown class
    b"\x7fELF\x02\x05\x01" + b"\0" * 100,  # unknown data encoding
])
def test_not_elf(data: bytes) -> None:
    with pytest.raises(ELFError):
        parse_elf(data)


def test_truncated() -> None:
    data = _program("ls").read_bytes()
    with pytest.raises(ELFError, match="truncated"):
        parse_elf(data[:40])
    head = parse_elf(data[:1024])
    assert {"truncated-section-table", "segment-beyond-eof"} <= set(head.anomalies)
    assert head.sections == [] and head.segments  # the program headers are in the first KiB
    half = parse_elf(data[: len(data) // 2])
    assert "segment-beyond-eof" in half.anomalies and half.interpreter
    for cut in range(0, 2048, 5):
        try:
            parse_elf(data[:cut])
        except ELFError:
            assert cut < 64


def test_section_pointing_past_the_end() -> None:
    data = bytearray(_program("ls").read_bytes())
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    (shentsize,) = struct.unpack_from("<H", data, 0x3A)
    at = shoff + shentsize * 1 + 0x18  # sh_offset of section [1]
    struct.pack_into("<Q", data, at, len(data) + 0x1000)
    info = parse_elf(bytes(data))
    assert "section-beyond-eof" in info.anomalies
    assert info.sections[0].entropy == 0.0 and info.sections[0].sha256 is None


def test_entry_outside_segments() -> None:
    data = bytearray(_program("ls").read_bytes())
    struct.pack_into("<Q", data, 0x18, 0x7FFF_FFFF_0000)  # e_entry
    info = parse_elf(bytes(data))
    assert "entry-outside-segments" in info.anomalies and info.entry_bytes is None


def test_random_damage_never_raises_anything_else() -> None:
    rng = random.Random(7)
    bases = [_program(name).read_bytes() for name in ("ls", "cat")]
    for _ in range(120):
        data = damaged(rng, rng.choice(bases), 4096)
        try:
            info = parse_elf(data)
        except ELFError:
            continue
        assert all(0.0 <= s.entropy <= 8.0 for s in info.segments)
