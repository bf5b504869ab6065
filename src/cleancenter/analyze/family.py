"""Family: a name for what a sample is, from rule names and metadata, with an alias table.

Community rule names follow ``<Platform>_<Type>_<Family>[_<id>]`` (Elastic:
``Linux_Trojan_Mirai_b14f4c5d``; ReversingLabs: ``Linux.Trojan.Mirai``); signature-base
and others may carry a ``family`` / ``malware_family`` meta. Aliases fold the many names
one family goes by (Bashlite, Gafgyt, Qbot-the-IoT-bot; Tsunami and Kaiten).
"""

from __future__ import annotations

import re

from cleancenter.analyze.report import Family, YaraMatch

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
    "susp", "apt", "hktl", "mal", "gen", "packer", "suspicious",
}
_NAME_PARTS = re.compile(r"[._\-]")
FAMILY_META_KEYS = ("family", "malware_family", "malware", "threat_name")


def canonical(name: str) -> str:
    """The family's canonical name (alias table), else the name with a capital."""
    key = name.strip().lower()
    return ALIASES.get(key, name.strip()[:1].upper() + name.strip()[1:])


def from_rule(match: YaraMatch) -> str | None:
    for key in FAMILY_META_KEYS:
        value = match.meta.get(key)
        if isinstance(value, str) and value.strip():
            return canonical(value.split(",")[0])
    parts = [p for p in _NAME_PARTS.split(match.rule) if p]
    for part in parts:
        if part.lower() in ALIASES:
            return ALIASES[part.lower()]
    # Platform_Type_Family_xxx: the third part, when the first two are generic words
    if len(parts) >= 3 and parts[0].lower() in _GENERIC and parts[1].lower() in _GENERIC:
        candidate = parts[2]
        if candidate.lower() not in _GENERIC and not re.fullmatch(r"[0-9a-f]{6,}", candidate):
            return canonical(candidate)
    return None


def family_from_rules(matches: list[YaraMatch]) -> Family | None:
    """The family most rules agree on, with the rules as the reason."""
    votes: dict[str, list[str]] = {}
    for match in matches:
        name = from_rule(match)
        if name:
            votes.setdefault(name, []).append(f"{match.pack}:{match.rule}")
    if not votes:
        return None
    name, rules = max(votes.items(), key=lambda kv: len(kv[1]))
    return Family(name=name, source="rule", reason="YARA: " + ", ".join(rules[:5]))
