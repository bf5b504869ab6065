"""unpack: the real ``upx`` on real files this test builds (benign programs packed with UPX).

Nothing here is ever executed: only ``upx`` (packing and unpacking data) and, for the
network check, the test's own Python interpreter run.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import stat
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleancenter.analyze import unpack
from cleancenter.analyze.unpack import (
    MiB,
    looks_like_upx,
    network_isolation_available,
    repair_upx_header,
    unpack_upx,
)
from cleancenter.demo import windows_launchers

UPX = shutil.which("upx")
pytestmark = pytest.mark.skipif(UPX is None, reason="upx is not installed (Debian: upx-ucl)")

CLAM_UPX = Path("/usr/share/clamav-testfiles/clam-upx.exe")


# ------------------------------------------------------------------------ helpers


def run_upx(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert UPX is not None
    return subprocess.run(
        [UPX, *args], cwd=cwd, env={}, capture_output=True, text=True, timeout=120, check=False
    )


def pack(src: Path, dst: Path) -> subprocess.CompletedProcess[str]:
    """``upx -o``; the packed copy is made 0600 at once (upx copies the input's mode)."""
    done = run_upx("-q", "-o", str(dst), str(src), cwd=dst.parent)
    if dst.exists():
        dst.chmod(0o600)
    return done


def plain_upx_d(data: bytes, tmp: Path) -> subprocess.CompletedProcess[str]:
    """What a naive pipeline does: ``upx -d`` on the file as it is."""
    src, out = tmp / "naive.in", tmp / "naive.out"
    src.write_bytes(data)
    src.chmod(0o600)
    done = run_upx("-q", "-d", "-o", str(out), str(src), cwd=tmp)
    out.unlink(missing_ok=True)
    src.unlink()
    return done


def synthetic_elf(machine: int, big: bool, flags: int) -> bytes:
    """A minimal static ELF32 executable for a foreign CPU (MIPS, ARM...): one PT_LOAD with
    compressible filler as its "code". It cannot run here and is never run; it only gives
    upx the byte orders and formats the Mirai builds use."""
    e = ">" if big else "<"
    words = [(i * 2654435761) & 0xFFFFFFFF for i in range(256)]
    body = b"".join(struct.pack(e + "I", words[(i * 7919) % 251]) for i in range(30000))
    base, hdr = 0x400000, 52 + 32
    total = hdr + len(body)
    ident = b"\x7fELF" + bytes([1, 2 if big else 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack(
        e + "HHIIIIIHHHHHH", 2, machine, 1, base + hdr, 52, 0, flags, 52, 32, 1, 40, 0, 0
    )
    phdr = struct.pack(e + "IIIIIIII", 1, 0, base, base, total, total + 0x1000, 5, 0x1000)
    return ehdr + phdr + body


def mirai_mangle(
    packed: bytes, *, magic: bytes | None, zero_pinfo: bool, big: bool, zero_overlay: bool = False
) -> bytes:
    """What Mirai-family builders do to a UPX-packed bot: every ``UPX!`` overwritten (l_info,
    stub, end marker, PackHeader) and p_info's p_filesize / p_blocksize zeroed."""
    data = bytearray(packed if magic is None else packed.replace(b"UPX!", magic))
    te = ">" if big else "<"
    (pinfo,) = struct.unpack_from(te + "I", data, len(data) - 4)  # overlay_offset
    if zero_pinfo:
        data[pinfo + 4 : pinfo + 12] = bytes(8)
    if zero_overlay:
        data[-4:] = bytes(4)
    return bytes(data)


def upx_offsets(data: bytes) -> set[int]:
    """Every byte offset covered by a ``UPX!`` in ``data``."""
    found: set[int] = set()
    i = data.find(b"UPX!")
    while i >= 0:
        found.update(range(i, i + 4))
        i = data.find(b"UPX!", i + 1)
    return found


def pe_layout(data: bytes) -> tuple[int, list[tuple[bytes, int, int]]]:
    """(machine, [(name, raw_ptr, raw_size)]) -- asserting the headers hang together."""
    assert data[:2] == b"MZ"
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    assert data[pe : pe + 4] == b"PE\x00\x00"
    machine, nsec = struct.unpack_from("<HH", data, pe + 4)
    (opt_size,) = struct.unpack_from("<H", data, pe + 20)
    table = pe + 24 + opt_size
    sections = []
    for k in range(nsec):
        name = data[table + 40 * k : table + 40 * k + 8].rstrip(b"\x00")
        raw_size, raw_ptr = struct.unpack_from("<II", data, table + 40 * k + 16)
        assert raw_ptr + raw_size <= len(data), f"section {name!r} runs past the end"
        sections.append((name, raw_ptr, raw_size))
    return machine, sections


def assert_clean(workdir: Path) -> None:
    leftovers = list(workdir.rglob("*")) if workdir.exists() else []
    assert leftovers == [], f"temp files left behind: {leftovers}"


# ------------------------------------------------------------------------ fixtures

ELF_HOSTS = ["gzip", "ls"]
# (name, e_machine, big-endian, e_flags): the CPUs Mirai is built for most.
FOREIGN = [
    ("mips", 8, True, 0x1007),
    ("mipsel", 8, False, 0x1007),
    ("arm", 40, False, 0x5000002),
    ("i386", 3, False, 0),
    ("ppc", 20, True, 0),
]


@pytest.fixture(scope="module")
def packdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packed")


@pytest.fixture(scope="module", params=ELF_HOSTS)
def host_elf(request: pytest.FixtureRequest, packdir: Path) -> tuple[bytes, bytes]:
    """(original, packed) for a real program of this machine."""
    which = shutil.which(request.param)
    if which is None:
        pytest.skip(f"{request.param} not found")
    src = Path(which).resolve()
    dst = packdir / f"{request.param}.upx"
    done = pack(src, dst)
    assert done.returncode == 0, done.stderr
    return src.read_bytes(), dst.read_bytes()


@pytest.fixture(scope="module", params=FOREIGN, ids=[f[0] for f in FOREIGN])
def foreign_elf(request: pytest.FixtureRequest, packdir: Path) -> tuple[bytes, bytes, bool]:
    """(original, packed, big-endian) for a synthetic foreign-CPU ELF."""
    name, machine, big, flags = request.param
    src = packdir / f"{name}.elf"
    src.write_bytes(synthetic_elf(machine, big, flags))
    src.chmod(0o700)  # upx refuses to pack a file without an x bit; it is never run
    try:
        done = pack(src, packdir / f"{name}.upx")
    finally:
        src.chmod(0o600)
    assert done.returncode == 0, done.stderr
    return src.read_bytes(), (packdir / f"{name}.upx").read_bytes(), big


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "work"
    yield path
    assert_clean(path)


# ------------------------------------------------------------------------ ELF


def test_elf_roundtrip_is_byte_identical(host_elf: tuple[bytes, bytes], workdir: Path) -> None:
    original, packed = host_elf
    result = unpack_upx(packed, workdir=workdir)
    assert result.ok, result.message
    assert result.data == original
    assert result.repaired == []
    assert result.network_isolated == network_isolation_available()


def test_foreign_elf_roundtrip(foreign_elf: tuple[bytes, bytes, bool], workdir: Path) -> None:
    original, packed, _ = foreign_elf
    result = unpack_upx(packed, workdir=workdir)
    assert result.ok, result.message
    assert result.data == original


def test_evidence_on_packed_elf(host_elf: tuple[bytes, bytes]) -> None:
    original, packed = host_elf
    evidence = looks_like_upx(packed)
    text = "\n".join(evidence)
    assert "'UPX!' magic at" in text
    assert "l_info" in text
    assert "UPX PackHeader at" in text and "linux/amd64" in text
    assert f"original size {len(original)}" in text
    assert "without section headers" in text
    assert "$Info" in text
    assert looks_like_upx(original) == []


def test_repair_leaves_intact_files_alone(host_elf: tuple[bytes, bytes]) -> None:
    original, packed = host_elf
    assert repair_upx_header(packed) == (packed, [])
    assert repair_upx_header(original) == (original, [])


MANGLES = [
    pytest.param(b"\x00\x00\x00\x00", True, False, id="zeroed-magic+p_info"),
    pytest.param(b"YTS\x99", True, False, id="custom-magic+p_info"),
    pytest.param(None, True, False, id="p_info-only"),
    pytest.param(b"LSD!", False, False, id="magic-only"),
    pytest.param(b"\x00\x00\x00\x00", True, True, id="everything+overlay_offset"),
]


@pytest.mark.parametrize(("magic", "zero_pinfo", "zero_overlay"), MANGLES)
def test_mirai_style_elf_is_repaired(
    host_elf: tuple[bytes, bytes],
    magic: bytes | None,
    zero_pinfo: bool,
    zero_overlay: bool,
    workdir: Path,
    tmp_path: Path,
) -> None:
    original, packed = host_elf
    mangled = mirai_mangle(
        packed, magic=magic, zero_pinfo=zero_pinfo, big=False, zero_overlay=zero_overlay
    )

    naive = plain_upx_d(mangled, tmp_path)
    assert naive.returncode != 0
    assert re.search(r"NotPackedException|CantUnpackException", naive.stderr), naive.stderr

    repaired, changes = repair_upx_header(mangled)
    text = "\n".join(changes)
    if magic is not None:
        for what in ("PackHeader magic", "l_info magic", "b_info end marker magic"):
            assert what in text
    if zero_pinfo:
        assert f"p_filesize at 0xf8: 0 -> {len(original)}" in text
        assert f"p_blocksize at 0xfc: 0 -> {len(original)}" in text
    if zero_overlay:
        assert "overlay_offset" in text and "0 -> 244" in text  # p_info at 0xf4
    # Only the UPX! in the stub's code (not needed by upx -d) and p_blocksize (restored
    # as the file size, a safe upper bound) may differ from the untouched packed file.
    differ = {i for i in range(len(packed)) if repaired[i] != packed[i]}
    assert differ <= upx_offsets(packed) | set(range(0xFC, 0x100))

    result = unpack_upx(mangled, workdir=workdir)
    assert result.ok, result.message
    assert result.data == original
    assert result.repaired == changes
    assert "after repairing" in result.message
    assert repair_upx_header(repaired) == (repaired, [])  # idempotent


@pytest.mark.parametrize("magic", [b"\x00\x00\x00\x00", b"YTS\x99"])
def test_mirai_style_foreign_elf_is_repaired(
    foreign_elf: tuple[bytes, bytes, bool], magic: bytes, workdir: Path, tmp_path: Path
) -> None:
    original, packed, big = foreign_elf
    mangled = mirai_mangle(packed, magic=magic, zero_pinfo=True, big=big)
    assert plain_upx_d(mangled, tmp_path).returncode != 0
    evidence = "\n".join(looks_like_upx(mangled))
    assert f"magic altered to {magic!r}" in evidence

    result = unpack_upx(mangled, workdir=workdir)
    assert result.ok, result.message
    assert result.data == original
    assert any("p_filesize" in c for c in result.repaired)
    assert any("end marker" in c for c in result.repaired)


# ------------------------------------------------------------------------ PE


@pytest.mark.parametrize("launcher", windows_launchers(), ids=lambda p: f"{p.parent.name}-{p.name}")
def test_pe_launcher_roundtrip(launcher: Path, packdir: Path, workdir: Path) -> None:
    dst = packdir / f"{launcher.parent.name}-{launcher.name}.upx"
    done = pack(launcher, dst)
    if done.returncode != 0:
        # upx 4.2.2: "CantPackException: win64/arm64 is not yet supported"
        assert "-arm" in launcher.name, done.stderr
        pytest.skip(f"upx cannot pack it: {done.stderr.strip().splitlines()[-1]}")
    original, packed = launcher.read_bytes(), dst.read_bytes()
    assert "PE section names UPX0, UPX1" in "\n".join(looks_like_upx(packed))

    result = unpack_upx(packed, workdir=workdir)
    assert result.ok, result.message
    assert result.data is not None
    # upx -d rebuilds PE headers/imports/resources: not byte-identical, but same size and
    # the same machine and section table.
    assert len(result.data) == len(original)
    assert pe_layout(result.data) == pe_layout(original)


@pytest.mark.skipif(not CLAM_UPX.is_file(), reason="clamav-testfiles not installed")
def test_clam_upx_exe(workdir: Path) -> None:
    packed = CLAM_UPX.read_bytes()
    listing = run_upx("-l", str(CLAM_UPX), cwd=Path("/")).stdout
    found = re.search(r"^\s*(\d+)\s+->\s+(\d+).*win32/pe", listing, re.M)
    assert found, listing
    result = unpack_upx(packed, workdir=workdir)
    assert result.ok, result.message
    assert result.data is not None
    assert len(result.data) == int(found.group(1))
    machine, sections = pe_layout(result.data)
    assert machine == 0x14C and sections


def test_tampered_pe_is_repaired(packdir: Path, workdir: Path, tmp_path: Path) -> None:
    """Same idea as Mirai on PE: PackHeader magic wiped, UPX0/UPX1 renamed."""
    launcher = next((p for p in windows_launchers() if p.name == "t64.exe"), None)
    if launcher is None:
        pytest.skip("no distlib t64.exe launcher")
    dst = packdir / "t64-tamper.upx"
    assert pack(launcher, dst).returncode == 0
    packed = dst.read_bytes()
    good = unpack_upx(packed, workdir=workdir)
    assert good.ok and good.data is not None

    data = bytearray(packed)
    at = data.find(b"UPX!")
    data[at : at + 4] = b"\x00\x00\x00\x00"
    for old, new in ((b"UPX0\x00", b".text"), (b"UPX1\x00", b".data")):
        i = data.find(old)
        data[i : i + 5] = new
    tampered = bytes(data)
    naive = plain_upx_d(tampered, tmp_path)
    assert naive.returncode != 0 and "CantUnpackException" in naive.stderr

    result = unpack_upx(tampered, workdir=workdir)
    assert result.ok, result.message
    assert result.data == good.data
    assert any("PackHeader magic" in c for c in result.repaired)
    assert any("first section name b'.text' -> b'UPX0'" in c for c in result.repaired)


# ------------------------------------------------------------------------ failures


def test_max_output_smaller_than_the_body(host_elf: tuple[bytes, bytes], workdir: Path) -> None:
    original, packed = host_elf
    result = unpack_upx(packed, workdir=workdir, max_output=len(original) // 2)
    assert not result.ok
    assert result.data is None
    assert "max_output" in result.message and "no partial output" in result.message


def test_wall_clock_timeout(host_elf: tuple[bytes, bytes], workdir: Path) -> None:
    _, packed = host_elf
    result = unpack_upx(packed, workdir=workdir, timeout=0.001)
    assert not result.ok and result.data is None
    assert "timed out" in result.message


@pytest.mark.parametrize("megabytes", [4, 1])
def test_memory_limit(host_elf: tuple[bytes, bytes], megabytes: int, workdir: Path) -> None:
    """Too little address space: upx (or the loader before it) fails; we say it was memory."""
    _, packed = host_elf
    result = unpack_upx(packed, workdir=workdir, max_memory=megabytes * MiB)
    assert not result.ok and result.data is None
    assert "memory" in result.message
    assert result.repaired == []  # a limit is not a format error: no repair attempt


def test_upx_missing(host_elf: tuple[bytes, bytes], workdir: Path) -> None:
    _, packed = host_elf
    result = unpack_upx(packed, workdir=workdir, upx="/nonexistent/upx")
    assert not result.ok and result.data is None
    assert "upx is not installed" in result.message


def test_not_upx(host_elf: tuple[bytes, bytes], workdir: Path) -> None:
    original, _ = host_elf
    result = unpack_upx(original, workdir=workdir)
    assert not result.ok and result.data is None
    assert "not packed by UPX" in result.message
    assert result.repaired == []


def test_random_bytes(workdir: Path) -> None:
    junk = random.Random(7).randbytes(64 * 1024)
    assert looks_like_upx(junk) == []
    result = unpack_upx(junk, workdir=workdir)
    assert not result.ok and result.data is None
    assert result.message.startswith("upx -d failed:")


def test_empty_input(workdir: Path) -> None:
    result = unpack_upx(b"", workdir=workdir)
    assert not result.ok and "empty" in result.message


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.99])
def test_truncated_packed_file(host_elf: tuple[bytes, bytes], keep: float, workdir: Path) -> None:
    _, packed = host_elf
    cut = packed[: int(len(packed) * keep)]
    result = unpack_upx(cut, workdir=workdir)
    assert not result.ok and result.data is None
    assert result.message.startswith("upx -d failed:")


def test_repair_never_raises_on_junk(host_elf: tuple[bytes, bytes]) -> None:
    _, packed = host_elf
    samples = [b"", b"\x7fELF", b"MZ", b"MZ" + bytes(100), os.urandom(4096), packed[:64]]
    samples += [packed[:n] for n in range(0, len(packed), 997)]
    samples += [packed[-n:] for n in (1, 36, 40, 100)]
    for data in samples:
        fixed, changes = repair_upx_header(data)
        assert isinstance(fixed, bytes) and isinstance(changes, list)
        looks_like_upx(data)


# ------------------------------------------------------------------------ safety


def test_input_is_private_and_not_executable(tmp_path: Path) -> None:
    target = tmp_path / "x.in"
    unpack._write_private(target, b"data")
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o600
    with pytest.raises(FileExistsError):  # never follows or reuses a planted file
        unpack._write_private(target, b"again")


def test_upx_runs_without_network() -> None:
    """The namespace ``unpack_upx`` uses has no interface but loopback."""
    prefix = unpack._unshare_prefix()
    if not prefix:
        pytest.skip("unshare --net is not permitted here: upx runs with the host network")
    probe = subprocess.run(
        [*prefix, sys.executable, "-I", "-c", "print(open('/proc/net/dev').read())"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = [line for line in probe.stdout.splitlines()[2:] if ":" in line]
    interfaces = {line.split(":")[0].strip() for line in lines}
    assert interfaces == {"lo"}


def test_signal_messages() -> None:
    import signal

    assert "max_output" in unpack._signal_message(signal.SIGXFSZ, 3, 10, 20)
    assert "CPU time limit (3 s)" in unpack._signal_message(signal.SIGXCPU, 3, 10, 20)
    assert "memory" in unpack._signal_message(signal.SIGSEGV, 3, 10, 20)
