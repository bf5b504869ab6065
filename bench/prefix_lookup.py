"""Benchmark: IP to owner by longest-prefix match (issue #5, goal >= 1,000,000 look-ups/s).

10,000 synthetic prefixes (seeded; nested trees, IPv4 and IPv6) and 1,000,000 random
addresses (seeded; most inside some prefix, the rest anywhere). Measured, median of
``--runs``: `PrefixTable.lookup_many` from strings (IPv4 only, and IPv4/IPv6 mixed) and
from packed integers (uint32 IPv4, uint64-pair IPv6), and single `PrefixTable.lookup`
calls. Peers in the same run, on the same data, each checked for the same answers:

- a naive `ipaddress` loop over the prefix list sorted most specific first (the first
  network that contains the address wins), on a 10,000-address subset, extrapolated;
- ``pytricia`` and ``py-radix`` (C radix trees), one call per address, when installed
  (``.venv/bin/pip install pytricia py-radix``; they are not project dependencies).

    .venv/bin/python bench/prefix_lookup.py [--runs 3] [--addresses 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from cleancenter.notify.owners import PrefixTable, pack_ipv4
from common import machine, median

SEED = 20261127


def synthetic_prefixes(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` distinct prefixes, 80% IPv4: trees of an ISP block (/8 to /16 IPv4, /24 to
    /32 IPv6) and customer blocks nested below it, a few levels deep, down to /32 and /128;
    owners shared by about ten prefixes each."""
    seen: set[tuple[int, int, int]] = set()
    pairs: list[tuple[str, str]] = []
    families = ((4, 32, (8, 16), 10), (6, 128, (24, 32), 48))
    while len(pairs) < count:
        version, bits, (low, high), step = families[0] if rng.random() < 0.8 else families[1]
        length = rng.randint(low, high)
        start = rng.getrandbits(length) << (bits - length)
        if version == 6 and start >> 32 == 0xFFFF:
            continue
        tree = [(start, length)]
        for _ in range(rng.randint(0, 30)):
            parent_start, parent_length = rng.choice(tree)
            if parent_length == bits:
                continue
            length = min(bits, parent_length + rng.randint(1, step))
            offset = rng.getrandbits(length - parent_length) << (bits - length)
            tree.append((parent_start + offset, length))
        for start, length in tree:
            if (version, start, length) in seen or len(pairs) >= count:
                continue
            seen.add((version, start, length))
            net: ipaddress.IPv4Network | ipaddress.IPv6Network = (
                ipaddress.IPv4Network((start, length)) if version == 4
                else ipaddress.IPv6Network((start, length)))
            pairs.append((str(net), f"owner-{rng.randrange(count // 10)}"))
    return pairs


def synthetic_addresses(pairs: list[tuple[str, str]], count: int, share6: float,
                        rng: random.Random) -> list[str]:
    """70% inside a random prefix of the wanted family, 30% anywhere; no IPv4-mapped
    addresses (the radix-tree peers would treat those as IPv6)."""
    nets = {4: [ipaddress.ip_network(p) for p, _ in pairs if ":" not in p],
            6: [ipaddress.ip_network(p) for p, _ in pairs if ":" in p]}
    out: list[str] = []
    while len(out) < count:
        version = 6 if rng.random() < share6 else 4
        bits = 32 if version == 4 else 128
        if rng.random() < 0.7:
            net = rng.choice(nets[version])
            value = int(net.network_address) + rng.getrandbits(bits - net.prefixlen)
        else:
            value = rng.getrandbits(bits)
            if version == 6 and value >> 32 == 0xFFFF:
                continue
        out.append(socket.inet_ntop(socket.AF_INET if version == 4 else socket.AF_INET6,
                                    value.to_bytes(bits // 8, "big")))
    return out


def naive_lookup(pairs: list[tuple[str, str]]) -> Callable[[str], str | None]:
    nets = sorted(((ipaddress.ip_network(p), o) for p, o in pairs),
                  key=lambda item: -item[0].prefixlen)

    def lookup(ip: str) -> str | None:
        addr = ipaddress.ip_address(ip)
        for net, owner in nets:
            if net.version == addr.version and addr in net:
                return owner
        return None

    return lookup


def radix_peers(pairs: list[tuple[str, str]]) -> dict[str, Callable[[list[str]], list[Any]]]:
    peers: dict[str, Callable[[list[str]], list[Any]]] = {}
    try:
        import pytricia  # type: ignore[import-not-found]
    except ImportError:
        print("pytricia: not installed")
    else:
        # one trie per family: in one 128-bit trie an IPv6 address matches IPv4 prefixes
        # by its first bits and the other way round (jsommers/pytricia#29, documented)
        tree4, tree6 = pytricia.PyTricia(32), pytricia.PyTricia(128)
        mixed_tree = pytricia.PyTricia(128)
        for prefix, owner in pairs:
            (tree6 if ":" in prefix else tree4)[prefix] = owner
            mixed_tree[prefix] = owner
        get4, get6, get_mixed = tree4.get, tree6.get, mixed_tree.get
        peers["pytricia"] = lambda ips: [get6(ip) if ":" in ip else get4(ip) for ip in ips]
        peers["pytricia, one trie for both (wrong)"] = lambda ips: [get_mixed(ip) for ip in ips]
    try:
        import radix  # type: ignore[import-not-found]
    except ImportError:
        print("py-radix: not installed")
    else:
        rtree = radix.Radix()
        for prefix, owner in pairs:
            rtree.add(prefix).data["o"] = owner
        best = rtree.search_best

        def radix_lookup(ips: list[str]) -> list[Any]:
            out = []
            for ip in ips:
                node = best(ip)
                out.append(node.data["o"] if node is not None else None)
            return out

        peers["py-radix"] = radix_lookup
    return peers


def rate(fn: Callable[[], Any], n: int, runs: int) -> tuple[float, list[float], Any]:
    """Median look-ups/s over ``runs``, every run's rate, and the last result."""
    rates, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        rates.append(n / (time.perf_counter() - start))
    return median(rates), rates, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefixes", type=int, default=10_000)
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=10_000, help="addresses for the naive peer")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    rng = random.Random(SEED)
    info = machine()
    print(json.dumps(info))

    pairs = synthetic_prefixes(args.prefixes, rng)
    v4 = synthetic_addresses(pairs, args.addresses, 0.0, rng)
    mixed = synthetic_addresses(pairs, args.addresses, 0.2, rng)
    v6 = synthetic_addresses(pairs, args.addresses, 1.0, rng)
    print(f"{len(pairs):,} prefixes ({sum(':' in p for p, _ in pairs):,} IPv6), "
          f"{len({o for _, o in pairs}):,} owners; {args.addresses:,} addresses per set")

    build_s, _, table = rate(lambda: PrefixTable(pairs), 1, args.runs)
    build_s = 1 / build_s
    print(f"build: {build_s * 1000:.0f} ms, {table.intervals:,} flat intervals")
    packed4 = pack_ipv4(v4)
    values6 = [int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big") for ip in v6]
    packed6 = np.array([[v >> 64, v & (2**64 - 1)] for v in values6], dtype=np.uint64)

    n = args.addresses
    results: dict[str, Any] = {"machine": info, "prefixes": len(pairs),
                               "intervals": table.intervals, "addresses": n,
                               "build_ms": round(build_s * 1000, 1), "rates": {}}

    single = mixed[:100_000]
    subset = mixed[:args.naive]
    naive = naive_lookup(pairs)
    cases: list[tuple[str, Callable[[], Any], int]] = [
        ("lookup_many, IPv4 strings", lambda: table.lookup_many(v4), n),
        ("lookup_many, mixed strings (20% IPv6)", lambda: table.lookup_many(mixed), n),
        ("lookup_many, IPv6 strings", lambda: table.lookup_many(v6), n),
        ("lookup_many, packed uint32 IPv4", lambda: table.lookup_many(packed4), n),
        ("lookup_many, packed uint64 pairs IPv6", lambda: table.lookup_many(packed6), n),
        ("owner_indexes, packed uint32 IPv4", lambda: table.owner_indexes(packed4), n),
        ("pack_ipv4 (parsing only)", lambda: pack_ipv4(v4), n),
        ("lookup, one call per address (mixed)",
         lambda: [table.lookup(ip) for ip in single], len(single)),
        ("peer: naive ipaddress loop (mixed, subset)",
         lambda: [naive(ip) for ip in subset], len(subset)),
    ]
    for name, peer in radix_peers(pairs).items():
        cases.append((f"peer: {name} (mixed strings)", partial(peer, mixed), n))
        if "wrong" not in name:
            cases.append((f"peer: {name} (IPv4 strings)", partial(peer, v4), n))
    # round robin: each run measures every case once, so load swings hit all alike
    rates: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    answers: dict[str, Any] = {}
    for _ in range(args.runs):
        for name, fn, count in cases:
            start = time.perf_counter()
            answers[name] = fn()
            rates[name].append(count / (time.perf_counter() - start))
    for name, _, count in cases:
        med = median(rates[name])
        results["rates"][name] = {"median": round(med), "count": count,
                                  "runs": [round(r) for r in rates[name]]}
        print(f"{name:<48} {med:>12,.0f}/s   runs: "
              f"{', '.join(f'{r:,.0f}' for r in rates[name])}")

    ours_v4 = answers["lookup_many, IPv4 strings"]
    ours_mixed = answers["lookup_many, mixed strings (20% IPv6)"]
    assert answers["lookup_many, packed uint32 IPv4"] == ours_v4, "packed IPv4 differs"
    assert answers["lookup_many, packed uint64 pairs IPv6"] == answers[
        "lookup_many, IPv6 strings"], "packed IPv6 differs"
    assert answers["lookup, one call per address (mixed)"] == ours_mixed[:len(single)]
    assert answers["peer: naive ipaddress loop (mixed, subset)"] == ours_mixed[:len(subset)]
    for name, _, _ in cases:
        if name.startswith("peer:") and "naive" not in name:
            ours = ours_v4 if "IPv4" in name else ours_mixed
            mismatches = sum(a != b for a, b in zip(answers[name], ours, strict=True))
            results["rates"][name]["mismatches"] = mismatches
            print(f"{name}: {mismatches:,} answers differ from ours")
    for name, entry in results["rates"].items():
        if name.startswith("peer:"):
            ours_name = ("lookup_many, IPv4 strings" if "IPv4" in name
                         else "lookup_many, mixed strings (20% IPv6)")
            ratio = results["rates"][ours_name]["median"] / entry["median"]
            entry["ours_ratio"] = round(ratio, 2)
            print(f"ours / {name[6:]}: {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
