"""Lease log readers: real Kea dumps, synthetic samples of the other formats, bad input."""

from __future__ import annotations

import gzip
import ipaddress
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cleancenter.notify.isp.correlate import LeaseIndex
from cleancenter.notify.isp.leases import (
    FORMATS,
    OPEN_NS,
    Lease,
    LeaseColumns,
    LeaseError,
    LeaseItem,
    detect_format,
    open_leases,
    read_columns,
)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def read(path: Path, fmt: str | None = None) -> tuple[list[Lease], list[LeaseError]]:
    leases: list[Lease] = []
    errors: list[LeaseError] = []
    item: LeaseItem
    for item in open_leases(path, fmt):
        if isinstance(item, Lease):
            leases.append(item)
        else:
            errors.append(item)
    return leases, errors


def by_ip(leases: list[Lease]) -> dict[str, Lease]:
    return {lease.ip: lease for lease in leases}


# ---------------------------------------------------------------- Kea, real dumps

def test_kea4_reference_dump(corpus: Path) -> None:
    path = corpus / "formats" / "kea" / "lease4_dump_test.reference.csv"
    rows = len(path.read_text().splitlines()) - 1
    leases, errors = read(path)
    assert errors == []
    assert len(leases) == rows == 3
    got = by_ip(leases)
    one = got["0.0.0.10"]
    assert one.subscriber == "32:30" and one.hostname == "one.example.com"
    assert one.end == datetime.fromtimestamp(1642000000, UTC)
    assert one.start == datetime.fromtimestamp(1642000000 - 40, UTC)
    assert one.source == f"{path}:2"
    assert got["0.0.0.11"].subscriber == "31:32:33"
    assert got["0.0.0.12"].hostname == "three,example,com"
    assert detect_format(path.read_bytes()) == "kea"


def test_kea6_reference_dump(corpus: Path) -> None:
    path = corpus / "formats" / "kea" / "lease6_dump_test.reference.csv"
    rows = len(path.read_text().splitlines()) - 1
    leases, errors = read(path)
    assert errors == []
    assert len(leases) == rows == 4
    got = by_ip(leases)
    assert set(got) == {"::10", "::11", "::12", "::13"}
    assert got["::10"].subscriber == "32:30:33"  # the DUID
    assert got["::12"].hostname == "three,example,com"
    assert got["::13"].end == datetime.fromtimestamp(1700000000, UTC)
    assert got["::13"].start == datetime.fromtimestamp(1700000000 - 30, UTC)


def test_kea_bad_rows_are_errors_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "kea-leases4.csv"
    path.write_bytes(
        b"address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,"
        b"hostname,state,user_context,pool_id\n"
        b"10.0.0.1,aa:bb:cc:00:00:01,,3600,1795654800,1,0,0,a&#x2cb,0,,0\n"
        b"10.0.0.2,aa:bb:cc:00:00:02,,3600,1795654800,1,0,0\n"  # malformed: too few fields
        b"10.0.0.3,aa:bb:cc:00:00:03,,soon,1795654800,1,0,0,,0,,0\n"  # bad time
        b"10.0.0.300,aa:bb:cc:00:00:04,,3600,1795654800,1,0,0,,0,,0\n"  # bad address
        b"10.0.0.5,aa:bb:cc:00:00:05,,3600,1795654800,1,0,0,h\xff,0,,0\n"  # not UTF-8
        b"10.0.0.6,,01:02,4294967295,1795654800,1,0,0,,0,,0\n"  # infinite, client-id
    )
    leases, errors = read(path)
    assert [e.location for e in errors] == [f"{path}:{n}" for n in (3, 4, 5, 6)]
    assert "fields" in errors[0].reason and "invalid UTF-8" in errors[3].reason
    got = by_ip(leases)
    assert set(got) == {"10.0.0.1", "10.0.0.6"}
    assert got["10.0.0.1"].hostname == "a,b"
    assert got["10.0.0.6"].end is None and got["10.0.0.6"].subscriber == "01:02"


def test_kea_renewals_are_one_lease_and_a_new_client_supersedes(tmp_path: Path) -> None:
    path = tmp_path / "kea.csv"
    path.write_text(
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,"
        "hostname,state,user_context\n"
        "10.0.0.1,aa,,3600,1795654800,1,0,0,,0,\n"  # 00:00-01:00
        "10.0.0.1,aa,,3600,1795656600,1,0,0,,0,\n"  # renewed at 00:30 -> 01:30
        "10.0.0.1,bb,,3600,1795660800,1,0,0,,0,\n"  # another client from 01:40
    )
    leases, errors = read(path)
    assert errors == []
    assert [(x.subscriber, x.start, x.end, x.source.rsplit(":", 1)[1]) for x in leases] == [
        ("aa", t("2026-11-26 00:00:00"), t("2026-11-26 01:30:00"), "2"),
        ("bb", t("2026-11-26 01:40:00"), t("2026-11-26 02:40:00"), "4"),
    ]


# ---------------------------------------------------------------- ISC dhcpd.leases

DHCPD = """\
# The format of this file is documented in the dhcpd.leases(5) manual page.
# This lease file was written by isc-dhcp-4.4.3

authoring-byte-order little-endian;

lease 10.0.0.5 {
  starts 4 2026/11/26 01:00:00;
  ends 4 2026/11/26 02:00:00;
  cltt 4 2026/11/26 01:00:00;
  binding state active;
  next binding state free;
  hardware ethernet 00:16:3E:00:00:05;
  uid "\\001\\000\\026>\\000\\000\\005";
  client-hostname "pc-5";
}
lease 10.0.0.6 {
  starts epoch 1795651200; # Thu Nov 26 00:00:00 2026
  ends never;
  binding state active;
  uid "\\001abc";
}
lease 10.0.0.5 {
  starts 4 2026/11/26 01:00:00;
  ends 4 2026/11/26 01:20:00;
  binding state free;
  hardware ethernet 00:16:3e:00:00:05;
}
lease 10.0.0.5 {
  starts 4 2026/11/26 03:00:00;
  ends 4 2026/11/26 04:00:00;
  binding state active;
  hardware ethernet 00:16:3e:00:00:99;
}
"""


def test_dhcpd_leases(tmp_path: Path) -> None:
    path = tmp_path / "dhcpd.leases"
    path.write_text(DHCPD)
    leases, errors = read(path)
    assert errors == []
    assert detect_format(path.read_bytes()) == "dhcpd"
    got = sorted((x.ip, x.start, x.end, x.subscriber, x.hostname, x.source) for x in leases)
    assert got == [
        ("10.0.0.5", t("2026-11-26 01:00:00"), t("2026-11-26 01:20:00"),  # released early
         "00:16:3e:00:00:05", "pc-5", f"{path}:6"),
        ("10.0.0.5", t("2026-11-26 03:00:00"), t("2026-11-26 04:00:00"),
         "00:16:3e:00:00:99", None, f"{path}:28"),
        ("10.0.0.6", t("2026-11-26 00:00:00"), None, '"\\001abc"', None, f"{path}:16"),
    ]


def test_dhcpd_truncated_last_block_bad_time_and_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "dhcpd.leases"
    path.write_bytes(
        b"lease 10.0.0.1 {\n"
        b"  starts 4 2026/11/26 01:00:00;\n"
        b"  ends 4 2026/13/26 02:00:00;\n"  # 3: bad timestamp (month 13)
        b"  hardware ethernet 00:00:00:00:00:01;\n"
        b"}\n"
        b"lease 10.0.0.2 {\n"
        b"  starts 4 2026/11/26 01:00:00;\n"
        b"  this is not a statement\n"  # 8: malformed line, the block still counts
        b"  ends 4 2026/11/26 02:00:00;\n"
        b"  hardware ethernet 00:00:00:00:00:02;\n"
        b"  client-hostname \"caf\xe9\";\n"  # 11: not UTF-8
        b"}\n"
        b"lease 10.0.0.3 {\n"
        b"  starts 4 2026/11/26 01:00:00;\n"
        b"  ends 4 2026/11/26 02:00:00;\n"
        b"  hardware ethernet 00:00:00:00:00:03;\n"
        b"}\n"
        b"lease 10.0.0.4 {\n"  # 18: truncated at the end of the file
        b"  starts 4 2026/11/26 01:00:00;\n"
        b"  ends 4 2026/11",
    )
    leases, errors = read(path)
    assert [e.line_no for e in errors] == [3, 8, 11, 20, 18]  # 20: the cut line
    assert "bad time" in errors[0].reason
    assert "invalid UTF-8" in errors[2].reason
    assert "truncated" in errors[4].reason
    assert all(e.location.startswith(f"{path}:") for e in errors)
    assert sorted(x.ip for x in leases) == ["10.0.0.3"]  # .2 had a bad byte: block dropped


# ---------------------------------------------------------------- FreeRADIUS radacct CSV

RADACCT = """\
radacctid,acctsessionid,acctuniqueid,username,nasipaddress,acctstarttime,acctupdatetime,\
acctstoptime,acctsessiontime,callingstationid,framedipaddress,framedipv6address,\
delegatedipv6prefix
1,s1,u1,alice,192.0.2.1,2026-11-26 01:00:00+00,,2026-11-26 02:00:00+00,3600,\
00-11-22-33-44-55,100.80.0.1,,
2,s2,u2,bob,192.0.2.1,2026-11-26 03:00:00+09,,,,66-11-22-33-44-55,100.80.0.2,\
2001:db8::2,2001:db8:100::/56
3,s3,u3,"carol, jr",192.0.2.1,2026-11-26 01:00:00,,NULL,,,100.80.0.3,,
4,s4,u4,dave,192.0.2.1,yesterday,,,,,100.80.0.4,,
5,s5,u5,erin,192.0.2.1,2026-11-26 01:00:00,,2026-11-26 00:00:00,,,100.80.0.5,,
6,s6,u6,,192.0.2.1,2026-11-26 01:00:00,,0000-00-00 00:00:00,,aa-bb,100.80.0.6,,
7,s7,u7,frank,192.0.2.1,2026-11-26 01:00:00
"""


def test_radacct_csv(tmp_path: Path) -> None:
    path = tmp_path / "radacct.csv"
    path.write_text(RADACCT)
    assert detect_format(path.read_bytes()) == "radacct"
    leases, errors = read(path)
    assert [(e.line_no, e.reason) for e in errors] == [
        (5, "bad timestamp 'yesterday'"),
        (6, "acctstoptime before acctstarttime"),
        (8, "6 fields, the header has 13"),
    ]
    got = [(x.ip, x.start, x.end, x.subscriber, x.source) for x in leases]
    assert got == [
        ("100.80.0.1", t("2026-11-26 01:00:00"), t("2026-11-26 02:00:00"), "alice",
         f"{path}:2"),
        ("100.80.0.2", t("2026-11-25 18:00:00"), None, "bob", f"{path}:3"),
        ("2001:db8::2", t("2026-11-25 18:00:00"), None, "bob", f"{path}:3"),
        ("2001:db8:100::/56", t("2026-11-25 18:00:00"), None, "bob", f"{path}:3"),
        ("100.80.0.3", t("2026-11-26 01:00:00"), None, "carol, jr", f"{path}:4"),
        ("100.80.0.6", t("2026-11-26 01:00:00"), None, "aa-bb", f"{path}:7"),
    ]


def test_radacct_non_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "radacct.csv"
    lines = RADACCT.encode().splitlines(keepends=True)[:3]
    path.write_bytes(lines[0] + b"9,s9,u9,m\xfcller,192.0.2.1,2026-11-26 01:00:00,,,,,"
                     b"100.80.0.9,,\n" + lines[1] + lines[2])
    leases, errors = read(path)
    assert [(e.line_no, e.reason[:13]) for e in errors] == [(2, "invalid UTF-8")]
    assert [x.source for x in leases] == [f"{path}:3"] + [f"{path}:4"] * 3


# ---------------------------------------------------------------- FreeRADIUS detail

DETAIL = """\
Thu Nov 26 01:00:00 2026
\tAcct-Status-Type = Start
\tUser-Name = "alice"
\tAcct-Session-Id = "0001"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 100.80.0.1
\tEvent-Timestamp = "Nov 26 2026 01:00:00 UTC"
\tTimestamp = 1795654800

Thu Nov 26 01:05:00 2026
\tAcct-Status-Type = Start
\tUser-Name = "bob"
\tAcct-Session-Id = "0002"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 100.80.0.2
\tEvent-Timestamp = 1795655100

Thu Nov 26 01:10:00 2026
\tAcct-Status-Type = Interim-Update
\tAcct-Session-Id = "0001"
\tNAS-IP-Address = 192.0.2.1
\tTimestamp = 1795655400

Thu Nov 26 01:30:00 2026
\tAcct-Status-Type = Stop
\tUser-Name = "carol"
\tAcct-Session-Id = "0099"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 100.80.0.9
\tAcct-Session-Time = 600
\tTimestamp = 1795656600

Thu Nov 26 01:40:00 2026
\tAcct-Status-Type = Stop
\tUser-Name = "alice"
\tAcct-Session-Id = "0001"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 100.80.0.1
\tEvent-Timestamp = "Nov 26 2026 01:40:00 UTC"

Thu Nov 26 01:45:00 2026
\tAcct-Status-Type = Start
\tthis line is broken
\tUser-Name = "dave"
\tAcct-Session-Id = "0003"
\tFramed-IP-Address = 100.80.0.3
\tEvent-Timestamp = "Nov 26 2026 25:45:00 UTC"

Thu Nov 26 01:50:00 2026
\tAcct-Status-Type = Stop
\tAcct-Session-Id = "0077"
\tEvent-Timestamp = 1795657800
"""


def test_radius_detail(tmp_path: Path) -> None:
    path = tmp_path / "detail-20261126"
    path.write_text(DETAIL)
    assert detect_format(path.read_bytes()) == "radius-detail"
    leases, errors = read(path)
    assert [(e.line_no, e.reason.split(" ")[0]) for e in errors] == [
        (24, "Stop"),  # carol: Stop without Start (the lease is rebuilt from Session-Time)
        (43, "not"),  # the broken attribute line
        (41, "bad"),  # dave's Event-Timestamp hour 25: the record is dropped
        (49, "Stop"),  # Stop without Start and no session time: nothing to rebuild
    ]
    assert "without a Start" in errors[0].reason
    got = [(x.ip, x.start, x.end, x.subscriber, x.source) for x in leases]
    assert got == [
        ("100.80.0.9", t("2026-11-26 01:20:00"), t("2026-11-26 01:30:00"), "carol",
         f"{path}:24"),
        ("100.80.0.1", t("2026-11-26 01:00:00"), t("2026-11-26 01:40:00"), "alice",
         f"{path}:1"),
        ("100.80.0.2", t("2026-11-26 01:05:00"), None, "bob", f"{path}:10"),  # still open
    ]


def test_radius_detail_accounting_off_ends_the_nas_sessions(tmp_path: Path) -> None:
    path = tmp_path / "detail"
    path.write_text(
        DETAIL.split("\n\n")[1] + "\n\n"
        "Thu Nov 26 02:00:00 2026\n\tAcct-Status-Type = Accounting-Off\n"
        "\tNAS-IP-Address = 192.0.2.1\n\tTimestamp = 1795658400\n"
    )
    leases, errors = read(path)
    assert errors == []
    assert [(x.subscriber, x.end) for x in leases] == [("bob", t("2026-11-26 02:00:00"))]


# ---------------------------------------------------------------- CGNAT port blocks

CGNAT = """\
# time action inside public ports [subscriber]
2026-11-26T01:00:00Z ALLOC 100.64.0.5 203.0.113.7 1024-2047
2026-11-26T01:00:00Z ALLOC 100.64.0.6 203.0.113.7 2048-3071 sub-0006
2026-11-26T01:30:00Z RELEASE 100.64.0.5 203.0.113.7 1024-2047
2026-11-26T01:31:00Z RELEASE 100.64.0.9 203.0.113.7 4096-5119
2026-11-26T01:32:00Z ALLOC 100.64.0.7 203.0.113.7 5000-4000
2026-11-26T99:00:00Z ALLOC 100.64.0.8 203.0.113.8 1024-2047
garbage
2026-11-26T01:40:00Z ALLOC 100.64.0.5 203.0.113.7 1024-2047
"""


def test_cgnat(tmp_path: Path) -> None:
    path = tmp_path / "cgnat.log"
    path.write_text(CGNAT)
    assert detect_format(path.read_bytes()) == "cgnat"
    leases, errors = read(path)
    assert [(e.line_no, e.reason.split(" ")[0]) for e in errors] == [
        (5, "RELEASE"), (6, "bad"), (7, "bad"), (8, "1"),
    ]
    got = [(x.ip, x.port_start, x.port_end, x.start, x.end, x.subscriber, x.source)
           for x in leases]
    assert got == [
        ("203.0.113.7", 1024, 2047, t("2026-11-26 01:00:00"), t("2026-11-26 01:30:00"),
         "100.64.0.5", f"{path}:2"),
        ("203.0.113.7", 2048, 3071, t("2026-11-26 01:00:00"), None, "sub-0006", f"{path}:3"),
        ("203.0.113.7", 1024, 2047, t("2026-11-26 01:40:00"), None, "100.64.0.5",
         f"{path}:9"),
    ]


# ---------------------------------------------------------------- detection and API

def test_unknown_format_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    leases, errors = read(path)
    assert leases == []
    assert [e.location for e in errors] == [f"{path}:1"]
    with pytest.raises(ValueError, match="unknown lease format"):
        open_leases(path, "csv")


def test_explicit_format_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cgnat.log.gz"
    path.write_bytes(gzip.compress(CGNAT.encode()))
    auto = read(path)
    explicit = read(path, "cgnat")
    assert auto == explicit and len(auto[0]) == 3
    # the wrong explicit format: every line is an error, nothing crashes
    leases, errors = read(tmp_path / "cgnat.log.gz", "kea")
    assert leases == [] and [e.line_no for e in errors] == [1]
    assert set(FORMATS) == {"dhcpd", "kea", "radacct", "radius-detail", "cgnat"}


# ---------------------------------------------------------------- fast paths and fallbacks
# The one-line-per-record readers (Kea, radacct, CGNAT) read the file in blocks, split
# rows themselves, test IPv4 addresses with `socket.inet_pton` and parse times inline;
# anything unusual goes the old way (`csv`, `ipaddress`, `parse_iso`). Each test below
# pins the answer of both ways with concrete values.

KEA4_HEAD = (b"address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,"
             b"hostname,state,user_context,pool_id")


def leases_and_errors(path: Path, fmt: str) -> tuple[list[tuple[object, ...]],
                                                      list[tuple[int, str]]]:
    leases, errors = read(path, fmt)
    return ([(x.ip, x.start, x.end, x.subscriber, x.source.rsplit(":", 1)[1], x.hostname,
              x.port_start, x.port_end) for x in leases],
            [(e.line_no, e.reason) for e in errors])


@pytest.mark.parametrize("block", [1, 5, 64, 1 << 20])
def test_block_boundaries_do_not_change_the_answer(tmp_path: Path, block: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks cut lines (and a multi-line quoted field) anywhere: the same items."""
    files = {
        "kea": KEA4_HEAD + b"\r\n10.0.0.1,aa,,3600,1795654800,1,0,0,h\xff,0,,0\r\n\r\n"
               b"10.0.0.2,bb,,3600,1795654800,1,0,0,a&#x2cb,0,,0",
        "radacct": RADACCT.replace("\n", "\r\n").encode()
                   + b'8,s8,u8,"multi\r\nline",192.0.2.1,2026-11-26 01:00:00,,,,,'
                     b"100.80.0.8,,",
        "cgnat": CGNAT.encode() + b"2026-11-26T01:50:00Z RELEASE 100.64.0.5 203.0.113.7 "
                                  b"1024-2047",
    }
    from cleancenter.notify.isp import leases as module

    for fmt, data in files.items():
        path = tmp_path / fmt
        path.write_bytes(data)
        expected = leases_and_errors(path, fmt)
        monkeypatch.setattr(module, "_BLOCK", block)
        assert leases_and_errors(path, fmt) == expected
        monkeypatch.undo()
    assert leases_and_errors(tmp_path / "kea", "kea") == (
        [("10.0.0.2", t("2026-11-26 00:00:00"), t("2026-11-26 01:00:00"), "bb", "4", "a,b",
          None, None)],
        [(2, "invalid UTF-8 at byte 36")])
    rad, _ = leases_and_errors(tmp_path / "radacct", "radacct")
    assert rad[-1][:5] == ("100.80.0.8", t("2026-11-26 01:00:00"), None, "multi\r\nline",
                           "10")


def test_kea_crlf_truncated_last_line_and_odd_addresses(tmp_path: Path) -> None:
    path = tmp_path / "kea.csv"
    path.write_bytes(
        KEA4_HEAD + b"\r\n"
        b"2001:DB8:0::1,aa,,3600,1795654800,1,0,0,h1,0,,0\r\n"  # IPv6 in a v4 file: kept
        b"010.0.0.2,bb,,3600,1795654800,1,0,0,,0,,0\r\n"  # leading zero: not an address
        b"10.0.0.4,dd,,3600,1795654800,1,0,0,x&#x41y&#x2cz,0,,0\r\n"
        b"10.0.0.5,ee,,4294967295,1795654800,1,0,0,,0,,0"  # no line end: still read
    )
    leases, errors = leases_and_errors(path, "kea")
    assert errors == [(3, "not an IP address: '010.0.0.2'")]
    assert leases == [
        ("2001:db8::1", t("2026-11-26 00:00:00"), t("2026-11-26 01:00:00"), "aa", "2", "h1",
         None, None),
        ("10.0.0.4", t("2026-11-26 00:00:00"), t("2026-11-26 01:00:00"), "dd", "4", "xAy,z",
         None, None),
        ("10.0.0.5", datetime.fromtimestamp(1795654800 - 0xFFFFFFFF, UTC), None, "ee", "5",
         None, None, None),
    ]


def test_kea_times_out_of_range_and_bad_numbers(tmp_path: Path) -> None:
    path = tmp_path / "kea.csv"
    path.write_bytes(
        KEA4_HEAD + b"\n"
        b"10.0.0.1,aa,,3600,99999999999999,1,0,0,,0,,0\n"  # year > 9999
        b"10.0.0.2,aa,,-1,1795654800,1,0,0,,0,,0\n"
        b"10.0.0.3,aa,,\xc2\xb2,1795654800,1,0,0,,0,,0\n"  # superscript two: not a number
        b"10.0.0.4,aa,,3600,1795654799,1,0,0,,0,,0\n"
    )
    leases, errors = leases_and_errors(path, "kea")
    assert errors == [(2, "time out of range: 99999999996399"),
                      (3, "negative time: -1, 1795654800"),
                      (4, "bad valid_lifetime/expire '²', '1795654800'")]
    assert leases == [("10.0.0.4", t("2026-11-25 23:59:59"), t("2026-11-26 00:59:59"), "aa",
                       "5", None, None, None)]


def test_kea6_prefix_and_address_rows(tmp_path: Path) -> None:
    head = (b"address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,"
            b"prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,"
            b"hwaddr_source,pool_id")
    path = tmp_path / "kea6.csv"
    path.write_bytes(head + b"\n"
                     b"2001:db8:1::,00:01,3600,1795654800,1,900,2,1,56,0,0,,,0,,0,0,0\n"
                     b"2001:DB8::10,00:02,3600,1795654800,1,900,0,1,128,0,0,,,0,,0,0,0\n"
                     b"2001:db8::10,00:02,3600,1795656600,1,900,0,1,128,0,0,,,0,,0,0,0\n")
    leases, errors = leases_and_errors(path, "kea")
    assert errors == []
    assert leases == [
        ("2001:db8:1::/56", t("2026-11-26 00:00:00"), t("2026-11-26 01:00:00"), "00:01", "2",
         None, None, None),
        # the renewal (address spelled differently) continues the same lease
        ("2001:db8::10", t("2026-11-26 00:00:00"), t("2026-11-26 01:30:00"), "00:02", "3",
         None, None, None),
    ]


RADACCT_HEAD = ("radacctid,username,acctstarttime,acctstoptime,callingstationid,"
                "framedipaddress,framedipv6address")


def test_radacct_quoted_rows_give_what_plain_rows_give(tmp_path: Path) -> None:
    """A row with quotes goes through `csv`; the same row without them is split."""
    plain = "1,alice,2026-11-26 01:00:00,2026-11-26 02:00:00,aa,100.80.0.1,2001:db8::1"
    quoted = '"1","alice","2026-11-26 01:00:00","2026-11-26 02:00:00","aa","100.80.0.1",' \
             '"2001:db8::1"'
    got = []
    for i, row in enumerate((plain, quoted)):
        path = tmp_path / f"r{i}.csv"
        path.write_text(f"{RADACCT_HEAD}\n{row}\n")
        got.append(leases_and_errors(path, "radacct"))
    assert got[0] == got[1] == ([
        ("100.80.0.1", t("2026-11-26 01:00:00"), t("2026-11-26 02:00:00"), "alice", "2",
         None, None, None),
        ("2001:db8::1", t("2026-11-26 01:00:00"), t("2026-11-26 02:00:00"), "alice", "2",
         None, None, None),
    ], [])


def test_radacct_fast_path_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "radacct.csv"
    path.write_bytes((
        RADACCT_HEAD + "\r\n"
        '1,"smith, j",2026-11-26 01:00:00.25Z,,,100.80.0.1,\r\n'  # quoted comma; fraction
        "2,bob,2026-11-26T03:00:00+02:30,2026-11-26 01:00:00.000001,,2001:DB8::5,\r\n"
        "3,carol,2026-11-26 01:00:00,,,100.80.0.300,\r\n"  # bad address
        '5,"erin\r\nsecond line",2026-11-26 01:00:00,\\N,,100.80.0.5,\r\n'  # two lines
        "6,,2026-11-26 01:00:00,NULL,cc-dd,100.80.0.6,\r\n"
        "7,\xe9ve,2026-11-26 01:00:00,,,100.80.0.7,\r\n"
        '8,frank,2026-11-26 01:00:00,,,100.80.0.8,"2001:db8::8'  # cut off: csv reads it
    ).encode("utf-8").replace(b"\xc3\xa9ve", b"\xe9ve"))
    leases, errors = leases_and_errors(path, "radacct")
    assert errors == [
        (4, "not an IP address: '100.80.0.300'"),
        (8, "invalid UTF-8 at byte 2"),
    ]
    start = datetime(2026, 11, 26, 1, 0, 0, 250000, UTC)
    assert leases == [
        ("100.80.0.1", start, None, "smith, j", "2", None, None, None),
        ("2001:db8::5", t("2026-11-26 00:30:00"),
         datetime(2026, 11, 26, 1, 0, 0, 1, UTC), "bob", "3", None, None, None),
        ("100.80.0.5", t("2026-11-26 01:00:00"), None, "erin\r\nsecond line", "6", None,
         None, None),
        ("100.80.0.6", t("2026-11-26 01:00:00"), None, "cc-dd", "7", None, None, None),
        # the last line: an unterminated quote at the end of the file ends the field there
        ("100.80.0.8", t("2026-11-26 01:00:00"), None, "frank", "9", None, None, None),
        ("2001:db8::8", t("2026-11-26 01:00:00"), None, "frank", "9", None, None, None),
    ]


def test_radacct_tab_separated_with_empty_lines(tmp_path: Path) -> None:
    path = tmp_path / "radacct.tsv"
    path.write_text(RADACCT_HEAD.replace(",", "\t") + "\n\n"
                    "1\talice\t2026-11-26 01:00:00+00\t\t\t100.80.0.1\t\n"
                    "   \n")
    leases, errors = leases_and_errors(path, "radacct")
    assert errors == [(4, "1 fields, the header has 7")]
    assert leases == [("100.80.0.1", t("2026-11-26 01:00:00"), None, "alice", "3", None,
                       None, None)]


def test_cgnat_fast_path_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "cgnat.log"
    path.write_bytes(
        b"2026-11-26T01:00:00Z ALLOC 100.64.0.5 2001:DB8::7 1024-2047\r\n"  # v6 public
        b"2026-11-26T02:00:00+01:00 RELEASE 100.64.0.5 2001:db8::7 1024-2047\r\n"  # offset
        b"2026-11-26T01:00:00.5Z ALLOC 100.64.0.06 203.0.113.7 1024-2047\r\n"  # bad inside
        b"2026-11-26T01:00:00.5Z ALLOC 100.64.0.6 203.0.113.7 1024-2047 s\xff\r\n"
        b"2026-11-26T01:00:00.5Z ALLOC 100.64.0.6 203.0.113.7 01024-2047 sub\r\n"
        b"too few fields\r\n"
        b"2026-11-26T01:10:00Z RELEASE 100.64.0.6 203.0.113.7 1024-02047"  # no line end
    )
    leases, errors = leases_and_errors(path, "cgnat")
    assert errors == [
        (3, "not an IP address: '100.64.0.06'"),
        (4, "invalid UTF-8 at byte 63"),
        (6, "3 fields, expected 5 or 6: 'too few fields\\r\\n'"),
    ]
    assert leases == [
        ("2001:db8::7", t("2026-11-26 01:00:00"), t("2026-11-26 01:00:00"), "100.64.0.5",
         "1", None, 1024, 2047),
        ("203.0.113.7", datetime(2026, 11, 26, 1, 0, 0, 500000, UTC),
         t("2026-11-26 01:10:00"), "sub", "5", None, 1024, 2047),
    ]


def test_cgnat_field_count_error_quotes_the_line_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "cgnat.log"
    path.write_text("a b c\nd e f")
    _, errors = leases_and_errors(path, "cgnat")
    assert errors == [(1, "3 fields, expected 5 or 6: 'a b c\\n'"),
                      (2, "3 fields, expected 5 or 6: 'd e f'")]


@pytest.mark.parametrize("text", [
    "0.0.0.0", "255.255.255.255", "10.0.0.1", "1.2.3.04", "01.2.3.4", "1.2.3.256", "1.2.3",
    "1.2.3.4.", ".1.2.3.4", "1.2.3.4.5", " 1.2.3.4", "1.2.3.4\n", "1..2.3", "1.2.3.4\x00",
    "\u0661.2.3.4", "1.2.3.\u00b2", "::1", "", "1.2.3.4/32", "0x1.2.3.4", "1.2.3.+4",
])
def test_inet_pton_accepts_exactly_the_canonical_ipv4_texts(text: str) -> None:
    """The hot loops trust `socket.inet_pton` to say what `_CANONICAL_V4` says."""
    from cleancenter.notify.isp.leases import _CANONICAL_V4, _inet_pton

    try:
        _inet_pton(socket.AF_INET, text)
        fast = True
    except (OSError, ValueError):
        fast = False
    assert fast == bool(_CANONICAL_V4(text))


def test_detail_non_ascii_digits_are_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "detail"
    path.write_text(DETAIL.split("\n\n")[1].replace("Event-Timestamp = 1795655100",
                                                    "Event-Timestamp = \u00b2") + "\n")
    leases, errors = read(path, "radius-detail")
    assert leases == [] and [(e.line_no, e.reason) for e in errors] == [
        (1, "bad timestamp '²'")]


def test_what_crashed_or_passed_before_is_now_an_error(tmp_path: Path) -> None:
    """Three inputs the readers got wrong before the fast paths: an address with an
    Arabic-Indic digit was taken as an IPv4 address (`\\d` without re.ASCII), a CR
    inside a radacct line stopped the whole read with `csv.Error`, and a superscript
    digit in a CGNAT port range stopped it with ValueError (``str.isdigit``)."""
    kea = tmp_path / "kea.csv"
    kea.write_bytes(KEA4_HEAD + b"\n\xd9\xa1.0.0.3,cc,,3600,1795654800,1,0,0,,0,,0\n")
    assert leases_and_errors(kea, "kea") == ([], [(2, "not an IP address: '\u0661.0.0.3'")])
    rad = tmp_path / "radacct.csv"
    rad.write_bytes(f"{RADACCT_HEAD}\n4,dave,2026-11-26 01:00:00,,,100.80.0.4\r,\n"
                    "5,erin,2026-11-26 01:00:00,,,100.80.0.5,\n".encode())
    assert leases_and_errors(rad, "radacct") == (
        [("100.80.0.5", t("2026-11-26 01:00:00"), None, "erin", "3", None, None, None)],
        [(2, "bad CSV: new-line character seen in unquoted field - do you need to open "
             "the file in universal-newline mode?")])
    cg = tmp_path / "cgnat.log"
    cg.write_text("2026-11-26T01:00:00Z ALLOC 100.64.0.6 203.0.113.7 \u00b2-2047\n")
    assert leases_and_errors(cg, "cgnat") == ([], [(1, "bad port range '²-2047'")])


# ---------------------------------------------------------------- columns

def assert_columns_equal_stream(path: Path, fmt: str | None = None) -> LeaseColumns:
    cols = read_columns(path, fmt)
    leases, errors = read(path, fmt)
    assert list(cols.leases()) == leases
    assert [x.start.tzinfo for x in cols.leases()] == [UTC] * len(leases)
    assert cols.errors == errors
    assert len(cols) == len(leases) == len(list(cols.ip)) == len(list(cols.hostname))
    return cols


def kea_history_file(path: Path) -> None:
    """Renewals, early releases, other clients, infinite lifetimes, odd rows."""
    rows = [KEA4_HEAD.decode()]
    t0 = 1795654800
    for i in range(400):
        addr = f"10.0.{i % 3}.{i % 7}"
        client = ("aa", "bb", "", "cc")[(i * 7) % 4]
        valid = (3600, 600, 4294967295, 60)[i % 4]
        host = ("", "h&#x2c1", "h2", "")[(i * 3) % 4]
        rows.append(f"{addr},{client},{'c1' if i % 5 else ''},{valid},"
                    f"{t0 + (i * 397) % 5000 - 1000},1,0,0,{host},0,,0")
    rows[50] = "10.0.0.300,aa,,3600,1795654800,1,0,0,,0,,0"  # a bad row in one block
    rows[120] = "2001:DB8::1,aa,,3600,1795654800,1,0,0,,0,,0"  # IPv6 in the v4 file
    rows[200] = "10.0.0.1,aa,,3600,1795654800,1,0,0,a&#x41b,0,,0"  # another escape
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("block", [1, 100, 2000, 1 << 20])
def test_kea_columns_equal_the_stream(tmp_path: Path, block: int,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of plain rows go a column at a time, others row by row; one answer."""
    from cleancenter.notify.isp import leases as module

    monkeypatch.setattr(module, "_BLOCK", block)
    path = tmp_path / "kea.csv"
    kea_history_file(path)
    cols = assert_columns_equal_stream(path, "kea")
    assert [e.line_no for e in cols.errors] == [51]
    assert cols.ip4 is None  # one lease is IPv6
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(x for i, x in enumerate(path.read_text().splitlines())
                               if i not in (50, 120)) + "\n")
    cols = assert_columns_equal_stream(plain, "kea")
    assert cols.ip4 is not None
    assert [str(ipaddress.IPv4Address(int(x))) for x in cols.ip4] == list(cols.ip)


def test_kea_columns_values(tmp_path: Path) -> None:
    path = tmp_path / "kea.csv"
    path.write_bytes(
        KEA4_HEAD + b"\n"
        b"10.0.0.1,aa,,3600,1795654800,1,0,0,a&#x2cb,0,,0\n"
        b"10.0.0.1,aa,,3600,1795656600,1,0,0,,0,,0\n"  # renewal: one lease to 01:30
        b"10.0.0.2,,01:02,4294967295,1795654800,1,0,0,,0,,0\n"  # infinite: open
        b"10.0.0.3,bb,,3600,99999999999,1,0,0,,0,,0\n"  # year 5138: no int64 ns
    )
    cols = read_columns(path)  # detected
    assert list(cols.ip) == ["10.0.0.1", "10.0.0.2"]
    assert cols.start.tolist() == [1795651200 * 10**9, (1795654800 - 0xFFFFFFFF) * 10**9]
    assert cols.end.tolist() == [1795656600 * 10**9, OPEN_NS]
    assert list(cols.subscriber) == ["aa", "01:02"]
    assert list(cols.hostname) == ["a,b", None]
    assert cols.line.tolist() == [2, 4]
    assert cols.port_start.tolist() == cols.port_end.tolist() == [-1, -1]
    assert cols.ip4 is not None and cols.ip4.tolist() == [0x0A000001, 0x0A000002]
    # the one difference from the stream: a time int64 ns cannot hold is an error here
    assert [(e.line_no, e.reason) for e in cols.errors] == [
        (5, "time out of the int64 ns range: 99999996399, 99999999999")]
    leases, errors = read(path)
    assert errors == [] and leases[-1].end == datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)
    index = LeaseIndex.from_columns(cols.start, cols.end, ip4=cols.ip4)
    found = index.match4([0x0A000001, 0x0A000002, 0x0A000001],
                         [1795655000 * 10**9, 1795655000 * 10**9, 1795660000 * 10**9])
    assert found.lease.tolist() == [0, 1, -1]


def test_kea6_columns_and_other_formats_equal_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "kea6.csv"
    path.write_bytes(
        b"address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,"
        b"prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,"
        b"hwaddr_source,pool_id\n"
        b"2001:db8:1::,00:01,3600,1795654800,1,900,2,1,56,0,0,,,0,,0,0,0\n"
        b"2001:DB8::10,00:02,3600,1795654800,1,900,0,1,128,0,0,,,0,,0,0,0\n"
        b"2001:db8::10,00:02,3600,1795656600,1,900,0,1,128,0,0,h,,0,,0,0,0\n"
        b"2001:db8::10,00:03,3600,1795657000,1,900,0,1,128,0,0,,,0,,0,0,0\n")
    cols = assert_columns_equal_stream(path, "kea")
    assert list(cols.ip) == ["2001:db8::10", "2001:db8:1::/56", "2001:db8::10"]
    assert cols.ip4 is None
    for name, text in (("cgnat.log", CGNAT), ("radacct.csv", RADACCT),
                       ("detail", DETAIL), ("dhcpd.leases", DHCPD)):
        other = tmp_path / name
        other.write_text(text)
        assert_columns_equal_stream(other)


@pytest.mark.parametrize("block", [1, 300, 1 << 20])
def test_kea6_columns_fast_blocks_equal_the_stream(tmp_path: Path, block: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """v6 blocks without prefixes go a column at a time (addresses to normal form)."""
    from cleancenter.notify.isp import leases as module

    monkeypatch.setattr(module, "_BLOCK", block)
    head = ("address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,"
            "prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,"
            "hwaddr_source,pool_id")
    rows = [head]
    for i in range(120):
        addr = ("2001:db8::%x" if i % 2 else "2001:DB8:0:0::%X") % (i % 5)
        rows.append(f"{addr},{('d1', 'd2', '')[i % 3]},{(3600, 4294967295)[i % 2]},"
                    f"{1795654800 + (i * 331) % 4000},1,1800,0,1,128,0,0,"
                    f"{('', 'h&#x2c6')[i % 2]},{'hw' if i % 4 else ''},0,,0,0,0")
    rows[60] = "10.0.0.1,d1,3600,1795654800,1,1800,0,1,128,0,0,,,0,,0,0,0"  # IPv4
    rows[90] = "2001:db8::zz,d1,3600,1795654800,1,1800,0,1,128,0,0,,,0,,0,0,0"  # bad
    path = tmp_path / "kea6.csv"
    path.write_text("\n".join(rows) + "\n")
    cols = assert_columns_equal_stream(path, "kea")
    assert [(e.line_no, e.reason) for e in cols.errors] == [
        (91, "not an IP address: '2001:db8::zz'")]
    assert set(cols.ip) == {"2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3",
                            "2001:db8::4", "10.0.0.1"}


def test_kea6_columns_spellings_of_one_address_across_blocks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """v6 rows are grouped by an id per address in normal form: other spellings of the
    address, in the same block or in a later one, and prefix rows read row by row get
    the same id."""
    from cleancenter.notify.isp import leases as module

    head = ("address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,"
            "prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,"
            "hwaddr_source,pool_id")
    rows = [head]
    spellings = ("2001:db8::1", "2001:DB8::1", "2001:0db8:0:0::1", "2001:db8:0:0:0:0:0:1")
    for i in range(200):
        rows.append(f"{spellings[i % 4]},{('d1', 'd2')[(i // 3) % 2]},3600,"
                    f"{1795654800 + i * 60},1,1800,0,1,128,0,0,,,0,,0,0,0")
    rows.insert(100, "2001:db8:1::,d9,3600,1795654800,1,1800,2,1,56,0,0,,,0,,0,0,0")
    path = tmp_path / "kea6.csv"
    path.write_text("\n".join(rows) + "\n")
    for block in (1, 700, 1 << 20):
        monkeypatch.setattr(module, "_BLOCK", block)
        cols = assert_columns_equal_stream(path, "kea")
        assert set(cols.ip) == {"2001:db8::1", "2001:db8:1::/56"}
        changes = sum((i // 3) % 2 != ((i - 1) // 3) % 2 for i in range(1, 200))
        assert len(cols) == 1 + changes + 1  # a lease per client in turn, the prefix


@pytest.mark.parametrize("keys", [
    [], [5], [3, 1, 2, 1, 3, 0], list(range(70000, 0, -7)) * 2,
    [2**32 - 1, 0, 2**31, 65536, 65535, 2**31, 0], [2**40, 3, 2**40, 1], [-1, 5, -1, 2],
])
def test_stable_argsort_is_numpys_stable_argsort(keys: list[int]) -> None:
    import numpy as np

    from cleancenter.notify.isp.leases import _stable_argsort

    a = np.array(keys, dtype=np.int64)
    assert _stable_argsort(a).tolist() == np.argsort(a, kind="stable").tolist()


@pytest.mark.parametrize("texts", [
    ["3600"] * 5, ["1795654800", "1795654801", "0000000007"], ["12", "3", "45"],
    ["1", "+1"], [" 1", "22"], ["1_0", "222"], ["\u0661\u0662", "12"],
    ["9" * 19, "1" * 19], ["-5", "12"], ["", "1"],
])
def test_kea_ints_are_int(texts: list[str]) -> None:
    from cleancenter.notify.isp.leases import _ints

    try:
        expected: object = [int(x) for x in texts]
        if any(x >= 2**63 for x in expected):  # type: ignore[attr-defined]
            expected = OverflowError
    except ValueError:
        expected = ValueError
    try:
        got: object = _ints(texts).tolist()
    except (ValueError, OverflowError) as exc:
        got = type(exc)
    assert got == expected


# ---------------------------------------------------------------- radacct columns

RADACCT_COLUMNS = (
    "radacctid,username,acctstarttime,acctstoptime,callingstationid,framedipaddress,"
    "framedipv6address,delegatedipv6prefix\r\n"
    "1,alice,2026-11-26 01:00:00+00,2026-11-26 02:00:00+00,aa,100.80.0.1,,\r\n"
    '2,"smith, j",2026-11-26 01:00:00,,bb,100.80.0.2,2001:db8::2,2001:db8:100::/56\r\n'
    "3,bob,2026-11-26T03:00:00+02:30,NULL,,100.80.0.3,,\r\n"
    "4,carol,yesterday,,,100.80.0.4,,\r\n"  # bad start
    "5,dave,2026-11-26 01:00:00,2026-11-26 00:00:00,,100.80.0.5,,\r\n"  # stop < start
    "6,,2026-11-26 01:00:00.25Z,\\N,cc-dd,100.80.0.6,,\r\n"  # calling station
    "7,NULL,2026-11-26 01:00:00,0000-00-00 00:00:00,NULL,100.80.0.7,,\r\n"  # no key
    "8,erin,2026-11-26 01:00:00,,,,2001:DB8::8,\r\n"  # only an IPv6 address
    "9,frank,2026-11-26 01:00:00,,,,,\r\n"  # no address
    "10,gina,2026-11-26 01:00:00,2026-02-30 00:00:00,,100.80.0.10,,\r\n"  # bad stop
    "11,hal,2026-11-26 01:00:00,,,100.80.0.300,,\r\n"  # bad address
    "12,ivy,2026-11-26 01:00:00,,,010.80.0.12,,\r\n"  # leading zero: not an address
    "13,jo,2026-11-26 01:00:00,2026-11-26 01:00:00.000001,,100.80.0.13,,\r\n"
    "14,kim,2024-02-29 23:59:59-05,2024-03-01 05:00:00+0000,,100.80.0.14,,\r\n"
    "15,lee,2026-11-26 24:00:00,,,100.80.0.15,,\r\n"  # hour 24
    "16,max,2026-11-26 01:00:00+05:60,,,100.80.0.16,,\r\n"  # offset minute 60
    "17,m\xfcller,2026-11-26 01:00:00,,,100.80.0.17,,\r\n"  # not UTF-8 (below)
    "18,ned,2026-11-26 01:00:00,,,100.80.0.18\r\n"  # 6 fields
    '19,"multi\r\nline",2026-11-26 01:00:00,,,100.80.0.19,,\r\n'  # quoted CRLF
    "20,olga,2026-11-26x01:00:00,,,100.80.0.20,,\r\n"  # any separator (Python 3.11)
    "21,pat,2026-11-26 01:00:00.1234567,,,100.80.0.21,,\r\n"  # 7 fraction digits
    "22,quin,1969-12-31 23:59:59,,,100.80.0.22,,\r\n"  # before the epoch
    "23,rob,2026-11-26 01:00:00,,,100.80.0.23,2001:db8::23,\r\n"
    "24,sam,2026-11-26 01:00:00 ,,,100.80.0.24,,\r\n"  # trailing space
    "25,tom,2026-11-26 01:00:00,,,100.80.0.25,,"  # no line end
)


def radacct_columns_file(path: Path, rows: int = 1) -> None:
    """`RADACCT_COLUMNS` (its rows ``rows`` times), with one line of bytes that are not
    UTF-8."""
    head, body = RADACCT_COLUMNS.split("\r\n", 1)
    body = body if body.endswith("\r\n") else body + "\r\n"
    data = head + "\r\n" + body * rows
    path.write_bytes(data.rstrip("\r\n").encode("utf-8").replace(b"m\xc3\xbcller",
                                                                   b"m\xfcller"))


@pytest.mark.parametrize("block", [1, 64, 300, 2000, 1 << 20])
def test_radacct_columns_equal_the_stream(tmp_path: Path, block: int,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain blocks go a column at a time (odd rows in them one by one), blocks with
    quotes or bad bytes row by row: one answer, the stream's."""
    from cleancenter.notify.isp import leases as module

    monkeypatch.setattr(module, "_BLOCK", block)
    path = tmp_path / "radacct.csv"
    radacct_columns_file(path, rows=3)
    cols = assert_columns_equal_stream(path, "radacct")
    assert cols.ip4 is None  # IPv6 leases
    assert len(cols.errors) == 3 * 10
    one = tmp_path / "one.csv"
    radacct_columns_file(one)
    cols = assert_columns_equal_stream(one)  # detected
    assert [(e.line_no, e.reason) for e in cols.errors] == [
        (5, "bad timestamp 'yesterday'"),
        (6, "acctstoptime before acctstarttime"),
        (10, "session without a framed address"),
        (11, "bad timestamp '2026-02-30 00:00:00'"),
        (12, "not an IP address: '100.80.0.300'"),
        (13, "not an IP address: '010.80.0.12'"),
        (16, "bad timestamp '2026-11-26 24:00:00'"),
        (18, "invalid UTF-8 at byte 4"),
        (19, "6 fields, the header has 8"),
        (26, "bad timestamp '2026-11-26 01:00:00 '"),
    ]
    got = {(x.ip, x.source.rsplit(":", 1)[1]): x for x in cols.leases()}
    assert got["100.80.0.6", "7"].subscriber == "cc-dd"
    assert got["100.80.0.6", "7"].end is None
    assert got["100.80.0.7", "8"].subscriber is None and got["100.80.0.7", "8"].end is None
    assert got["2001:db8::8", "9"].start == t("2026-11-26 01:00:00")
    assert got["100.80.0.14", "15"].start == t("2024-03-01 04:59:59")
    assert got["100.80.0.16", "17"].start == t("2026-11-25 19:00:00")
    assert got["100.80.0.21", "23"].start == datetime(2026, 11, 26, 1, 0, 0, 123456, UTC)
    assert got["100.80.0.22", "24"].start == t("1969-12-31 23:59:59")
    assert [x.ip for x in cols.leases() if x.source.endswith(":3")] == [
        "100.80.0.2", "2001:db8::2", "2001:db8:100::/56"]


def test_radacct_columns_plain_file_tab_separated_and_ip4(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cleancenter.notify.isp import leases as module

    path = tmp_path / "radacct.tsv"
    lines = [RADACCT_HEAD.replace(",", "\t")]
    for i in range(500):
        stop = ("", f"2026-11-26 0{i % 9}:30:00+00", "NULL")[i % 3]
        lines.append(f"{i}\tu{i % 7}\t2026-11-26 0{i % 9}:00:00+00\t{stop}\t\t"
                     f"100.80.{i // 256}.{i % 256}\t")
    lines[250] = "250\tu1\t2026-11-26 01:00:00\t2026-11-26 00:00:00\t\t100.80.0.250\t"
    lines[300] = "300\tu1\t2026-11-26 01:00:00\t\t\t2001:db8::300\t"  # IPv6: slow
    path.write_text("\n".join(lines) + "\n")
    for block in (100, 4000, 1 << 20):
        monkeypatch.setattr(module, "_BLOCK", block)
        cols = assert_columns_equal_stream(path, "radacct")
        assert [(e.line_no, e.reason) for e in cols.errors] == [
            (251, "acctstoptime before acctstarttime")]
        assert cols.ip4 is None
    lines[300] = "300\tu1\t2026-11-26 01:00:00\t\t\t100.80.1.44\t"
    path.write_text("\n".join(lines) + "\n")
    cols = assert_columns_equal_stream(path, "radacct")
    assert cols.ip4 is not None
    assert [str(ipaddress.IPv4Address(int(x))) for x in cols.ip4] == list(cols.ip)
    assert list(cols.hostname) == [None] * len(cols)
    assert cols.port_start.tolist() == [-1] * len(cols)


def test_radacct_columns_header_only_bad_header_and_far_times(tmp_path: Path) -> None:
    path = tmp_path / "radacct.csv"
    path.write_text(RADACCT_HEAD + "\n")
    assert len(assert_columns_equal_stream(path, "radacct")) == 0
    path.write_text("a,b\n1,2\n")
    cols = assert_columns_equal_stream(path, "radacct")
    assert [e.line_no for e in cols.errors] == [1]
    # the one difference from the stream: a time int64 ns cannot hold is an error here
    path.write_text(RADACCT_HEAD + "\n1,a,9999-01-01 00:00:00,,,100.80.0.1,2001:db8::1\n"
                    "2,b,2026-11-26 01:00:00,,,100.80.0.2,\n")
    cols = read_columns(path, "radacct")
    assert list(cols.ip) == ["100.80.0.2"]
    assert [(e.line_no, e.reason) for e in cols.errors] == [
        (2, "time out of the int64 ns range: 9999-01-01T00:00:00+00:00, None")]
    leases, errors = read(path, "radacct")
    assert errors == [] and len(leases) == 3


@pytest.mark.parametrize("text", [
    "2026-11-26 01:00:00", "2026-11-26T01:00:00", "2026-11-26 01:00:00Z",
    "2026-11-26 01:00:00+00", "2026-11-26 01:00:00-00", "2026-11-26 01:00:00+09",
    "2026-11-26 01:00:00-23", "2026-11-26 01:00:00+24", "2026-11-26 01:00:00+05:30",
    "2026-11-26 01:00:00+0530", "2026-11-26 01:00:00-05:59", "2026-11-26 01:00:00+05:60",
    "2026-11-26 01:00:00.5", "2026-11-26 01:00:00.123456", "2026-11-26 01:00:00.1234567",
    "2026-11-26 01:00:00.25Z", "2026-11-26 01:00:00.123+01:00", "2026-02-29 00:00:00",
    "2024-02-29 00:00:00", "2000-02-29 00:00:00", "1900-02-29 00:00:00",
    "2026-04-31 00:00:00", "2026-12-31 23:59:59", "2026-13-01 00:00:00",
    "2026-00-10 00:00:00", "2026-11-00 00:00:00", "2026-11-26 23:60:00",
    "2026-11-26 23:59:60", "2026-11-26 24:00:00", "1700-01-01 00:00:00+01",
    "1699-12-31 23:59:59", "2200-12-31 23:59:59-12", "2201-01-01 00:00:00",
    "0000-00-00 00:00:00", "2026-11-26_01:00:00", "2026-11-26 01:00:00z",
    "2026-11-26 1:00:00", "2026-1-26 01:00:00", "20261126T010000", "2026-11-26",
    "2026-11-26 01:00", "2026-11-26 01:00:0a", "+026-11-26 01:00:00", "2026-11-26 01:00:00 ",
    "\u0662026-11-26 01:00:00",
])
def test_iso_columns_read_what_parse_iso_reads(text: str) -> None:
    """The vectorized ISO reader takes a text only when `parse_iso` reads it the same."""
    from cleancenter.notify.isp.leases import BadValue, _iso_ns, _ns, parse_iso

    ok, ns = _iso_ns([text, "2026-11-26 01:00:00"])
    assert ok[1] and ns[1] == _ns(parse_iso("2026-11-26 01:00:00"))
    try:
        expected = _ns(parse_iso(text))
    except BadValue:
        assert not ok[0]
        return
    if ok[0]:
        assert ns[0] == expected
    else:  # left to the row-by-row reader: only what is outside its forms
        assert (not text.isascii() or text[10:11] not in (" ", "T")
                or len(text) not in (19, 20, 22, 24, 25) or not "1700" <= text[:4] <= "2200"
                or "+05:60" in text or "." in text)
