"""Conclusions drawn from features: family names from rules, verdict reasons."""

from __future__ import annotations

import pytest

from cleancenter.analyze.family import canonical, family_from_rules, from_rule
from cleancenter.analyze.report import YaraMatch


@pytest.mark.parametrize(
    ("rule", "meta", "family"),
    [
        ("Linux_Trojan_Mirai_b14f4c5d", {"threat_name": "Linux.Trojan.Mirai"}, "Mirai"),
        ("Linux_Trojan_Gafgyt_28a2fe0c", {}, "Gafgyt"),
        ("Linux_Trojan_Bashlite_1", {}, "Gafgyt"),  # alias
        ("Linux_Trojan_Tsunami_47f93be0", {}, "Tsunami"),
        ("Windows_Trojan_Zeus_e51c60d7", {"threat_name": "Windows.Trojan.Zeus"}, "Zeus"),
        ("Multi_EICAR_ac8f42d6", {"threat_name": "Multi.EICAR.Not-a-virus"}, "EICAR"),
        ("Some_Rule", {"malware_family": "kaiten"}, "Tsunami"),
        ("SUSP_ELF_LNX_UPX_Compressed_File", {}, None),
        ("Linux_Trojan_00ff00ff", {}, None),
    ],
)
def test_family_from_rule_names_and_meta(rule: str, meta: dict[str, str],
                                         family: str | None) -> None:
    assert from_rule(YaraMatch(rule=rule, pack="p", meta=meta)) == family


def test_suspicious_rules_name_no_family_and_votes_win() -> None:
    matches = [
        YaraMatch(rule="SUSP_ELF_LNX_UPX_Compressed_File", pack="signature-base"),
        YaraMatch(rule="Linux_Trojan_Mirai_1", pack="elastic"),
        YaraMatch(rule="Linux_Trojan_Mirai_2", pack="elastic"),
        YaraMatch(rule="Linux_Trojan_Gafgyt_1", pack="elastic"),
    ]
    fam = family_from_rules(matches)
    assert fam is not None and fam.name == "Mirai" and fam.source == "rule"
    assert "elastic:Linux_Trojan_Mirai_1" in fam.reason
    assert family_from_rules(matches[:1]) is None
    assert canonical("ZBOT") == "Zeus"
