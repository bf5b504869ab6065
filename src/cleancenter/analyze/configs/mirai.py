"""Mirai's string table: the C&C and report (scan callback) servers and ports.

The encoding, as in Mirai's public source (``bot/table.c``)::

    uint32_t table_key = 0xdeadbeef;
    add_entry(TABLE_CNC_DOMAIN, "\\x41\\x4C\\x41\\x0C...\\x22", 30);
    add_entry(TABLE_CNC_PORT, "\\x22\\x35", 2);              // port 23
    add_entry(TABLE_SCAN_CB_DOMAIN, "\\x50\\x47\\x52...\\x22", 29);
    add_entry(TABLE_SCAN_CB_PORT, "\\x99\\xC7", 2);          // port 48101
    ...
    toggle_obf(id): for each byte: b ^= k1; b ^= k2; b ^= k3; b ^= k4;
                    (k1..k4 the bytes of table_key)

XORing every byte with 0xef, 0xbe, 0xad and 0xde in turn is one XOR with
0xde ^ 0xad ^ 0xbe ^ 0xef = 0x22. So in the file:

- a string entry is its text *and its NUL terminator* XORed with 0x22 (the NUL becomes
  ``0x22``), followed by the NUL the C compiler adds to every literal: ``enc(text) 22 00``;
- a port entry is the port as 2 bytes big-endian (network order) XORed with 0x22, followed
  by the compiler's NUL: 23 is ``00 17`` -> ``22 35 00``; 48101 is ``bb e5`` -> ``99 c7 00``;
- literals sit in ``.rodata`` in the order ``table_init`` adds them (NUL padding for
  alignment may come between): C&C domain, C&C port, report domain, report port, then
  the rest (``listening tun0``, ``/proc/``, ``/exe``, ``/dev/watchdog``...).

The extractor decodes every ``enc(text) 22 00`` entry (printable text, 3+ characters),
takes the first two that are hosts (a domain under a real public suffix, or an IPv4
address) as the C&C and the report server, and a port entry right after each. A
configuration needs a host and either its port entry or a known table string (`MARKERS`)
next to it in the file: Mirai's own strings, decoded. The scan ports (telnet 23 and 2323
in ``scanner.c``) are code constants, not table entries, and are not reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maco.model import ConnUsageEnum, ExtractorModel  # type: ignore[import-untyped,unused-ignore]

from cleancenter.analyze.configs import Context
from cleancenter.analyze.configs._hosts import host_kind

FAMILY = "Mirai"
COMMUNITY_PATTERNS = ("*mirai*",)
TABLE_KEY = 0xDEADBEEF
XOR_BYTE = (TABLE_KEY >> 24) ^ ((TABLE_KEY >> 16) & 0xFF) ^ ((TABLE_KEY >> 8) & 0xFF) ^ (
    TABLE_KEY & 0xFF)  # 0x22
MAX_ENTRY = 255
MAX_PAD = 16  # NUL bytes of alignment between two literals
MAX_DECODED = 200  # decoded strings kept in the config

MARKERS = frozenset([
    "/proc/", "/exe", "/fd", "/maps", "/proc/net/tcp", "/dev/watchdog",
    "/dev/misc/watchdog", "listening tun0", "TSource Engine Query", "/etc/resolv.conf",
    "nameserver ", "ncorrect", "/bin/busybox ", "enable", "system", "shell", "sh",
    "/bin/busybox MIRAI", "MIRAI: applet not found", "assword", "ogin", "enter",
    "/proc/cpuinfo", "BOGOMIPS", "/etc/rc.d/rc.local", "g1abc4dmo35hnp2lie0kjf",
    "/dev/FTWDT101_watchdog", "/dev/FTWDT101\\ watchdog",
])
NEAR = 4096  # bytes: how close a host must sit to a marker (the table is one block)

_PRINTABLE = bytes(range(0x20, 0x7F))


def _xor_table(key: int) -> bytes:
    return bytes(b ^ key for b in range(256))


@dataclass(frozen=True, slots=True)
class Entry:
    start: int  # file offset of the first encoded byte
    end: int  # just past the literal's NUL
    text: str


def decode_entries(data: bytes, key: int = XOR_BYTE) -> list[Entry]:
    """Every ``enc(text) key 00`` string entry of ``data``, in file order."""
    decoded = data.translate(_xor_table(key))
    entries: list[Entry] = []
    terminator = re.compile(re.escape(bytes([key, 0])))
    last_end = 0
    for m in terminator.finditer(data):
        p = m.start()
        start = p
        floor = max(last_end, p - MAX_ENTRY)
        # walk back over decoded printable bytes; an original NUL or terminator ends it
        while start > floor and decoded[start - 1] in _PRINTABLE and data[start - 1] not in (
                0, key):
            start -= 1
        if p - start >= 3:
            entries.append(Entry(start, p + 2, decoded[start:p].decode("latin-1")))
            last_end = p + 2
    return entries


def port_after(data: bytes, pos: int, key: int = XOR_BYTE) -> int | None:
    """The port entry (``enc(hi) enc(lo) 00``) at ``pos``, after NUL padding, or None."""
    p = pos
    limit = min(len(data), pos + MAX_PAD)
    while p < limit and data[p] == 0:
        p += 1
    if p + 3 > len(data) or data[p] == 0 or data[p + 1] == 0 or data[p + 2] != 0:
        return None
    port = ((data[p] ^ key) << 8) | (data[p + 1] ^ key)
    return port if 0 < port < 65536 else None


def _table_strings(entries: list[Entry], servers: list[Entry],
                   markers: list[Entry]) -> list[str]:
    """The decoded entries of the table block: near a server or a marker."""
    anchors = [e.start for e in (*servers, *markers)]
    kept = [e.text for e in entries if any(abs(e.start - a) < NEAR for a in anchors)]
    return kept[:MAX_DECODED]


def extract(ctx: Context) -> ExtractorModel | None:
    data = ctx.data
    entries = decode_entries(data)
    if not entries:
        return None
    markers = [e for e in entries if e.text in MARKERS]
    servers: list[tuple[Entry, str, int | None]] = []  # entry, "ip"|"domain", port
    for e in entries:
        kind = host_kind(e.text)
        if kind is None:
            continue
        port = port_after(data, e.end)
        if port is None and not any(abs(m.start - e.start) < NEAR for m in markers):
            continue
        servers.append((e, kind, port))
        if len(servers) == 2:
            break
    if not servers:
        return None

    tcp: list[ExtractorModel.Connection] = []
    info: dict[str, object] = {"table_key": f"0x{TABLE_KEY:08x}",
                               "xor_byte": f"0x{XOR_BYTE:02x}"}
    for (entry, host, port), (role, usage) in zip(
            servers, (("cnc", ConnUsageEnum.c2), ("report", ConnUsageEnum.upload)),
            strict=False):
        conn = ExtractorModel.Connection(server_port=port, usage=usage)
        if host == "ip":
            conn.server_ip = entry.text
        else:
            conn.server_domain = entry.text
        tcp.append(conn)
        info[role] = entry.text
        info[f"{role}_port"] = port
        info[f"{role}_offset"] = entry.start
    return ExtractorModel(
        family=FAMILY,
        category=["bot", "ddos"],
        tcp=tcp,
        decoded_strings=_table_strings(entries, [s[0] for s in servers], markers),
        encryption=[ExtractorModel.Encryption(
            algorithm="xor", key=f"0x{TABLE_KEY:08x}", usage="config",
            constants=[f"0x{XOR_BYTE:02x}"])],
        other={"mirai": info},
    )
