"""Analyze: static analysis of every sample, never running it.

Extractors (identify, hashes, pe, elf, strings, iocs, yara) say what a file *has*; the
conclusion steps (packers, family, verdict) say what we *conclude* from that. They meet in
`report.Report`.
"""
