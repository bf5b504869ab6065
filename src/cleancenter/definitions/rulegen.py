"""Rule generation: a YARA rule for each family that no registered pack detects, made
from strings every member carries and no benign file does, and released only once
yara-x has shown it on the real files.

Steps, for each family cluster (malicious samples grouped by ``sample.family``):

1. covered? Every member's current report (this analyzer version first, else the newest)
   holds a match from a registered pack: the family needs no rule of ours.
2. strings (ASCII and UTF-16LE, at least `MIN_RULE_LEN` characters) common to all
   members, read from their blobs (never run);
3. minus the strings in the goodware index, minus strings that look generic (few distinct
   characters, mostly punctuation, only digits);
4. ranked by information (character entropy times length), up to `PROBE_FACTOR` times
   ``max_strings`` of them are *probed*: one yara-x pass over every goodware file the
   index recorded, each probe rule matching any of its strings, finds the strings that sit
   inside longer benign strings (the index only knows whole strings);
5. the rule: up to ``max_strings`` strings without a goodware hit, condition
   ``all of them`` up to 3 strings, else ``ceil(0.75 * n) of them``;
6. verification with yara-x: the rule must match every member and no goodware file
   (rules whose strings changed after the probe are scanned over the goodware again).

A family that fails any step is refused with the reason (`Refusal.code`, `.reason`).
The byte patterns for ClamAV's ``.ndb`` are the best one or two rule strings that are
stored the same way (ASCII, or UTF-16LE) in every member: each was probed alone, so it
matches no goodware file by itself either.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

import yara_x
from sqlalchemy import Table, select

from cleancenter.analyze.report import ANALYZER_VERSION
from cleancenter.analyze.strings import scan_strings
from cleancenter.definitions.goodware import GoodwareIndex, Progress, read_regular
from cleancenter.store.blobs import BlobError, BlobStore
from cleancenter.store.catalog import SAMPLE, Catalog
from cleancenter.store.models import AnalysisReport

REPORT = cast(Table, AnalysisReport.__table__)

MIN_RULE_LEN = 8  # characters of a rule string (also the .ndb minimum in bytes)
MAX_RULE_LEN = 96  # longer common strings are cut: a prefix is still in every member
MAX_STRINGS = 8
MIN_STRINGS = 2  # one string alone is too brittle a rule
PROBE_FACTOR = 4
MAX_PATTERNS = 2  # byte patterns per family for ClamAV
MAX_SAMPLE_BYTES = 32 << 20
MAX_MEMBER_STRINGS = 1_000_000
SCAN_TIMEOUT = 60
RULE_PREFIX = "cleancenter_gen_"
PROBE_PREFIX = "cleancenter_probe_"
AUTHOR = "cleancenter rulegen"
CHUNK = 500
_ASCII, _WIDE = 1, 2
_IDENT = re.compile(r"[^A-Za-z0-9_]+")


# -- plain data between the stages -----------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A string every member carries; how it is stored decides the YARA modifiers."""

    text: str
    stored_all: int  # encodings (bit 1 ASCII, bit 2 UTF-16LE) seen in every member
    stored_any: int  # encodings seen in at least one member
    score: float

    @property
    def modifiers(self) -> str:
        return " ".join(m for bit, m in ((_ASCII, "ascii"), (_WIDE, "wide"))
                        if self.stored_any & bit)

    def pattern(self) -> bytes | None:
        """The bytes every member holds, for a ClamAV byte signature (None: mixed)."""
        if self.stored_all & _ASCII:
            return self.text.encode("latin-1")
        if self.stored_all & _WIDE:
            return self.text.encode("utf-16-le")
        return None


@dataclass
class GeneratedRule:
    """A released rule: its source, its strings and the byte patterns for ClamAV."""

    family: str
    name: str
    file_name: str  # under rules/generated/ in the bundle
    members: list[str]
    strings: list[Candidate]
    threshold: int
    source: str
    patterns: list[bytes] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "rule": self.name, "file": self.file_name,
                "members": len(self.members), "strings": [s.text for s in self.strings],
                "threshold": self.threshold, "patterns": len(self.patterns)}


@dataclass(frozen=True)
class Refusal:
    """A family left without a generated rule, and why."""

    family: str
    members: int
    code: str  # no_common_strings, in_goodware, too_few, matches_goodware, misses_member,
    # unreadable_member, goodware_unscannable, compile_error
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "members": self.members, "code": self.code,
                "reason": self.reason}


@dataclass
class Coverage:
    """Which malicious families the release detects, and how."""

    families: int = 0
    by_packs: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    without_family: int = 0  # malicious samples with no family (hashes only)
    generation: str = "ran"  # or why it did not run
    not_attempted: list[str] = field(default_factory=list)  # generation did not run

    @property
    def uncovered(self) -> list[str]:
        return sorted({r.family for r in self.refused} | set(self.not_attempted))

    def counts(self) -> dict[str, int]:
        return {"families": self.families, "by_packs": len(self.by_packs),
                "generated": len(self.generated), "refused": len(self.refused),
                "uncovered": len(self.uncovered), "without_family": self.without_family}

    def to_dict(self) -> dict[str, Any]:
        return {**self.counts(), "generation": self.generation,
                "by_packs_families": self.by_packs, "generated_families": self.generated,
                "refused_families": [r.to_dict() for r in self.refused],
                "uncovered_families": self.uncovered}


@dataclass
class Generation:
    """What a generation run released, refused and measured."""

    rules: list[GeneratedRule]
    coverage: Coverage
    seconds: float = 0.0
    goodware_files: int = 0
    goodware_missing: int = 0  # files listed in the index that are gone or unreadable
    goodware_passes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "seconds": round(self.seconds, 3),
                "goodware_files": self.goodware_files,
                "goodware_missing": self.goodware_missing,
                "goodware_passes": self.goodware_passes}


_Refuse = Callable[[str, str, str], None]  # family, code, reason


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


# -- the catalog side ------------------------------------------------------------------


def family_clusters(catalog: Catalog) -> tuple[dict[str, list[str]], int]:
    """Malicious samples by family (sorted), and how many malicious ones have none."""
    clusters: dict[str, list[str]] = {}
    unnamed = 0
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(SAMPLE.c.sha256, SAMPLE.c.family)
                            .where(SAMPLE.c.verdict == "malicious")
                            .order_by(SAMPLE.c.family, SAMPLE.c.sha256)).all()
    for sha256, family in rows:
        if family and family.strip():
            clusters.setdefault(family, []).append(sha256)
        else:
            unnamed += 1
    return clusters, unnamed


def pack_matches(catalog: Catalog, sha256s: Sequence[str], packs: set[str]) -> set[str]:
    """The samples whose current report holds a YARA match from one of ``packs``."""
    matched: set[str] = set()
    with catalog.engine.connect() as conn:
        for i in range(0, len(sha256s), CHUNK):
            chunk = list(sha256s[i:i + CHUNK])
            rows = conn.execute(
                select(REPORT.c.sha256, REPORT.c.analyzer_version, REPORT.c.body)
                .where(REPORT.c.sha256.in_(chunk))
                .order_by(REPORT.c.sha256, REPORT.c.created.desc(), REPORT.c.id.desc())).all()
            current: dict[str, tuple[str, str]] = {}  # newest first, this version first
            for sha256, version, body in rows:
                if sha256 not in current or (version == ANALYZER_VERSION
                                             and current[sha256][0] != ANALYZER_VERSION):
                    current[sha256] = (version, body)
            for sha256, (_version, body) in current.items():
                if any(m.get("pack") in packs for m in _yara_of(body)):
                    matched.add(sha256)
    return matched


def _yara_of(body: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    found = doc.get("yara") if isinstance(doc, dict) else None
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


# -- strings -------------------------------------------------------------------------


def member_strings(data: bytes) -> dict[str, int]:
    """Each string of a sample and how it is stored."""
    table = scan_strings(data, MIN_RULE_LEN, max_bytes=MAX_SAMPLE_BYTES,
                         max_strings=MAX_MEMBER_STRINGS)
    found: dict[str, int] = {}
    for i, text in enumerate(table.texts):
        found[text] = found.get(text, 0) | (_ASCII if i < table.ascii_count else _WIDE)
    return found


def common_strings(samples: Iterable[tuple[str, bytes]]) -> dict[str, tuple[int, int]]:
    """Strings in every sample: text -> (encodings in all, encodings in any)."""
    common: dict[str, tuple[int, int]] | None = None
    for _sha256, data in samples:
        found = member_strings(data)
        if common is None:
            common = {t: (f, f) for t, f in found.items()}
        else:
            common = {t: (all_ & found[t], any_ | found[t])
                      for t, (all_, any_) in common.items() if t in found}
        if not common:
            break
    return common or {}


def looks_generic(text: str) -> bool:
    """Strings too plain to tell a family: few distinct characters ("AAAAAAAA",
    "-=-=-=-="), mostly punctuation or blanks (format padding), or only digits."""
    distinct = len(set(text))
    alnum = sum(ch.isalnum() for ch in text)
    return distinct < 5 or alnum * 2 < len(text) or text.strip().isdigit()


def information(text: str) -> float:
    """Bits of character entropy times length (capped): long, varied strings rank first."""
    counts = Counter(text)
    n = len(text)
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    return round(entropy * min(n, 64), 6)


def rank(common: dict[str, tuple[int, int]], goodware: GoodwareIndex
         ) -> tuple[list[Candidate], int, int]:
    """Candidates best first (cut to `MAX_RULE_LEN`: a prefix is still in every member);
    also how many common strings the goodware index and the generic filter removed.
    The index is asked about the whole string, as it was indexed."""
    texts = sorted(common)
    in_goodware = goodware.contains_many([t.encode("latin-1") for t in texts])
    kept: dict[str, Candidate] = {}
    generic = 0
    for text, benign in zip(texts, in_goodware, strict=True):
        if benign:
            continue
        if looks_generic(text):
            generic += 1
            continue
        all_, any_ = common[text]
        cut = text[:MAX_RULE_LEN]
        if cut in kept:  # two long strings with one prefix: what both share
            old = kept[cut]
            all_, any_ = all_ & old.stored_all, any_ | old.stored_any
        kept[cut] = Candidate(cut, all_, any_, information(cut))
    ranked = sorted(kept.values(), key=lambda c: (-c.score, c.text))
    return ranked, int(in_goodware.sum()), generic


def select_strings(candidates: Sequence[Candidate], limit: int) -> list[Candidate]:
    """The best ``limit`` candidates, skipping one that contains (or sits inside) a string
    already chosen: overlapping strings add no evidence."""
    chosen: list[Candidate] = []
    for cand in candidates:
        if len(chosen) >= limit:
            break
        if any(cand.text in c.text or c.text in cand.text for c in chosen):
            continue
        chosen.append(cand)
    return chosen


def threshold(count: int) -> int:
    return count if count <= 3 else math.ceil(0.75 * count)


# -- YARA text -----------------------------------------------------------------------


def yara_literal(text: str) -> str:
    """A YARA string literal: quotes, backslashes and anything outside printable ASCII
    escaped (sample strings and family names are hostile input)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def identifiers(families: Iterable[str]) -> dict[str, str]:
    """A YARA-identifier-safe and file-name-safe name for each family, unique."""
    taken: dict[str, str] = {}
    result: dict[str, str] = {}
    for family in sorted(families):
        base = _IDENT.sub("_", family).strip("_")[:64] or "unnamed"
        name = base
        if name.lower() in taken:
            name = f"{base}_{hashlib.sha256(family.encode()).hexdigest()[:8]}"
        taken[name.lower()] = family
        result[family] = name
    return result


def rule_source(name: str, family: str, members: int, strings: Sequence[Candidate],
                needed: int, today: date, condition: str | None = None) -> str:
    lines = [f"rule {name}", "{", "    meta:",
             f"        author = {yara_literal(AUTHOR)}",
             f"        family = {yara_literal(family)}",
             f"        members = {members}",
             f"        date = {yara_literal(today.isoformat())}",
             "    strings:"]
    lines += [f"        $s{i} = {yara_literal(s.text)} {s.modifiers}"
              for i, s in enumerate(strings)]
    if condition is None:
        condition = "all of them" if needed == len(strings) else f"{needed} of them"
    lines += ["    condition:", f"        {condition}", "}"]
    return "\n".join(lines) + "\n"


# -- generation ----------------------------------------------------------------------


@dataclass
class _Plan:
    family: str
    ident: str
    members: list[str]
    probes: list[Candidate]
    chosen: list[Candidate]
    probed: bool = False  # `chosen` went through a goodware pass as a rule
    hits: dict[int, str] = field(default_factory=dict)  # probe index -> a goodware file
    rule_hits: list[str] = field(default_factory=list)  # goodware files the rule matched

    @property
    def rule_name(self) -> str:
        return RULE_PREFIX + self.ident


def _compile(sources: dict[str, str]) -> tuple[yara_x.Rules | None, dict[str, str]]:
    """Compile each source alone (to name a broken one), then all of them together."""
    broken: dict[str, str] = {}
    for key, source in sources.items():
        try:
            yara_x.compile(source)
        except yara_x.CompileError as exc:
            broken[key] = str(exc)[:500]
    good = [s for k, s in sources.items() if k not in broken]
    if not good:
        return None, broken
    compiler = yara_x.Compiler()
    compiler.add_source("\n".join(good))
    return compiler.build(), broken


class _GoodwareScan:
    """One pass of compiled rules over the files the goodware index recorded."""

    def __init__(self, goodware: GoodwareIndex, progress: Progress | None) -> None:
        self.goodware = goodware
        self.progress = progress
        self.passes = 0
        self.missing: set[str] = set()
        self.scanned = 0  # files read in the last pass

    def run(self, rules: yara_x.Rules, label: str
            ) -> tuple[dict[str, list[tuple[str, set[str]]]], str | None]:
        """rule name -> [(goodware file, matched pattern ids)]; and the first file that
        could not be scanned (a timeout), which makes the pass inconclusive."""
        self.passes += 1
        scanner = yara_x.Scanner(rules)
        scanner.set_timeout(SCAN_TIMEOUT)
        found: dict[str, list[tuple[str, set[str]]]] = {}
        if self.progress is not None:
            self.progress.start(label, len(self.goodware.files))
        failed: str | None = None
        self.scanned = 0
        for entry in self.goodware.files:
            if self.progress is not None:
                self.progress.advance()
            try:
                data = read_regular(entry.path, self.goodware.max_size)
            except OSError:
                self.missing.add(entry.path)
                continue
            self.scanned += 1
            try:
                results = scanner.scan(data)
            except (yara_x.TimeoutError, yara_x.ScanError) as exc:
                failed = failed or f"{entry.path}: {exc}"
                continue
            for rule in results.matching_rules:
                ids = {p.identifier for p in rule.patterns if p.matches}
                found.setdefault(rule.identifier, []).append((entry.path, ids))
        return found, failed


def generate_rules(catalog: Catalog, blobs: BlobStore, goodware: GoodwareIndex,
                   packs: Iterable[str], *, max_strings: int = MAX_STRINGS,
                   min_strings: int = MIN_STRINGS, today: date | None = None,
                   progress: Progress | None = None) -> Generation:
    """Rules for the families no registered pack covers (see the module notes)."""
    started = time.perf_counter()
    today = today or datetime.now(UTC).date()
    clusters, unnamed = family_clusters(catalog)
    coverage = Coverage(families=len(clusters), without_family=unnamed)
    covered = pack_covered(catalog, clusters, set(packs))
    coverage.by_packs = sorted(covered)
    todo = {f: m for f, m in clusters.items() if f not in covered}
    names = identifiers(todo)
    refused: list[Refusal] = []

    def refuse(family: str, code: str, reason: str) -> None:
        refused.append(Refusal(family, len(clusters[family]), code, reason))

    plans: dict[str, _Plan] = {}
    if progress is not None:
        progress.start("family strings", len(todo))
    for family, members in todo.items():
        if progress is not None:
            progress.advance()
        try:
            plans[family] = _plan(family, names[family], members, blobs, goodware,
                                  max_strings, min_strings)
        except _Refused as exc:
            refuse(family, exc.code, exc.reason)

    scan = _GoodwareScan(goodware, progress)
    _probe(plans, scan, refuse, max_strings, min_strings, today)
    _verify_goodware(plans, scan, refuse, today)
    released = _verify_members(plans, blobs, refuse, today)
    coverage.generated = sorted(r.family for r in released)
    coverage.refused = sorted(refused, key=lambda r: r.family)
    return Generation(released, coverage, time.perf_counter() - started,
                      len(goodware.files), len(scan.missing), scan.passes)


def pack_covered(catalog: Catalog, clusters: dict[str, list[str]], packs: set[str]
                 ) -> set[str]:
    """Families whose every member a registered pack already matched."""
    if not packs:
        return set()
    matched = pack_matches(catalog, [s for m in clusters.values() for s in m], packs)
    return {f for f, members in clusters.items() if all(s in matched for s in members)}


def coverage_without_generation(catalog: Catalog, packs: Iterable[str], why: str
                                ) -> Coverage:
    """The coverage report when no rule is generated (no goodware index, or asked not to)."""
    clusters, unnamed = family_clusters(catalog)
    covered = pack_covered(catalog, clusters, set(packs))
    return Coverage(families=len(clusters), by_packs=sorted(covered), without_family=unnamed,
                    generation=why, not_attempted=sorted(set(clusters) - covered))


def _plan(family: str, ident: str, members: list[str], blobs: BlobStore,
          goodware: GoodwareIndex, max_strings: int, min_strings: int) -> _Plan:
    def read() -> Iterable[tuple[str, bytes]]:
        for sha256 in members:
            try:
                with blobs.open(sha256) as fh:
                    data = fh.read(MAX_SAMPLE_BYTES)
            except (OSError, BlobError) as exc:
                raise _Refused("unreadable_member",
                               f"member {sha256}: blob unreadable ({exc})") from exc
            yield sha256, data

    common = common_strings(read())
    if not common:
        raise _Refused("no_common_strings", f"no string of {MIN_RULE_LEN}+ characters is "
                       f"common to all {len(members)} members")
    candidates, benign, generic = rank(common, goodware)
    if not candidates and benign and not generic:
        raise _Refused("in_goodware", f"all {benign} string(s) common to its members occur "
                       "in the goodware index")
    if len(candidates) < min_strings:
        raise _Refused("too_few", f"{len(candidates)} distinctive common string(s) left of "
                       f"{len(common)} ({benign} in goodware, {generic} too generic); "
                       f"need {min_strings}")
    probes = candidates[:PROBE_FACTOR * max_strings]
    return _Plan(family, ident, members, probes, select_strings(probes, max_strings))


def _probe(plans: dict[str, _Plan], scan: _GoodwareScan, refuse: _Refuse, max_strings: int,
           min_strings: int, today: date) -> None:
    """Pass 1: each family's rule and its probe rule over the goodware; the strings found
    there are dropped and the rule is chosen again from the clean ones."""
    if not plans:
        return
    sources: dict[str, str] = {}
    for family, plan in plans.items():
        sources[family] = (
            rule_source(plan.rule_name, family, len(plan.members), plan.chosen,
                        threshold(len(plan.chosen)), today)
            + rule_source(PROBE_PREFIX + plan.ident, family, len(plan.members), plan.probes,
                          1, today, condition="any of them"))
    rules = _compile_or_refuse(sources, plans, refuse)
    if rules is None:
        return
    found, failed = scan.run(rules, "probing goodware")
    if not scan.scanned:  # nothing to verify against: no rule can be shown safe
        failed = (f"none of the {len(scan.goodware.files)} files the goodware index lists "
                  "could be read; build the index again")
    for family, plan in list(plans.items()):
        if failed:
            refuse(family, "goodware_unscannable", f"goodware file {failed}")
            del plans[family]
            continue
        for path, ids in found.get(PROBE_PREFIX + plan.ident, []):
            for pid in ids:
                plan.hits.setdefault(int(pid.removeprefix("$s")), path)
        plan.rule_hits = [path for path, _ in found.get(plan.rule_name, [])]
        clean = [c for i, c in enumerate(plan.probes) if i not in plan.hits]
        chosen = select_strings(clean, max_strings)
        if len(chosen) < min_strings:
            example = next(iter(plan.hits.values()), "")
            refuse(family, "in_goodware",
                   f"{len(plan.hits)} of its {len(plan.probes)} best strings occur in "
                   f"goodware (e.g. in {example}); {len(chosen)} left, need {min_strings}")
            del plans[family]
            continue
        plan.probed = chosen == plan.chosen and not plan.rule_hits
        plan.chosen = chosen


def _compile_or_refuse(sources: dict[str, str], plans: dict[str, _Plan],
                       refuse: _Refuse) -> yara_x.Rules | None:
    """Compile the families' rules; a family whose rule does not compile is refused."""
    rules, broken = _compile(sources)
    for family, message in broken.items():
        refuse(family, "compile_error", f"generated rule does not compile: {message}")
        del plans[family]
    return rules


def _verify_goodware(plans: dict[str, _Plan], scan: _GoodwareScan, refuse: _Refuse,
                     today: date) -> None:
    """Pass 2, only for rules rebuilt after the probe: they must match no goodware file."""
    again = {f: p for f, p in plans.items() if not p.probed}
    if not again:
        return
    sources = {f: rule_source(p.rule_name, f, len(p.members), p.chosen,
                              threshold(len(p.chosen)), today) for f, p in again.items()}
    rules = _compile_or_refuse(sources, plans, refuse)
    if rules is None:
        return
    found, failed = scan.run(rules, "verifying on goodware")
    for family, plan in again.items():
        if family not in plans:
            continue
        hits = [path for path, _ in found.get(plan.rule_name, [])]
        if failed or hits:
            refuse(family, "matches_goodware" if hits else "goodware_unscannable",
                   f"matches goodware file {hits[0]}" if hits else f"goodware file {failed}")
            del plans[family]


def _verify_members(plans: dict[str, _Plan], blobs: BlobStore, refuse: _Refuse,
                    today: date) -> list[GeneratedRule]:
    """The final rules, compiled together, must each match every member of their family."""
    if not plans:
        return []
    sources = {f: rule_source(p.rule_name, f, len(p.members), p.chosen,
                              threshold(len(p.chosen)), today) for f, p in plans.items()}
    rules, broken = _compile(sources)
    for family, message in broken.items():
        refuse(family, "compile_error", f"generated rule does not compile: {message}")
        del plans[family]
    if rules is None:
        return []
    scanner = yara_x.Scanner(rules)
    scanner.set_timeout(SCAN_TIMEOUT)
    released: list[GeneratedRule] = []
    for family, plan in plans.items():
        missed: tuple[str, str] | None = None
        for sha256 in plan.members:
            try:
                with blobs.open(sha256) as fh:
                    data = fh.read(MAX_SAMPLE_BYTES)
                matched = {r.identifier for r in scanner.scan(data).matching_rules}
            except (OSError, BlobError, yara_x.TimeoutError, yara_x.ScanError) as exc:
                missed = ("unreadable_member", f"member {sha256} could not be scanned ({exc})")
                break
            if plan.rule_name not in matched:
                missed = ("misses_member", f"misses member {sha256}")
                break
        if missed:
            refuse(family, *missed)
            continue
        patterns = [p for c in plan.chosen if (p := c.pattern()) is not None]
        released.append(GeneratedRule(
            family=family, name=plan.rule_name, file_name=f"{plan.ident}.yar",
            members=list(plan.members), strings=list(plan.chosen),
            threshold=threshold(len(plan.chosen)), source=sources[family],
            patterns=patterns[:MAX_PATTERNS]))
    return released
