"""ClamAV export, checked with the real clamscan and only our databases (``-d`` with our
folder: no official database is loaded, freshclam is never run).

The "malicious" files are harmless: the EICAR string, a random blob and a copy of
/bin/true, marked malicious in the catalog. Nothing is executed but clamscan itself.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleancenter.analyze.service import set_label
from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.definitions import clamav
from cleancenter.definitions.build import build_release
from cleancenter.definitions.keys import init_keys
from cleancenter.demo import eicar
from cleancenter.store.catalog import NewSample, utcnow
from tests.conftest import IN_CI

CLAMSCAN = shutil.which("clamscan") or "/usr/bin/clamscan"


@pytest.fixture(scope="module")
def clamscan() -> str:
    if not Path(CLAMSCAN).exists():
        if IN_CI:
            pytest.fail("clamscan not installed (Debian clamav; the quickstart installs it)")
        pytest.skip("clamscan not installed (Debian clamav)")
    return CLAMSCAN


def run_clamscan(clamscan: str, db: Path, folder: Path) -> tuple[int, dict[str, str], str]:
    """clamscan with only our databases: exit code, {file name: signature}, stderr."""
    proc = subprocess.run([clamscan, "--no-summary", "-d", str(db), str(folder)],
                          capture_output=True, text=True, timeout=300, check=False)
    found = {}
    for line in proc.stdout.splitlines():
        if line.endswith(" FOUND"):
            path, _, name = line.removesuffix(" FOUND").rpartition(": ")
            found[Path(path).name] = name
    return proc.returncode, found, proc.stderr


def add(center: Center, data: bytes, verdict: str | None, family: str | None = None) -> str:
    digests = center.blobs.put_bytes(data)
    with center.catalog.transaction() as conn:
        center.catalog.add_samples(conn, [NewSample(
            digests.sha256, digests.md5, digests.sha1, digests.size, "data", utcnow())])
    if verdict:
        set_label(center.catalog, digests.sha256, verdict=verdict, family=family, note=None,
                  author="test")
    return digests.sha256


def cli(center: Center, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(center.settings.data_dir),
                                      "--database-url", center.settings.database_url, *args])
    return result.exit_code, result.stdout


def test_family_names_are_made_safe() -> None:
    assert clamav.safe_family("Mirai") == "Mirai"
    assert clamav.safe_family("Mirai v2: arm/mips") == "Mirai_v2_arm_mips"
    assert clamav.safe_family("Zégóu.Bot") == "Zegou_Bot"  # folded; "." is ClamAV's separator
    assert clamav.safe_family("ボット") == "Unknown"
    assert clamav.safe_family(None) == clamav.safe_family("  ::  ") == "Unknown"
    assert len(clamav.safe_family("x" * 500)) == clamav.MAX_FAMILY


def test_clamscan_finds_exactly_the_malicious_files(center: Center, clamscan: str,
                                                    tmp_path: Path) -> None:
    rng = random.Random(4)
    bad = {
        "eicar.com": (eicar(), "Eicar"),
        "blob.bin": (rng.randbytes(4096), "Weird fam: ily/ü"),
        "true.copy": (Path("/bin/true").read_bytes(), None),
    }
    good = {"notes.txt": b"just some text\n" * 20, "false.copy": Path("/bin/false").read_bytes(),
            "unlabelled.bin": rng.randbytes(2048)}
    shas = {name: add(center, data, "malicious", fam) for name, (data, fam) in bad.items()}
    add(center, good["notes.txt"], "clean")
    add(center, good["false.copy"], "clean")
    add(center, good["unlabelled.bin"], None)
    add(center, b"", "malicious", "Empty")  # ClamAV refuses size 0: left out, counted

    init_keys(center.settings.data_dir / "keys")
    built = build_release(center.catalog, keys_dir=center.settings.data_dir / "keys",
                          rules_registry=center.settings.data_dir / "rules", out=None,
                          releases_dir=center.settings.data_dir / "releases")
    assert built.counts["hashes"] == 4 and built.counts["clamav_hashes"] == 3
    db = tmp_path / "db"
    code, out = cli(center, "definitions", "export-clamav", str(built.path), "--out", str(db),
                    "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["ok"] and result["hashes"] == 3 and result["patterns"] == 0
    assert sorted(p.name for p in db.iterdir()) == ["cleancenter.hsb", "cleancenter.ndb"]
    lines = (db / "cleancenter.hsb").read_text().splitlines()
    assert lines[0].startswith("# cleancenter definitions version 1")
    assert f"{shas['blob.bin']}:4096:Cleancenter.Weird_fam_ily_u.{shas['blob.bin'][:12]}" \
        in lines

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name, data in [*((n, d) for n, (d, _) in bad.items()), *good.items()]:
        (mixed / name).write_bytes(data)
    code, found, stderr = run_clamscan(clamscan, db, mixed)
    assert code == 1, stderr
    assert found == {
        "eicar.com": f"Cleancenter.Eicar.{shas['eicar.com'][:12]}.UNOFFICIAL",
        "blob.bin": f"Cleancenter.Weird_fam_ily_u.{shas['blob.bin'][:12]}.UNOFFICIAL",
        "true.copy": f"Cleancenter.Unknown.{shas['true.copy'][:12]}.UNOFFICIAL",
    }
    benign = tmp_path / "benign"
    benign.mkdir()
    for name, data in good.items():
        (benign / name).write_bytes(data)
    assert run_clamscan(clamscan, db, benign)[:2] == (0, {})


def test_ndb_pattern_detects_a_file_holding_it(clamscan: str, tmp_path: Path) -> None:
    pattern = b"zq-botnet.cc.invalid/gate.php"
    files = clamav.build_files([], [clamav.BytePattern("Zq bot", pattern),
                                    clamav.BytePattern("Zq bot", b"short"),
                                    clamav.BytePattern("Other", pattern)], version=7)
    assert files.patterns == 1 and files.skipped == {"short": 1, "duplicate": 1}
    assert f"Cleancenter.Zq_bot.Gen-1:0:*:{pattern.hex()}" in files.ndb.decode()
    db = tmp_path / "db"
    clamav.export_files({clamav.HSB_NAME: files.hsb, clamav.NDB_NAME: files.ndb}, db)
    folder = tmp_path / "scan"
    folder.mkdir()
    (folder / "holds").write_bytes(os.urandom(3000) + pattern + os.urandom(3000))
    (folder / "almost").write_bytes(os.urandom(3000) + pattern[:-1] + b"X" + os.urandom(10))
    code, found, stderr = run_clamscan(clamscan, db, folder)
    assert code == 1, stderr
    assert found == {"holds": "Cleancenter.Zq_bot.Gen-1.UNOFFICIAL"}


def test_empty_release_exports_files_clamscan_accepts(center: Center, clamscan: str,
                                                      tmp_path: Path) -> None:
    # clamscan refuses a database file without any line ("Empty database file"), so each
    # file carries a comment header: measured, that loads fine and matches nothing.
    empty = tmp_path / "truly-empty"
    empty.mkdir()
    (empty / "cleancenter.ndb").write_bytes(b"")
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "a.txt").write_text("hello\n")
    code, _, stderr = run_clamscan(clamscan, empty, tmp_path / "scan")
    assert code == 2 and "Empty database" in stderr  # why the header exists

    init_keys(center.settings.data_dir / "keys")
    built = build_release(center.catalog, keys_dir=center.settings.data_dir / "keys",
                          rules_registry=center.settings.data_dir / "rules", out=None,
                          releases_dir=center.settings.data_dir / "releases")
    db = tmp_path / "db"
    code, out = cli(center, "definitions", "export-clamav", str(built.path), "--out", str(db),
                    "--json")
    assert code == 0, out
    assert json.loads(out)["hashes"] == 0 and json.loads(out)["patterns"] == 0
    for name in ("cleancenter.hsb", "cleancenter.ndb"):
        assert (db / name).read_bytes().startswith(b"# cleancenter definitions version 1")
    code, found, stderr = run_clamscan(clamscan, db, tmp_path / "scan")
    assert (code, found) == (0, {}), stderr


def test_export_refuses_bad_bundles_and_bad_lines(center: Center, tmp_path: Path) -> None:
    init_keys(center.settings.data_dir / "keys")
    add(center, b"malicious bytes " * 4, "malicious", "X")
    built = build_release(center.catalog, keys_dir=center.settings.data_dir / "keys",
                          rules_registry=center.settings.data_dir / "rules", out=None,
                          releases_dir=center.settings.data_dir / "releases")
    tampered = tmp_path / "tampered.ccdef"
    with zipfile.ZipFile(built.path) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == clamav.BUNDLE_HSB:
                data = data.replace(b"Cleancenter.X", b"Cleancenter.Y")
            zout.writestr(info.filename, data)
    db = tmp_path / "db"
    code, out = cli(center, "definitions", "export-clamav", str(tampered), "--out", str(db),
                    "--json")
    assert code == 2 and "content differs" in json.loads(out)["error"]
    assert not db.exists()  # nothing written from an unverified bundle

    with pytest.raises(clamav.ExportProblem, match="empty"):
        clamav.export_files({"cleancenter.ndb": b""}, db)
    with pytest.raises(clamav.ExportProblem, match="line 2"):
        clamav.export_files({"cleancenter.hsb": b"# h\n" + b"ab" * 32 + b":0:Name\n"}, db)
    with pytest.raises(clamav.ExportProblem, match="line 1"):
        clamav.export_files({"cleancenter.ndb": b"Bad:Name:0:*:6161616161616161\n"}, db)
    assert not db.exists()
