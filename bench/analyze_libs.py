"""Benchmark: the static-analysis libraries we must choose between, on the real benign corpus.

DESIGN.md section 8 settles these by measurement. Every candidate runs in the same process
over the same bytes (read once per file, so I/O is outside every figure), and each is
timed in CPU time (``time.process_time``) per file:

- PE: LIEF (``lief.parse``) vs pefile (full, and ``fast_load=True``); parse alone and
  parse + features (section names and entropy, imports, exports);
- ELF: LIEF vs pyelftools, both reading header, sections, segments and symbols;
- fuzzy hashes: ssdeep (C binding) vs ppdeep (pure Python, checked for equal digests),
  and TLSH (py-tlsh);
- YARA: yara-x vs yara-python with the ReversingLabs rules: compile time and scan time;
- file type: libmagic (python-magic) vs puremagic, timed and checked for accuracy;
- strings: ASCII and UTF-16LE runs of 4+ characters with ``re``.

Corpus: ``scripts/fetch-material`` (libwine PE, pywin32/psutil wheel PE, ClamAV's packed
clam.exe, busybox for 9 CPUs, UPX-packed copies) plus about 200 ELF files of this machine
(/usr/bin and /usr/lib/x86_64-linux-gnu/*.so*, at most 32 MiB each).

    nice .venv/bin/python bench/analyze_libs.py [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import io
import json
import math
import os
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lief
import magic
import pefile
import ppdeep
import puremagic
import ssdeep
import tlsh
import yara
import yara_x
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.material import (
    busybox_elfs,
    clamav_packed,
    ensure_material,
    libwine_pe,
    upx_packed,
    wheel_pe,
)

from common import corpus, machine, spread, system_elfs

ASCII = re.compile(rb"[\x20-\x7e]{4,}")
UTF16 = re.compile(rb"(?:[\x20-\x7e]\x00){4,}")
PE_NAME = re.compile(r"\bPE32|\bPE\b|MS-DOS|MS Windows|Windows Executable|\bDLL\b", re.I)
ELF_NAME = re.compile(r"\bELF\b")
DISTRIBUTIONS = (
    "lief",
    "pefile",
    "pyelftools",
    "ssdeep",
    "ppdeep",
    "py-tlsh",
    "yara-x",
    "yara-python",
    "python-magic",
    "puremagic",
)


@dataclass
class Sample:
    """One corpus file: its group (where it came from) and its expected format."""

    path: Path
    group: str
    kind: str  # "pe" or "elf"


@dataclass
class Timing:
    """CPU seconds per file for one tool, and the files it failed on."""

    kind: str
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- corpus


def build_corpus(limit: int | None) -> list[Sample]:
    """Every group of the material, each capped at limit files for a quick run."""
    ensure_material()
    groups: list[tuple[str, str, list[Path]]] = [
        ("libwine", "pe", libwine_pe()),
        ("wheels", "pe", wheel_pe()),
        ("clamav", "pe", [clamav_packed()[k] for k in sorted(clamav_packed())]),
        ("busybox", "elf", [busybox_elfs()[k] for k in sorted(busybox_elfs())]),
        ("system-elf", "elf", system_elfs(200)),
    ]
    upx = sorted(upx_packed().values())
    groups.append(("upx-pe", "pe", [p for p in upx if "/pe/" in p.as_posix()]))
    groups.append(("upx-elf", "elf", [p for p in upx if "/elf/" in p.as_posix()]))
    samples: list[Sample] = []
    for group, kind, paths in groups:
        chosen = spread(paths, limit) if limit else paths
        samples += [Sample(p, group, kind) for p in chosen]
    return samples


# ---------------------------------------------------------------- the candidates


def entropy(data: bytes) -> float:
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def lief_pe_features(binary: Any) -> dict[str, Any]:
    return {
        "sections": [(s.name, s.entropy) for s in binary.sections],
        "dlls": len(binary.imports),
        "imports": sum(len(i.entries) for i in binary.imports),
        "exports": len(binary.get_export().entries) if binary.has_exports else 0,
    }


def pefile_features(pe: pefile.PE) -> dict[str, Any]:
    imports = getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])
    exports = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    return {
        "sections": [
            (s.Name.rstrip(b"\0").decode("latin-1"), s.get_entropy()) for s in pe.sections
        ],
        "dlls": len(imports),
        "imports": sum(len(d.imports) for d in imports),
        "exports": len(exports.symbols) if exports else 0,
    }


def lief_elf_features(binary: Any) -> dict[str, Any]:
    header = binary.header
    return {
        "machine": str(header.machine_type),
        "entry": header.entrypoint,
        "sections": [(s.name, s.size) for s in binary.sections],
        "segments": [str(s.type) for s in binary.segments],
        "symbols": sum(1 for s in binary.symtab_symbols if s.name)
        + sum(1 for s in binary.dynamic_symbols if s.name),
    }


def elftools_features(data: bytes) -> dict[str, Any]:
    elf = ELFFile(io.BytesIO(data))
    symbols = 0
    sections = []
    for s in elf.iter_sections():
        sections.append((s.name, s["sh_size"]))
        if isinstance(s, SymbolTableSection):
            symbols += sum(1 for sym in s.iter_symbols() if sym.name)
    return {
        "machine": elf.header["e_machine"],
        "entry": elf.header["e_entry"],
        "sections": sections,
        "segments": [seg["p_type"] for seg in elf.iter_segments()],
        "symbols": symbols,
    }


def puremagic_name(data: bytes) -> str:
    found = puremagic.magic_string(data)
    return f"{found[0].name} ({found[0].extension})" if found else "unknown"


def right_name(kind: str, name: str) -> bool:
    return bool((PE_NAME if kind == "pe" else ELF_NAME).search(name))


def rule_files() -> list[Path]:
    root = Path(os.environ.get("CLEANCENTER_CORPUS") or corpus()) / "yara" / "reversinglabs"
    files = sorted(root.rglob("*.yara")) + sorted(root.rglob("*.yar"))
    if not files:
        raise SystemExit(f"no YARA rules under {root}: set CLEANCENTER_CORPUS")
    return files


def compile_yara_x(files: list[Path]) -> Any:
    compiler = yara_x.Compiler()
    for i, f in enumerate(files):
        compiler.new_namespace(f"ns{i}")
        compiler.add_source(f.read_text(errors="replace"), origin=str(f))
    return compiler.build()


def compile_yara(files: list[Path]) -> Any:
    return yara.compile(filepaths={f"ns{i}": str(f) for i, f in enumerate(files)})


def cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


# ---------------------------------------------------------------- the run


def run(samples: list[Sample]) -> dict[str, Any]:
    """Time every candidate on every file it applies to; gather the differences met."""
    lief.logging.disable()
    rules = rule_files()
    compile_s: dict[str, list[float]] = {"yara-x": [], "yara-python": []}
    for _ in range(3):
        dt, yx_rules = cpu(lambda: compile_yara_x(rules))
        compile_s["yara-x"].append(dt)
        dt, yp_rules = cpu(lambda: compile_yara(rules))
        compile_s["yara-python"].append(dt)
    yx_scanner = yara_x.Scanner(yx_rules)
    libmagic = magic.Magic()

    timings: dict[str, Timing] = {}
    notes: dict[str, Any] = {
        "yara_hits": Counter(),
        "magic_wrong": {"libmagic": [], "puremagic": []},
        "puremagic_no_right_guess": [],
        "ssdeep_differs": [],
        "tlsh_null": 0,
        "pe_compare": [],
        "elf_compare": [],
        "entropy": Counter(),
    }

    def timed(tool: str, kind: str, sample: Sample, fn: Callable[[], Any]) -> Any:
        t = timings.setdefault(tool, Timing(kind))
        start = time.process_time()
        try:
            result = fn()
        except Exception as exc:
            t.seconds.append(time.process_time() - start)
            t.failures.append(f"{sample.group}:{sample.path.name}: {type(exc).__name__}: {exc}")
            return None
        t.seconds.append(time.process_time() - start)
        if result is None:  # lief.parse says "not parsed" with None
            t.failures.append(f"{sample.group}:{sample.path.name}: no result")
        return result

    def one(s: Sample) -> None:
        """Every candidate on one file's bytes (a function, so closures bind this file)."""
        data = s.path.read_bytes()
        if s.kind == "pe":
            timed("LIEF parse", "pe", s, lambda: lief.parse(data))
            lf = timed("LIEF parse+features", "pe", s, lambda: lief_pe_features(lief.parse(data)))
            timed("pefile fast_load", "pe", s, lambda: pefile.PE(data=data, fast_load=True))
            timed("pefile full parse", "pe", s, lambda: pefile.PE(data=data))
            pf = timed(
                "pefile full+features", "pe", s, lambda: pefile_features(pefile.PE(data=data))
            )
            compare_pe(notes, s, data, lf, pf)
        else:
            le = timed(
                "LIEF ELF (hdr+sec+seg+sym)", "elf", s, lambda: lief_elf_features(lief.parse(data))
            )
            ee = timed("pyelftools (hdr+sec+seg+sym)", "elf", s, lambda: elftools_features(data))
            compare_elf(notes, s, le, ee)
        h1 = timed("ssdeep (C)", "any", s, lambda: ssdeep.hash(data))
        h2 = timed("ppdeep (pure Python)", "any", s, lambda: ppdeep.hash(data))
        if h1 is not None and h2 is not None and h1 != h2:
            notes["ssdeep_differs"].append(str(s.path))
        th = timed("tlsh", "any", s, lambda: tlsh.hash(data))
        notes["tlsh_null"] += th in ("TNULL", "", None)
        m1 = timed("yara-x scan", "any", s, lambda: yx_scanner.scan(data))
        m2 = timed("yara-python scan", "any", s, lambda: yp_rules.match(data=data))
        for r in getattr(m1, "matching_rules", ()):
            notes["yara_hits"][f"yara-x:{r.identifier}"] += 1
        for r in m2 or ():
            notes["yara_hits"][f"yara-python:{r.rule}"] += 1
        for tool, fn in (
            ("libmagic", lambda: libmagic.from_buffer(data)),
            ("puremagic", lambda: puremagic_name(data)),
        ):
            name = timed(tool, "any", s, fn)
            if name is None or not right_name(s.kind, name):
                notes["magic_wrong"][tool].append(f"{s.group}:{s.path.name}: {name}")
        # puremagic ranks several guesses: is the right one among them at all? (untimed)
        if not any(
            right_name(s.kind, f"{m.name} ({m.extension})") for m in puremagic.magic_string(data)
        ):
            notes["puremagic_no_right_guess"].append(f"{s.group}:{s.path.name}")
        timed(
            "strings ascii+utf16le (re)",
            "any",
            s,
            lambda: (len(ASCII.findall(data)), len(UTF16.findall(data))),
        )

    started = time.monotonic()
    for n, s in enumerate(samples, 1):
        one(s)
        if n % 100 == 0:
            print(
                f"  {n}/{len(samples)} files, {time.monotonic() - started:.0f}s",
                file=sys.stderr,
                flush=True,
            )
    return {
        "timings": timings,
        "compile": compile_s,
        "notes": notes,
        "wall_s": time.monotonic() - started,
    }


def compare_pe(notes: dict[str, Any], s: Sample, data: bytes, lf: Any, pf: Any) -> None:
    """Where LIEF and pefile disagree: section entropy definition, imports, exports."""
    if lf is None or pf is None:
        return
    pe = pefile.PE(data=data, fast_load=True)
    for (_, le), (_, pe_h), sec in zip(lf["sections"], pf["sections"], pe.sections, strict=False):
        start = sec.PointerToRawData
        raw = data[start : start + sec.SizeOfRawData]
        trimmed = data[start : start + min(sec.SizeOfRawData, sec.Misc_VirtualSize or 0)]
        adj = sec.get_PointerToRawData_adj()  # the loader rounds the pointer down
        aligned = data[adj : adj + sec.SizeOfRawData]
        defs = {
            "raw": entropy(raw),
            "raw[:VirtualSize]": entropy(trimmed),
            "raw@aligned-pointer": entropy(aligned),
        }
        for lib, value in (("LIEF", le), ("pefile", pe_h)):
            which = [k for k, v in defs.items() if abs(v - value) < 1e-9]
            notes["entropy"][f"{lib}={'|'.join(which) or 'other'}"] += 1
    diff = {k: (lf[k], pf[k]) for k in ("dlls", "imports", "exports") if lf[k] != pf[k]}
    if len(lf["sections"]) != len(pf["sections"]):
        diff["sections"] = (len(lf["sections"]), len(pf["sections"]))
    if diff:
        notes["pe_compare"].append({"file": f"{s.group}:{s.path.name}", "LIEF,pefile": diff})


def compare_elf(notes: dict[str, Any], s: Sample, le: Any, ee: Any) -> None:
    if le is None or ee is None:
        return
    diff = {}
    for k in ("sections", "segments"):
        if len(le[k]) != len(ee[k]):
            diff[k] = (len(le[k]), len(ee[k]))
    if le["symbols"] != ee["symbols"]:
        diff["named symbols"] = (le["symbols"], ee["symbols"])
    if diff:
        notes["elf_compare"].append({"file": f"{s.group}:{s.path.name}", "LIEF,pyelftools": diff})


# ---------------------------------------------------------------- report


def table(result: dict[str, Any], samples: list[Sample]) -> str:
    sizes = {k: sum(s.path.stat().st_size for s in samples if s.kind == k) for k in ("pe", "elf")}
    lines = [
        "| tool | files | MiB | failures | median ms/file | mean ms/file | total CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tool, t in result["timings"].items():
        mib = (sizes["pe"] + sizes["elf"] if t.kind == "any" else sizes[t.kind]) / 2**20
        lines.append(
            f"| {tool} | {len(t.seconds)} | {mib:,.0f} | {len(t.failures)} "
            f"| {statistics.median(t.seconds) * 1e3:.3f} "
            f"| {statistics.fmean(t.seconds) * 1e3:.3f} | {sum(t.seconds):.2f} |"
        )
    for tool, values in result["compile"].items():
        lines.append(
            f"| {tool} compile ({len(rule_files())} rule files) | - | - | 0 "
            f"| {statistics.median(values) * 1e3:.0f} (median of 3) | - | - |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--limit", type=int, help="at most N files from each corpus group")
    parser.add_argument("--json", type=Path, help="write every figure and note here")
    args = parser.parse_args()
    samples = build_corpus(args.limit)
    groups = Counter(s.group for s in samples)
    group_bytes = Counter({g: 0 for g in groups})
    for s in samples:
        group_bytes[s.group] += s.path.stat().st_size
    print(
        f"corpus: {len(samples)} files: "
        + ", ".join(f"{g} {groups[g]} ({group_bytes[g] / 2**20:,.1f} MiB)" for g in groups),
        file=sys.stderr,
    )
    result = run(samples)
    notes = result["notes"]
    md = table(result, samples)
    print(md)
    print()
    print(f"wall time {result['wall_s']:.0f}s")
    for tool, t in result["timings"].items():
        if t.failures:
            print(f"{tool}: {len(t.failures)} failures, e.g. {t.failures[:3]}")
    for tool, wrong in notes["magic_wrong"].items():
        print(f"{tool}: {len(wrong)} of {len(samples)} named wrongly, e.g. {wrong[:4]}")
    print(
        "puremagic: right kind among none of its guesses for "
        f"{len(notes['puremagic_no_right_guess'])} files"
    )
    print(f"section entropy definitions matched: {dict(notes['entropy'])}")
    print(
        f"PE files where LIEF and pefile disagree: {len(notes['pe_compare'])}, "
        f"e.g. {notes['pe_compare'][:5]}"
    )
    print(
        f"ELF files where LIEF and pyelftools disagree: {len(notes['elf_compare'])}, "
        f"e.g. {notes['elf_compare'][:5]}"
    )
    print(
        f"ssdeep vs ppdeep digests differ on {len(notes['ssdeep_differs'])} files; "
        f"tlsh TNULL on {notes['tlsh_null']}; yara hits: {dict(notes['yara_hits'])}"
    )
    if args.json:
        out = {
            "machine": machine(),
            "versions": {d: metadata.version(d) for d in DISTRIBUTIONS}
            | {"libmagic": str(getattr(magic, "version", lambda: "?")())},
            "corpus": {g: {"files": groups[g], "bytes": group_bytes[g]} for g in groups},
            "wall_s": result["wall_s"],
            "compile_s": result["compile"],
            "timings": {
                tool: {
                    "kind": t.kind,
                    "files": len(t.seconds),
                    "failures": t.failures,
                    "median_ms": statistics.median(t.seconds) * 1e3,
                    "total_s": sum(t.seconds),
                }
                for tool, t in result["timings"].items()
            },
            "notes": {
                **notes,
                "yara_hits": dict(notes["yara_hits"]),
                "entropy": dict(notes["entropy"]),
            },
            "table_md": md,
        }
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
