"""Bot configurations in the MACO model, by per-family extractors dispatched on YARA hits
(malduck style).

Each `Extractor` declares what triggers it:

- its own rules, in ``rules.yar`` next to this file (``cc_irc_bot``, ``cc_mirai_table``,
  ``cc_downloader``), compiled once per process with yara-x and scanned here on every
  sample: community packs may be absent, or miss a variant;
- community rule names, as case-insensitive shell patterns (``*mirai*``), matched
  against the pipeline's `YaraMatch` list.

A triggered extractor reads the sample (its strings are scanned once, lazily, and shared)
and returns a `maco.model.ExtractorModel`, or None when it finds no real configuration:
a trigger is a reason to look, not a result. An extractor that raises is logged and
skipped; `extract_configs` itself never raises for a hostile file.

Families set (`ConfigResult.family`): ``Mirai`` (`mirai`), ``IRCBot`` / ``Tsunami`` /
``Gafgyt`` (`irc`, named after the community rule that hit, if any), ``Downloader``
(`downloader`).
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yara_x
from maco.model import ExtractorModel  # type: ignore[import-untyped,unused-ignore]

from cleancenter.analyze.report import ConfigResult, YaraMatch
from cleancenter.analyze.strings import StringTable, scan_strings

log = logging.getLogger(__name__)

RULES_FILE = "rules.yar"


@dataclass
class Context:
    """What an extractor sees: the bytes, the kind, the rule names that hit (community
    and own), and the strings (scanned on first use, then shared)."""

    data: bytes
    kind: str
    rules: frozenset[str]
    community: tuple[str, ...] = ()
    _table: StringTable | None = field(default=None, repr=False)

    @property
    def strings(self) -> StringTable:
        if self._table is None:
            self._table = scan_strings(self.data)
        return self._table


ExtractFn = Callable[[Context], ExtractorModel | None]


@dataclass(frozen=True)
class Extractor:
    name: str
    own_rules: tuple[str, ...]  # rule names in rules.yar
    community: tuple[str, ...]  # case-insensitive shell patterns of community rule names
    run: ExtractFn

    def community_hits(self, names: Iterable[str]) -> list[str]:
        return [n for n in names
                if any(fnmatch.fnmatchcase(n.lower(), p) for p in self.community)]

    def triggered(self, own: Iterable[str], community: Sequence[str]) -> bool:
        return any(r in self.own_rules for r in own) or bool(self.community_hits(community))


@lru_cache(maxsize=1)
def own_rules() -> yara_x.Rules:
    """``rules.yar``, compiled once per process."""
    source = resources.files(__package__).joinpath(RULES_FILE).read_text(encoding="utf-8")
    return yara_x.compile(source)


_local = threading.local()  # a yara-x scanner is not shared between threads


def own_rule_hits(data: bytes) -> list[str]:
    """Names of our own trigger rules that match ``data``."""
    scanner: yara_x.Scanner | None = getattr(_local, "scanner", None)
    if scanner is None:
        scanner = yara_x.Scanner(own_rules())
        _local.scanner = scanner
    results = scanner.scan(data)
    return [rule.identifier for rule in results.matching_rules]


def _registry() -> list[Extractor]:
    from cleancenter.analyze.configs import downloader, irc, mirai

    return [
        Extractor("mirai", ("cc_mirai_table",), mirai.COMMUNITY_PATTERNS, mirai.extract),
        Extractor("irc", ("cc_irc_bot",), irc.COMMUNITY_PATTERNS, irc.extract),
        Extractor("downloader", ("cc_downloader",), downloader.COMMUNITY_PATTERNS,
                  downloader.extract),
    ]


EXTRACTORS: list[Extractor] = _registry()


def to_result(extractor: str, model: ExtractorModel) -> ConfigResult:
    family = model.family if isinstance(model.family, str) else ", ".join(model.family)
    return ConfigResult(extractor=extractor, family=family,
                        config=model.model_dump(mode="json", exclude_defaults=True))


def extract_configs(data: bytes, *, yara: list[YaraMatch], kind: str,
                    extractors: Sequence[Extractor] | None = None) -> list[ConfigResult]:
    """Run every extractor triggered by ``yara`` (community hits) or by our own rules;
    the configurations they found, in registry order."""
    try:
        own = own_rule_hits(data)
    except Exception as exc:  # a scan error must not cost the community-triggered ones
        log.warning("configs: own rules failed: %s: %s", type(exc).__name__, exc)
        own = []
    community = [m.rule for m in yara]
    ctx = Context(data=data, kind=kind, rules=frozenset([*own, *community]))
    results: list[ConfigResult] = []
    for ex in EXTRACTORS if extractors is None else extractors:
        if not ex.triggered(own, community):
            continue
        ctx.community = tuple(ex.community_hits(community))
        try:
            model = ex.run(ctx)
        except Exception as exc:  # one extractor choking on a file costs only itself
            log.warning("configs: extractor %s failed: %s: %s", ex.name,
                        type(exc).__name__, exc)
            continue
        if model is not None:
            results.append(to_result(ex.name, model))
    return results


__all__ = ["EXTRACTORS", "Context", "Extractor", "extract_configs", "own_rule_hits",
           "own_rules", "to_result"]
