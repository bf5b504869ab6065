"""Correlate the center's incidents with the ISP's leases: who held the address then.

An observation (address, optional source port, UTC time) is covered by a lease when the
address is the lease's address (or inside its delegated prefix), the port is inside the
lease's CGNAT port block (a lease without a block covers every port), and the time is in
the half-open interval ``start <= t < end`` (``end`` None: still open). ``BETWEEN`` would
also count ``t == end``, the instant the address already belongs to the next holder.

Every observation gets exactly one of:

- ``matched``: one lease covers it (its subscriber and ``source`` are the evidence);
- ``none``: no lease covers it;
- ``ambiguous``: two or more leases cover it (overlapping sessions, a RADIUS Stop that
  never came, an ALLOC never released): all of them are listed and none is chosen.

An incident is a window: it is looked up at ``first_seen`` and at ``last_seen``. Both
ends on the same subscriber: matched; on two subscribers (the address changed hands inside
the window) or either end ambiguous: ambiguous; one end without a lease: matched to the
other end's lease, with a note. Only the two ends are looked at: a third holder strictly
inside the window is not seen.

Engine (numpy, no Python loop per observation): leases are expanded to rows of a dense
key (address, or address and port segment behind CGNAT) and sorted by (key, start); a
single ``searchsorted`` of ``key * span + time`` finds, per observation, the last lease of
its key that started at or before ``t``. A per-row prefix maximum of the ``end`` of the
earlier leases of the same key tells, in O(1), whether any earlier lease still covers
``t``: if none does, the answer is that last lease or nothing; only when one does (a real
overlap near ``t``) the key's earlier rows are scanned, so ambiguity is exact and the
common case is one binary search. An as-of join (keep the lease that started last) is the
first half of this, and silently picks one lease where there are several.

Times are int64 nanoseconds since the epoch (UTC); an open end is ``OPEN``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cleancenter.notify.incidents import Incident
from cleancenter.notify.isp.leases import Lease

Status = Literal["matched", "none", "ambiguous"]
Int64s = NDArray[np.int64]

NONE = -1  # no lease covers the observation
AMBIGUOUS = -2  # two or more leases cover it (see `ArrayMatches.candidates`)
OPEN = int(np.iinfo(np.int64).max)  # the end of a lease that is still open
_MIN = int(np.iinfo(np.int64).min)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_PORTS = 65536
_UNITS = (1, 10**3, 10**6, 10**9, 60 * 10**9, 3600 * 10**9, 86400 * 10**9)
_V6_MASK = (1 << 64) - 1


def to_ns(when: datetime) -> int:
    """Nanoseconds since the epoch, UTC (a naive datetime is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return ((when - _EPOCH) // _US) * 1000


@dataclass(frozen=True, slots=True)
class Observation:
    """One sighting: an address, the UTC time, the source port when known (CGNAT)."""

    ip: str
    time: datetime
    port: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """The answer for one observation or incident."""

    observation: Observation | Incident
    status: Status
    subscriber: str | None = None  # matched only
    source: str | None = None  # matched only: the lease's ``file:line``
    leases: tuple[Lease, ...] = ()  # matched: the lease(s); ambiguous: every candidate
    note: str = ""


@dataclass(slots=True)
class ArrayMatches:
    """Columnar answers: per observation a lease index, `NONE` or `AMBIGUOUS`."""

    lease: Int64s
    candidates: dict[int, tuple[int, ...]] = field(default_factory=dict)  # AMBIGUOUS rows

    def counts(self) -> dict[str, int]:
        return {"matched": int(np.count_nonzero(self.lease >= 0)),
                "none": int(np.count_nonzero(self.lease == NONE)),
                "ambiguous": int(np.count_nonzero(self.lease == AMBIGUOUS))}


def _as_i64(values: Any) -> Int64s:
    return np.ascontiguousarray(values, dtype=np.int64)


def _v6_keys(hi: NDArray[np.uint64], lo: NDArray[np.uint64], length: int) -> NDArray[Any]:
    """17-byte keys: the address masked to ``length`` bits, big-endian, and length + 1."""
    n = len(hi)
    if length < 64:
        hi = hi & np.uint64(((1 << length) - 1) << (64 - length) if length else 0)
        lo = np.zeros(n, dtype=np.uint64)
    elif length < 128:
        lo = lo & np.uint64(((1 << (length - 64)) - 1) << (128 - length) if length > 64 else 0)
    out = np.empty((n, 17), dtype=np.uint8)
    out[:, :8] = hi.astype(">u8").view(np.uint8).reshape(n, 8)
    out[:, 8:16] = lo.astype(">u8").view(np.uint8).reshape(n, 8)
    out[:, 16] = length + 1
    return out.view("S17").ravel()


def _v4_keys(ip: NDArray[np.uint32], length: int) -> NDArray[np.uint64]:
    mask = ((1 << length) - 1) << (32 - length) if length else 0
    return ((ip & np.uint32(mask)).astype(np.uint64) << np.uint64(8)) | np.uint64(length)


class LeaseIndex:
    """Leases prepared for correlation; build once, query many batches.

    Build from `Lease` objects (``LeaseIndex(leases)``) or, for millions of leases, from
    columns (`LeaseIndex.from_columns`). Lease indexes in the answers are positions in
    the input.
    """

    def __init__(self, leases: Sequence[Lease] = ()) -> None:
        self.leases: Sequence[Lease] | None = list(leases)
        n = len(self.leases)
        fam = np.zeros(n, dtype=np.int8)
        ip4 = np.zeros(n, dtype=np.uint32)
        hi = np.zeros(n, dtype=np.uint64)
        lo = np.zeros(n, dtype=np.uint64)
        plen = np.zeros(n, dtype=np.int16)
        for i, lease in enumerate(self.leases):
            net = ipaddress.ip_network(lease.ip, strict=False)
            value = int(net.network_address)
            plen[i] = net.prefixlen
            if net.version == 4:
                fam[i], ip4[i] = 4, value
            else:
                fam[i], hi[i], lo[i] = 6, value >> 64, value & _V6_MASK
        self._build(
            fam, ip4, hi, lo, plen,
            _as_i64([to_ns(x.start) for x in self.leases]),
            _as_i64([OPEN if x.end is None else to_ns(x.end) for x in self.leases]),
            _as_i64([-1 if x.port_start is None else x.port_start for x in self.leases]),
            _as_i64([-1 if x.port_end is None else x.port_end for x in self.leases]),
            [x.subscriber for x in self.leases],
        )

    @classmethod
    def from_columns(
        cls, start: Any, end: Any, *, ip4: Any = None, ip6: Any = None,
        prefixlen: Any = None, port_start: Any = None, port_end: Any = None,
        subscriber: Sequence[str | None] | None = None,
    ) -> LeaseIndex:
        """Leases as arrays: ``start``/``end`` int64 ns (``OPEN`` = still open), and either
        ``ip4`` (uint32) or ``ip6`` ((n, 2) uint64 high/low halves); ``prefixlen`` for
        delegated prefixes (default: full addresses); ``port_start``/``port_end`` (-1 =
        no block); ``subscriber`` only needed to combine incident windows."""
        self = cls.__new__(cls)
        self.leases = None
        start = _as_i64(start)
        n = len(start)
        if (ip4 is None) == (ip6 is None):
            raise ValueError("give ip4 or ip6")
        fam = np.full(n, 4 if ip6 is None else 6, dtype=np.int8)
        z64 = np.zeros(n, dtype=np.uint64)
        if ip4 is not None:
            ip4a = np.asarray(ip4, dtype=np.uint32)
            hi, lo = z64, z64
            full = 32
        else:
            six = np.asarray(ip6, dtype=np.uint64).reshape(n, 2)
            ip4a = np.zeros(n, dtype=np.uint32)
            hi, lo = six[:, 0].copy(), six[:, 1].copy()
            full = 128
        plen = (np.full(n, full, dtype=np.int16) if prefixlen is None
                else np.asarray(prefixlen, dtype=np.int16))
        none = np.full(n, -1, dtype=np.int64)
        self._build(fam, ip4a, hi, lo, plen, start, _as_i64(end),
                    none if port_start is None else _as_i64(port_start),
                    none if port_end is None else _as_i64(port_end),
                    list(subscriber) if subscriber is not None else None)
        return self

    # ------------------------------------------------------------------ build

    def _build(self, fam: NDArray[np.int8], ip4: NDArray[np.uint32], hi: NDArray[np.uint64],
               lo: NDArray[np.uint64], plen: NDArray[np.int16], start: Int64s, end: Int64s,
               p0: Int64s, p1: Int64s, subscriber: list[str | None] | None) -> None:
        n = len(start)
        if np.any(end < start):
            raise ValueError("a lease ends before it starts")
        self.size = n
        self._subscriber = subscriber
        # address ids: IPv4 keys first, then IPv6 keys; one per (network, prefix length)
        is4 = fam == 4
        i4, i6 = np.flatnonzero(is4), np.flatnonzero(~is4)
        self._lens4 = sorted({int(x) for x in np.unique(plen[i4])})
        self._lens6 = sorted({int(x) for x in np.unique(plen[i6])})
        k4 = np.empty(len(i4), dtype=np.uint64)
        for length in self._lens4:
            sel = plen[i4] == length
            k4[sel] = _v4_keys(ip4[i4][sel], length)
        k6 = np.empty(len(i6), dtype="S17")
        for length in self._lens6:
            sel = plen[i6] == length
            k6[sel] = _v6_keys(hi[i6][sel], lo[i6][sel], length)
        self._u4, inv4 = np.unique(k4, return_inverse=True)
        self._u6, inv6 = np.unique(k6, return_inverse=True)
        aid = np.empty(n, dtype=np.int64)
        aid[i4] = inv4.ravel()
        aid[i6] = len(self._u4) + inv6.ravel()
        n_addr = len(self._u4) + len(self._u6)
        # port segments: every address starts one at port 0; CGNAT blocks cut more
        ported = p0 >= 0
        self._segmented = bool(ported.any())
        if self._segmented:
            if np.any(ported & ((p1 < p0) | (p1 >= _PORTS))):
                raise ValueError("bad port block")
            p1 = np.where(ported, p1, _PORTS - 1)
            base = np.arange(n_addr, dtype=np.int64) * _PORTS
            after = p1[ported] + 1
            bounds = np.concatenate([base, aid[ported] * _PORTS + p0[ported],
                                     (aid[ported] * _PORTS + after)[after < _PORTS]])
            self._seg = np.unique(bounds)
            self._seg_first = np.searchsorted(self._seg, base)
            self._seg_count = np.diff(np.append(self._seg_first, len(self._seg)))
            first = np.where(ported, np.searchsorted(self._seg, aid * _PORTS + p0),
                             self._seg_first[aid])
            last = np.where(ported, np.searchsorted(self._seg, aid * _PORTS + p1, "right"),
                            self._seg_first[aid] + self._seg_count[aid])
            count = last - first
            row_lease = np.repeat(np.arange(n, dtype=np.int64), count)
            offsets = np.cumsum(count) - count
            key = np.repeat(first - offsets, count) + np.arange(len(row_lease))
            n_keys = len(self._seg)
        else:
            row_lease = np.arange(n, dtype=np.int64)
            key = aid
            n_keys = n_addr
        rs, re_ = start[row_lease], end[row_lease]
        order = np.lexsort((rs, key))
        self._key = key[order]
        self._start = rs[order]
        self._end = re_[order]
        self._row_lease = row_lease[order]
        self._key_lo = np.searchsorted(self._key, np.arange(n_keys + 1))
        # the latest end of the earlier rows of the same key (_MIN for a key's first row)
        self._pmax = np.full(len(order), _MIN, dtype=np.int64)
        if len(order) > 1:
            ends, rank = np.unique(self._end, return_inverse=True)
            comp = self._key * (len(ends) + 1) + rank.ravel()
            acc = np.maximum.accumulate(comp)
            same = self._key[1:] == self._key[:-1]
            prev = ends[acc[:-1] - self._key[:-1] * (len(ends) + 1)]
            self._pmax[1:] = np.where(same, prev, _MIN)
        # one sortable value per row: key * span + start (in the finest unit that fits)
        self._tmin = int(self._start.min()) if n else 0
        smax = int(self._start.max()) if n else 0
        for unit in _UNITS:
            span = (smax - self._tmin) // unit + 2
            if (n_keys + 1) * span < 2**62:
                break
        else:  # pragma: no cover - more than a day of resolution would be needed
            raise ValueError("too many keys for the time span")
        self._unit, self._span = unit, span
        self._comp = self._key * span + self._tq(self._start)

    def _tq(self, t: Int64s) -> Int64s:
        q = (np.maximum(t, self._tmin - 1) - self._tmin) // self._unit + 1
        return _as_i64(np.minimum(q, self._span - 1))

    # ------------------------------------------------------------------ query

    def _search(self, key: Int64s, t: Int64s) -> tuple[Int64s, dict[int, tuple[int, ...]]]:
        """Per (key, t) row: the one covering lease, NONE or AMBIGUOUS (with candidates)."""
        hi = np.searchsorted(self._comp, key * self._span + self._tq(t), side="right")
        c = hi - 1
        lo = self._key_lo[key]
        if self._unit > 1:  # same coarse time, later fine start: step back
            todo = np.flatnonzero((c >= lo) & (self._start[np.maximum(c, 0)] > t))
            while len(todo):
                c[todo] -= 1
                sub = c[todo]
                todo = todo[(sub >= lo[todo]) & (self._start[np.maximum(sub, 0)] > t[todo])]
        valid = c >= lo
        cc = np.where(valid, c, 0)
        cover = valid & (self._end[cc] > t)
        flagged = valid & (self._pmax[cc] > t)
        out = np.where(cover & ~flagged, self._row_lease[cc], NONE)
        cands: dict[int, tuple[int, ...]] = {}
        for r in np.flatnonzero(flagged).tolist():
            first = int(lo[r])
            hit = first + np.flatnonzero(self._end[first:int(c[r]) + 1] > t[r])
            leases = tuple(sorted(int(x) for x in self._row_lease[hit]))
            if len(leases) == 1:
                out[r] = leases[0]
            elif leases:
                out[r] = AMBIGUOUS
                cands[r] = leases
        return out, cands

    def _rows(self, n: int, addr: list[tuple[Int64s, Int64s]],
              port: Int64s | None) -> tuple[Int64s, Int64s]:
        """(observation, key) rows from (observation, address id) pairs and ports."""
        if not addr:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        obs = np.concatenate([a for a, _ in addr])
        aid = np.concatenate([b for _, b in addr])
        if len(addr) > 1:
            order = np.argsort(obs, kind="stable")
            obs, aid = obs[order], aid[order]
        if not self._segmented:
            return obs, aid
        p = np.full(len(obs), -1, dtype=np.int64) if port is None else port[obs]
        count = self._seg_count[aid]
        spread = (p < 0) & (count > 1)  # no port on a CGNAT address: every block
        key = np.searchsorted(self._seg, aid * _PORTS + np.maximum(p, 0), "right") - 1
        if not spread.any():
            return obs, key
        reps = np.where(spread, count, 1)
        obs_r = np.repeat(obs, reps)
        offsets = np.cumsum(reps) - reps
        key_r = np.repeat(np.where(spread, self._seg_first[aid], key) - offsets, reps) + \
            np.arange(len(obs_r))
        return obs_r, key_r

    def _finish(self, n: int, obs: Int64s, key: Int64s, t: Int64s) -> ArrayMatches:
        res, cands = self._search(key, t[obs])
        out = np.full(n, NONE, dtype=np.int64)
        if len(obs) == 0:
            return ArrayMatches(out)
        dup = np.zeros(len(obs), dtype=bool)
        dup[1:] = obs[1:] == obs[:-1]
        if not dup.any():
            out[obs] = res
            return ArrayMatches(out, {int(obs[r]): v for r, v in cands.items()})
        multi = np.zeros(len(obs), dtype=bool)
        multi[1:] |= dup[1:]
        multi[:-1] |= dup[1:]
        single = ~multi
        out[obs[single]] = res[single]
        answers = ArrayMatches(out, {int(obs[r]): v for r, v in cands.items() if single[r]})
        sets: dict[int, set[int]] = {}
        for r in np.flatnonzero(multi).tolist():
            got = sets.setdefault(int(obs[r]), set())
            if res[r] >= 0:
                got.add(int(res[r]))
            elif res[r] == AMBIGUOUS:
                got.update(cands[r])
        for i, got in sets.items():
            if len(got) == 1:
                out[i] = next(iter(got))
            elif got:
                out[i] = AMBIGUOUS
                answers.candidates[i] = tuple(sorted(got))
        return answers

    def match4(self, ip: Any, t: Any, port: Any = None) -> ArrayMatches:
        """IPv4 observations: ``ip`` uint32, ``t`` int64 ns, ``port`` int (-1 = unknown)."""
        ipa = np.asarray(ip, dtype=np.uint32)
        n = len(ipa)
        addr: list[tuple[Int64s, Int64s]] = []
        for length in self._lens4:
            k = _v4_keys(ipa, length)
            pos = np.searchsorted(self._u4, k)
            np.minimum(pos, len(self._u4) - 1, out=pos)
            hit = np.flatnonzero(self._u4[pos] == k)
            addr.append((hit, pos[hit].astype(np.int64)))
        obs, key = self._rows(n, addr, None if port is None else _as_i64(port))
        return self._finish(n, obs, key, _as_i64(t))

    def match6(self, ip: Any, t: Any, port: Any = None) -> ArrayMatches:
        """IPv6 observations: ``ip`` (n, 2) uint64 high/low halves, else like `match4`."""
        six = np.asarray(ip, dtype=np.uint64).reshape(-1, 2)
        n = len(six)
        hi, lo = six[:, 0].copy(), six[:, 1].copy()
        addr: list[tuple[Int64s, Int64s]] = []
        for length in self._lens6:
            k = _v6_keys(hi, lo, length)
            pos = np.searchsorted(self._u6, k)
            np.minimum(pos, len(self._u6) - 1, out=pos)
            hit = np.flatnonzero(self._u6[pos] == k)
            addr.append((hit, pos[hit].astype(np.int64) + len(self._u4)))
        obs, key = self._rows(n, addr, None if port is None else _as_i64(port))
        return self._finish(n, obs, key, _as_i64(t))

    def combine_windows(self, first: ArrayMatches, last: ArrayMatches) -> ArrayMatches:
        """Windows from their two ends: one subscriber (or one end without a lease):
        matched to the first end's lease (else the last's); two subscribers or an
        ambiguous end: AMBIGUOUS with every lease of both ends."""
        if self._subscriber is None:
            raise ValueError("the index was built without subscribers")
        a, b = first.lease, last.lease
        codes = {s: i for i, s in enumerate(dict.fromkeys(self._subscriber))}
        sub = np.asarray([codes[s] for s in self._subscriber] + [-1, -2], dtype=np.int64)
        both = (a >= 0) & (b >= 0)
        handover = both & (sub[a] != sub[b])  # index -1/-2 read the padding, masked anyway
        out = np.where(a >= 0, a, np.where(b >= 0, b, NONE))
        amb = handover | (a == AMBIGUOUS) | (b == AMBIGUOUS)
        out[amb] = AMBIGUOUS
        cands: dict[int, tuple[int, ...]] = {}
        for i in np.flatnonzero(amb).tolist():
            got: set[int] = set()
            for side, res in ((first, a), (last, b)):
                if res[i] >= 0:
                    got.add(int(res[i]))
                else:
                    got.update(side.candidates.get(i, ()))
            cands[i] = tuple(sorted(got))
        return ArrayMatches(out, cands)

    # ------------------------------------------------------------------ objects

    def match_points(self, ips: Sequence[str], times: Sequence[int],
                     ports: Sequence[int]) -> ArrayMatches:
        """Address strings (either family), times in ns, ports (-1 = unknown)."""
        n = len(ips)
        fam6 = np.zeros(n, dtype=bool)
        v4 = np.zeros(n, dtype=np.uint32)
        v6 = np.zeros((n, 2), dtype=np.uint64)
        for i, text in enumerate(ips):
            value = int(ipaddress.ip_address(text))
            if ":" in text:
                fam6[i] = True
                v6[i] = (value >> 64, value & _V6_MASK)
            else:
                v4[i] = value
        t, p = _as_i64(times), _as_i64(ports)
        out = ArrayMatches(np.full(n, NONE, dtype=np.int64))
        for six in (False, True):
            sel = np.flatnonzero(fam6 == six)
            if len(sel):
                got = (self.match6(v6[sel], t[sel], p[sel]) if six
                       else self.match4(v4[sel], t[sel], p[sel]))
                out.lease[sel] = got.lease
                out.candidates.update({int(sel[k]): v for k, v in got.candidates.items()})
        return out


def _points(items: Sequence[Observation | Incident], which: str) -> tuple[
        list[int], list[str], list[int], list[int]]:
    owner: list[int] = []
    ips: list[str] = []
    times: list[int] = []
    ports: list[int] = []
    item_ports: tuple[int, ...]
    for i, item in enumerate(items):
        if isinstance(item, Observation):
            when, item_ports = item.time, (item.port,) if item.port is not None else ()
        else:
            when = item.first_seen if which == "first" else item.last_seen
            item_ports = item.ports
        ns = to_ns(when)
        for port in item_ports or (-1,):
            owner.append(i)
            ips.append(item.ip)
            times.append(ns)
            ports.append(port)
    return owner, ips, times, ports


def _gather(index: LeaseIndex, items: Sequence[Observation | Incident],
            which: str) -> tuple[list[set[int]], list[bool]]:
    """Per item, the covering leases at one end, and whether it is ambiguous there."""
    owner, ips, times, ports = _points(items, which)
    got = index.match_points(ips, times, ports)
    sets: list[set[int]] = [set() for _ in items]
    for r, i in enumerate(owner):
        value = int(got.lease[r])
        if value >= 0:
            sets[i].add(value)
        elif value == AMBIGUOUS:
            sets[i].update(got.candidates[r])
    return sets, [len(s) > 1 for s in sets]


def correlate(observations: Iterable[Observation | Incident],
              leases: Sequence[Lease] | LeaseIndex) -> list[Match]:
    """One `Match` per observation or incident, in order.

    Several ports of one incident are all looked up (behind CGNAT they may fall in blocks
    of different subscribers: ambiguous).
    """
    items = list(observations)
    index = leases if isinstance(leases, LeaseIndex) else LeaseIndex(leases)
    if index.leases is None:
        raise ValueError("correlate needs an index built from Lease objects")
    table = index.leases
    first, _ = _gather(index, items, "first")
    windows = [i for i, x in enumerate(items) if isinstance(x, Incident)]
    last: list[set[int]] = [set() for _ in items]
    if windows:
        sub = [items[i] for i in windows]
        got, _ = _gather(index, sub, "last")
        for k, i in enumerate(windows):
            last[i] = got[k]
    out: list[Match] = []
    for i, item in enumerate(items):
        a = first[i]
        b = last[i] if isinstance(item, Incident) else a
        both = sorted(a | b)
        leases_of = tuple(table[k] for k in both)
        subs = {table[k].subscriber for k in both}
        if not both:
            out.append(Match(item, "none"))
        elif len(a) > 1 or len(b) > 1:
            out.append(Match(item, "ambiguous", leases=leases_of,
                             note="overlapping leases cover the address"))
        elif len(subs) > 1:
            out.append(Match(item, "ambiguous", leases=leases_of,
                             note="the address changed hands inside the window"))
        else:
            lease = table[min(a)] if a else table[min(b)]
            note = ""
            if not a or not b:
                note = f"no lease at {'first_seen' if not a else 'last_seen'}"
            out.append(Match(item, "matched", lease.subscriber, lease.source, leases_of, note))
    return out
