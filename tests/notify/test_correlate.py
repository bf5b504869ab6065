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


# ---------------------------------------------------------------- the columnar engine

def brute_columns(ip: np.ndarray, start: np.ndarray, end: np.ndarray, obs_ip: np.ndarray,
                  obs_t: np.ndarray) -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """Per observation the covering leases of the columnar input, the obvious way."""
    lease: list[int] = []
    cands: dict[int, tuple[int, ...]] = {}
    for r, (a, t) in enumerate(zip(obs_ip.tolist(), obs_t.tolist(), strict=True)):
        hit = np.flatnonzero((ip == a) & (start <= t) & (t < end)).tolist()
        lease.append(hit[0] if len(hit) == 1 else NONE if not hit else AMBIGUOUS)
        if len(hit) > 1:
            cands[r] = tuple(hit)
    return lease, cands


def check_columns(ip: np.ndarray, start: np.ndarray, end: np.ndarray, obs_ip: np.ndarray,
                  obs_t: np.ndarray) -> None:
    got = LeaseIndex.from_columns(start, end, ip4=ip).match4(obs_ip, obs_t)
    want, cands = brute_columns(ip, start, end, obs_ip, obs_t)
    assert got.lease.tolist() == want
    assert got.candidates == cands


S = 10**9


def test_sub_second_start_among_whole_seconds() -> None:
    # one lease starts half a second and one nanosecond into a second: exact, no rounding
    start = np.array([0, 100 * S, 100 * S + S // 2 + 1, 300 * S], dtype=np.int64)
    end = np.array([100 * S, 100 * S + S // 2 + 1, 200 * S, OPEN], dtype=np.int64)
    ip = np.array([7, 7, 7, 7], dtype=np.uint32)
    t = np.array([100 * S + S // 2, 100 * S + S // 2 + 1, 100 * S + S // 2 + 2,
                  200 * S - 1, 200 * S, 300 * S - 1, 300 * S, 10**18], dtype=np.int64)
    got = LeaseIndex.from_columns(start, end, ip4=ip).match4(np.full(len(t), 7), t)
    assert got.lease.tolist() == [1, 2, 2, 2, NONE, NONE, 3, 3]
    check_columns(ip, start, end, np.full(len(t), 7, dtype=np.uint32), t)


def test_three_overlapping_leases_then_one_by_one() -> None:
    # a: [0, 100), b: [10, 60), c: [20, 40); open d on another address in between
    start = np.array([0, 10, 20, 0], dtype=np.int64) * S
    end = np.array([100 * S, 60 * S, 40 * S, OPEN], dtype=np.int64)
    ip = np.array([5, 5, 5, 6], dtype=np.uint32)
    index = LeaseIndex.from_columns(start, end, ip4=ip)
    t = np.array([5, 10, 20, 39, 40, 59, 60, 99, 100], dtype=np.int64) * S
    got = index.match4(np.full(len(t), 5), t)
    assert got.lease.tolist() == [0, AMBIGUOUS, AMBIGUOUS, AMBIGUOUS, AMBIGUOUS, AMBIGUOUS,
                                  0, 0, NONE]
    assert got.candidates == {1: (0, 1), 2: (0, 1, 2), 3: (0, 1, 2), 4: (0, 1), 5: (0, 1)}


def test_open_lease_does_not_leak_into_other_addresses() -> None:
    # address 3 never closes; addresses 4 and 9 (and 5..8, unknown) must not see it
    start = np.array([0, 50, 10, 10], dtype=np.int64) * S
    end = np.array([OPEN, OPEN, 20 * S, 20 * S], dtype=np.int64)
    ip = np.array([3, 3, 4, 9], dtype=np.uint32)
    obs_ip = np.array([3, 3, 3, 4, 4, 5, 8, 9, 9, 2, 10], dtype=np.uint32)
    obs_t = np.array([0, 49, 50, 5, 30, 30, 30, 15, 20, 30, 30], dtype=np.int64) * S
    got = LeaseIndex.from_columns(start, end, ip4=ip).match4(obs_ip, obs_t)
    assert got.lease.tolist() == [0, 0, AMBIGUOUS, NONE, NONE, NONE, NONE, 3, NONE, NONE,
                                  NONE]
    assert got.candidates == {2: (0, 1)}


@pytest.mark.parametrize("spread", [1000, 10**9])  # ns times over 17 minutes or 31 years
def test_observation_exactly_at_each_boundary(spread: int) -> None:
    rng = np.random.default_rng(11)
    n = 400
    ip = rng.integers(1, 40, n).astype(np.uint32)
    start = rng.integers(0, 10**6, n) * spread + rng.integers(0, 2, n)  # some odd ns
    end = start + rng.integers(0, 5 * 10**4, n) * spread
    end[rng.random(n) < 0.05] = OPEN
    # every start and every finite end, one ns before and after, on every address
    points = np.concatenate([start, end[end != OPEN]])
    points = np.concatenate([points - 1, points, points + 1])
    obs_ip = ip[rng.integers(0, n, len(points))]
    check_columns(ip, start, end, obs_ip, points)


def test_times_far_apart() -> None:
    # leases from 1896 to 2200 and a few nanoseconds long, side by side
    start = np.array([-(2**61), 0, 5, 5, 2**62], dtype=np.int64)
    end = np.array([2**61, 5, 9, 6, OPEN], dtype=np.int64)
    ip = np.array([1, 2, 2, 2, 2], dtype=np.uint32)
    t = np.array([-(2**61) - 1, -(2**61), 0, 4, 5, 6, 8, 9, 2**61 - 1, 2**61, 2**62 - 1,
                  2**62, OPEN - 1, OPEN], dtype=np.int64)
    for a in (1, 2):
        check_columns(ip, start, end, np.full(len(t), a, dtype=np.uint32), t)


def test_many_boundaries_inside_one_grid_cell() -> None:
    # one address with 300 one-second leases in a row, another with a year-long lease:
    # the time cells are far wider than a second
    k = 300
    start = np.concatenate([np.arange(k) * S, [0]]).astype(np.int64)
    end = np.concatenate([np.arange(1, k + 1) * S, [365 * 86400 * S]]).astype(np.int64)
    end[17] = 30 * S  # one stretched: ambiguous up to 30 s
    ip = np.array([1] * k + [2], dtype=np.uint32)
    t = np.arange(-2 * S, (k + 2) * S, S // 3, dtype=np.int64)
    check_columns(ip, start, end, np.ones(len(t), dtype=np.uint32), t)
    check_columns(ip, start, end, np.full(len(t), 2, dtype=np.uint32), t)


def test_sparse_addresses_over_the_whole_space() -> None:
    ip = np.array([0, 1, 2**31, 2**32 - 1, 0x0A000001, 0xC0000201], dtype=np.uint32)
    start = np.zeros(len(ip), dtype=np.int64)
    end = np.full(len(ip), 10 * S, dtype=np.int64)
    obs_ip = np.array([0, 1, 2, 2**31, 2**31 - 1, 2**32 - 1, 2**32 - 2, 0x0A000001,
                       0x0A000002, 0xC0000201], dtype=np.uint32)
    obs_t = np.full(len(obs_ip), S, dtype=np.int64)
    got = LeaseIndex.from_columns(start, end, ip4=ip).match4(obs_ip, obs_t)
    assert got.lease.tolist() == [0, 1, NONE, 2, NONE, 3, NONE, 4, NONE, 5]
    # many addresses spread thinly (the binary-search fallback) give the same answers
    rng = np.random.default_rng(3)
    many = rng.choice(2**32, 3000, replace=False).astype(np.uint32)
    start = rng.integers(0, 100, 3000) * S
    end = start + rng.integers(1, 100, 3000) * S
    obs_ip = np.concatenate([many[rng.integers(0, 3000, 2000)],
                             rng.integers(0, 2**32, 500).astype(np.uint32)])
    obs_t = rng.integers(0, 200, len(obs_ip)) * S
    check_columns(many, start, end, obs_ip, obs_t)


@pytest.mark.parametrize("threads", [1, 2])
def test_chunks_give_the_same_answers(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    import cleancenter.notify.isp.correlate as engine

    rng = np.random.default_rng(7)
    n = 3000
    ip = rng.integers(0, 300, n).astype(np.uint32)
    start = rng.integers(0, 10**5, n) * S
    end = start + rng.integers(0, 10**4, n) * S
    end[rng.random(n) < 0.03] = OPEN
    index = LeaseIndex.from_columns(start, end, ip4=ip)
    obs_ip = rng.integers(0, 320, 5000).astype(np.uint32)
    obs_t = rng.integers(-10, 1.2 * 10**5, 5000) * S
    whole = index.match4(obs_ip, obs_t)
    want, cands = brute_columns(ip, start, end, obs_ip, obs_t)
    assert whole.lease.tolist() == want and whole.candidates == cands
    assert len(cands) > 20
    # the same observations in chunks of 7 rows (a chunk boundary inside every run)
    monkeypatch.setattr(engine, "_CHUNK", 7)
    monkeypatch.setattr(engine, "_THREADS", threads)
    got = index.match4(obs_ip, obs_t)
    assert got.lease.tolist() == want and got.candidates == cands
    # and the general path (CGNAT blocks, IPv6) too
    cg = [lease("203.0.113.7", 0, 60, "alice", (1024, 2047)),
          lease("203.0.113.7", 0, 60, "bob", (2048, 3071)),
          lease("203.0.113.7", 10, None, "carol", (1024, 2047)),
          lease("2001:db8::/64", 0, 30, "dave"), lease("2001:db8::1", 20, 40, "erin")]
    obs = [Observation("203.0.113.7", at(m), p) for m in (5, 20, 59, 60)
           for p in (None, 1024, 2047, 2048, 9)]
    obs += [Observation("2001:db8::1", at(m)) for m in (0, 19, 20, 29, 30, 39, 40)]
    chunked = correlate(obs, cg)
    monkeypatch.setattr(engine, "_CHUNK", 1 << 20)
    assert chunked == correlate(obs, cg)
    for o, m in zip(obs, chunked, strict=True):
        assert {id(x) for x in m.leases} == {id(cg[i]) for i in brute(cg, o)}, o
