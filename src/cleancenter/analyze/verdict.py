"""Verdict: malicious / suspicious / clean / unknown, with every reason that led to it.

Absence of findings is not innocence: without positive evidence the verdict is
"unknown", never "clean". An analyst's label wins over everything (see `samples mark`).
"""

from __future__ import annotations

from typing import Literal

from cleancenter.analyze.report import Reason, Report, Verdict, VerdictValue, YaraMatch

SUSPICIOUS_PACKERS = frozenset({
    "ASPack", "FSG", "MEW", "PEtite", "PESpin", "Upack", "WWPack32", "yC", "Themida",
    "VMProtect", "MPRESS", "NsPack", "RLPack", "Enigma", "PECompact", "unknown",
})
SIGNATURE_BASE_MALICIOUS_SCORE = 70
GENERIC_CONFIG_FAMILIES = frozenset({"Downloader"})


def rule_weight(match: YaraMatch) -> str:
    """How much one rule match says: community detections are malicious, "SUSP"/"PUA" and
    low-score ones suspicious."""
    name = match.rule.upper()
    score = match.meta.get("score")
    if name.startswith(("SUSP_", "SUSPICIOUS_", "PUA_", "INFO_", "GEN_SUSP", "ANOMALY")) or \
            name.endswith("_ANOMALY") or "_ANOMALY_" in name or \
            "SUSPICIOUS" in (t.upper() for t in match.tags):
        # signature-base's *_ANOMALY rules flag a system file name whose content differs
        # from Windows' own (Wine's re-implementations, say): worth a look, not a conviction
        return "suspicious"
    if isinstance(score, int) and score < SIGNATURE_BASE_MALICIOUS_SCORE:
        return "suspicious"
    return "malicious"


def decide(report: Report) -> Verdict:
    reasons: list[Reason] = []
    for match in report.yara:
        detail = f"YARA {match.pack}:{match.rule}"
        for key in ("author", "reference", "description"):
            if match.meta.get(key):
                detail += f"; {key}: {match.meta[key]}"
        weight = rule_weight(match)
        reasons.append(Reason(kind="yara", detail=detail[:500],
                              weight="malicious" if weight == "malicious" else "suspicious"))
    for config in report.configs:
        # a bot's own configuration convicts; a fetch-and-run line alone (install
        # instructions in a README do that) only raises suspicion
        config_weight: Literal["malicious", "suspicious"] = (
            "suspicious" if config.family in GENERIC_CONFIG_FAMILIES else "malicious")
        reasons.append(Reason(kind="config", weight=config_weight,
                              detail=f"{config.family} configuration extracted by "
                                     f"{config.extractor}"))
    if report.packer.packed:
        name = report.packer.name or "unknown"
        # IoT bots are nearly always UPX'd ELF; UPX on Windows is common in goodware too
        if name in SUSPICIOUS_PACKERS or (name == "UPX" and report.identity.kind == "elf"):
            reasons.append(Reason(kind="packer", weight="suspicious",
                                  detail=f"packed with {name}"))
    for ioc in report.iocs:
        if ioc.type in ("irc-channel", "command"):
            reasons.append(Reason(kind="ioc", weight="suspicious",
                                  detail=f"{ioc.type} {ioc.value!r} at offset {ioc.offset}"))
            break
    value: VerdictValue
    if any(r.weight == "malicious" for r in reasons):
        value = "malicious"
    elif reasons:
        value = "suspicious"
    else:
        value = "unknown"
    return Verdict(value=value, reasons=reasons)
