"""Lease log readers: real Kea dumps, synthetic samples of the other formats, bad input."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cleancenter.notify.isp.leases import (
    FORMATS,
    Lease,
    LeaseError,
    LeaseItem,
    detect_format,
    open_leases,
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
