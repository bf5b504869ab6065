"""Correlation of observations and incidents with leases: boundaries, overlaps, CGNAT,
IPv6, windows, and a seeded random comparison with a brute-force reference."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cleancenter.notify.incidents import Incident
from cleancenter.notify.isp.correlate import (
    AMBIGUOUS,
    NONE,
    OPEN,
    LeaseIndex,
    Match,
    Observation,
    correlate,
    to_ns,
)
from cleancenter.notify.isp.leases import Lease

T0 = datetime(2026, 11, 26, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def lease(ip: str, start: float, end: float | None, sub: str, ports: tuple[int, int] | None = None,
          ) -> Lease:
    p0, p1 = ports if ports else (None, None)
    return Lease(ip, at(start), None if end is None else at(end), sub, f"log:{sub}", p0, p1)


def one(leases: list[Lease], ip: str, minutes: float, port: int | None = None) -> Match:
    return correlate([Observation(ip, at(minutes), port)], leases)[0]


def test_half_open_boundaries() -> None:
    leases = [lease("192.0.2.1", 0, 60, "alice"), lease("192.0.2.1", 60, 120, "bob")]
    assert one(leases, "192.0.2.1", 0).subscriber == "alice"  # t == start matches
    assert one(leases, "192.0.2.1", 59.99).subscriber == "alice"
    got = one(leases, "192.0.2.1", 60)  # t == end: the next holder, not both (BETWEEN)
    assert (got.status, got.subscriber, got.source) == ("matched", "bob", "log:bob")
    assert one(leases, "192.0.2.1", 120).status == "none"
    assert one(leases, "192.0.2.1", -0.001).status == "none"
    # sub-second precision: one microsecond before the end still belongs to alice
    sub = correlate([Observation("192.0.2.1", at(60) - timedelta(microseconds=1))], leases)
    assert sub[0].subscriber == "alice"


def test_open_lease_and_none() -> None:
    leases = [lease("192.0.2.1", 0, None, "alice"), lease("192.0.2.2", 0, 10, "bob")]
    assert one(leases, "192.0.2.1", 10**6).subscriber == "alice"
    assert one(leases, "192.0.2.1", -1).status == "none"
    assert one(leases, "192.0.2.3", 5).status == "none"  # unknown address
    assert one(leases, "192.0.2.2", 10).status == "none"
    assert correlate([], leases) == []
    assert correlate([Observation("192.0.2.1", at(0))], [])[0].status == "none"


def test_overlap_is_ambiguous_with_both_listed() -> None:
    a = lease("192.0.2.1", 0, None, "alice")  # a RADIUS Stop that never came
    b = lease("192.0.2.1", 30, 60, "bob")
    got = one([a, b], "192.0.2.1", 40)
    assert got.status == "ambiguous"
    assert {x.subscriber for x in got.leases} == {"alice", "bob"}
    assert got.subscriber is None
    # outside bob's session only the open one covers; an as-of join would say bob or none
    assert one([a, b], "192.0.2.1", 60).subscriber == "alice"
    assert one([a, b], "192.0.2.1", 10).subscriber == "alice"
    # a session nested in a longer one: after the nested one ends, the long one alone
    c = lease("192.0.2.9", 0, 100, "carol")
    d = lease("192.0.2.9", 10, 20, "dave")
    assert one([c, d], "192.0.2.9", 50).subscriber == "carol"
    assert one([c, d], "192.0.2.9", 15).status == "ambiguous"


def test_cgnat_port_blocks() -> None:
    leases = [lease("203.0.113.7", 0, 60, "alice", (1024, 2047)),
              lease("203.0.113.7", 0, 60, "bob", (2048, 3071))]
    assert one(leases, "203.0.113.7", 5, 1024).subscriber == "alice"  # first port
    assert one(leases, "203.0.113.7", 5, 2047).subscriber == "alice"  # last port
    assert one(leases, "203.0.113.7", 5, 2048).subscriber == "bob"
    assert one(leases, "203.0.113.7", 5, 3071).subscriber == "bob"
    assert one(leases, "203.0.113.7", 5, 1023).status == "none"  # outside every block
    assert one(leases, "203.0.113.7", 5, 3072).status == "none"
    assert one(leases, "203.0.113.7", 60, 1500).status == "none"  # block released
    # no port: every block of the address is a candidate
    got = one(leases, "203.0.113.7", 5)
    assert got.status == "ambiguous" and len(got.leases) == 2
    # a block re-allocated without a RELEASE: both leases listed
    again = [*leases, lease("203.0.113.7", 10, None, "carol", (1024, 2047))]
    got = one(again, "203.0.113.7", 20, 1100)
    assert got.status == "ambiguous"
    assert {x.subscriber for x in got.leases} == {"alice", "carol"}
    # a lease without a block on a CGNAT address covers every port
    whole = [*leases, lease("203.0.113.7", 100, 200, "dave")]
    assert one(whole, "203.0.113.7", 150, 1100).subscriber == "dave"
    assert one(whole, "203.0.113.7", 150, 9).subscriber == "dave"
    assert one(whole, "203.0.113.7", 150).subscriber == "dave"


def test_ipv6_and_delegated_prefix() -> None:
    leases = [lease("2001:db8::1", 0, 60, "alice"), lease("2001:db8::2", 0, 60, "bob"),
              lease("2001:db8:1:100::/56", 0, None, "carol"),
              lease("192.0.2.1", 0, 60, "v4")]
    assert one(leases, "2001:db8::1", 30).subscriber == "alice"
    assert one(leases, "2001:0db8:0000::0002", 30).subscriber == "bob"
    assert one(leases, "2001:db8::1", 60).status == "none"
    assert one(leases, "2001:db8::3", 30).status == "none"
    assert one(leases, "2001:db8:1:1ab::42", 30).subscriber == "carol"  # inside the /56
    assert one(leases, "2001:db8:1:200::1", 30).status == "none"  # outside it
    assert one(leases, "::ffff:192.0.2.1", 30).status == "none"  # not the IPv4 lease
    assert one(leases, "192.0.2.1", 30).subscriber == "v4"


def test_incident_window() -> None:
    leases = [lease("192.0.2.1", 0, 60, "alice"), lease("192.0.2.1", 60, 120, "bob"),
              lease("192.0.2.5", 0, 30, "carol"), lease("192.0.2.5", 30, 90, "carol")]

    def incident(ip: str, first: float, last: float, ports: tuple[int, ...] = ()) -> Incident:
        return Incident("isp", ip, at(first), at(last), 3, ports)

    got = correlate([incident("192.0.2.1", 10, 50), incident("192.0.2.1", 50, 70),
                     incident("192.0.2.5", 10, 50), incident("192.0.2.1", 100, 130),
                     incident("192.0.2.1", 200, 300)], leases)
    assert [m.status for m in got] == ["matched", "ambiguous", "matched", "matched", "none"]
    assert got[0].subscriber == "alice"
    assert {x.subscriber for x in got[1].leases} == {"alice", "bob"}  # handover inside
    assert "changed hands" in got[1].note
    assert got[2].subscriber == "carol" and len(got[2].leases) == 2  # renewed, same one
    assert got[3].subscriber == "bob" and "last_seen" in got[3].note
    # incidents and observations mixed, answers in input order
    mixed = correlate([Observation("192.0.2.1", at(61)), incident("192.0.2.1", 0, 1)], leases)
    assert [m.subscriber for m in mixed] == ["bob", "alice"]


def test_incident_ports_behind_cgnat() -> None:
    leases = [lease("203.0.113.7", 0, 60, "alice", (1024, 2047)),
              lease("203.0.113.7", 0, 60, "bob", (2048, 3071))]
    same = Incident("isp", "203.0.113.7", at(1), at(2), 2, (1030, 1500))
    split = Incident("isp", "203.0.113.7", at(1), at(2), 2, (1030, 2050))
    got = correlate([same, split], leases)
    assert got[0].subscriber == "alice"
    assert got[1].status == "ambiguous"


def test_columnar_path_and_windows() -> None:
    start = np.array([0, 100, 100, 300], dtype=np.int64)
    end = np.array([100, 200, OPEN, 400], dtype=np.int64)
    ip = np.array([1, 1, 2, 2], dtype=np.uint32)
    index = LeaseIndex.from_columns(start, end, ip4=ip, subscriber=["a", "b", "c", "d"])
    got = index.match4(np.array([1, 1, 1, 2, 2, 3], dtype=np.uint32),
                       np.array([0, 100, 200, 350, 50, 0], dtype=np.int64))
    assert got.lease.tolist() == [0, 1, NONE, AMBIGUOUS, NONE, NONE]
    assert got.candidates == {3: (2, 3)}
    assert got.counts() == {"matched": 2, "none": 3, "ambiguous": 1}
    first = index.match4(np.array([1, 1, 2], dtype=np.uint32), np.array([50, 50, 150]))
    last = index.match4(np.array([1, 1, 2], dtype=np.uint32), np.array([99, 150, 350]))
    win = index.combine_windows(first, last)
    assert win.lease.tolist() == [0, AMBIGUOUS, AMBIGUOUS]
    assert win.candidates == {1: (0, 1), 2: (2, 3)}
    with pytest.raises(ValueError):
        LeaseIndex.from_columns(start, end)


def brute(leases: list[Lease], obs: Observation) -> set[int]:
    """Every lease that covers the observation, the slow obvious way."""
    nets = _nets(leases)
    addr = ipaddress.ip_address(obs.ip)
    t = obs.time
    out = set()
    for i, x in enumerate(leases):
        if addr not in nets[i]:
            continue
        if x.port_start is not None and x.port_end is not None and (
                obs.port is not None and not x.port_start <= obs.port <= x.port_end):
            continue
        if x.start <= t and (x.end is None or t < x.end):
            out.add(i)
    return out


_NETS: dict[int, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}


def _nets(leases: list[Lease]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if id(leases) not in _NETS:
        _NETS[id(leases)] = [ipaddress.ip_network(x.ip) for x in leases]
    return _NETS[id(leases)]


def test_random_against_brute_force() -> None:
    rng = random.Random(5)
    pool4 = [f"10.0.{i // 250}.{i % 250}" for i in range(300)]
    pool6 = [f"2001:db8::{i:x}" for i in range(60)]
    cgnat = [f"198.51.100.{i}" for i in range(20)]
    leases: list[Lease] = []
    for ip in pool4 + pool6:
        t = rng.uniform(0, 50)
        while t < 10_000 and len(leases) < 1_800:
            length = rng.choice([rng.uniform(1, 300), rng.uniform(1, 5)])
            end: float | None = t + length
            if rng.random() < 0.03:
                end = None  # a Stop that never came
            leases.append(lease(ip, t, end, f"s{rng.randrange(500)}"))
            # mostly back to back (a shared instant), sometimes gaps, sometimes overlaps
            step = rng.choice([0.0, 0.0, rng.uniform(0, 50), -rng.uniform(0, 2)])
            t = t + length + step if rng.random() < 0.98 else t + length / 2
    for ip in cgnat:
        for block in range(4):
            ports = (1024 + block * 512, 1024 + block * 512 + 511)
            t = rng.uniform(0, 50)
            for _ in range(2):
                length = rng.uniform(10, 3000)
                leases.append(lease(ip, t, t + length, f"c{rng.randrange(500)}", ports))
                t += length + rng.choice([0.0, 5.0, -3.0])
    leases.append(lease("2001:db8:ff::/48", 0, 5_000, "prefix"))
    assert 1_900 <= len(leases) <= 2_200
    starts = [x.start for x in leases]
    obs: list[Observation] = []
    for _ in range(5_000):
        kind = rng.random()
        if kind < 0.1:  # exactly on a boundary
            x = rng.choice(leases)
            when = x.end if x.end is not None and rng.random() < 0.5 else x.start
            obs.append(Observation(x.ip.split("/")[0], when))
            continue
        when = at(rng.uniform(-10, 10_100))
        if kind < 0.6:
            obs.append(Observation(rng.choice(pool4), when))
        elif kind < 0.75:
            obs.append(Observation(rng.choice([*pool6, "2001:db8:ff::7", "2001:db8::ffff"]),
                                   when))
        elif kind < 0.95:
            port = rng.choice([None, rng.randrange(900, 3200), 1024, 1535, 1536, 3071])
            obs.append(Observation(rng.choice(cgnat), at(rng.uniform(0, 6_000)), port))
        else:
            obs.append(Observation("10.9.9.9", when))
    got = correlate(obs, leases)
    statuses = {"matched": 0, "none": 0, "ambiguous": 0}
    for o, m in zip(obs, got, strict=True):
        want = brute(leases, o)
        statuses[m.status] += 1
        assert {id(x) for x in m.leases} == {id(leases[i]) for i in want}, o
        assert m.status == ("none" if not want else "matched" if len(want) == 1
                            else "ambiguous")
        if len(want) == 1:
            assert m.subscriber == leases[next(iter(want))].subscriber
    assert min(statuses.values()) > 50, statuses  # every outcome exercised
    assert min(starts) < max(starts)
    # the columnar path gives the same answers (IPv4 part, no ports)
    four = [(i, o) for i, o in enumerate(obs) if ":" not in o.ip and o.port is None]
    index = LeaseIndex(leases)
    arr = index.match4(np.array([int(ipaddress.ip_address(o.ip)) for _, o in four],
                                dtype=np.uint32),
                       np.array([to_ns(o.time) for _, o in four], dtype=np.int64))
    for k, (i, _) in enumerate(four):
        want = brute(leases, obs[i])
        value = int(arr.lease[k])
        if len(want) == 1:
            assert value == next(iter(want))
        elif want:
            assert value == AMBIGUOUS and set(arr.candidates[k]) == want
        else:
            assert value == NONE
