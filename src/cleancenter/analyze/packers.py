"""Packers: a conclusion drawn from what the parsers found, with its evidence.

Order of trust: the code at the entry point (it runs first, so it names the outermost
layer: yC wrapped around UPX is yC), then marks a packer leaves (``UPX!``, section names,
installer signatures), then a generic guess (high entropy code and a tiny import table)
that names no packer and says so.
"""

from __future__ import annotations

import re

from cleancenter.analyze.report import ELFInfo, Packer, PEInfo


def _sig(text: str) -> re.Pattern[bytes]:
    """A PEiD-style hex signature with ``??`` wildcards, as a bytes regex."""
    parts = [b"." if tok == "??" else re.escape(bytes([int(tok, 16)])) for tok in text.split()]
    return re.compile(b"".join(parts), re.DOTALL)


# (packer, entry-point signature); checked against the first bytes at the entry point.
EP_SIGNATURES: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("yC", _sig("55 8B EC 53 56 57 60 E8 00 00 00 00 5D 81 ED")),
    ("PESpin", _sig("EB 01 68 60 E8 00 00 00 00 8B 1C 24 83 C3")),
    ("ASPack", _sig("60 E8 03 00 00 00 E9 EB 04 5D 45 55 C3 E8 01")),
    ("ASPack", _sig("60 E8 00 00 00 00 5D 81 ED ?? ?? ?? ?? B8 ?? ?? ?? ?? 03 C5")),
    ("PEtite", _sig("B8 ?? ?? ?? ?? 68 ?? ?? ?? ?? 64 FF 35 00 00 00 00")),
    ("PEtite", _sig("B8 ?? ?? ?? ?? 66 9C 60 50")),
    ("Upack", _sig("BE ?? ?? ?? ?? AD 50 FF 76 34 EB 7C 48")),
    ("Upack", _sig("BE ?? ?? ?? ?? AD 8B F8 95 A5 33 C0 33 C9 AB 48 AB F7 D8")),
    ("MEW", _sig("E9 ?? ?? ?? FF 0C ?? 00 00 00 00 00 00 00")),
    ("WWPack32", _sig("53 55 8B E8 33 DB EB 60 0D 0A 0D 0A 57 57 50 61 63 6B 33 32")),
    ("FSG", _sig("87 25 ?? ?? ?? ?? 61 94 55 A4 B6 80 FF 13")),
    ("FSG", _sig("BE A4 01 40 00 AD 93 AD 97 AD 56 96 B2 80 A4 B6 80 FF 13 73")),
    ("FSG", _sig("BB D0 01 40 00 BF 00 10 40 00 BE ?? ?? ?? ?? 53 E8")),
    ("UPX", _sig("60 BE ?? ?? ?? ?? 8D BE ?? ?? ?? ?? 57")),
    ("UPX", _sig("53 56 57 55 48 8D 35 ?? ?? ?? ?? 48 8D BE")),  # PE32+
    ("MPRESS", _sig("60 E8 00 00 00 00 58 05 ?? ?? ?? ?? 8B 30 03 F0 2B C0")),
    ("PECompact", _sig("B8 ?? ?? ?? ?? 50 64 FF 35 00 00 00 00 64 89 25 00 00 00 00 33 C0 89 08")),
)

# section name -> packer (names are compared without trailing NULs)
SECTION_NAMES: dict[str, str] = {
    "UPX0": "UPX", "UPX1": "UPX", "UPX2": "UPX", ".aspack": "ASPack", ".adata": "ASPack",
    ".petite": "PEtite", ".taz": "PESpin", "MEW": "MEW", ".WWP32": "WWPack32", "yC": "yC",
    ".yP": "yC", ".MPRESS1": "MPRESS", ".MPRESS2": "MPRESS", ".themida": "Themida",
    ".vmp0": "VMProtect", ".vmp1": "VMProtect", "PEC2": "PECompact", "PECompact2": "PECompact",
    ".nsp0": "NsPack", ".nsp1": "NsPack", ".packed": "RLPack", ".RLPack": "RLPack",
    ".enigma1": "Enigma", ".spack": "Simple Pack", ".ndata": "NSIS",
}

HIGH_ENTROPY = 7.2
_UPX_STRUCTURE = ("l_info", "PackHeader", "without section headers", "magic altered")
FEW_IMPORTS = 10


def _section_evidence(names: list[str]) -> list[tuple[str, str]]:
    found = []
    for name in names:
        key = name.rstrip("\0")
        for candidate in (key, key.split("\0", 1)[0]):
            packer = SECTION_NAMES.get(candidate)
            if packer:
                found.append((packer, f"section {candidate!r}"))
                break
    return found


def detect_pe_packer(info: PEInfo, data: bytes) -> Packer:
    evidence: list[str] = []
    entry = bytes.fromhex(info.entry_bytes) if info.entry_bytes else b""
    by_entry = next((name for name, sig in EP_SIGNATURES if sig.match(entry)), None)
    if by_entry:
        evidence.append(f"entry-point code matches the {by_entry} stub ({entry[:16].hex()})")
    sections = _section_evidence([s.name for s in info.sections])
    evidence.extend(f"{why} is {packer}'s" for packer, why in sections)
    if b"UPX!" in data[:4096] or b"UPX!" in data[-4096:]:
        sections.append(("UPX", "UPX! mark"))
        evidence.append("UPX! mark in the file")
    nsis = b"NullsoftInst" in data or b"Nullsoft Install System" in data
    if nsis:
        evidence.append("NSIS installer signature (NullsoftInst)")
    if by_entry:
        return Packer(name=by_entry, packed=True, confidence="high", evidence=evidence)
    if nsis and any(p == "NSIS" for p, _ in sections):
        return Packer(name="NSIS", packed=True, confidence="high", evidence=evidence)
    named = [p for p, _ in sections if p != "NSIS"]
    if named:
        name = max(set(named), key=named.count)
        return Packer(name=name, packed=True, confidence="high" if len(named) > 1 else "medium",
                      evidence=evidence)
    return _generic_pe(info, evidence)


def _generic_pe(info: PEInfo, evidence: list[str]) -> Packer:
    """No packer named: say "packed" only on strong, combined evidence."""
    if info.is_dotnet:
        return Packer(evidence=evidence)
    code = [s for s in info.sections if "execute" in s.flags or "code" in s.flags]
    dense = [s for s in code if s.entropy >= HIGH_ENTROPY and s.raw_size >= 1024]
    wx_entry = any(a.startswith("wx-section") for a in info.anomalies) and \
        "entry-outside-code" not in info.anomalies
    few_imports = info.import_count <= FEW_IMPORTS
    if dense and (few_imports or wx_entry):
        evidence.append(
            f"executable section(s) {', '.join(repr(s.name) for s in dense)} have entropy "
            f">= {HIGH_ENTROPY} and the import table is tiny ({info.import_count})"
        )
        return Packer(name="unknown", packed=True, confidence="low", evidence=evidence)
    return Packer(evidence=evidence)


def detect_elf_packer(info: ELFInfo, data: bytes, upx_evidence: list[str]) -> Packer:
    """``upx_evidence`` comes from `unpack.looks_like_upx` (the UPX marks in the bytes)."""
    evidence = list(upx_evidence)
    # UPX's own strings turn up in programs that merely contain or handle UPX (the upx
    # tool itself); only the structure of a packed file (l_info after the program
    # headers, a PackHeader, no section table) says the file IS packed
    structural = [e for e in upx_evidence if any(k in e for k in _UPX_STRUCTURE)]
    if structural:
        return Packer(name="UPX", packed=True,
                      confidence="high" if len(structural) > 1 else "medium",
                      evidence=evidence)
    if upx_evidence:
        evidence.append("UPX strings only, and the file is not laid out as a packed one")
    loads = [s for s in info.segments if s.type == "LOAD"]
    if not info.sections and loads and max(s.entropy for s in loads) >= HIGH_ENTROPY:
        evidence.append("no section headers and a load segment with entropy >= "
                        f"{HIGH_ENTROPY} (UPX with its marks removed, as Mirai builds do?)")
        return Packer(name="unknown", packed=True, confidence="low", evidence=evidence)
    return Packer(evidence=evidence)
