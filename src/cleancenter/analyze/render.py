"""A report for a person: the few lines an analyst reads first, hostile strings made inert."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cleancenter.analyze.report import Report
from cleancenter.textsafe import for_console

VERDICT_STYLE = {"malicious": "bold red", "suspicious": "yellow", "clean": "green",
                 "unknown": "dim"}
MAX_IOCS = 40


def render_report(report: Report, console: Console) -> None:
    style = VERDICT_STYLE.get(report.verdict.value, "")
    took = report.timings_ms.get("total", 0.0)
    console.print(f"[bold]analysis[/] (analyzer {report.analyzer_version}, "
                  f"{report.created:%Y-%m-%d %H:%M} UTC, {took:.0f} ms)")
    console.print(f"{'verdict':>15}: [{style}]{report.verdict.value}[/]")
    for reason in report.verdict.reasons:
        console.print(f"{'':>15}  - {reason.weight}: {for_console(reason.detail)}")
    console.print(f"{'identity':>15}: {for_console(report.identity.description)}")
    if report.identity.magic:
        console.print(f"{'libmagic':>15}: {for_console(report.identity.magic)}")
    if report.family:
        console.print(f"{'family':>15}: {for_console(report.family.name)} "
                      f"({report.family.source}: {for_console(report.family.reason)})")
    packer = report.packer
    console.print(f"{'packer':>15}: " + (for_console(packer.name) if packer.packed
                                         else "not packed"))
    for why in packer.evidence:
        console.print(f"{'':>15}  - {for_console(why)}")
    for child in report.unpacked:
        console.print(f"{'unpacked to':>15}: {child}")
    if report.pe:
        pe = report.pe
        console.print(f"{'PE':>15}: {pe.machine}, {pe.subsystem}, compiled "
                      f"{pe.compile_time or '?'}, {len(pe.sections)} sections, "
                      f"{pe.import_count} imports, imphash {report.hashes.imphash or '-'}")
        if pe.anomalies:
            console.print(f"{'anomalies':>15}: " + for_console(", ".join(pe.anomalies)))
        table = Table("section", "raw size", "virtual size", "entropy", "flags")
        for s in pe.sections:
            table.add_row(for_console(s.name), str(s.raw_size), str(s.virtual_size),
                          f"{s.entropy:.2f}", ",".join(s.flags))
        console.print(table)
    if report.elf:
        elf = report.elf
        console.print(f"{'ELF':>15}: {elf.bits}-bit {elf.endianness} {elf.machine} {elf.type}, "
                      f"{'static' if elf.static else 'dynamic'}, "
                      f"{'stripped' if elf.stripped else 'not stripped'}, "
                      f"{len(elf.sections)} sections, {len(elf.segments)} segments")
        if elf.anomalies:
            console.print(f"{'anomalies':>15}: " + for_console(", ".join(elf.anomalies)))
    console.print(f"{'ssdeep':>15}: {report.hashes.ssdeep or '-'}")
    console.print(f"{'tlsh':>15}: {report.hashes.tlsh or '-'}")
    console.print(f"{'strings':>15}: {report.strings.ascii} ASCII, {report.strings.utf16} "
                  "UTF-16LE")
    for match in report.yara:
        meta = "; ".join(f"{k}: {match.meta[k]}" for k in ("author", "reference",
                                                          "description") if match.meta.get(k))
        console.print(f"{'YARA':>15}: {for_console(match.pack)}:{for_console(match.rule)}"
                      + (f" ({for_console(meta)})" if meta else ""))
    for config in report.configs:
        console.print(f"{'config':>15}: {for_console(config.family)} via "
                      f"{for_console(config.extractor)}: {for_console(str(config.config))[:300]}")
    if report.iocs:
        table = Table("IOC", "value", "offset", "encoding")
        for ioc in report.iocs[:MAX_IOCS]:
            value = ioc.value + (f":{ioc.port}" if ioc.port else "")
            table.add_row(ioc.type, for_console(value), f"{ioc.offset:#x}", ioc.encoding)
        console.print(table)
        if len(report.iocs) > MAX_IOCS:
            console.print(f"... {len(report.iocs) - MAX_IOCS} more IOCs (--json shows all)")
    for error in report.errors:
        console.print(f"{'error':>15}: [red]{error.stage}[/]: {for_console(error.message)}")
