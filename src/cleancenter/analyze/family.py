"""Family: a name for what a sample is, from rule names and metadata, with an alias table.

Community rule names follow ``<Platform>_<Type>_<Family>[_<id>]`` (Elastic:
``Linux_Trojan_Mirai_b14f4c5d``; ReversingLabs: ``Linux.Trojan.Mirai``); signature-base
and others may carry a ``family`` / ``malware_family`` meta. Aliases fold the many names
one family goes by (Bashlite, Gafgyt, Qbot-the-IoT-bot; Tsunami and Kaiten).
"""

from __future__ import annotations

import re

from cleancenter.analyze.report import ConfigResult, Family, YaraMatch
from cleancenter.analyze.verdict import rule_weight

ALIASES: dict[str, str] = {
    "mirai": "Mirai", "okiru": "Mirai", "satori": "Mirai", "masuta": "Mirai",
    "gafgyt": "Gafgyt", "bashlite": "Gafgyt", "lizkebab": "Gafgyt", "torlus": "Gafgyt",
    "tsunami": "Tsunami", "kaiten": "Tsunami",
    "ircbot": "IRCBot", "sdbot": "SDBot", "rbot": "SDBot", "agobot": "Agobot",
    "phatbot": "Agobot", "gaobot": "Agobot", "spybot": "SpyBot",
    "zeus": "Zeus", "zbot": "Zeus", "cutwail": "Cutwail", "pushdo": "Cutwail",
    "rustock": "Rustock", "conficker": "Conficker", "downadup": "Conficker",
    "xorddos": "XorDDoS", "mozi": "Mozi", "hajime": "Hajime", "xmrig": "XMRig",
    "emotet": "Emotet", "trickbot": "TrickBot", "qakbot": "QakBot",
}
_GENERIC = {
    "generic", "trojan", "backdoor", "worm", "virus", "exploit", "hacktool", "downloader",
    "dropper", "ransomware", "cryptominer", "coinminer", "infostealer", "rootkit", "shell",
    "webshell", "pua", "adware", "linux", "win32", "win64", "windows", "multi", "macos",
    "susp", "apt", "hktl", "mal", "gen", "packer", "suspicious", "not-a-virus", "elf",
    "lnx", "win", "just", "informational", "upx", "compressed", "packed", "file",
}
_NAME_PARTS = re.compile(r"[._\-]")
FAMILY_META_KEYS = ("family", "malware_family")
THREAT_NAME_KEYS = ("threat_name", "malware")


def canonical(name: str) -> str:
    """The family's canonical name (alias table), else the name with a capital."""
    key = name.strip().lower()
    return ALIASES.get(key, name.strip()[:1].upper() + name.strip()[1:])


def from_rule(match: YaraMatch) -> str | None:
    for key in FAMILY_META_KEYS:
        value = match.meta.get(key)
        if isinstance(value, str) and value.strip():
            return canonical(value.split(",")[0])
    for key in THREAT_NAME_KEYS:  # "Linux.Trojan.Mirai", "Multi.EICAR.Not-a-virus"
        value = match.meta.get(key)
        if isinstance(value, str):
            name = _from_parts([p for p in _NAME_PARTS.split(value) if p])
            if name:
                return name
    return _from_parts([p for p in _NAME_PARTS.split(match.rule) if p])


def _from_parts(parts: list[str]) -> str | None:
    for part in parts:
        if part.lower() in ALIASES:
            return ALIASES[part.lower()]
    # Platform_Type_Family_xxx: the first part after the generic words that lead
    if len(parts) >= 2 and parts[0].lower() in _GENERIC:
        for candidate in parts[1:]:
            if candidate.lower() in _GENERIC:
                continue
            if re.fullmatch(r"[0-9a-f]{6,}|\d+", candidate):
                return None
            return canonical(candidate)
    return None


def family_from_rules(matches: list[YaraMatch]) -> Family | None:
    """The family most rules agree on, with the rules as the reason."""
    votes: dict[str, list[str]] = {}
    for match in matches:
        if rule_weight(match) != "malicious":
            continue  # "SUSP_..._UPX_Compressed_File" names a trait, not a family
        name = from_rule(match)
        if name:
            votes.setdefault(name, []).append(f"{match.pack}:{match.rule}")
    if not votes:
        return None
    name, rules = max(votes.items(), key=lambda kv: len(kv[1]))
    return Family(name=name, source="rule", reason="YARA: " + ", ".join(rules[:5]))


def family_from_configs(configs: list[ConfigResult]) -> Family | None:
    """A bot family named by the configuration an extractor found (not "Downloader")."""
    for config in configs:
        if config.family and config.family not in ("Downloader",):
            return Family(name=canonical(config.family), source="config",
                          reason=f"configuration extracted by {config.extractor}")
    return None
