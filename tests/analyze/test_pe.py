"""parse_pe on real PE files (pip/setuptools launchers, clamav test files, the material
folder when present) and on damaged copies of them; imphash against pefile's own.

Nothing is executed: every file is only read.
"""

from __future__ import annotations

import os
import random
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

import pefile
import pytest

from cleancenter.analyze.entropy import RegionDigests, shannon, shannon_regions
from cleancenter.analyze.pe import PEError, imphash, parse_pe, pe_checksum
from cleancenter.demo import windows_launchers
from tests.analyze.mutate import damaged

CLAMAV = Path("/usr/share/clamav-testfiles")
MATERIAL = Path(os.environ.get("CLEANCENTER_MATERIAL") or "/var/cache/cleancenter/material")
MATERIAL_SAMPLE = 40  # files of the material folder checked against pefile (speed)
MATERIAL_MAX_SIZE = 3 << 20

LAUNCHERS = windows_launchers()
CLAM_EXES = sorted(CLAMAV.glob("clam*.exe")) if CLAMAV.is_dir() else []


def _launcher(name: str) -> bytes:
    for path in LAUNCHERS:
        if path.name == name:
            return path.read_bytes()
    pytest.skip(f"launcher {name} not shipped with this pip/setuptools")


def _clam(name: str) -> bytes:
    path = CLAMAV / name
    if not path.is_file():
        pytest.skip(f"{path} not installed (Debian package clamav-testfiles)")
    return path.read_bytes()


def _material_pe() -> list[Path]:
    """A spread of the material folder's PE files (libwine, wheels), largest ones left out."""
    files = [
        p for part in ("libwine/pe", "wheels/pe") for p in sorted((MATERIAL / part).rglob("*"))
        if p.is_file() and p.name != ".complete" and p.stat().st_size <= MATERIAL_MAX_SIZE
    ]
    step = max(1, len(files) // MATERIAL_SAMPLE)
    return files[::step]


def _pefile_imphash(data: bytes) -> str | None:
    pe = pefile.PE(data=data, fast_load=True)
    pe.parse_data_directories(
        directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]]
    )
    value = pe.get_imphash()
    return str(value) if value else None


def _lfanew(data: bytes) -> int:
    return int(struct.unpack_from("<I", data, 0x3C)[0])


def _patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _section_header(data: bytes, name: str) -> int:
    """File offset of the section table entry called ``name``."""
    lfanew = _lfanew(data)
    count = int(struct.unpack_from("<H", data, lfanew + 6)[0])
    opt_size = int(struct.unpack_from("<H", data, lfanew + 20)[0])
    table = lfanew + 24 + opt_size
    for index in range(count):
        at = table + 40 * index
        if data[at : at + 8].rstrip(b"\0") == name.encode():
            return at
    raise AssertionError(f"no section {name}")


# ------------------------------------------------------------------------ entropy


def test_shannon_values() -> None:
    assert shannon(b"") == 0.0
    assert shannon(b"aaaa") == 0.0
    assert shannon(b"ab" * 10) == pytest.approx(1.0)
    assert shannon(bytes(range(256)) * 4) == pytest.approx(8.0)
    assert 7.9 < shannon(random.Random(1).randbytes(1 << 16)) <= 8.0


def test_shannon_regions_equal_slices() -> None:
    rng = random.Random(2)
    data = rng.randbytes(3000) + b"\0" * 2000 + b"abc" * 500
    regions = [(rng.randint(-5, 7000), rng.randint(-5, 7000)) for _ in range(200)]
    regions += [(0, 0), (len(data), 9), (0, len(data))]
    expected = [shannon(data[max(s, 0) : max(s, 0) + max(n + min(s, 0), 0)]) for s, n in regions]
    assert shannon_regions(data, regions) == pytest.approx(expected, abs=1e-9)


def test_region_digests_budget() -> None:
    data = bytes(range(256)) * 8
    digests = RegionDigests(data, budget=3000)
    assert digests(0, 2048)[0] is not None
    assert digests(0, 2048) == digests(0, 5000)  # clipped, same region: hashed once
    assert digests(1, 2047) == (None, None)  # over the budget
    assert digests(None, 10) == digests(4096, 10) == (None, None)


# ---------------------------------------------------------------------- launchers


def _expected_cpu(name: str) -> tuple[str, int]:
    if "arm" in name:
        return "aarch64", 64
    if "64" in name:
        return "x86-64", 64
    return "x86", 32


@pytest.mark.parametrize("path", LAUNCHERS, ids=[p.name for p in LAUNCHERS])
def test_launchers(path: Path) -> None:
    data = path.read_bytes()
    info = parse_pe(data)
    assert (info.machine, info.bits) == _expected_cpu(path.name)
    assert info.parser == "lief"
    assert not info.is_dll and not info.is_driver and not info.is_dotnet
    gui = path.name.startswith(("w", "gui"))
    assert info.subsystem == ("windows-gui" if gui else "windows-cui")
    assert any(dll.lower() == "kernel32.dll" for dll in info.imports)
    assert info.import_count == sum(len(names) for names in info.imports.values()) > 50
    assert info.anomalies == []
    assert info.compile_time is not None and info.compile_time.tzinfo is not None
    assert info.compile_time.year >= 2013
    if info.checksum_header:  # the distlib launchers are linked with /RELEASE
        assert info.checksum_actual == info.checksum_header
    text = info.sections[0]
    assert text.name == ".text" and {"code", "execute", "read"} <= set(text.flags)
    assert 5.0 < text.entropy < 7.5 and text.sha256 and text.md5
    assert text.raw_offset + text.raw_size <= len(data)
    assert info.entry_bytes is not None and len(info.entry_bytes) == 128
    assert info.overlay is None and not info.has_signature
    if path.parent.name == "distlib":
        assert info.version_info["OriginalFilename"].endswith(".exe")
        assert any(r.type == "RT_VERSION" for r in info.resources)
        assert all(r.sha256 and r.offset and 0 < r.entropy <= 8 for r in info.resources)
    assert imphash(info) == _pefile_imphash(data)


def test_launchers_found() -> None:
    if not LAUNCHERS:
        pytest.skip("no Windows launchers in this environment's pip/setuptools")
    cpus = {_expected_cpu(p.name)[0] for p in LAUNCHERS}
    assert {"x86", "x86-64"} <= cpus


# -------------------------------------------------------------------- clamav files


@pytest.mark.parametrize("path", CLAM_EXES, ids=[p.name for p in CLAM_EXES])
def test_clamav_exes(path: Path) -> None:
    data = path.read_bytes()
    info = parse_pe(data)
    assert info.machine == "x86" and info.bits == 32
    assert imphash(info) == _pefile_imphash(data)
    pe = pefile.PE(data=data)
    if pe.write() == data:  # pefile's write() rewrites a few files; then it sums those
        assert info.checksum_actual == pe.generate_checksum()
    for section in info.sections:
        assert 0.0 <= section.entropy <= 8.0


def test_clam_exe_imports_read_by_pefile() -> None:
    info = parse_pe(_clam("clam.exe"))
    # LIEF finds no imports in this 544-byte hand-made file; pefile finds two.
    assert info.parser == "pefile"
    assert info.imports == {"KERNEL32.DLL": ["ExitProcess"], "USER32.DLL": ["MessageBoxA"]}
    assert info.import_count == 2
    assert info.sections[0].name == "[CLAMAV]" and info.sections[0].raw_offset == 1
    # its entry point is in a section that is neither code nor executable
    assert {"entry-outside-code", "tiny-import-table"} <= set(info.anomalies)
    assert info.overlay is not None and (info.overlay.offset, info.overlay.size) == (513, 31)
    # The loader rounds PointerToRawData 1 down to 0: the entry point is at file offset 64.
    assert info.entry_bytes is not None and info.entry_bytes.startswith("bb711040")
    assert info.compile_time == datetime(2005, 4, 16, 16, 54, 57, tzinfo=UTC)


def test_packed_clam_files() -> None:
    upx = parse_pe(_clam("clam-upx.exe"))
    assert [s.name for s in upx.sections][:2] == ["UPX0", "UPX1"]
    assert {"wx-section:UPX0", "wx-section:UPX1"} <= set(upx.anomalies)
    assert upx.sections[0].raw_size == 0 and upx.sections[0].entropy == 0.0
    petite = parse_pe(_clam("clam-petite.exe"))
    assert "wx-section:.petite" in petite.anomalies
    assert "wx-section:#0" in petite.anomalies  # a section without a name
    nsis = parse_pe(_clam("clam-nsis.exe"))
    assert nsis.overlay is not None and nsis.overlay.size > 0  # the installer's payload


def test_installshield_overlay_and_resources() -> None:
    info = parse_pe(_clam("clam_ISmsi_ext.exe"))
    assert info.overlay is not None and info.overlay.size > 200_000
    assert len(info.resources) > 50
    assert info.version_info["ProductName"] == "clam"  # values come stripped
    types = {r.type for r in info.resources}
    assert {"RT_ICON", "RT_VERSION", "RT_MANIFEST"} <= types
    assert "GIF" in types  # a named resource type


# ---------------------------------------------------------------- material folder


def test_material_pe_imphash_and_fields() -> None:
    files = _material_pe()
    if not files:
        pytest.skip(f"no PE files in {MATERIAL} (scripts/fetch-material fills it)")
    drivers = 0
    for path in files:
        data = path.read_bytes()
        info = parse_pe(data)
        assert imphash(info) == _pefile_imphash(data), path
        assert info.machine in ("x86", "x86-64", "aarch64"), path
        assert info.bits == (32 if info.machine == "x86" else 64), path
        if path.suffix in (".dll", ".pyd"):
            assert info.is_dll, path
        if path.suffix == ".sys":
            assert info.is_driver, path
            drivers += 1
        if path.suffix == ".pyd":
            assert any(name.startswith("PyInit_") for name in info.exports), path
        assert not any(a.startswith("unreadable") for a in info.anomalies), (path, info.anomalies)


# ------------------------------------------------------------- damaged and crafted


@pytest.mark.parametrize("data", [
    b"", b"M", b"MZ", b"MZ" + b"\0" * 62, b"\x7fELF" + b"\0" * 100,
    random.Random(3).randbytes(4096), b"MZ" + random.Random(4).randbytes(4094),
])
def test_not_pe(data: bytes) -> None:
    with pytest.raises(PEError):
        parse_pe(data)


def test_dos_program_is_not_pe() -> None:
    dos = bytearray(b"MZ" + b"\0" * 0x3E + b"\xb4\x4c\xcd\x21" * 16)  # e_lfanew 0: no PE
    with pytest.raises(PEError, match="no PE signature"):
        parse_pe(bytes(dos))


def test_truncated_to_one_kib() -> None:
    info = parse_pe(_launcher("w64.exe")[:1024])
    assert (info.machine, info.bits) == ("x86-64", 64)
    assert [s.name for s in info.sections][:2] == [".text", ".rdata"]
    assert "section-beyond-eof" in info.anomalies
    assert info.import_count == 0 and "tiny-import-table" in info.anomalies
    assert info.sections[1].entropy == 0.0 and info.sections[1].sha256 is None
    assert info.checksum_actual is not None and "checksum-mismatch" in info.anomalies


def test_every_cut_of_the_headers() -> None:
    data = _launcher("w32.exe")
    for cut in range(0, 1100, 3):
        try:
            info = parse_pe(data[:cut])
        except PEError:
            assert cut < _lfanew(data) + 24
            continue
        assert info.machine == "x86"
        assert info.anomalies


def test_section_pointing_past_the_end() -> None:
    data = _launcher("w64.exe")
    rsrc = _section_header(data, ".rsrc")
    info = parse_pe(_patch(data, rsrc + 20, "<I", len(data) + 0x10000))  # PointerToRawData
    assert "section-beyond-eof" in info.anomalies
    section = next(s for s in info.sections if s.name == ".rsrc")
    assert section.raw_offset == len(data) + 0x10000
    assert section.entropy == 0.0 and section.sha256 is None
    assert info.import_count > 50  # the rest is still read


def test_anomalies_from_patched_headers() -> None:
    data = _launcher("w64.exe")
    lfanew = _lfanew(data)
    opt = lfanew + 24
    zero = parse_pe(_patch(data, lfanew + 8, "<I", 0))
    assert zero.compile_time is None and "zero-timestamp" in zero.anomalies
    future = parse_pe(_patch(data, lfanew + 8, "<I", 0xFFFFFF00))
    assert "future-timestamp" in future.anomalies
    bad_sum = parse_pe(_patch(data, opt + 64, "<I", 12345))
    assert bad_sum.checksum_header == 12345 and "checksum-mismatch" in bad_sum.anomalies
    assert pe_checksum(data, opt + 64) == parse_pe(data).checksum_header
    text = _section_header(data, ".text")
    wx = parse_pe(_patch(data, text + 36, "<I", 0xE0000020))
    assert "wx-section:.text" in wx.anomalies
    entry = parse_pe(_patch(data, opt + 16, "<I", 0x7FFF0000))
    assert "entry-outside-code" in entry.anomalies and entry.entry_bytes is None
    signed = parse_pe(_patch(data, opt + 112 + 4 * 8, "<II", len(data), 0x100))
    assert signed.has_signature


def test_dotnet_flag_from_clr_directory() -> None:
    data = _clam("clam.exe")  # no .NET PE at hand: give clam.exe a CLR data directory
    opt = _lfanew(data) + 24
    info = parse_pe(_patch(data, opt + 96 + 14 * 8, "<II", 0x1100, 0x48))
    assert info.is_dotnet
    assert "tiny-import-table" not in info.anomalies  # .NET programs import one function
    assert not parse_pe(data).is_dotnet


def test_driver_from_native_subsystem() -> None:
    data = _launcher("w64.exe")
    info = parse_pe(_patch(data, _lfanew(data) + 24 + 68, "<H", 1))
    assert info.subsystem == "native" and info.is_driver


def test_hundreds_of_overlapping_sections_stay_fast() -> None:
    """A section table built against analyzers: 1000 sections over a 4 MiB file."""
    size, count = 4 << 20, 1000
    coff = struct.pack("<4sHHIIIHH", b"PE\0\0", 0x14C, count, 0x50000000, 0, 0, 224, 0x0102)
    opt = bytearray(224)
    struct.pack_into("<HxxxxxxxxxxxxxxI", opt, 0, 0x10B, 0x1000)  # magic, entry point
    struct.pack_into("<III", opt, 28, 0x400000, 0x1000, 0x200)  # image base, alignments
    struct.pack_into("<I", opt, 92, 16)
    table = b"".join(
        struct.pack("<8sIIIIIIHHI", b".s%d" % i, size, 0x1000 * (i + 1), size - 512 * i,
                    512 * i, 0, 0, 0, 0, 0x60000020)
        for i in range(count)
    )
    head = b"MZ" + b"\0" * 0x3A + struct.pack("<I", 0x40) + coff + bytes(opt) + table
    data = head + random.Random(5).randbytes(size - len(head))
    start = time.perf_counter()
    info = parse_pe(data)
    assert time.perf_counter() - start < 10
    assert {"overlapping-sections", "many-sections"} <= set(info.anomalies)
    assert info.parser == "pefile" and len(info.sections) == 256


def test_random_damage_never_raises_anything_else() -> None:
    rng = random.Random(6)
    bases = [p.read_bytes() for p in LAUNCHERS[:3]] + [p.read_bytes() for p in CLAM_EXES[:6]]
    if not bases:
        pytest.skip("no PE files at hand")
    for _ in range(300):
        data = damaged(rng, rng.choice(bases), 1024)
        try:
            info = parse_pe(data)
        except PEError:
            continue
        assert 0.0 <= min((s.entropy for s in info.sections), default=0.0) <= 8.0
