"""Archive ingest: zip and 7z members become samples, hostile archives are refused.

Every archive is built here, in tmp_path: pyzipper for AES zips, a small hand-written
zip writer for legacy ZipCrypto and for headers that lie (odd names, symlink attributes,
wrong sizes), py7zr for 7z, with a byte patch for member names py7zr will not write.
Ingest goes through `Ingestor` on both catalog backends (`center`), and a few cases
through the CLI; each test checks what the catalog and the blob store hold afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import py7zr
import pytest
import pyzipper
from sqlalchemy import func, select
from typer.testing import CliRunner

from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.collect.archives import ArchiveLimits
from cleancenter.collect.ingest import Ingestor, IngestReport
from cleancenter.store.blobs import TMP_PREFIX
from cleancenter.store.catalog import ERROR, RELATION, SAMPLE, SAMPLE_NAME

PASSWORD = "infected"


# -- building archives ------------------------------------------------------------------
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(tag: str, size: int = 600) -> bytes:
    """Distinct, incompressible-looking content (so ratio limits leave it alone)."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{tag}:{counter}".encode()).digest()
        counter += 1
    return out[:size]


def plain_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def aes_zip(path: Path, members: dict[str, bytes], password: str = PASSWORD) -> Path:
    with pyzipper.AESZipFile(path, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(password.encode())
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def seven_zip(
    path: Path, members: dict[str, bytes] | Sequence[tuple[str, bytes]],
    password: str | None = None, *, encrypt_headers: bool = False,
) -> Path:
    items = list(members.items()) if isinstance(members, dict) else list(members)
    with py7zr.SevenZipFile(path, "w", password=password) as archive:
        if password is not None:
            archive.set_encrypted_header(encrypt_headers)
        for name, data in items:
            archive.writestr(data, name)
    return path


class _ZipCrypto:
    """The legacy PKWARE stream cipher (stdlib zipfile reads it but cannot write it)."""

    def __init__(self, password: bytes) -> None:
        self.keys = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self._update(byte)

    @staticmethod
    def _crc(crc: int, byte: int) -> int:
        return zlib.crc32(bytes([byte]), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF

    def _update(self, byte: int) -> None:
        k0, k1, k2 = self.keys
        k0 = self._crc(k0, byte)
        k1 = ((k1 + (k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k2 = self._crc(k2, k1 >> 24)
        self.keys = [k0, k1, k2]

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            temp = (self.keys[2] | 2) & 0xFFFF
            out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
            self._update(byte)
        return bytes(out)


@dataclass
class RawMember:
    """One member for `raw_zip`: every header field the test may want to lie about."""

    name: str
    data: bytes
    password: bytes | None = None  # ZipCrypto
    declared_size: int | None = None  # uncompressed size written in the headers
    crc: int | None = None  # CRC-32 written in the headers
    mode: int = stat.S_IFREG | 0o644  # unix mode, in the high bits of external_attr
    deflate: bool = True


def raw_zip(path: Path, members: Iterable[RawMember]) -> Path:
    """A zip written field by field, with nothing sanitized."""
    out = bytearray()
    central = bytearray()
    count = 0
    for m in members:
        count += 1
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        method = zipfile.ZIP_DEFLATED if m.deflate else zipfile.ZIP_STORED
        if m.deflate:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            body = packer.compress(m.data) + packer.flush()
        else:
            body = m.data
        flags = 0x800  # names are UTF-8
        if m.password is not None:
            flags |= 1
            header = bytes(range(11)) + bytes([crc >> 24])  # the last byte checks the password
            body = _ZipCrypto(m.password).encrypt(header + body)
        size = len(m.data) if m.declared_size is None else m.declared_size
        name = m.name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc,
                           len(body), size, len(name), 0) + name + body
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", (3 << 8) | 20, 20, flags, method,
                               0, 0x21, crc, len(body), size, len(name), 0, 0, 0, 0,
                               m.mode << 16, offset) + name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def patch_7z_name(path: Path, old: str, new: str) -> None:
    """Rename a member in a 7z with a plain (not encoded) header, fixing both CRCs.

    py7zr refuses to write unsafe names, so the test writes a harmless name of the same
    length and swaps its UTF-16 bytes.
    """
    assert len(old) == len(new)
    data = bytearray(path.read_bytes())
    next_offset, next_size = struct.unpack_from("<QQ", data, 12)
    start = 32 + next_offset
    header = bytes(data[start : start + next_size])
    assert header.count(old.encode("utf-16-le")) == 1, "the name must be in a plain header"
    header = header.replace(old.encode("utf-16-le"), new.encode("utf-16-le"))
    data[start : start + next_size] = header
    struct.pack_into("<I", data, 28, zlib.crc32(header))
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:32])))
    path.write_bytes(bytes(data))


def seven_zip_plain_header(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.set_encoded_header_mode(False)
        for name, data in members:
            archive.writestr(data, name)
    return path


# -- reading the catalog back -----------------------------------------------------------
def ingest(
    center: Center, *paths: Path, password: str | None = PASSWORD,
    limits: ArchiveLimits | None = None,
) -> IngestReport:
    ingestor = Ingestor(center.catalog, center.blobs, password=password, limits=limits)
    return ingestor.ingest_paths(list(paths))


def sample_sizes(center: Center) -> dict[str, int]:
    with center.catalog.engine.connect() as conn:
        return {r.sha256: r.size for r in conn.execute(select(SAMPLE.c.sha256, SAMPLE.c.size))}


def names_of(center: Center, sha256: str) -> set[str]:
    with center.catalog.engine.connect() as conn:
        return set(conn.execute(
            select(SAMPLE_NAME.c.name).where(SAMPLE_NAME.c.sha256 == sha256)).scalars())


def relations(center: Center) -> set[tuple[str, str, str]]:
    r = RELATION.c
    with center.catalog.engine.connect() as conn:
        return {(p, c, k) for p, c, k in conn.execute(
            select(r.parent_sha256, r.child_sha256, r.kind))}


def error_rows(center: Center) -> list[tuple[str, str, str]]:
    """(source, location, message) of each ``ingest_error`` row; in messages, the test's
    tmp_path (whose name holds the test's name: "bomb", "password"...) reads ``TMP``."""
    e = ERROR.c
    tmp = str(center.settings.data_dir.parent)
    with center.catalog.engine.connect() as conn:
        return [(s, loc, msg.replace(tmp, "TMP")) for s, loc, msg in conn.execute(
            select(e.source, e.location, e.message).order_by(e.id))]


def row_counts(center: Center) -> list[int]:
    """Rows in sample, sample_name and relation."""
    with center.catalog.engine.connect() as conn:
        return [conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (SAMPLE, SAMPLE_NAME, RELATION)]


def extracted(parent: bytes | Path, child: bytes) -> tuple[str, str, str]:
    parent_bytes = parent.read_bytes() if isinstance(parent, Path) else parent
    return (sha(parent_bytes), sha(child), "extracted")


def temp_files(center: Center) -> list[Path]:
    root = center.blobs.root
    return [p for p in root.rglob("*") if p.name.startswith(TMP_PREFIX)] if root.exists() else []


def tree(root: Path, skip: Path | None = None) -> dict[str, int]:
    """Every path under ``root`` (not following links) and its size, ``skip`` left out."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None:
            dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            path = here / name
            found[str(path.relative_to(root))] = path.lstat().st_size
    return found


def only(errors: Sequence[tuple[str, str, str]], location: str) -> tuple[str, str, str]:
    matching = [e for e in errors if e[1] == location]
    assert len(matching) == 1, (location, errors)
    return matching[0]


def blob_bytes(center: Center) -> int:
    return sum(p.stat().st_size for p in center.blobs.iter_paths())


def run_cli(center: Center, *args: str) -> tuple[int, dict[str, object]]:
    """``cleancenter --data-dir D --database-url U ingest ARGS --json``: exit code, report."""
    result = CliRunner().invoke(app, [
        "--data-dir", str(center.settings.data_dir),
        "--database-url", center.settings.database_url,
        "ingest", *args, "--json",
    ])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    report: dict[str, object] = json.loads(result.stdout)
    return result.exit_code, report


# -- passwords --------------------------------------------------------------------------
def test_encrypted_archives_open_with_the_default_password(center: Center, tmp_path: Path) -> None:
    a, b, c, d, e, f, g = (payload(t) for t in "abcdefg")
    aes = aes_zip(tmp_path / "aes.zip", {"aes/one.exe": a, "two.bin": b})
    legacy = raw_zip(tmp_path / "zipcrypto.zip", [
        RawMember("zc/three.sh", c, password=PASSWORD.encode()),
        RawMember("four.txt", d, password=PASSWORD.encode(), deflate=False),
    ])
    locked = seven_zip(tmp_path / "locked.7z", {"x/five.elf": e, "six": f}, PASSWORD,
                       encrypt_headers=True)
    open_headers = seven_zip(tmp_path / "open.7z", {"seven.bin": g}, PASSWORD)
    with zipfile.ZipFile(legacy) as zf:  # the hand-made ZipCrypto is the real thing
        assert all(info.flag_bits & 1 for info in zf.infolist())
        assert zf.read("zc/three.sh", pwd=PASSWORD.encode()) == c

    report = ingest(center, aes, legacy, locked, open_headers)

    assert report.errors == []
    assert (report.files, report.members, report.samples_new) == (4, 7, 11)
    expected = {
        extracted(aes, a), extracted(aes, b), extracted(legacy, c), extracted(legacy, d),
        extracted(locked, e), extracted(locked, f), extracted(open_headers, g),
    }
    assert relations(center) == expected
    sizes = sample_sizes(center)
    for archive in (aes, legacy, locked, open_headers):
        assert sizes[sha(archive.read_bytes())] == archive.stat().st_size
        assert names_of(center, sha(archive.read_bytes())) == {archive.name}
    for data, name in [(a, "aes/one.exe"), (b, "two.bin"), (c, "zc/three.sh"),
                       (d, "four.txt"), (e, "x/five.elf"), (f, "six"), (g, "seven.bin")]:
        assert sizes[sha(data)] == len(data)
        assert names_of(center, sha(data)) == {name}
        assert center.blobs.read(sha(data)) == data
    assert error_rows(center) == []


@pytest.mark.parametrize("encrypt_headers", [False, True])
def test_wrong_password_stores_the_archive_without_members(
    center: Center, tmp_path: Path, encrypt_headers: bool
) -> None:
    secret = payload("secret")
    archives = [
        aes_zip(tmp_path / "aes.zip", {"secret.exe": secret}, "other"),
        raw_zip(tmp_path / "zipcrypto.zip",
                [RawMember("secret.exe", secret, password=b"other")]),
        seven_zip(tmp_path / "locked.7z", {"secret.exe": secret}, "other",
                  encrypt_headers=encrypt_headers),
    ]

    report = ingest(center, *archives)

    assert report.members == 0
    sizes = sample_sizes(center)
    assert set(sizes) == {sha(p.read_bytes()) for p in archives}
    assert relations(center) == set()
    assert not center.blobs.exists(sha(secret))
    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 3
    for archive in archives:
        source, _, message = only(rows, str(archive))
        assert source == "archive"
        assert "wrong" in message and "password" in message, message
        assert "'infected'" in message, message
    assert temp_files(center) == []


def test_cli_password_option_and_exit_codes(center: Center, tmp_path: Path) -> None:
    p, q, r = payload("p"), payload("q"), payload("r")
    archives = [
        aes_zip(tmp_path / "other.zip", {"p.bin": p}, "other"),
        raw_zip(tmp_path / "legacy.zip", [RawMember("q.bin", q, password=b"other")]),
        seven_zip(tmp_path / "other.7z", {"r.bin": r}, "other", encrypt_headers=True),
    ]

    code, report = run_cli(center, *map(str, archives))  # default password: refused
    assert code == 1
    assert report["members"] == 0 and report["error_count"] == 3
    errors = report["errors"]
    assert isinstance(errors, list)
    assert {e["location"] for e in errors} == {str(a) for a in archives}
    for e in errors:
        assert "password" in e["message"].replace(str(tmp_path), "TMP"), e

    code, report = run_cli(center, "--password", "other", *map(str, archives))
    assert code == 0, report
    assert report["members"] == 3 and report["errors"] == []
    assert relations(center) == {
        extracted(archives[0], p), extracted(archives[1], q), extracted(archives[2], r)}
    assert len(error_rows(center)) == 3  # the first run's, kept


# -- unsafe members ---------------------------------------------------------------------
EVIL_NAMES = ["../evil", "a/../../evil", "/etc/evil", "C:\\evil", "..\\evil"]


def test_member_names_that_escape_are_refused(
    center: Center, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, evil = payload("good"), payload("evil")
    (tmp_path / "in").mkdir()
    zip_path = raw_zip(tmp_path / "in" / "names.zip", [
        RawMember("good/ok.txt", good), *(RawMember(n, evil + n.encode()) for n in EVIL_NAMES)])
    sz_path = seven_zip_plain_header(tmp_path / "in" / "names.7z", [
        ("good/ok.txt", good), ("xx/evil", evil + b"7z-dotdot"), ("xetc/evil", evil + b"7z-abs")])
    patch_7z_name(sz_path, "xx/evil", "../evil")
    patch_7z_name(sz_path, "xetc/evil", "/etc/evil")
    work = tmp_path / "cwd" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # a relative "../evil" would land inside tmp_path
    data_dir = center.settings.data_dir
    etc_evil = Path("/etc/evil").exists()
    outside_before = tree(tmp_path, skip=data_dir)
    parent_before = sorted(os.listdir(tmp_path.parent))

    report = ingest(center, zip_path, sz_path)

    reasons = {
        "../evil": "path escapes the archive (..)", "a/../../evil": "path escapes the archive (..)",
        "..\\evil": "path escapes the archive (..)", "/etc/evil": "absolute path",
        "C:\\evil": "absolute path",
    }
    rows = error_rows(center)
    assert len(rows) == len(report.errors) == len(EVIL_NAMES) + 2
    for name in EVIL_NAMES:
        assert only(rows, f"{zip_path}!{name}")[2] == f"member refused: {reasons[name]}"
    for name in ("../evil", "/etc/evil"):
        assert only(rows, f"{sz_path}!{name}")[2] == f"member refused: {reasons[name]}"
    assert relations(center) == {extracted(zip_path, good), extracted(sz_path, good)}
    assert names_of(center, sha(good)) == {"good/ok.txt"}
    assert set(sample_sizes(center)) == {
        sha(good), sha(zip_path.read_bytes()), sha(sz_path.read_bytes())}
    # nothing was written anywhere but the data dir, and there only blobs and the catalog
    assert tree(tmp_path, skip=data_dir) == outside_before
    assert sorted(os.listdir(tmp_path.parent)) == parent_before
    assert Path("/etc/evil").exists() == etc_evil
    assert [p for p in tmp_path.rglob("*") if "evil" in p.name] == []
    stored = {p.name for p in center.blobs.iter_paths()}
    assert stored == set(sample_sizes(center))
    archives = {sha(zip_path.read_bytes()), sha(sz_path.read_bytes())}
    assert not any(evil in center.blobs.read(s) for s in stored - archives)


def test_symlink_members_are_refused(center: Center, tmp_path: Path) -> None:
    regular = payload("regular")
    zip_path = raw_zip(tmp_path / "links.zip", [
        RawMember("link", b"/etc/passwd", mode=stat.S_IFLNK | 0o777, deflate=False),
        RawMember("real.txt", regular),
    ])
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.txt").write_bytes(regular)
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (src / "link").symlink_to("../outside.txt")  # py7zr stores a link only if it resolves
    sz_path = tmp_path / "links.7z"
    with py7zr.SevenZipFile(sz_path, "w") as archive:
        archive.write(src / "link", "link")
        archive.write(src / "real.txt", "real.txt")

    report = ingest(center, zip_path, sz_path)

    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 2
    for archive in (zip_path, sz_path):
        assert only(rows, f"{archive}!link")[2] == "member refused: symbolic link"
    assert relations(center) == {extracted(zip_path, regular), extracted(sz_path, regular)}
    assert not center.blobs.exists(sha(b"/etc/passwd"))
    assert not center.blobs.exists(sha(b"../outside.txt"))
    assert len(sample_sizes(center)) == 3


# -- limits -----------------------------------------------------------------------------
def test_too_many_members(center: Center, tmp_path: Path) -> None:
    files = {f"m{i}.bin": payload(f"m{i}") for i in range(5)}
    many_zip = plain_zip(tmp_path / "many.zip", files)
    many_7z = seven_zip(tmp_path / "many.7z", files)
    inner = plain_zip(tmp_path / "inner.zip", {"i1": payload("i1"), "i2": payload("i2")})
    nested = plain_zip(tmp_path / "nested.zip",
                       {"inner.zip": inner.read_bytes(), "n.bin": payload("n")})

    report = ingest(center, many_zip, many_7z, nested, limits=ArchiveLimits(max_members=3))

    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 3
    for archive in (many_zip, many_7z):
        message = only(rows, str(archive))[2]
        assert "too many members (5; 3 left of the limit 3)" in message
    # the nested archive's members count against the same budget as its parent's
    message = only(rows, f"{nested}!inner.zip")[2]
    assert "too many members (2; 1 left of the limit 3)" in message
    assert relations(center) == {
        extracted(nested, inner.read_bytes()), extracted(nested, payload("n"))}
    assert not any(center.blobs.exists(sha(d)) for d in files.values())


def test_too_much_expanded_data(center: Center, tmp_path: Path) -> None:
    small = payload("small", 100)
    two = {"a.bin": payload("a", 2500), "b.bin": payload("b", 2500)}
    one_big = {"big.bin": payload("big", 3500), "small.bin": small}
    total_zip = plain_zip(tmp_path / "total.zip", two)
    total_7z = seven_zip(tmp_path / "total.7z", two)
    member_zip = plain_zip(tmp_path / "member.zip", one_big)
    member_7z = seven_zip(tmp_path / "member.7z", one_big)
    limits = ArchiveLimits(max_total_size=4000, max_member_size=3000)

    report = ingest(center, total_zip, total_7z, member_zip, member_7z, limits=limits)

    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 4
    for archive in (total_zip, total_7z):
        message = only(rows, str(archive))[2]
        assert "expands to 5000 bytes" in message and "limit 4000" in message, message
        assert "archive bomb" in message
    for archive in (member_zip, member_7z):
        assert only(rows, f"{archive}!big.bin")[2] == (
            "member refused: 3500 bytes is more than the member limit 3000")
    assert relations(center) == {extracted(member_zip, small), extracted(member_7z, small)}
    for data in [*two.values(), one_big["big.bin"]]:
        assert not center.blobs.exists(sha(data))


def test_compression_ratio_bomb(center: Center, tmp_path: Path) -> None:
    zeros = bytes(1 << 20)
    bomb_zip = plain_zip(tmp_path / "zeros.zip", {"zeros.bin": zeros})
    bomb_7z = seven_zip(tmp_path / "zeros.7z", {"zeros.bin": zeros})
    assert bomb_zip.stat().st_size < 5000 and bomb_7z.stat().st_size < 5000
    limits = ArchiveLimits(ratio_floor=64 << 10, max_ratio=20)

    report = ingest(center, bomb_zip, bomb_7z, limits=limits)

    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 2
    assert {r[1] for r in rows} == {str(bomb_zip), str(bomb_7z)}
    assert only(rows, str(bomb_zip))[2].startswith("TMP/zeros.zip!zeros.bin: ")
    for _, _, message in rows:
        assert "compression ratio" in message and "exceeds 20:1" in message, message
        assert "archive bomb" in message
    assert not center.blobs.exists(sha(zeros))
    assert relations(center) == set()
    assert set(sample_sizes(center)) == {sha(bomb_zip.read_bytes()), sha(bomb_7z.read_bytes())}
    assert temp_files(center) == []


def test_nested_zip_bomb_runs_out_of_budget(center: Center, tmp_path: Path) -> None:
    """42.zip in small: 16 x 16 x 16 zips of 16 x 256 KiB of zeros (16 GiB expanded)."""
    fan = 16
    leaf_buf = io.BytesIO()
    with zipfile.ZipFile(leaf_buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(fan):
            zf.writestr(f"page{i}.bin", bytes(256 << 10))
    level = leaf_buf.getvalue()
    for depth in range(3):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for i in range(fan):
                zf.writestr(f"level{depth}-{i}.zip", level)
        level = buf.getvalue()
    bomb = tmp_path / "42.zip"
    bomb.write_bytes(level)
    budget = 16 << 20
    limits = ArchiveLimits(max_total_size=budget)  # default ratio, member and depth limits

    report = ingest(center, bomb, limits=limits)

    assert report.errors, "the bomb must be refused"
    assert all("archive bomb" in e.message.replace(str(tmp_path), "TMP")
               for e in report.errors), report.errors
    assert len(error_rows(center)) == len(report.errors)
    # the budget is shared across nesting: expansion stopped near it, not at 16 GiB
    assert blob_bytes(center) <= budget + bomb.stat().st_size
    # and the bomb is reported once per archive that was cut short, not once per leaf
    assert len(report.errors) <= 3 * fan, [e.location for e in report.errors]
    assert temp_files(center) == []


def test_zip_headers_that_lie_about_sizes(center: Center, tmp_path: Path) -> None:
    big = payload("big", 200_000)
    honest = payload("honest")
    liar = raw_zip(tmp_path / "liar.zip", [
        RawMember("lie.bin", big, declared_size=100),  # CRC of the real data
        RawMember("honest.bin", honest),
    ])
    # sizes and CRC both say 100 bytes: zipfile stops there, and so does the blob
    consistent = raw_zip(tmp_path / "consistent.zip", [
        RawMember("lie.bin", big, declared_size=100, crc=zlib.crc32(big[:100]))])

    report = ingest(center, liar, consistent, limits=ArchiveLimits(max_member_size=1000))

    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 1
    message = only(rows, f"{liar}!lie.bin")[2]
    assert message.startswith("member unreadable:") and "CRC" in message, message
    assert relations(center) == {extracted(liar, honest), extracted(consistent, big[:100])}
    assert not center.blobs.exists(sha(big))
    assert max(sample_sizes(center).values()) <= max(liar.stat().st_size, 1000)
    assert temp_files(center) == []


# -- nesting ----------------------------------------------------------------------------
def build_chain(tmp_path: Path) -> tuple[bytes, Path, Path, Path]:
    """outer.zip > middle.7z (password, encrypted headers) > inner.zip (AES) > payload."""
    data = payload("chain")
    inner = aes_zip(tmp_path / "inner.zip", {"bin/payload.elf": data})
    middle = seven_zip(tmp_path / "middle.7z", {"inner.zip": inner.read_bytes()}, PASSWORD,
                       encrypt_headers=True)
    outer = plain_zip(tmp_path / "outer.zip", {"drop/middle.7z": middle.read_bytes()})
    return data, inner, middle, outer


def test_nested_archives_form_a_chain(center: Center, tmp_path: Path) -> None:
    data, inner, middle, outer = build_chain(tmp_path)

    report = ingest(center, outer)

    assert report.errors == [] and error_rows(center) == []
    assert (report.files, report.members, report.samples_new) == (1, 3, 4)
    assert relations(center) == {
        extracted(outer, middle.read_bytes()),
        extracted(middle, inner.read_bytes()),
        extracted(inner, data),
    }
    assert names_of(center, sha(middle.read_bytes())) == {"drop/middle.7z"}
    assert names_of(center, sha(inner.read_bytes())) == {"inner.zip"}
    assert names_of(center, sha(data)) == {"bin/payload.elf"}
    with center.catalog.engine.connect() as conn:
        types = dict(conn.execute(select(SAMPLE.c.sha256, SAMPLE.c.file_type)).all())
    assert types[sha(middle.read_bytes())] == "7z" and types[sha(inner.read_bytes())] == "zip"


def test_depth_limit_keeps_the_inner_archive_unexpanded(center: Center, tmp_path: Path) -> None:
    data, inner, middle, outer = build_chain(tmp_path)

    report = ingest(center, outer, limits=ArchiveLimits(max_depth=1))

    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 1
    source, _, message = only(rows, f"{outer}!drop/middle.7z")
    assert source == "archive"
    assert message == "not expanded: nested deeper than 1 archives"
    assert relations(center) == {extracted(outer, middle.read_bytes())}
    assert set(sample_sizes(center)) == {sha(outer.read_bytes()), sha(middle.read_bytes())}
    assert not center.blobs.exists(sha(inner.read_bytes()))
    assert not center.blobs.exists(sha(data))


# -- bad input --------------------------------------------------------------------------
def test_corrupt_archives_are_recorded_and_the_rest_goes_in(
    center: Center, tmp_path: Path
) -> None:
    good_data, first, second = payload("good"), payload("first"), payload("second")
    whole_zip = plain_zip(tmp_path / "whole.zip", {"a.bin": payload("a"), "b.bin": payload("b")})
    cut_zip = tmp_path / "cut.zip"
    cut_zip.write_bytes(whole_zip.read_bytes()[: whole_zip.stat().st_size // 2])
    whole_7z = seven_zip(tmp_path / "whole.7z", {"a.bin": payload("a7"), "b.bin": payload("b7")})
    cut_7z = tmp_path / "cut.7z"
    cut_7z.write_bytes(whole_7z.read_bytes()[: whole_7z.stat().st_size // 2])
    # a zip whose second member's deflate stream is damaged: the first member still goes in
    damaged = raw_zip(tmp_path / "damaged.zip", [
        RawMember("first.bin", first, deflate=False), RawMember("second.bin", second)])
    raw = bytearray(damaged.read_bytes())
    at = raw.index(b"second.bin") + len(b"second.bin") + 20
    raw[at : at + 16] = bytes(16)
    damaged.write_bytes(bytes(raw))
    # a 7z whose second member's data is damaged: the first one is kept
    damaged_7z = seven_zip_plain_header(tmp_path / "damaged.7z", [
        ("first.bin", first), ("second.bin", second)])
    raw = bytearray(damaged_7z.read_bytes())
    (packed_end,) = struct.unpack_from("<Q", raw, 12)
    raw[32 + packed_end - 100 : 32 + packed_end - 90] = bytes(10)
    damaged_7z.write_bytes(bytes(raw))
    # a 7z whose header CRC does not match: not a password problem, although the
    # default password is always tried
    bad_crc_7z = seven_zip(tmp_path / "badcrc.7z", {"c.bin": payload("c")})
    raw = bytearray(bad_crc_7z.read_bytes())
    raw[8] ^= 0xFF
    bad_crc_7z.write_bytes(bytes(raw))
    good_file = tmp_path / "good.bin"
    good_file.write_bytes(good_data)
    good_zip = plain_zip(tmp_path / "good.zip", {"first.bin": first})
    missing = tmp_path / "missing.zip"

    report = ingest(center, cut_zip, cut_7z, damaged, damaged_7z, bad_crc_7z, missing,
                    good_file, good_zip)

    rows = error_rows(center)
    assert len(rows) == len(report.errors) == 6
    assert only(rows, str(cut_zip))[2].startswith("TMP/cut.zip: not a readable zip archive: ")
    for archive in (cut_7z, bad_crc_7z):
        message = only(rows, str(archive))[2]
        assert message.startswith(f"TMP/{archive.name}: not a readable 7z archive: "), message
        assert "password" not in message
    message = only(rows, f"{damaged}!second.bin")[2]
    assert message.startswith("member unreadable: "), message
    message = only(rows, str(damaged_7z))[2]
    assert message.startswith("TMP/damaged.7z: corrupt 7z data: "), message
    assert "second.bin" in message and "password" not in message
    assert only(rows, str(missing)) == ("files", str(missing), "no such file or folder")
    # every file is a sample, broken or not; members of the good parts are too
    sizes = sample_sizes(center)
    for path in (cut_zip, cut_7z, damaged, damaged_7z, bad_crc_7z, good_file, good_zip):
        assert sizes[sha(path.read_bytes())] == path.stat().st_size
    assert relations(center) == {
        extracted(damaged, first), extracted(damaged_7z, first), extracted(good_zip, first)}
    assert names_of(center, sha(first)) == {"first.bin"}
    assert not center.blobs.exists(sha(second))
    assert temp_files(center) == []


# -- names and repeats ------------------------------------------------------------------
def test_same_content_under_different_names_is_one_sample(center: Center, tmp_path: Path) -> None:
    same, other = payload("same"), payload("other")
    first = aes_zip(tmp_path / "first.zip", {"one/name1.exe": same, "copy.exe": same,
                                             "other.bin": other})
    second = seven_zip(tmp_path / "second.7z", {"name2.bin": same}, PASSWORD)

    report = ingest(center, first, second)

    assert report.errors == []
    assert report.members == 4
    assert set(sample_sizes(center)) == {
        sha(first.read_bytes()), sha(second.read_bytes()), sha(same), sha(other)}
    assert names_of(center, sha(same)) == {"one/name1.exe", "copy.exe", "name2.bin"}
    assert relations(center) == {
        extracted(first, same), extracted(first, other), extracted(second, same)}


def test_repeated_member_names_are_all_kept(center: Center, tmp_path: Path) -> None:
    v1, v2, v3 = payload("v1"), payload("v2"), payload("v3")
    # py7zr hands such members to the writer as "dup.bin", "dup.bin_0"...
    sz = seven_zip(tmp_path / "dups.7z",
                   [("dup.bin", v1), ("dup.bin", v2), ("dup.bin_0", v3)])
    zp = raw_zip(tmp_path / "dups.zip", [RawMember("dup.bin", v1), RawMember("dup.bin", v2)])

    report = ingest(center, sz, zp)

    assert report.errors == []
    assert relations(center) == {
        extracted(sz, v1), extracted(sz, v2), extracted(sz, v3),
        extracted(zp, v1), extracted(zp, v2)}
    assert names_of(center, sha(v1)) == names_of(center, sha(v2)) == {"dup.bin"}
    assert names_of(center, sha(v3)) == {"dup.bin_0"}
    assert temp_files(center) == []


def test_reingesting_adds_nothing(center: Center, tmp_path: Path) -> None:
    _, _, _, outer = build_chain(tmp_path)
    loose = tmp_path / "folder"
    loose.mkdir()
    plain_zip(loose / "more.zip", {"x.bin": payload("x"), "y.bin": payload("y")})

    first = ingest(center, outer, loose)
    counts = row_counts(center)
    blobs = sorted(center.blobs.iter_paths())
    second = ingest(center, outer, loose)

    assert first.errors == second.errors == []
    assert (first.samples_new, first.samples_known) == (7, 0)
    assert (second.samples_new, second.samples_known) == (0, 7)
    assert second.members == first.members == 5
    assert row_counts(center) == counts == [7, 7, 5]
    assert sorted(center.blobs.iter_paths()) == blobs
    assert temp_files(center) == []


def test_7z_with_more_members_than_open_files(sqlite_center: Center, tmp_path: Path) -> None:
    """Members are committed one by one, not held open until the archive is done."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("counts open files in /proc/self/fd")
    members = {f"m/{i:03d}.txt": f"member {i}".encode() for i in range(300)}
    many = seven_zip(tmp_path / "many.7z", members)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    sqlite_center.catalog  # noqa: B018  (open the catalog before the limit is lowered)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 100, hard))
    try:
        report = ingest(sqlite_center, many)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert report.errors == []
    assert report.members == 300
    rels = relations(sqlite_center)
    assert rels == {extracted(many, data) for data in members.values()}
    assert names_of(sqlite_center, sha(members["m/007.txt"])) == {"m/007.txt"}


# -- the command line -------------------------------------------------------------------
def test_cli_reports_refused_members(center: Center, tmp_path: Path) -> None:
    good = payload("good")
    archive = raw_zip(tmp_path / "mixed.zip", [
        RawMember("../evil", payload("evil")),
        RawMember("link", b"/etc/shadow", mode=stat.S_IFLNK | 0o777),
        RawMember("ok/good.bin", good),
    ])

    code, report = run_cli(center, "files", str(archive))

    assert code == 1
    assert (report["files"], report["members"], report["error_count"]) == (1, 1, 2)
    assert report["errors"] == [
        {"location": f"{archive}!../evil",
         "message": "member refused: path escapes the archive (..)"},
        {"location": f"{archive}!link", "message": "member refused: symbolic link"},
    ]
    assert relations(center) == {extracted(archive, good)}
    assert [r[1] for r in error_rows(center)] == [f"{archive}!../evil", f"{archive}!link"]
