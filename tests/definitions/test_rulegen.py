"""Rule generation against a goodware index: strings every member carries and no benign
file does, verified with yara-x before release.

Goodware is real: programs from /usr/bin (and busybox from the material cache when it is
already there). Family members are harmless synthetic files: a benign program with a
block of marker strings appended. Nothing is ever executed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yara_x
from typer.testing import CliRunner

from cleancenter.analyze.cli import run_analysis
from cleancenter.analyze.service import set_label
from cleancenter.analyze.strings import scan_strings
from cleancenter.analyze.yara_rules import add_pack
from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.definitions import clamav
from cleancenter.definitions.build import build_release
from cleancenter.definitions.bundle import read_bundle
from cleancenter.definitions.goodware import (
    GoodwareIndex,
    build_index,
    index_path,
    load_index,
    string_hash,
)
from cleancenter.definitions.keys import PublicKey, init_keys
from cleancenter.definitions.rulegen import (
    MIN_RULE_LEN,
    generate_rules,
    identifiers,
    looks_generic,
    threshold,
    yara_literal,
)
from cleancenter.store.catalog import NewSample, utcnow
from tests.material import material_dir

BASES = ("true", "false", "ls", "cp", "sed", "grep", "tar", "gzip")
CLAMSCAN = shutil.which("clamscan") or "/usr/bin/clamscan"


def goodware_files() -> list[Path]:
    """Benign programs to index; busybox only when the material cache already has it."""
    found = [Path("/usr/bin") / name for name in BASES]
    missing = [p for p in found if not p.is_file()]
    if missing:
        pytest.skip(f"benign programs missing: {missing}")
    busybox = material_dir() / "busybox" / "amd64" / "busybox"
    if (material_dir() / "busybox" / ".complete").is_file() and busybox.is_file():
        found.append(busybox)
    return found


@pytest.fixture(scope="module")
def goodware(tmp_path_factory: pytest.TempPathFactory) -> GoodwareIndex:
    index = build_index(goodware_files(), workers=1)
    path = tmp_path_factory.mktemp("goodware") / "index.npz"
    index.save(path)
    return GoodwareIndex.load(path)


def benign_strings(path: Path, count: int, *, min_len: int = 12) -> list[str]:
    """Distinctive-looking ASCII strings of a benign program (they are in the index)."""
    table = scan_strings(path.read_bytes(), min_len)
    texts = [t for i, t in enumerate(table.texts)
             if i < table.ascii_count and not looks_generic(t) and '"' not in t]
    return sorted(set(texts))[:count]


def member(base: str, markers: Sequence[str], *, wide: Sequence[str] = (), seed: int) -> bytes:
    """A benign program with a block of strings appended (and per-member noise)."""
    rng = random.Random(seed)
    block = b"\x00".join(m.encode() for m in markers)
    block += b"\x00\x00" + b"\x00\x00".join(w.encode("utf-16-le") for w in wide)
    unique = f"member-{seed}-{rng.getrandbits(64):016x}-only".encode()
    noise = bytes(rng.getrandbits(8) & 0x7F | 0x80 for _ in range(512))  # never printable
    return (Path("/usr/bin") / base).read_bytes() + noise + b"\x00" + block + b"\x00" + \
        unique + b"\x00" + noise


MARKERS_A = ["zq-botnet.cc.invalid/gate.php?id=", "ZQBOT_MUTEX_7f3a9c21",
             "PRIVMSG #zqchan :ready", "zqbot v3.1 (c) nobody", "kill -9 zqwatchdog"]
WIDE_A = ["Software\\ZqBot\\Run"]
MARKERS_C = ["CoveredFamilyMarker-42", "covered.example.invalid/x"]


def add(center: Center, data: bytes, *, verdict: str | None = None,
        family: str | None = None) -> str:
    digests = center.blobs.put_bytes(data)
    with center.catalog.transaction() as conn:
        center.catalog.add_samples(conn, [NewSample(
            digests.sha256, digests.md5, digests.sha1, digests.size, "elf", utcnow())])
    if verdict or family:
        set_label(center.catalog, digests.sha256, verdict=verdict, family=family, note=None,
                  author="test")
    return digests.sha256


def family_a(center: Center, goodware_strings: list[str], fragments: list[str]) -> list[str]:
    """Members share markers, some goodware strings, pieces of longer goodware strings
    (they rank high, so the first rule holds them and must be rebuilt without them) and
    generic filler."""
    shared = [*MARKERS_A, *goodware_strings, *fragments, "AAAAAAAAAAAAAAAA",
              "----------------", "20240101123000"]
    return [add(center, member(base, shared, wide=WIDE_A, seed=i), verdict="malicious",
                family="Zqbot") for i, base in enumerate(("true", "false", "ls"))]


def family_b(center: Center, goodware_strings: list[str]) -> list[str]:
    """Members share only strings that benign programs carry."""
    return [add(center, member(base, goodware_strings, seed=10 + i), verdict="malicious",
                family="Benignlike") for i, base in enumerate(("cp", "sed"))]


def family_d(center: Center, fragments: list[str]) -> list[str]:
    """Members share only pieces of longer benign strings: not in the index as whole
    strings, but inside benign files (only the yara-x probe can see that)."""
    rng = random.Random(99)
    samples = []
    for i in range(2):
        noise = bytes(rng.getrandbits(8) | 0x80 for _ in range(256))
        body = noise + b"\x00" + b"\x00".join(f.encode() for f in fragments) + b"\x00" + \
            f"fragment-member-{i}-{rng.getrandbits(32):08x}".encode() + b"\x00" + noise
        samples.append(add(center, body, verdict="malicious", family="Fragmentary"))
    return samples


def fragments_of(goodware: GoodwareIndex, path: Path) -> list[str]:
    """Pieces (20 characters) of long strings of a benign program, none a whole string."""
    table = scan_strings(path.read_bytes(), 40)
    found = []
    for text in table.texts[:table.ascii_count]:
        piece = text[7:27]
        if not looks_generic(piece) and not goodware.contains(piece.encode()):
            found.append(piece)
    assert len(found) >= 3, "no long strings in the benign program"
    return found[:3]


# -- the goodware index ------------------------------------------------------------------


def test_index_lookup_and_round_trip(goodware: GoodwareIndex, tmp_path: Path) -> None:
    true_strings = benign_strings(Path("/usr/bin/true"), 5)
    assert true_strings and all(goodware.contains(s.encode()) for s in true_strings)
    assert not goodware.contains(b"zq-botnet.cc.invalid/gate.php?id=")
    assert list(goodware.contains_many([true_strings[0].encode(), b"nope-not-there-123"])) \
        == [True, False]
    assert (goodware.hashes[1:] > goodware.hashes[:-1]).all()  # sorted, unique
    assert string_hash(b"abc") == string_hash(b"abc") != string_hash(b"abd")
    # UTF-16LE strings are indexed by their text, like ASCII ones
    wide = tmp_path / "wide.bin"
    wide.write_bytes(b"\x01" + "WideOnlyString-77".encode("utf-16-le") + b"\x01")
    assert build_index([wide], workers=1).contains(b"WideOnlyString-77")
    assert {f.path for f in goodware.files} >= {"/usr/bin/true", "/usr/bin/ls"}
    assert goodware.total_bytes == sum(p.stat().st_size for p in goodware_files())


def test_index_build_records_bad_paths_and_still_builds(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy("/usr/bin/true", folder / "true")
    (folder / "dangling").symlink_to(tmp_path / "gone")
    (folder / "link-to-true").symlink_to(folder / "true")
    os.mkfifo(folder / "fifo")  # must be skipped, not read (a read would block)
    (folder / "big.bin").write_bytes(b"x" * (2 << 20))
    locked = folder / "locked"
    locked.write_bytes(b"LockedSecretString-123\n")
    locked.chmod(0)
    vanished = tmp_path / "vanished"
    try:
        index = build_index([folder, vanished], max_size=1 << 20, workers=1)
    finally:
        locked.chmod(0o600)
    errors = {e.path: e.message for e in index.errors}
    assert str(vanished) in errors and "No such file" in errors[str(vanished)]
    assert index.skipped["symlink"] == 2 and index.skipped["not_regular"] == 1
    assert index.skipped["too_large"] == 1
    indexed = {Path(f.path).name for f in index.files}
    assert "true" in indexed
    if os.geteuid() != 0:  # root reads mode-0 files anyway
        assert str(locked) in errors and "locked" not in indexed
    assert index.contains(benign_strings(Path("/usr/bin/true"), 1)[0].encode())

    runner = CliRunner()
    data = tmp_path / "data"
    result = runner.invoke(app, ["--data-dir", str(data), "definitions", "goodware", "build",
                                 str(folder / "true"), str(vanished), "--json"])
    assert result.exit_code == 1, result.output  # built, but some paths were bad
    summary = json.loads(result.stdout)
    assert summary["files"] == 1 and summary["errors"] == 1
    assert summary["error_list"][0]["path"] == str(vanished)
    loaded = load_index(data)
    assert loaded is not None and len(loaded.files) == 1 and len(loaded.hashes) > 10
    shown = runner.invoke(app, ["--data-dir", str(data), "definitions", "goodware", "show",
                                "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["strings"] == len(loaded.hashes)

    # a damaged index is refused with the reason, by `show` and by `definitions build`
    index_path(data).write_bytes(b"PK\x03\x04 not really a zip")
    init_keys(data / "keys")
    for args in (["definitions", "goodware", "show"], ["definitions", "build"]):
        result = runner.invoke(app, ["--data-dir", str(data), *args])
        assert result.exit_code == 2 and "not a readable goodware index" in result.output


def test_index_built_by_worker_processes_is_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):  # more files than one task takes: the pool is used
        (folder / f"f{i}.txt").write_bytes(f"unique-string-number-{i:03d}\n".encode() +
                                           "WideText-{i}".encode("utf-16-le"))
    alone = build_index([folder], workers=1)
    pooled = build_index([folder], workers=2)
    assert len(alone.files) == len(pooled.files) == 40
    assert alone.hashes.tolist() == pooled.hashes.tolist()
    assert pooled.contains(b"unique-string-number-039") and pooled.contains(b"WideText-{i}")
    assert not pooled.contains(b"unique-string-number-040")


# -- rules ---------------------------------------------------------------------------


def test_helpers_escape_and_name_safely() -> None:
    assert yara_literal('a"b\\c\té') == '"a\\"b\\\\c\\x09\\xc3\\xa9"'
    names = identifiers(["Foo-Bar", "Foo_Bar", "Mirai v2: arm", "日本"])
    assert names["Mirai v2: arm"] == "Mirai_v2_arm" and names["日本"] == "unnamed"
    assert len({n.lower() for n in names.values()}) == 4
    assert [threshold(n) for n in (1, 2, 3, 4, 8)] == [1, 2, 3, 3, 6]
    assert looks_generic("AAAAAAAAAAAA") and looks_generic("-=-=-=-=-=") and \
        looks_generic("20240101123000") and not looks_generic("ZQBOT_MUTEX_7f3a9c21")


@pytest.fixture
def families(center: Center, goodware: GoodwareIndex, tmp_path: Path
             ) -> Iterator[dict[str, list[str]]]:
    """Four families (Zqbot: generate; Benignlike: only goodware strings; Fragmentary:
    only pieces of goodware strings; Covered: a registered pack matches it), benign
    samples, and a malicious sample without a family."""
    shared = benign_strings(Path("/usr/bin/ls"), 3)
    fragments = fragments_of(goodware, Path("/usr/bin/tar"))
    fams = {
        "Zqbot": family_a(center, shared, fragments),
        "Benignlike": family_b(center, benign_strings(Path("/usr/bin/grep"), 4)),
        "Fragmentary": family_d(center, fragments),
    }
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "covered.yar").write_text(
        'rule covered_marker { strings: $a = "CoveredFamilyMarker-42" condition: $a }\n')
    add_pack(center.settings.data_dir / "rules", "testpack", pack)
    covered = [add(center, member(base, MARKERS_C, seed=20 + i), verdict="malicious",
                   family="Covered") for i, base in enumerate(("gzip", "tar"))]
    summary = run_analysis(center, covered, workers=1)
    assert summary.analyzed == 2, summary
    fams["Covered"] = covered
    add(center, (Path("/usr/bin/cp")).read_bytes(), verdict="clean")
    add(center, b"unlabelled sample " * 10)
    add(center, b"malicious without family " * 10, verdict="malicious")
    yield fams


def test_generated_rule_matches_members_and_no_goodware(
        center: Center, goodware: GoodwareIndex, families: dict[str, list[str]]) -> None:
    packs = ["testpack"]
    gen = generate_rules(center.catalog, center.blobs, goodware, packs)
    cov = gen.coverage
    assert cov.families == 4 and cov.without_family == 1
    assert cov.by_packs == ["Covered"]  # not generated: a pack covers it
    assert cov.generated == ["Zqbot"]
    refused = {r.family: r for r in cov.refused}
    assert set(refused) == {"Benignlike", "Fragmentary"}
    assert refused["Benignlike"].code == "in_goodware"
    assert "occur in the goodware index" in refused["Benignlike"].reason
    # pieces of benign strings pass the index but the yara-x probe finds them in tar
    assert refused["Fragmentary"].code == "in_goodware"
    assert any(f"in {f.path})" in refused["Fragmentary"].reason for f in goodware.files)
    assert cov.uncovered == ["Benignlike", "Fragmentary"]
    # pass 1 probed the strings, the Zqbot rule lost its benign pieces: pass 2 verified it
    assert gen.goodware_files == len(goodware.files) and gen.goodware_passes == 2

    (rule,) = gen.rules
    assert rule.name == "cleancenter_gen_Zqbot" and rule.file_name == "Zqbot.yar"
    texts = [s.text for s in rule.strings]
    assert set(texts) == {*MARKERS_A, *WIDE_A}
    assert not any(goodware.contains(t.encode()) for t in texts)
    assert all(len(t) >= MIN_RULE_LEN for t in texts)
    assert rule.threshold == 5 and "5 of them" in rule.source
    assert 'author = "cleancenter rulegen"' in rule.source
    assert 'family = "Zqbot"' in rule.source and "members = 3" in rule.source
    wide = next(s for s in rule.strings if s.text == WIDE_A[0])
    assert wide.modifiers == "wide"

    scanner = yara_x.Scanner(yara_x.compile(rule.source))
    for sha256 in families["Zqbot"]:
        assert scanner.scan(center.blobs.read(sha256)).matching_rules
    for entry in goodware.files:
        assert not scanner.scan(Path(entry.path).read_bytes()).matching_rules, entry.path
    for sha256 in families["Benignlike"] + families["Covered"]:
        assert not scanner.scan(center.blobs.read(sha256)).matching_rules
    # a new variant on another benign program is still found
    assert scanner.scan(member("gzip", [*MARKERS_A, "other"], wide=WIDE_A, seed=77)) \
        .matching_rules
    # byte patterns for ClamAV: stored the same way in every member, 8+ bytes
    assert 1 <= len(rule.patterns) <= 2
    for pattern in rule.patterns:
        assert len(pattern) >= 8
        assert all(pattern in center.blobs.read(s) for s in families["Zqbot"])


def test_build_bundles_generated_rules_and_reports_coverage(
        center: Center, goodware: GoodwareIndex, families: dict[str, list[str]],
        tmp_path: Path) -> None:
    data = center.settings.data_dir
    public = init_keys(data / "keys")
    goodware.save(index_path(data))
    runner = CliRunner()
    base = ["--data-dir", str(data), "--database-url", center.settings.database_url]
    result = runner.invoke(app, [*base, "definitions", "build", "--json"])
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert built["counts"]["generated_rules"] == 1
    assert built["counts"]["clamav_patterns"] >= 1
    assert built["counts"]["clamav_hashes"] == 10  # every malicious sample
    cov = built["coverage"]
    assert (cov["families"], cov["by_packs"], cov["generated"], cov["refused"],
            cov["uncovered"]) == (4, 1, 1, 2, 2)
    assert {r["family"]: r["code"] for r in cov["refused_families"]} == {
        "Benignlike": "in_goodware", "Fragmentary": "in_goodware"}
    bundle = read_bundle(Path(built["path"]), public)
    source = bundle.files["rules/generated/Zqbot.yar"].decode()
    assert "rule cleancenter_gen_Zqbot" in source
    assert bundle.manifest["counts"]["generated_rules"] == 1
    assert bundle.manifest["coverage"]["generated"] == 1
    assert any(name.startswith("rules/testpack/") for name in bundle.files)
    ndb = bundle.files[clamav.BUNDLE_NDB].decode()
    assert "Cleancenter.Zqbot.Gen-1:0:*:" in ndb

    # the .ndb pattern finds a new variant with ClamAV, and no benign program
    if not Path(CLAMSCAN).exists():
        pytest.skip("clamscan not installed (Debian clamav)")
    out = tmp_path / "clamav"
    code = runner.invoke(app, [*base, "definitions", "export-clamav", built["path"], "--out",
                               str(out)]).exit_code
    assert code == 0
    (out / "cleancenter.hsb").unlink()  # only the byte patterns now
    scan = tmp_path / "scan"
    scan.mkdir()
    (scan / "variant").write_bytes(member("gzip", MARKERS_A, wide=WIDE_A, seed=5))
    shutil.copy("/usr/bin/tar", scan / "tar")
    proc = subprocess.run([CLAMSCAN, "--no-summary", "-d", str(out), str(scan)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    found = [line for line in proc.stdout.splitlines() if line.endswith(" FOUND")]
    assert len(found) == 1 and found[0].startswith(f"{scan / 'variant'}: Cleancenter.Zqbot.Gen-")

    again = runner.invoke(app, [*base, "definitions", "build", "--no-generate", "--json"])
    plain = json.loads(again.stdout)
    assert plain["counts"]["generated_rules"] == 0
    assert plain["coverage"]["generation"].startswith("not asked")
    assert plain["coverage"]["uncovered"] == 3  # everything not covered by the pack


def test_without_goodware_index_nothing_is_generated(center: Center) -> None:
    init_keys(center.settings.data_dir / "keys")
    sha = add(center, member("true", MARKERS_A, seed=1), verdict="malicious", family="Zqbot")
    built = build_release(center.catalog, keys_dir=center.settings.data_dir / "keys",
                          rules_registry=center.settings.data_dir / "rules", out=None,
                          releases_dir=center.settings.data_dir / "releases",
                          blobs=center.blobs, goodware=None)
    assert built.counts["generated_rules"] == 0 and built.coverage is not None
    assert built.coverage.uncovered == ["Zqbot"]
    assert "no goodware index" in built.coverage.generation
    bundle = read_bundle(built.path, PublicKey.parse(
        (center.settings.data_dir / "keys" / "definitions.pub").read_text()))
    assert sha in bundle.files[clamav.BUNDLE_HSB].decode()
    assert not any(n.startswith("rules/generated/") for n in bundle.files)


def test_odd_family_names_and_missing_blobs(center: Center, goodware: GoodwareIndex) -> None:
    odd = "Zq bot: v2/é"
    for i, base in enumerate(("true", "ls")):
        add(center, member(base, MARKERS_A, seed=30 + i), verdict="malicious", family=odd)
    gone = [add(center, member(base, ["GoneFamilyMarker-001", "gone.example.invalid/p"],
                               seed=40 + i), verdict="malicious", family="Gone")
            for i, base in enumerate(("true", "ls"))]
    center.blobs.path_for(gone[1]).unlink()
    gen = generate_rules(center.catalog, center.blobs, goodware, [])
    (rule,) = gen.rules
    assert rule.family == odd and rule.name == "cleancenter_gen_Zq_bot_v2"
    assert rule.file_name == "Zq_bot_v2.yar"
    compiled = yara_x.compile(rule.source)  # the hostile name is escaped, not injected
    (hit,) = yara_x.Scanner(compiled).scan(center.blobs.read(gen.rules[0].members[0])) \
        .matching_rules
    assert dict(hit.metadata)["family"] == odd.encode()
    (refusal,) = gen.coverage.refused
    assert (refusal.family, refusal.code) == ("Gone", "unreadable_member")
    assert gone[1] in refusal.reason


def test_no_release_when_the_goodware_is_gone(center: Center, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("true", "ls"):
        shutil.copy(Path("/usr/bin") / name, corpus / name)
    index = build_index([corpus], workers=1)
    shutil.rmtree(corpus)  # the rule could not be shown to spare these files
    for i, base in enumerate(("true", "ls")):
        add(center, member(base, MARKERS_A, seed=50 + i), verdict="malicious", family="Zqbot")
    gen = generate_rules(center.catalog, center.blobs, index, [])
    assert gen.rules == [] and gen.goodware_missing == 2
    (refusal,) = gen.coverage.refused
    assert refusal.code == "goodware_unscannable" and "none of the 2 files" in refusal.reason
