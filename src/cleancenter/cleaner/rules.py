"""The YARA rules of a definitions bundle, compiled with yara-x and cached.

Each rule file is compiled into a namespace of its own (``pack/file``), so packs that reuse
rule names still load; a file that does not compile is left out and named. Compiling
community packs takes seconds, so the compiled rules are serialized into the cleaner's
state folder, keyed by the bundle's sha256 and the yara-x version: a later run, and every
worker process, only deserializes them.

Why yara-x and not the C yara: it is the engine the center analyses with (one rule
dialect end to end), and one process per core gives the parallelism its Python scanner
cannot (it holds the GIL).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import yara_x

from cleancenter.atomicfile import atomic_output, write_atomically
from cleancenter.cleaner.definitions import Definitions
from cleancenter.cleaner.findings import Evidence

# signature-base's LOKI/THOR rules read these; they are set per scanned file
EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
SCAN_TIMEOUT = 30
# A rule is acted on only when its name says it was written for malicious software
# (Elastic's Linux_Trojan_Mirai_*, ReversingLabs' Win32_Ransomware_*, signature-base's
# MAL_* and APT_*, our cleancenter_gen_*); hack tools, vulnerable drivers, miners, exploits
# and SUSP_* traits are reported as suspicious and never acted on.
MALWARE_WORDS = frozenset({
    "trojan", "backdoor", "botnet", "bot", "ircbot", "worm", "ransomware", "ransom", "rat",
    "virus", "mal", "malware", "apt", "stealer", "infostealer", "downloader", "dropper",
    "webshell", "rootkit", "keylogger", "mirai", "gafgyt", "bashlite", "tsunami", "kaiten",
    "eicar"})
TRAIT_WORDS = frozenset({
    "susp", "suspicious", "hktl", "hacktool", "pua", "hunting", "methodology", "generic",
    "informational", "vulndriver", "cryptominer", "miner", "expl", "exploit", "pentest"})
GENERATED_PREFIX = "cleancenter_gen_"

@dataclass
class CompiledRules:
    """The bundle's rules, compiled and serialized at ``path``. They are deserialized only
    where they scan (`load`): a worker, or memory scanning, never a re-scan that only
    needs its cache."""

    path: Path | None  # the serialized rules, for worker processes
    broken: dict[str, str] = field(default_factory=dict)  # file -> compiler message
    count: int = 0
    _rules: yara_x.Rules | None = None

    @property
    def empty(self) -> bool:
        return self.path is None and self._rules is None

    def load(self) -> yara_x.Rules | None:
        if self._rules is None and self.path is not None:
            self._rules = load_serialized(self.path)
        return self._rules


def _yara_x_version() -> str:
    try:
        return _dist_version("yara-x")
    except Exception:  # an unusual install: still key the cache on something
        return "unknown"


def compile_definitions(defs: Definitions, cache_dir: Path | None) -> CompiledRules:
    """Compile every rule file of the bundle, or find them compiled in the cache."""
    if not defs.rule_sources:
        return CompiledRules(None)
    cache_path = info_path = None
    if cache_dir is not None:
        cache_path = cache_dir / f"rules-{defs.bundle_sha256[:32]}-{_yara_x_version()}.yxc"
        info_path = cache_path.with_suffix(".json")
        if cache_path.is_file() and info_path.is_file():
            try:
                info = json.loads(info_path.read_text())
                return CompiledRules(cache_path, dict(info["broken"]), int(info["count"]))
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged cache is rebuilt, never trusted
    broken: dict[str, str] = {}
    texts: dict[str, str] = {}
    for name, source in sorted(defs.rule_sources.items()):
        try:
            texts[name] = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            broken[name] = f"not UTF-8 text: {exc}"
    while True:  # yara-x keeps the valid rules of a failed file: leave whole files out
        compiler = _new_compiler()
        failed: dict[str, str] = {}
        for name, text in texts.items():
            if name in broken:
                continue
            compiler.new_namespace(name)
            try:
                compiler.add_source(text, origin=name)
            except yara_x.CompileError as exc:
                failed[name] = (str(exc).strip().splitlines() or ["does not compile"])[0]
        if not failed:
            break
        broken.update(failed)
    rules = compiler.build()
    count = _count(rules)
    if cache_path is not None and info_path is not None:
        _write_atomically(cache_path, rules)  # rules first: the info line says it is whole
        write_atomically(info_path, json.dumps({"count": count, "broken": broken}).encode())
    return CompiledRules(cache_path, broken, count, rules)


def _count(rules: yara_x.Rules) -> int:
    return sum(1 for _ in rules) if hasattr(rules, "__iter__") else 0


def _new_compiler() -> yara_x.Compiler:
    compiler = yara_x.Compiler(relaxed_re_syntax=True, includes_enabled=False)
    for name in EXTERNALS:
        compiler.define_global(name, "")
    return compiler


def _write_atomically(path: Path, rules: yara_x.Rules) -> None:
    with atomic_output(path) as out:
        rules.serialize_into(out)


def load_serialized(path: Path) -> yara_x.Rules:
    with path.open("rb") as handle:
        return yara_x.Rules.deserialize_from(handle)


def new_scanner(rules: yara_x.Rules) -> yara_x.Scanner:
    scanner = yara_x.Scanner(rules)
    scanner.set_timeout(SCAN_TIMEOUT)
    return scanner


def set_externals(scanner: yara_x.Scanner, path: str) -> None:
    """The LOKI/THOR externals for one file (name, path, extension)."""
    name = os.path.basename(path)
    ext = os.path.splitext(name)[1].lower()
    values = {"filename": name, "filepath": os.path.dirname(path), "extension": ext,
              "filetype": "", "owner": ""}
    for key, value in values.items():
        scanner.set_global(key, value)


def rule_evidence(matching: Iterable[Any], source: str) -> list[Evidence]:
    """yara-x matching rules -> evidence naming the rule, its pack file, author, reference."""
    found = []
    for rule in matching:
        meta = {key: value for key, value in rule.metadata}
        found.append(Evidence(
            type="rule", value=str(rule.identifier), source=f"{source}:{rule.namespace}",
            author=str(meta.get("author", "")),
            reference=str(meta.get("reference", "") or meta.get("description", ""))[:300],
            detail=str(meta.get("score", ""))))
    return found


def is_trait_rule(evidence: Evidence) -> bool:
    """True for a rule that describes a trait or a tool, not a bot (see MALWARE_WORDS)."""
    name = evidence.value.lower()
    if name.startswith(GENERATED_PREFIX):
        return False
    words = set(re.split(r"[_.\-]+", name))
    if words & TRAIT_WORDS:
        return True
    try:
        if evidence.detail and int(evidence.detail) < 70:  # signature-base's score
            return True
    except ValueError:
        pass
    return not words & MALWARE_WORDS
