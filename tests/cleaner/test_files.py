"""The file check: hash, YARA and file-name IOCs over real trees, with its cache."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from cleancenter.cleaner.definitions import Definitions, load_definitions
from cleancenter.cleaner.files import FileScanner, FileScanOptions
from cleancenter.cleaner.rules import compile_definitions
from cleancenter.cleaner.scancache import ScanCache
from tests.cleaner.bundles import make_bundle, new_key

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
RULE = """
rule Test_Bot_Marker : bot {
  meta:
    author = "cleancenter tests"
    reference = "https://example.invalid/bot"
  strings:
    $a = "JOIN #cleancenter-test-channel"
  condition:
    $a
}
"""
SUSP_RULE = """
rule SUSP_Marker_Trait {
  meta:
    author = "tests"
    score = 40
  strings:
    $a = "trait-only-marker"
  condition:
    $a
}
"""
BROKEN_RULE = "rule broken { condition: nosuchmodule.x }"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "eicar.com").write_bytes(EICAR)
    (root / "sub" / "bot.bin").write_bytes(b"\x00junk JOIN #cleancenter-test-channel junk")
    (root / "sub" / "trait.bin").write_bytes(b"xx trait-only-marker xx")
    (root / "sub" / "deeper" / "mssecsvc.exe").write_bytes(b"harmless, but a bot's name")
    (root / "clean.txt").write_text("nothing to see")
    shutil.copy("/bin/true", root / "sub" / "true")
    os.symlink("/etc/passwd", root / "link-to-passwd")
    (root / "big.bin").write_bytes(b"\0" * 300_000)
    return root


def _defs(tmp_path: Path, version: int = 1) -> Definitions:
    key, pub = new_key()
    path = make_bundle(
        tmp_path / f"defs-{version}.ccdef", key, version=version,
        hashes={hashlib.sha256(EICAR).hexdigest(): "EICAR-Test"},
        iocs={"filenames": ["mssecsvc.exe"]},
        rules={"tests/bot.yar": RULE, "tests/trait.yar": SUSP_RULE,
               "tests/broken.yar": BROKEN_RULE})
    return load_definitions(path, pub)


def _scan(defs: Definitions, tmp_path: Path, tree: Path, cache: ScanCache | None = None,
          **options: object) -> tuple[FileScanner, dict[str, object]]:
    rules = compile_definitions(defs, tmp_path / "rules-cache")
    with FileScanner(defs, rules, FileScanOptions([tree], **options),  # type: ignore[arg-type]
                     cache=cache) as scanner:
        findings = scanner.scan(scanner.collect())
    return scanner, {Path(f.where).name: f for f in findings}


def test_hash_rule_and_name_findings(tmp_path: Path, tree: Path) -> None:
    defs = _defs(tmp_path)
    rules = compile_definitions(defs, tmp_path / "rules-cache")
    assert list(rules.broken) == ["tests/broken.yar"]  # named, and the rest still loads
    scanner, found = _scan(defs, tmp_path, tree, workers=2)
    assert set(found) == {"eicar.com", "bot.bin", "trait.bin", "mssecsvc.exe"}
    eicar = found["eicar.com"]
    assert (eicar.severity, eicar.kind) == ("malicious", "hash-match")
    assert eicar.evidence[0].detail == "EICAR-Test"
    bot = found["bot.bin"]
    assert (bot.severity, bot.kind) == ("malicious", "yara-match")
    rule = bot.evidence[0]
    assert (rule.value, rule.author, rule.reference) == (
        "Test_Bot_Marker", "cleancenter tests", "https://example.invalid/bot")
    assert rule.source.endswith("tests/bot.yar")
    assert found["trait.bin"].severity == "suspicious"  # a SUSP_ rule alone never acts
    assert (found["mssecsvc.exe"].severity, found["mssecsvc.exe"].kind) == (
        "suspicious", "ioc-filename")
    assert scanner.stats.files == 7  # the symlink is not followed
    assert scanner.stats.errors == []


def test_excludes_size_limit_and_unreadable(tmp_path: Path, tree: Path) -> None:
    defs = _defs(tmp_path)
    locked = tree / "sub" / "locked.bin"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    scanner, found = _scan(defs, tmp_path, tree, excludes=["*/deeper/*"], max_size=100_000,
                           workers=1)
    assert "mssecsvc.exe" not in found
    assert scanner.stats.skipped_large == 1
    if os.geteuid() != 0:  # root reads mode-0 files
        assert [e["path"] for e in scanner.stats.errors] == [str(locked)]
    assert "eicar.com" in found


def test_cache_makes_a_rescan_read_nothing_and_sees_changes(tmp_path: Path, tree: Path) -> None:
    defs = _defs(tmp_path)
    cache = ScanCache(tmp_path / "cache.sqlite", defs.bundle_sha256)
    first, found = _scan(defs, tmp_path, tree, cache=cache, workers=2)
    assert first.stats.from_cache == 0 and len(found) == 4
    second, again = _scan(defs, tmp_path, tree, cache=cache, workers=2)
    assert second.stats.from_cache == second.stats.files == first.stats.files
    assert set(again) == set(found)  # cached files still give their findings
    (tree / "clean.txt").write_bytes(b"now JOIN #cleancenter-test-channel")
    third, changed = _scan(defs, tmp_path, tree, cache=cache, workers=1)
    assert third.stats.from_cache == first.stats.files - 1
    assert changed["clean.txt"].kind == "yara-match"
    cache.close()
    newer = _defs(tmp_path, version=2)  # new definitions: everything is scanned again
    cache2 = ScanCache(tmp_path / "cache.sqlite", newer.bundle_sha256)
    fourth, _ = _scan(newer, tmp_path, tree, cache=cache2)
    assert fourth.stats.from_cache == 0
    cache2.close()


def test_missing_root_is_an_error_not_a_crash(tmp_path: Path) -> None:
    defs = _defs(tmp_path)
    scanner, found = _scan(defs, tmp_path, tmp_path / "nope")
    assert found == {} and "cannot read root" in scanner.stats.errors[0]["error"]
