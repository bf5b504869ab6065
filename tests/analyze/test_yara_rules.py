"""YARA packs: the community packs load, broken files are skipped, the cache is used,
externals and metadata reach the matches.

The three corpus packs are compiled once per session into a shared cache folder (the
slow part: seconds per pack); everything else uses tiny rule folders of our own.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleancenter.analyze import yara_rules as yr
from cleancenter.analyze.report import YaraMatch
from cleancenter.demo import elf_programs, windows_launchers

# Built at run time so no file of the repository holds the EICAR string.
EICAR = ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*").encode()

COMMUNITY = ("reversinglabs", "elastic", "signature-base")
# name -> (files, lowest and highest rule count accepted): the corpus README's figures.
EXPECTED = {
    "reversinglabs": (range(274, 275), range(1100, 1350)),
    "elastic": (range(1000, 1100), range(2800, 3300)),
    "signature-base": (range(650, 850), range(5500, 6400)),
}


class Loaded:
    """The session's community packs, compiled (cold) into ``cache_dir``."""

    def __init__(self, cache_dir: Path, packs: dict[str, yr.RulePack]) -> None:
        self.cache_dir = cache_dir
        self.packs = packs


@pytest.fixture(scope="session")
def community(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    cache_dir = tmp_path_factory.mktemp("rules-cache")
    packs = {name: yr.load_pack(name, corpus / "yara" / name, cache_dir) for name in COMMUNITY}
    return Loaded(cache_dir, packs)


@pytest.fixture(scope="session")
def community_set(community: Loaded) -> yr.RuleSet:
    return yr.RuleSet(community.packs.values())


def write_pack(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def names(matches: list[YaraMatch]) -> set[str]:
    return {m.rule for m in matches}


# -- the community packs -------------------------------------------------------------


@pytest.mark.parametrize("name", COMMUNITY)
def test_community_pack_loads(community: Loaded, name: str) -> None:
    pack = community.packs[name]
    files, rules = EXPECTED[name]
    assert pack.file_count in files
    assert pack.rule_count in rules
    assert not pack.from_cache
    assert pack.cache_file is not None and pack.cache_file.is_file()
    assert pack.cache_error is None
    assert len(pack.broken) <= 3, pack.broken
    for broken in pack.broken:
        assert broken.file and broken.message.strip()


def test_second_load_uses_the_cache(community: Loaded, corpus: Path) -> None:
    before = yr.compile_count()
    for name in COMMUNITY:
        cold = community.packs[name]
        warm = yr.load_pack(name, corpus / "yara" / name, community.cache_dir)
        assert warm.from_cache
        assert warm.cache_file == cold.cache_file
        assert (warm.rule_count, warm.file_count, warm.broken, warm.warnings) == (
            cold.rule_count, cold.file_count, cold.broken, cold.warnings)
    assert yr.compile_count() == before


def test_worker_rebuilds_from_refs_without_compiling(community: Loaded) -> None:
    parent = yr.RuleSet([community.packs["elastic"]])  # one pack: deserializing takes time
    refs = pickle.loads(pickle.dumps(parent.refs()))
    before = yr.compile_count()
    worker = yr.RuleSet.from_refs(refs)
    assert yr.compile_count() == before
    [pack] = worker.packs
    assert pack.from_cache and pack.rule_count == community.packs["elastic"].rule_count
    assert names(worker.scan(EICAR)) == names(parent.scan(EICAR)) == {"Multi_EICAR_ac8f42d6"}


def benign_files() -> Iterator[Path]:
    yield Path("/usr/bin/ls")
    yield from windows_launchers()
    yield from elf_programs()


def test_benign_programs_do_not_match(community: Loaded) -> None:
    files = sorted({p for p in benign_files() if p.is_file()})
    assert len(files) >= 2
    ruleset = yr.RuleSet(community.packs.values())
    # signature-base flags UPX-packed ELF files (a fair "suspicious", not a false alarm)
    allowed = {"SUSP_ELF_LNX_UPX_Compressed_File"}
    hits = {str(path): [(m.pack, m.rule) for m in found if m.rule not in allowed]
            for path, found in yr.test_pack(ruleset, files)}
    assert {path: found for path, found in hits.items() if found} == {}


def test_eicar_matches_real_rules_with_their_metadata(community_set: yr.RuleSet) -> None:
    found = {m.rule: m for m in community_set.scan(EICAR, filename="eicar.com")}
    elastic = found["Multi_EICAR_ac8f42d6"]
    assert elastic.pack == "elastic"
    assert elastic.namespace == "yara/rules/Multi_EICAR.yar"
    assert elastic.meta["author"] == "Elastic Security"
    assert elastic.meta["threat_name"] == "Multi.EICAR.Not-a-virus"
    assert elastic.meta["severity"] == 1
    assert elastic.offsets == [0]
    roth = found["SUSP_Just_EICAR"]
    assert roth.pack == "signature-base"
    assert roth.meta["author"].startswith("Florian Roth")
    assert roth.meta["reference"].startswith("http")
    assert "EICAR" in roth.meta["description"]
    assert set(found) == {"Multi_EICAR_ac8f42d6", "SUSP_Just_EICAR"}


def test_signature_base_externals_are_set_per_scan(community: Loaded) -> None:
    """VULN_Linux_NFS_Exports needs ``filename == "exports"`` and ``filepath`` under
    /etc: a harmless config line, matched only when the sample's names are passed."""
    ruleset = yr.RuleSet([community.packs["signature-base"]])
    config = b"# shares\n/srv/share *(rw,insecure,no_root_squash)\n"
    assert "VULN_Linux_NFS_Exports" not in names(ruleset.scan(config))
    hit = names(ruleset.scan(config, filepath="/etc/exports"))
    assert "VULN_Linux_NFS_Exports" in hit
    # the next scan sets the externals again: nothing lingers from the previous sample
    assert "VULN_Linux_NFS_Exports" not in names(ruleset.scan(config, filename="notes.txt"))


# -- our own small packs -------------------------------------------------------------

EXTERNALS_RULES = """
rule ByName { condition: filename == "evil.sh" }
rule ByExtension { condition: extension == ".sh" }
rule ByPath { condition: filepath contains "/tmp/.x/" }
rule ByType { condition: filetype == "ELF" }
rule ByOwner { condition: owner == "www-data" }
"""


def test_externals(tmp_path: Path) -> None:
    pack = yr.load_pack("ext", write_pack(tmp_path / "ext", {"ext.yar": EXTERNALS_RULES}))
    ruleset = yr.RuleSet([pack])
    assert ruleset.scan(b"#!/bin/sh\n") == []
    assert names(ruleset.scan(b"x", filename="evil.sh")) == {"ByName", "ByExtension"}
    assert names(ruleset.scan(b"x", filename="EVIL.SH")) == {"ByExtension"}
    assert names(ruleset.scan(b"x", filepath="/tmp/.x/evil.sh")) == {
        "ByName", "ByExtension", "ByPath"}
    assert names(ruleset.scan(b"x", filetype="ELF", owner="www-data")) == {"ByType", "ByOwner"}
    assert ruleset.scan(b"x") == []


def test_scan_externals_normalises_names() -> None:
    assert yr.scan_externals(filepath="C:\\Users\\x\\Run.EXE") == {
        "filename": "Run.EXE", "filepath": "C:\\Users\\x\\Run.EXE", "extension": ".exe",
        "filetype": "", "owner": ""}
    assert yr.scan_externals(filename=".mysql_history")["extension"] == ""
    assert yr.scan_externals(filename="a\udcffb")["filename"] == "a?b"
    assert yr.thor_filetype("pe", "dll") == "EXE"
    assert yr.thor_filetype("script", "ps1") == "PowerShell"
    assert yr.thor_filetype("data") == ""


def test_broken_files_are_reported_and_skipped(tmp_path: Path) -> None:
    folder = write_pack(tmp_path / "mixed", {
        "good.yar": 'rule Good { strings: $a = "hello" condition: $a }',
        "sub/also_good.yara": 'rule AlsoGood { strings: $a = "world" condition: $a }',
        "syntax.yar": 'rule InSyntaxFile { strings: $a = "hello" condition: $a }\n'
                      "rule Cut { condition: ",
        "unknown.yar": 'rule InUnknownFile { strings: $a = "hello" condition: $a }\n'
                       "rule Unknown { condition: no_such_thing }",
        "notes.txt": "not a rule file",
        ".github/hidden.yar": "rule Hidden { condition: true }",
    })
    (folder / "latin1.yar").write_bytes(b'rule Latin { meta: a = "caf\xe9" condition: true }')
    pack = yr.load_pack("mixed", folder)
    assert pack.file_count == 5
    assert {b.file for b in pack.broken} == {"syntax.yar", "unknown.yar", "latin1.yar"}
    by_file = {b.file: b.message for b in pack.broken}
    assert "syntax error" in by_file["syntax.yar"]
    assert "no_such_thing" in by_file["unknown.yar"]
    assert "UTF-8" in by_file["latin1.yar"]
    # whole files are left out, their valid rules too
    assert pack.rule_count == 2
    found = yr.RuleSet([pack]).scan(b"hello world")
    assert {(m.rule, m.namespace) for m in found} == {
        ("Good", "good.yar"), ("AlsoGood", "sub/also_good.yara")}


def test_same_rule_name_in_two_files(tmp_path: Path) -> None:
    rule = 'rule Same { strings: $a = "abc" condition: $a }'
    pack = yr.load_pack("dup", write_pack(tmp_path / "dup", {"a.yar": rule, "b.yar": rule}))
    assert pack.broken == []
    assert sorted(m.namespace or "" for m in yr.RuleSet([pack]).scan(b"abc")) == [
        "a.yar", "b.yar"]


META_RULE = """
rule Meta : tag_one tag_two {
    meta:
        author = "cleancenter tests"
        reference = "https://example.org/one"
        reference = "https://example.org/two"
        description = "a harmless marker"
        score = 70
        shared = true
        raw = "caf\\xe9"
    strings:
        $a = "MARKER"
        $b = "OTHER"
    condition:
        $a or $b
}
"""


def test_metadata_tags_offsets_kept(tmp_path: Path) -> None:
    pack = yr.load_pack("meta", write_pack(tmp_path / "meta", {"m.yar": META_RULE}))
    assert pack.broken == []
    [match] = yr.RuleSet([pack], max_offsets=3).scan(b"..MARKER..MARKER..OTHER" + b"MARKER" * 9)
    assert match.rule == "Meta" and match.pack == "meta" and match.namespace == "m.yar"
    assert match.tags == ["tag_one", "tag_two"]
    assert match.meta == {
        "author": "cleancenter tests",
        "reference": ["https://example.org/one", "https://example.org/two"],
        "description": "a harmless marker", "score": 70, "shared": True,
        "raw": "caf\\xe9",
    }
    assert match.offsets == [2, 10, 18]
    assert json.loads(match.model_dump_json())["meta"]["score"] == 70


def test_eicar_with_our_own_rule(tmp_path: Path) -> None:
    hexed = " ".join(f"{b:02X}" for b in EICAR)
    rule = ('rule Own_EICAR { meta: description = "EICAR test file" '
            f"strings: $e = {{ {hexed} }} condition: $e at 0 }}")
    pack = yr.load_pack("own", write_pack(tmp_path / "own", {"eicar.yar": rule}))
    ruleset = yr.RuleSet([pack])
    [match] = ruleset.scan(EICAR + b"\r\n")
    assert match.rule == "Own_EICAR" and match.offsets == [0]
    assert ruleset.scan(EICAR[:-1]) == []


def test_timeout_keeps_other_packs_matches(tmp_path: Path) -> None:
    slow = yr.load_pack("slow", write_pack(tmp_path / "slow", {"slow.yar": (
        "rule Slow { condition: for any i in (0..filesize) : "
        "( for any j in (0..filesize) : ( uint8(i) == uint8(j) + 256 ) ) }")}))
    quick = yr.load_pack("quick", write_pack(tmp_path / "quick", {
        "q.yar": "rule Quick { condition: filesize > 0 }"}))
    ruleset = yr.RuleSet([slow, quick], timeout=1, merge=False)
    started = time.perf_counter()
    with pytest.raises(yr.ScanIncomplete) as info:
        ruleset.scan(b"\0" * 100_000)
    assert time.perf_counter() - started < 10
    assert set(info.value.failures) == {"slow"}
    assert names(info.value.matches) == {"Quick"}
    assert names(ruleset.scan(b"x")) == {"Quick"}  # the scanner is still usable

    # merged: one scanner, one timeout for all packs; its failure names every pack
    merged = yr.RuleSet([slow, quick], timeout=1)
    started = time.perf_counter()
    with pytest.raises(yr.ScanIncomplete) as info:
        merged.scan(b"\0" * 100_000)
    assert time.perf_counter() - started < 10
    assert merged.merged_rules() is not None
    assert set(info.value.failures) == {"slow", "quick"}
    assert all("merged scan" in m for m in info.value.failures.values())
    assert info.value.matches == []
    assert names(merged.scan(b"x")) == {"Quick"}


_FORKED: yr.RuleSet | None = None


def _scan_in_child(data: bytes) -> str:
    assert _FORKED is not None
    try:
        return ",".join(sorted(names(_FORKED.scan(data))))
    except yr.TimeoutUnavailable as exc:
        return f"refused: {exc}"


def test_child_forked_after_a_scan_refuses_to_scan(tmp_path: Path) -> None:
    """A child forked after a scan has no yara-x heartbeat: its timeouts would never fire,
    so it must refuse rather than risk a hung worker."""
    global _FORKED
    pack = yr.load_pack("f", write_pack(tmp_path / "f", {"f.yar": "rule F {condition: true}"}))
    _FORKED = yr.RuleSet([pack])
    assert names(_FORKED.scan(b"x")) == {"F"}  # this process has scanned now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        answer = pool.apply(_scan_in_child, (b"x",))
    assert answer.startswith("refused:") and "spawn" in answer
    _FORKED = None


# -- cache ---------------------------------------------------------------------------


def test_cache_follows_file_changes_and_survives_corruption(tmp_path: Path) -> None:
    folder = write_pack(tmp_path / "p", {"r.yar": 'rule One { strings: $a = "1" condition: $a }'})
    cache = tmp_path / "cache"
    first = yr.load_pack("p", folder, cache)
    assert not first.from_cache and first.cache_file is not None
    assert yr.load_pack("p", folder, cache).from_cache

    (folder / "r.yar").write_text('rule Two { strings: $a = "2" condition: $a }')
    changed = yr.load_pack("p", folder, cache)
    assert not changed.from_cache and changed.cache_file is not None
    assert [f.name for f in cache.iterdir()] == [changed.cache_file.name]  # stale one gone
    assert names(yr.RuleSet([changed]).scan(b"2")) == {"Two"}

    changed.cache_file.write_bytes(changed.cache_file.read_bytes()[:100])  # truncated
    before = yr.compile_count()
    again = yr.load_pack("p", folder, cache)
    assert not again.from_cache and yr.compile_count() == before + 1
    assert yr.load_pack("p", folder, cache).from_cache


def test_load_pack_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(yr.RulesError, match="not a folder"):
        yr.load_pack("x", tmp_path / "missing")
    with pytest.raises(yr.RulesError, match=r"no \.yar"):
        yr.load_pack("x", write_pack(tmp_path / "empty", {"a.txt": ""}))
    with pytest.raises(yr.RulesError, match="invalid pack name"):
        yr.load_pack("../x", tmp_path)
    with pytest.raises(yr.RulesError, match="duplicate"):
        pack = yr.load_pack("x", write_pack(tmp_path / "ok", {"a.yar": "rule A {condition: true}"}))
        yr.RuleSet([pack, pack])


# -- registry and `rules test` -------------------------------------------------------


def test_registry_add_list_remove(tmp_path: Path) -> None:
    registry = tmp_path / "data"
    one = write_pack(tmp_path / "one", {"a.yar": 'rule A { strings: $a = "aa" condition: $a }'})
    two = write_pack(tmp_path / "two", {"b.yar": 'rule B { strings: $b = "bb" condition: $b }'})
    assert yr.list_packs(registry) == []
    entry = yr.add_pack(registry, "one", one)
    assert entry.folder == one.resolve()
    yr.add_pack(registry, "two", two)
    assert [e.name for e in yr.list_packs(registry)] == ["one", "two"]
    stored = json.loads((registry / "packs.json").read_text())
    assert stored["packs"]["one"]["folder"] == str(one.resolve())

    with pytest.raises(yr.RulesError, match="exists"):
        yr.add_pack(registry, "one", two)
    assert yr.add_pack(registry, "one", two, replace=True).folder == two.resolve()
    with pytest.raises(yr.RulesError, match=r"no \.yar"):
        yr.add_pack(registry, "three", write_pack(tmp_path / "three", {"x.txt": ""}))
    with pytest.raises(yr.RulesError, match="invalid pack name"):
        yr.add_pack(registry, "with space", one)

    ruleset = yr.load_registered(registry, tmp_path / "cache")
    assert [p.name for p in ruleset.packs] == ["one", "two"]
    assert {(m.pack, m.rule) for m in ruleset.scan(b"aa bb")} == {("one", "B"), ("two", "B")}

    assert yr.remove_pack(registry, "one").name == "one"
    assert [e.name for e in yr.list_packs(registry)] == ["two"]
    with pytest.raises(yr.RulesError, match="no rule pack"):
        yr.remove_pack(registry, "one")
    (registry / "packs.json").write_text("[]")
    with pytest.raises(yr.RulesError, match="not a rule pack registry"):
        yr.list_packs(registry)


def test_test_pack_scans_files_and_folders(tmp_path: Path) -> None:
    pack = yr.load_pack("t", write_pack(tmp_path / "rules", {
        "t.yar": 'rule Hit { strings: $a = "needle" condition: $a and filename == "b.bin" }'}))
    samples = tmp_path / "samples"
    (samples / "sub").mkdir(parents=True)
    (samples / "a.bin").write_bytes(b"needle")
    (samples / "sub" / "b.bin").write_bytes(b"hay needle")
    results = yr.test_pack(pack, [samples])
    assert [(p.name, names(m)) for p, m in results] == [("a.bin", set()), ("b.bin", {"Hit"})]


# -- merged scanning -----------------------------------------------------------------


def as_rows(matches: list[YaraMatch]) -> list[tuple[str, str, str, str, str]]:
    """Everything a match says, comparable (meta as JSON), sorted."""
    return sorted((m.pack, m.namespace or "", m.rule, json.dumps(m.meta, sort_keys=True),
                   json.dumps([m.tags, m.offsets])) for m in matches)


def own_packs(root: Path) -> list[Path]:
    """Two small packs that reuse rule names (in and across packs), plus externals,
    metadata, a broken file and a private rule."""
    hexed = " ".join(f"{b:02X}" for b in EICAR)
    eicar = ('rule Own_EICAR : test { meta: description = "EICAR test file" score = 50 '
             f"strings: $e = {{ {hexed} }} condition: $e at 0 }}")
    same = 'rule Same {{ meta: from = "{}" strings: $a = "abc" condition: $a }}'
    one = write_pack(root / "one", {
        "eicar.yar": eicar,
        "a.yar": same.format("one/a"),
        "sub/b.yar": same.format("one/b"),
        "ext.yar": EXTERNALS_RULES,
        "meta.yar": META_RULE,
        "broken.yar": 'rule InBroken { strings: $a = "abc" condition: $a }\nrule X { ',
    })
    two = write_pack(root / "two", {
        "eicar.yar": eicar.replace("score = 50", "score = 80"),
        "a.yar": same.format("two/a"),
        "priv.yar": 'private rule P { strings: $a = "abc" condition: $a }\n'
                    "rule UsesPrivate { condition: P and filename == \"evil.sh\" }",
    })
    return [one, two]


SAMPLES: list[tuple[bytes, dict[str, str]]] = [
    (EICAR, {"filename": "eicar.com"}),
    (EICAR + b"\r\nabc", {"filepath": "/tmp/.x/evil.sh", "filetype": "ELF"}),
    (b"abc MARKER OTHER", {"filename": "evil.sh", "owner": "www-data"}),
    (b"nothing here", {}),
]


def test_merged_scan_equals_per_pack_scans(tmp_path: Path) -> None:
    packs = [yr.load_pack(f.name, f, tmp_path / "cache") for f in own_packs(tmp_path)]
    assert [b.file for b in packs[0].broken] == ["broken.yar"]
    merged = yr.RuleSet(packs)
    per_pack = yr.RuleSet(packs, merge=False)
    assert merged.merged_rules() is not None and merged.merge_error is None
    assert per_pack.merged_rules() is None
    for data, externals in SAMPLES:
        found = merged.scan(data, **externals)
        assert as_rows(found) == as_rows(per_pack.scan(data, **externals))
        assert as_rows(found) == as_rows([m for p in packs
                                          for m in yr.RuleSet([p]).scan(data, **externals)])
    rows = {(m.pack, m.namespace, m.rule, m.meta.get("score"))
            for m in merged.scan(EICAR + b"\r\nabc", filepath="/tmp/.x/evil.sh")}
    assert rows == {
        ("one", "eicar.yar", "Own_EICAR", 50), ("two", "eicar.yar", "Own_EICAR", 80),
        ("one", "a.yar", "Same", None), ("one", "sub/b.yar", "Same", None),
        ("two", "a.yar", "Same", None), ("two", "priv.yar", "UsesPrivate", None),
        ("one", "ext.yar", "ByName", None), ("one", "ext.yar", "ByExtension", None),
        ("one", "ext.yar", "ByPath", None)}
    # the broken file stays out of the merged rules too
    assert "InBroken" not in names(merged.scan(b"abc"))


def test_merged_cache_is_used_and_shared_with_workers(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folders = own_packs(tmp_path)
    packs = [yr.load_pack(f.name, f, cache) for f in folders]
    first = yr.RuleSet(packs)
    assert first.cache_dir == cache  # the packs' cache folder
    before = yr.compile_count()
    refs = first.refs()  # builds and writes the merged cache for the workers
    assert yr.compile_count() == before + 1
    assert first.merged_cache_file is not None and first.merged_cache_file.is_file()
    assert first.merged_cache_file.name.startswith("_merged-")
    assert not first.merged_from_cache
    assert {r.merged for r in refs} == {yr.MergedRef(first.merged_key or "",
                                                     str(first.merged_cache_file))}
    expected = as_rows(first.scan(EICAR))
    assert yr.compile_count() == before + 1  # scanning reused what refs() compiled

    second = yr.RuleSet([yr.load_pack(f.name, f, cache) for f in folders])
    assert all(p.from_cache for p in second.packs)
    assert as_rows(second.scan(EICAR)) == expected
    assert second.merged_from_cache and yr.compile_count() == before + 1

    worker = yr.RuleSet.from_refs(pickle.loads(pickle.dumps(refs)), cache)
    assert worker.merged_from_cache and yr.compile_count() == before + 1
    assert [(p.name, p.rule_count, p.broken) for p in worker.packs] == [
        (p.name, p.rule_count, p.broken) for p in packs]
    assert all(p._rules is None for p in worker.packs)  # pack caches not even read
    assert as_rows(worker.scan(EICAR)) == expected
    assert worker.packs[0].rules is not None  # still loadable from its cache on demand
    assert yr.compile_count() == before + 1

    # a missing merged cache: the worker falls back to the pack caches and merges again
    first.merged_cache_file.unlink()
    rebuilt = yr.RuleSet.from_refs(refs, cache)
    assert all(p.from_cache for p in rebuilt.packs) and not rebuilt.merged_from_cache
    assert as_rows(rebuilt.scan(EICAR)) == expected
    assert yr.compile_count() == before + 2
    assert rebuilt.merged_cache_file is not None and rebuilt.merged_cache_file.is_file()


def test_merged_cache_follows_changes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    one, two = own_packs(tmp_path)
    solo = write_pack(tmp_path / "solo", {"s.yar": 'rule S { strings: $a = "abc" condition: $a }'})

    def merged_files() -> list[str]:
        return sorted(f.name for f in cache.iterdir() if f.name.startswith("_merged-"))

    def build(*folders: Path) -> yr.RuleSet:
        ruleset = yr.RuleSet([yr.load_pack(f.name, f, cache) for f in folders])
        ruleset.refs()
        return ruleset

    old = build(one, two)
    other_choice = build(one, solo)  # another choice of packs, same contents: both kept
    assert len(merged_files()) == 2
    (two / "a.yar").write_text('rule Changed { strings: $a = "abc" condition: $a }')
    new = build(one, two)
    assert new.merged_key != old.merged_key and not new.merged_from_cache
    # the old version of the same packs is gone; the (one, solo) set is still current
    assert new.merged_cache_file is not None and other_choice.merged_cache_file is not None
    assert merged_files() == sorted([new.merged_cache_file.name,
                                     other_choice.merged_cache_file.name])
    assert "Changed" in names(new.scan(b"abc"))
    # a corrupt merged cache is compiled again
    new.merged_cache_file.write_bytes(new.merged_cache_file.read_bytes()[:200])
    before = yr.compile_count()
    again = build(one, two)
    assert not again.merged_from_cache and yr.compile_count() == before + 1
    warm = build(one, two)
    assert not warm.merged_from_cache  # refs() only checked the file's header
    assert warm.merged_rules() is not None and warm.merged_from_cache
    assert yr.compile_count() == before + 1


def test_changed_folder_falls_back_to_per_pack_scans(tmp_path: Path) -> None:
    one, two = own_packs(tmp_path)
    packs = [yr.load_pack(f.name, f) for f in (one, two)]  # no cache folder at all
    (two / "a.yar").write_text('rule Changed { strings: $a = "abc" condition: $a }')
    ruleset = yr.RuleSet(packs)
    assert ruleset.cache_dir is None
    assert ruleset.merged_rules() is None
    assert ruleset.merge_error is not None and "'two'" in ruleset.merge_error
    assert "Changed" not in names(ruleset.scan(b"abc"))  # the packs as they were loaded
    assert {r.merged for r in ruleset.refs()} == {None}


def test_community_packs_merged_equal_per_pack(community: Loaded) -> None:
    merged = yr.RuleSet(community.packs.values())
    per_pack = yr.RuleSet(community.packs.values(), merge=False)
    files = sorted({p for p in benign_files() if p.is_file()})[:6]
    samples = [(EICAR, "eicar.com"), (b"# shares\n/srv/share *(rw,no_root_squash)\n",
                                      "/etc/exports")]
    samples += [(path.read_bytes(), str(path)) for path in files]
    for data, where in samples:
        assert as_rows(merged.scan(data, filepath=where)) == as_rows(
            per_pack.scan(data, filepath=where)), where
    assert merged.merged_rules() is not None
    assert merged.merged_cache_file is not None
    assert merged.merged_cache_file.parent == community.cache_dir


def _scan_from_refs(refs: list[yr.PackRef], cache: str, data: bytes) -> tuple[
        list[tuple[str, str, str, str, str]], bool, int]:
    before = yr.compile_count()
    ruleset = yr.RuleSet.from_refs(refs, cache)
    return as_rows(ruleset.scan(data, filename="eicar.com")), ruleset.merged_from_cache, (
        yr.compile_count() - before)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_from_refs_in_a_worker_process(tmp_path: Path, method: str) -> None:
    cache = tmp_path / "cache"
    packs = [yr.load_pack(f.name, f, cache) for f in own_packs(tmp_path)]
    parent = yr.RuleSet(packs)
    refs = parent.refs()
    expected = as_rows(parent.scan(EICAR, filename="eicar.com"))
    assert {m[0] for m in expected} == {"one", "two"}
    with multiprocessing.get_context(method).Pool(1) as pool:
        rows, from_cache, compiled = pool.apply(_scan_from_refs, (refs, str(cache), EICAR))
    assert rows == expected and from_cache and compiled == 0
