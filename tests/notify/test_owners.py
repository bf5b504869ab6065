"""IP to owner by longest-prefix match: nesting, both families, boundaries, errors, IPASN."""

from __future__ import annotations

import gzip
import ipaddress
import random
from pathlib import Path

import numpy as np
import pytest

from cleancenter.notify.owners import (
    AddressError,
    PrefixConflict,
    PrefixTable,
    pack_ipv4,
    parse_prefix,
)

NESTED = [
    ("10.0.0.0/8", "big-isp"),
    ("10.1.0.0/16", "regional"),
    ("10.1.2.0/24", "customer"),
    ("10.1.2.128/25", "customer-sub"),
    ("10.1.2.200/32", "one-host"),
    ("2001:db8::/32", "big-isp"),
    ("2001:db8:1::/48", "customer6"),
    ("2001:db8:1:2::/64", "lan6"),
    ("2001:db8:1:2::1/128", "host6"),
]


@pytest.fixture
def table() -> PrefixTable:
    return PrefixTable(NESTED)


@pytest.mark.parametrize(("ip", "owner"), [
    ("10.9.9.9", "big-isp"),
    ("10.1.9.9", "regional"),
    ("10.1.2.1", "customer"),
    ("10.1.2.127", "customer"),
    ("10.1.2.128", "customer-sub"),
    ("10.1.2.199", "customer-sub"),
    ("10.1.2.200", "one-host"),
    ("10.1.2.201", "customer-sub"),
    ("10.1.2.255", "customer-sub"),
    ("10.1.3.0", "regional"),
    ("10.2.0.0", "big-isp"),
    ("11.0.0.0", None),
    ("9.255.255.255", None),
    ("2001:db8:ffff::1", "big-isp"),
    ("2001:db8:1:ffff::", "customer6"),
    ("2001:db8:1:2::", "lan6"),
    ("2001:db8:1:2::1", "host6"),
    ("2001:db8:1:2::2", "lan6"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "lan6"),
    ("2001:db8:1:3::", "customer6"),
    ("2001:db9::", None),
    ("::", None),
    ("::ffff:10.1.2.200", "one-host"),  # IPv4-mapped: looked up as IPv4
    ("::ffff:a01:203", "customer"),
    ("::ffff:11.0.0.0", None),
])
def test_most_specific_wins(table: PrefixTable, ip: str, owner: str | None) -> None:
    assert table.lookup(ip) == owner
    assert table.lookup_many([ip]) == [owner]


def test_order_of_pairs_does_not_matter() -> None:
    reference = PrefixTable(NESTED)
    for seed in range(5):
        pairs = list(NESTED)
        random.Random(seed).shuffle(pairs)
        shuffled = PrefixTable(pairs)
        ips = ["10.1.2.200", "10.1.2.201", "10.1.3.0", "2001:db8:1:2::1", "2001:db8:1:3::"]
        assert shuffled.lookup_many(ips) == reference.lookup_many(ips)


def test_prefix_boundaries() -> None:
    table = PrefixTable([("192.0.2.0/24", "a"), ("2001:db8::/126", "b")])
    assert table.lookup("192.0.1.255") is None
    assert table.lookup("192.0.2.0") == "a"
    assert table.lookup("192.0.2.255") == "a"
    assert table.lookup("192.0.3.0") is None
    assert table.lookup("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff") is None
    assert table.lookup("2001:db8::") == "b"
    assert table.lookup("2001:db8::3") == "b"
    assert table.lookup("2001:db8::4") is None


def test_whole_space_and_single_addresses() -> None:
    table = PrefixTable([
        ("0.0.0.0/0", "all4"), ("::/0", "all6"),
        ("255.255.255.255/32", "last4"), ("0.0.0.0/32", "first4"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "last6"), ("::/128", "first6"),
        ("203.0.113.7", "bare"),  # a bare address is a /32
    ])
    ips = ["0.0.0.0", "0.0.0.1", "255.255.255.254", "255.255.255.255", "203.0.113.7",
           "::", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:1.2.3.4"]
    expected = ["first4", "all4", "all4", "last4", "bare",
                "first6", "all6", "all6", "last6", "all4"]  # mapped: IPv4, not ::/0
    assert [table.lookup(ip) for ip in ips] == expected
    assert table.lookup_many(ips) == expected
    assert len(table) == 7


def test_empty_table() -> None:
    table = PrefixTable([])
    assert table.lookup("1.2.3.4") is None
    assert table.lookup_many(["1.2.3.4", "::1"]) == [None, None]
    assert table.lookup_many([]) == []
    assert table.lookup_many(np.array([], dtype=np.uint32)) == []


def test_mapped_prefix_is_the_ipv4_prefix() -> None:
    table = PrefixTable([("::ffff:192.0.2.0/120", "mapped")])
    assert table.lookup("192.0.2.9") == "mapped"
    assert table.lookup("::ffff:192.0.2.9") == "mapped"
    assert parse_prefix("::ffff:192.0.2.0/120") == parse_prefix("192.0.2.0/24")
    with pytest.raises(PrefixConflict, match=r"192\.0\.2\.0/24 has two owners"):
        PrefixTable([("::ffff:192.0.2.0/120", "a"), ("192.0.2.0/24", "b")])


def test_duplicate_prefix_with_two_owners_is_refused() -> None:
    with pytest.raises(PrefixConflict,
                       match=r"prefix 10\.1\.0\.0/16 has two owners: 'regional' and 'other'"):
        PrefixTable([*NESTED, ("10.1.0.0/16", "other")])
    with pytest.raises(PrefixConflict, match=r"2001:db8::/32 has two owners.*given as"):
        PrefixTable([*NESTED, ("2001:0db8::/32", "other")])
    same = PrefixTable([*NESTED, ("10.1.0.0/16", "regional")])  # same owner twice: once
    assert len(same) == len(NESTED)


@pytest.mark.parametrize(("text", "reason"), [
    ("10.0.0.1/8", r"host bits set \(did you mean 10\.0\.0\.0/8\?\)"),
    ("2001:db8::1/32", r"host bits set \(did you mean 2001:db8::/32\?\)"),
    ("10.0.0.0/33", r"length must be 0 to 32"),
    ("2001:db8::/129", r"length must be 0 to 128"),
    ("10.0.0.0/-1", r"length must be"),
    ("10.0.0.0/ 8", r"length must be"),
    ("10.0.0.0/", r"length must be"),
    ("10.0.0/8", r"bad address '10\.0\.0'"),
    ("010.0.0.0/8", r"bad address"),
    ("example.com/8", r"bad address"),
    ("", r"bad address"),
    ("2001:db8::g/32", r"bad address"),
])
def test_bad_prefixes_are_explained(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason):
        parse_prefix(text)
    with pytest.raises(AddressError, match=reason):
        PrefixTable([(text, "x")])


def test_bad_owner_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        PrefixTable([("10.0.0.0/8", "")])


@pytest.mark.parametrize("bad", ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", " 1.2.3.4",
                                 "1.2.3.4/32", "::g", "1::2::3", "fe80::1%eth0", "host"])
def test_invalid_addresses(table: PrefixTable, bad: str) -> None:
    with pytest.raises(AddressError, match="not an IP address"):
        table.lookup(bad)
    assert table.lookup(bad, strict=False) is None
    batch = ["10.1.2.200", bad, "2001:db8:1:2::1"]
    with pytest.raises(AddressError, match=r"not an IP address at index 1: "):
        table.lookup_many(batch)
    assert table.lookup_many(batch, strict=False) == ["one-host", None, "host6"]


def test_invalid_items_of_other_types(table: PrefixTable) -> None:
    batch: list[object] = ["10.1.2.200", None, b"10.1.2.200", 42, "::ffff:10.1.2.200"]
    with pytest.raises(AddressError, match=r"index 1: None \(3 bad addresses in all\)"):
        table.lookup_many(batch)  # type: ignore[arg-type]
    assert table.lookup_many(batch, strict=False) == [  # type: ignore[arg-type]
        "one-host", None, None, None, "one-host"]
    with pytest.raises(AddressError):
        table.lookup(None)  # type: ignore[arg-type]


def test_packed_ipv4(table: PrefixTable) -> None:
    ips = ["10.1.2.200", "10.1.2.201", "11.0.0.0", "10.0.0.0"]
    packed = pack_ipv4(ips)
    assert packed.dtype == np.uint32
    assert packed.tolist() == [int(ipaddress.IPv4Address(ip)) for ip in ips]
    assert table.lookup_many(packed) == table.lookup_many(ips)
    assert table.lookup_many(packed.astype(np.int64)) == table.lookup_many(ips)
    with pytest.raises(AddressError, match=r"index 1: -1"):
        table.lookup_many(np.array([1, -1], dtype=np.int64))
    with pytest.raises(AddressError, match=r"index 0: 4294967296"):
        table.lookup_many(np.array([1 << 32], dtype=np.uint64))
    assert table.lookup_many(np.array([int(packed[0]), 1 << 32]), strict=False) == [
        "one-host", None]
    with pytest.raises(AddressError, match=r"not an IPv4 address at index 1: '::1'"):
        pack_ipv4(["1.2.3.4", "::1"])


def test_packed_ipv6(table: PrefixTable) -> None:
    ips = ["2001:db8:1:2::1", "2001:db8:1:3::", "::ffff:10.1.2.200", "::"]
    values = [int(ipaddress.IPv6Address(ip)) for ip in ips]
    halves = np.array([[v >> 64, v & (2**64 - 1)] for v in values], dtype=np.uint64)
    assert table.lookup_many(halves) == ["host6", "customer6", "one-host", None]
    with pytest.raises(AddressError, match="shape"):
        table.lookup_many(np.zeros((2, 3), dtype=np.uint64))


def test_numpy_string_arrays(table: PrefixTable) -> None:
    ips = ["10.1.2.200", "2001:db8:1:2::1", "11.0.0.0"]
    assert table.lookup_many(np.array(ips)) == ["one-host", "host6", None]
    assert table.lookup_many(np.array(ips, dtype=object)) == ["one-host", "host6", None]
    assert table.lookup_many(tuple(ips)) == ["one-host", "host6", None]


# --- against a brute-force reference ------------------------------------------------------

def _random_prefixes(rng: random.Random) -> list[tuple[str, str]]:
    """Nested trees of prefixes in both families, with a few exact duplicates."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for version, bits, roots, min_len in ((4, 32, 12, 4), (6, 128, 8, 16)):
        for _ in range(roots):
            length = rng.randint(min_len, min_len + 12)
            start = rng.getrandbits(bits) >> (bits - length) << (bits - length)
            if version == 6 and start >> 32 == 0xFFFF:
                continue
            tree = [ipaddress.ip_network((start, length)) if version == 4
                    else ipaddress.IPv6Network((start, length))]
            for _ in range(rng.randint(5, 40)):
                parent = rng.choice(tree)
                length = min(bits, parent.prefixlen + rng.randint(1, 9 if version == 4 else 40))
                offset = rng.getrandbits(bits - parent.prefixlen) >> (bits - length) << (
                    bits - length)
                net = ipaddress.ip_network((int(parent.network_address) + offset, length)) \
                    if version == 4 else ipaddress.IPv6Network(
                        (int(parent.network_address) + offset, length))
                tree.append(net)
            networks.extend(tree)
    unique = sorted(set(networks), key=lambda n: (n.version, n.network_address, n.prefixlen))
    return [(str(net), f"owner-{i % 37}") for i, net in enumerate(unique)]


def _reference(pairs: list[tuple[str, str]], ip: str) -> str | None:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    best: tuple[int, str] | None = None
    for text, owner in pairs:
        net = ipaddress.ip_network(text)
        if net.version == addr.version and addr in net and (
                best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, owner)
    return best[1] if best else None


def test_lookup_many_matches_brute_force() -> None:
    rng = random.Random(20261127)
    pairs = _random_prefixes(rng)
    table = PrefixTable(pairs)
    nets = [ipaddress.ip_network(text) for text, _ in pairs]
    ips: list[str] = []
    while len(ips) < 10_000:
        kind = rng.random()
        if kind < 0.5:  # at or just beside a prefix boundary
            net = rng.choice(nets)
            first, last = int(net.network_address), int(net.broadcast_address)
            value = rng.choice([first - 1, first, first + 1, last - 1, last, last + 1])
            top = 2**32 if net.version == 4 else 2**128
            if not 0 <= value < top:
                continue
            addr: ipaddress.IPv4Address | ipaddress.IPv6Address = (
                ipaddress.IPv4Address(value) if net.version == 4 else ipaddress.IPv6Address(value))
        elif kind < 0.7:
            addr = ipaddress.IPv4Address(rng.getrandbits(32))
        elif kind < 0.8:
            addr = ipaddress.IPv6Address(rng.getrandbits(128))
        else:  # inside a random prefix, sometimes written IPv4-mapped
            net = rng.choice(nets)
            addr = net[rng.randrange(net.num_addresses)]
            if net.version == 4 and rng.random() < 0.3:
                addr = ipaddress.IPv6Address(f"::ffff:{addr}")
        ips.append(str(addr))
    # a reference per distinct prefix list is slow; index the networks by version once
    expected = _brute_force_all(pairs, ips)
    assert table.lookup_many(ips) == expected
    assert [table.lookup(ip) for ip in ips] == expected
    v4 = [ip for ip in ips if ":" not in ip]
    assert table.lookup_many(pack_ipv4(v4)) == [e for ip, e in zip(ips, expected, strict=True)
                                               if ":" not in ip]
    # spot-check the fast reference against the plain definition
    for i in range(0, len(ips), 97):
        assert _reference(pairs, ips[i]) == expected[i]


def _brute_force_all(pairs: list[tuple[str, str]], ips: list[str]) -> list[str | None]:
    """The longest matching prefix by trying every length, with `ipaddress` only."""
    by_net = {ipaddress.ip_network(text): owner for text, owner in pairs}
    lengths = {4: sorted({n.prefixlen for n in by_net if n.version == 4}, reverse=True),
               6: sorted({n.prefixlen for n in by_net if n.version == 6}, reverse=True)}
    out: list[str | None] = []
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        found = None
        for length in lengths[addr.version]:
            net = ipaddress.ip_network(f"{addr}/{length}", strict=False)
            if net in by_net:
                found = by_net[net]
                break
        out.append(found)
    return out


# --- IPASN files -----------------------------------------------------------------------

IPASN = """\
; IP-ASN32-DAT file
; Original source:\trib.20140513.0600.bz2
; Converted on  : Tue May 13 21:43:37 2014
; Prefixes-v4   : 4
; Prefixes-v6   : 2

1.0.0.0/24\t13335
1.0.4.0/22\t56203
1.0.4.0/24\t38803
1.0.5.0/24\tAS9999
1.0.6.0/33\t1
2001:db8::/32\t3333
2001:db8:100::/40\t4294967295
1.0.4.0/24\t65000
this is not a line
2001:db8::/32\t3333
1.0.7.1/24\t7
"""


def test_ipasn_reader(tmp_path: Path) -> None:
    path = tmp_path / "ipasn.dat"
    path.write_text(IPASN)
    table = PrefixTable.from_ipasn(path)
    assert table.lookup("1.0.0.9") == "AS13335"
    assert table.lookup("1.0.4.9") == "AS38803"  # the /24 inside the /22
    assert table.lookup("1.0.5.9") == "AS56203"  # its own line was bad: the /22 covers it
    assert table.lookup("1.0.8.0") is None
    assert table.lookup("2001:db8:1::1") == "AS3333"
    assert table.lookup("2001:db8:100::1") == "AS4294967295"
    assert len(table) == 5
    problems = [(e.location, e.message) for e in table.bad_lines]
    assert [loc for loc, _ in problems] == [f"{path}:{n}" for n in (10, 11, 14, 15, 17)]
    reasons = [msg for _, msg in problems]
    assert "bad ASN 'AS9999'" in reasons[0]
    assert "length must be 0 to 32" in reasons[1]
    assert reasons[2] == "prefix 1.0.4.0/24 is already AS38803 (line 9); AS65000 skipped"
    assert "expected 'prefix/len<TAB>asn'" in reasons[3]
    assert "host bits set" in reasons[4]


def test_ipasn_reader_gzip(tmp_path: Path) -> None:
    path = tmp_path / "ipasn.dat.gz"
    path.write_bytes(gzip.compress(b"; header\n192.0.2.0/24\t64496\n"))
    table = PrefixTable.from_ipasn(path)
    assert table.lookup_many(["192.0.2.1", "192.0.3.1"]) == ["AS64496", None]
    assert table.bad_lines == []


def test_intervals_are_flat_and_merged() -> None:
    # siblings with one owner and their parent collapse into one interval
    table = PrefixTable([("10.0.0.0/8", "a"), ("10.0.0.0/9", "a"), ("10.128.0.0/9", "a")])
    assert table.intervals == 3 + 1  # IPv4: none, a (10/8), none; IPv6: none
    assert table.owners == ("a",)


def test_ipv6_with_many_zero_bytes() -> None:
    # 16-byte keys compare as bytes: zero bytes anywhere must not shorten a key
    pairs = [("::/64", "low"), ("::100:0/104", "mid"), ("::1:0:0/96", "compat"),
             ("::/120", "tiny"), ("::1/128", "one"), ("0:0:0:1::/64", "next64")]
    table = PrefixTable(pairs)
    ips = ["::", "::1", "::2", "::ff", "::100", "::100:0", "::1ff:ffff", "::200:0",
           "::1:0:0", "::1:ffff:ffff", "::2:0:0", "0:0:0:1::", "0:0:0:1:ffff::", "0:0:0:2::",
           "::ffff:0.0.0.0"]
    expected = [_reference(pairs, ip) for ip in ips]
    assert expected[:4] == ["tiny", "one", "tiny", "tiny"]
    assert expected[-1] is None  # IPv4-mapped: an IPv4 address, and no IPv4 prefixes
    assert table.lookup_many(ips) == expected
    assert [table.lookup(ip) for ip in ips] == expected
