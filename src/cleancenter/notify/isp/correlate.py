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

Engine (numpy, no Python loop per observation): at build time the leases are flattened
into an interval map. Per key (an address, or an address and port segment behind CGNAT):
the elementary, non-overlapping time segments between consecutive lease boundaries, each
labelled with its one lease, none, or ambiguous (its candidate leases kept aside); and a
grid of equal time cells (about `_IntervalMap.RATIO` cells per segment) that holds, for a
cell no boundary falls inside, the answer itself. A query is an address-id look-up (two
table reads for IPv4 hosts), one read of the grid and, for the few rows in a cell that a
boundary cuts (or an ambiguous segment), an exact step or binary search among the key's
segments on the int64 ns times: the grid only narrows the search, no time is rounded.
Observations go in chunks of `_CHUNK` rows (bounded memory; two threads for large
batches). An as-of join (keep the lease that started last) silently picks one lease where
there are several, and misses an earlier, longer lease that still covers ``t``.

Fast path: IPv4 host leases (no prefixes, no port blocks). Delegated prefixes, several
prefix lengths, IPv6 (16-byte key search) and CGNAT port blocks take a slower general
path that maps each observation to one or more keys first; the interval map is the same.

Times are int64 nanoseconds since the epoch (UTC); an open end is ``OPEN``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
_V6_MASK = (1 << 64) - 1
_CHUNK = 1 << 20  # observations per chunk (bounds the temporaries)
_THREADS = 2  # chunks in flight (numpy releases the GIL in the heavy steps)


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


def _bits(value: int) -> int:
    return max(int(value), 0).bit_length()


class _HostTable:
    """IPv4 address -> position in ``hosts`` (sorted, unique), or ``len(hosts)`` if absent.

    Two table reads instead of a binary search: a first level on the top ``a`` bits of
    the address names a block of ``2**(32 - a)`` slots (block 0: all absent). ``a`` is
    chosen for the least memory; when even that is too much (addresses spread thinly over
    the whole space) a binary search is used instead."""

    def __init__(self, hosts: NDArray[np.uint32]) -> None:
        self.absent = len(hosts)
        best: tuple[int, int] | None = None
        for a in (8, 12, 16, 20):  # the first level: at most 8 MiB
            blocks = len(np.unique(hosts >> np.uint32(32 - a))) if len(hosts) else 0
            cells = (1 << a) + (blocks + 1) * (1 << (32 - a))
            if best is None or cells < best[0]:
                best = (cells, a)
        assert best is not None
        self.hosts = hosts
        self.a: int | None = None
        if best[0] > 16 * len(hosts) + (1 << 22):
            return
        a = best[1]
        width = 1 << (32 - a)
        top = (hosts >> np.uint32(32 - a)).astype(np.int64)
        used = np.unique(top)
        dtype = np.int32 if len(hosts) < 2**31 - 1 else np.int64
        self.l1 = np.zeros(1 << a, dtype=np.int64)
        self.l1[used] = (np.arange(len(used), dtype=np.int64) + 1) * width
        self.l2 = np.full((len(used) + 1) * width, self.absent, dtype=dtype)
        self.l2[self.l1[top] + (hosts & np.uint32(width - 1)).astype(np.int64)] = \
            np.arange(len(hosts), dtype=dtype)
        self.a, self.shift, self.mask = a, np.uint32(32 - a), np.uint32(width - 1)

    def lookup(self, ip: NDArray[np.uint32]) -> Int64s:
        if self.a is None:
            pos = np.searchsorted(self.hosts, ip)
            np.minimum(pos, max(self.absent - 1, 0), out=pos)
            if self.absent == 0:
                return np.zeros(len(ip), dtype=np.int64)
            return np.where(self.hosts[pos] == ip, pos, self.absent).astype(np.int64)
        slot = self.l1[ip >> self.shift]
        slot += ip & self.mask
        return _as_i64(self.l2[slot])


class _IntervalMap:
    """Per key, the elementary time segments of the leases, and a grid of time cells.

    Segments: per key a sentinel (from the beginning of time: none), then one segment per
    distinct boundary (a start, or a finite end) until the next; its label is the lease
    covering it (cover count 1), ``NONE`` (count 0) or ``-2 - a`` (two or more: candidate
    list ``a``). Grid: ``cells`` cells of ``width`` ns per key (and one more key of nothing,
    for unknown addresses); a cell without a boundary inside holds the label of its
    segment, or ``-2 - s`` (search from segment ``s``) when a boundary cuts it or ``s`` is
    ambiguous."""

    RATIO = 8  # grid cells per segment (more: fewer searches, more memory)
    MAX_CELLS = 1 << 25  # at most 128 MiB of int32 cells

    def __init__(self, key: Int64s, start: Int64s, end: Int64s, lease: Int64s | None,
                 n_keys: int) -> None:
        n = len(key)
        closed = np.flatnonzero(end != OPEN)
        # events (key, time, row * 2 + is_end), sorted by key then time; ``last``: the
        # last event of its (key, time), ``new_key``: the first of its key
        ek, et, eid, new_key, last = _sort_events(key, start, end, closed, n_keys)
        m = len(ek)
        delta = (eid & 1).astype(np.int8)  # 1 for an end
        delta *= -2
        delta += 1  # +1 at a start, -1 at an end
        eid >>= 1
        contrib = eid if lease is None else lease[eid]
        contrib *= delta
        del eid
        cov = np.cumsum(delta, dtype=np.int64)
        lsum = np.cumsum(contrib)
        if m:  # open leases carry over: count from zero at each key's first event
            kfirst = np.flatnonzero(new_key)
            reps = np.diff(np.append(kfirst, m))
            cov -= np.repeat(cov[kfirst] - delta[kfirst], reps)
            lsum -= np.repeat(lsum[kfirst] - contrib[kfirst], reps)
        del delta, contrib, new_key
        sk, st, scov, slab = ek[last], et[last], cov[last], lsum[last]
        del cov, lsum, ek, et, last
        # segments with a sentinel in front of every key (its time: OPEN, never reached
        # from the key before it)
        per_key = np.bincount(sk, minlength=n_keys)
        n_seg = n_keys + len(sk)
        key_lo = np.zeros(n_keys + 1, dtype=np.int64)
        np.cumsum(per_key + 1, out=key_lo[1:])
        del per_key
        real = np.arange(len(sk), dtype=np.int64)
        real += sk
        real += 1
        self.seg_t = np.full(n_seg + 1, OPEN, dtype=np.int64)
        self.seg_t[real] = st
        top = int(lease.max()) if lease is not None and n else n
        idx_t = np.int32 if max(n_seg, top) + 2 < 2**31 else np.int64
        lab: NDArray[np.signedinteger[Any]] = np.full(n_seg, NONE, dtype=idx_t)
        lab[real] = np.where(scov == 1, slab, NONE)
        amb_real = np.flatnonzero(scov >= 2)
        amb_at = real[amb_real]
        key_last = key_lo[1:] - 1
        self.key_lo, self.key_last = key_lo[:-1], key_last
        # ambiguous segments: every lease covering them (CSR: cand_ptr, cand)
        self.cand_ptr = np.zeros(len(amb_at) + 1, dtype=np.int64)
        self.cand = np.zeros(0, dtype=np.int64)
        if len(amb_at):
            lab[amb_at] = -2 - np.arange(len(amb_at), dtype=np.int64)
            touched = np.zeros(n_keys, dtype=bool)
            touched[sk[amb_real]] = True
            rows = np.flatnonzero(touched[key])  # only the rows of keys with an overlap
            rk = key[rows]
            seg_a = self.find(self.key_lo[rk], key_last[rk], start[rows])
            seg_b = key_last[rk] + 1
            ends = end[rows] != OPEN
            seg_b[ends] = self.find(self.key_lo[rk[ends]], key_last[rk[ends]],
                                    end[rows][ends])
            first_amb = np.searchsorted(amb_at, seg_a)
            count = np.searchsorted(amb_at, seg_b) - first_amb
            has = np.flatnonzero(count > 0)
            count = count[has]
            lid = rows if lease is None else lease[rows]
            pair_lease = np.repeat(lid[has], count)
            offs = np.cumsum(count) - count
            pair_amb = np.repeat(first_amb[has] - offs, count) + np.arange(len(pair_lease))
            o = np.lexsort((pair_lease, pair_amb))
            self.cand = pair_lease[o]
            self.cand_ptr = np.searchsorted(pair_amb[o], np.arange(len(amb_at) + 1))
        self.lab = lab
        # the grid
        lo_b, hi_b = (int(st.min()), int(st.max())) if len(st) else (0, 0)
        cells = max(3, min(self.RATIO * n_seg, self.MAX_CELLS) // (n_keys + 1))
        width = max(1, -(-(hi_b - lo_b + 1) // (cells - 2)))  # ns per cell
        tmin = lo_b - width
        cells = (hi_b - tmin) // width + 2
        if tmin < _MIN or tmin + cells * width - 1 > OPEN:
            raise ValueError("lease times out of range")
        self.tmin, self.tmax, self.width, self.cells = tmin, tmin + cells * width - 1, \
            width, cells
        st -= tmin
        cut = (st % width) != 0  # the segment starts inside its cell
        st //= width
        sk *= cells
        sk += st  # the cell of each real segment
        pos = sk
        del st
        seg_cell = np.empty(n_seg + 1, dtype=np.int64)  # first cell each segment covers
        seg_cell[:-1][key_lo[:-1]] = np.arange(n_keys, dtype=np.int64) * cells
        seg_cell[real] = pos + cut
        seg_cell[-1] = n_keys * cells
        code = np.empty(n_seg + 1, dtype=idx_t)  # and the extra key's cells: none
        code[:-1] = lab
        code[amb_at] = -2 - amb_at
        code[-1] = NONE
        reps = np.empty(n_seg + 1, dtype=np.int64)
        np.subtract(seg_cell[1:], seg_cell[:-1], out=reps[:-1])
        reps[-1] = cells
        del seg_cell
        grid: NDArray[np.signedinteger[Any]] = np.repeat(code, reps)
        del code, reps
        inside = np.flatnonzero(cut)
        if len(inside):  # cells a boundary cuts: search from the segment at the cell start
            pc = pos[inside]
            first = np.ones(len(inside), dtype=bool)
            np.not_equal(pc[1:], pc[:-1], out=first[1:])
            inside = inside[first]
            grid[pc[first]] = (-1 - real[inside]).astype(idx_t)
        self.grid = grid
        self.n_keys = n_keys

    def find(self, lo: Int64s, hi: Int64s, t: Int64s) -> Int64s:
        """Per row, the last segment in ``lo..hi`` starting at or before ``t`` (given
        ``seg_t[lo] <= t``): a vectorized binary search."""
        lo, hi = lo.copy(), hi.copy()
        while True:
            more = lo < hi
            if not more.any():
                return lo
            mid = (lo + hi + 1) >> 1
            ok = self.seg_t[np.where(more, mid, lo)] <= t
            ok &= more
            lo = np.where(ok, mid, lo)
            hi = np.where(more & ~ok, mid - 1, hi)

    def lookup(self, key: Int64s, t: Int64s, out: Int64s | None = None,
               ) -> tuple[Int64s, dict[int, tuple[int, ...]]]:
        """Per (key, t) row (key ``n_keys``: unknown): lease, NONE or AMBIGUOUS (into
        ``out`` if given). ``key`` is overwritten."""
        if len(t) and t.max() == OPEN:  # t < end fails for every lease, open ones too
            key[t == OPEN] = self.n_keys
        cell = np.clip(t, self.tmin, self.tmax)
        cell -= self.tmin
        cell //= self.width
        key *= self.cells
        key += cell
        del cell
        v = self.grid[key]
        if out is None:
            out = np.empty(len(v), dtype=np.int64)
        out[:] = v
        slow = np.flatnonzero(v <= -2)
        cands: dict[int, tuple[int, ...]] = {}
        if not len(slow):
            return out, cands
        s = -2 - out[slow]
        ts = t[slow]
        active = np.arange(len(slow))
        np.minimum(ts, OPEN - 1, out=ts)  # (the next key's sentinel starts at OPEN)
        for _ in range(4):  # a boundary or two inside the cell: step
            go = self.seg_t[s[active] + 1] <= ts[active]
            active = active[go]
            if not len(active):
                break
            s[active] += 1
        else:  # many boundaries in one cell: binary search up to the key's last segment
            sa = s[active]
            hi = self.key_last[np.searchsorted(self.key_lo, sa, "right") - 1]
            s[active] = self.find(sa, hi, ts[active])
        lab = self.lab[s]
        amb = lab <= -2
        out[slow] = np.where(amb, AMBIGUOUS, lab)
        ptr = self.cand_ptr
        for r, a in zip(slow[amb].tolist(), (-2 - lab[amb]).tolist(), strict=True):
            cands[r] = tuple(self.cand[ptr[a]:ptr[a + 1]].tolist())
        return out, cands


def _sort_events(key: Int64s, start: Int64s, end: Int64s, closed: Int64s, n_keys: int,
                 ) -> tuple[Int64s, Int64s, Int64s, NDArray[np.bool_], NDArray[np.bool_]]:
    """Events (a start per row, an end per ``closed`` row) sorted by key, then time:
    key, time, ``row * 2 + is_end``, first event of its key, last of its (key, time)."""
    n, m = len(key), len(key) + len(closed)
    new_key = np.ones(m, dtype=bool)
    last = np.ones(m, dtype=bool)
    if m == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, new_key, last
    tmin = min(int(start.min()), int(end[closed].min()) if len(closed) else OPEN)
    tmax = max(int(start.max()), int(end[closed].max()) if len(closed) else _MIN)
    unit = 1
    for u in (10**9, 10**6, 10**3) if tmax - tmin < 2**62 else ():
        # exact only: every time a whole number of units after tmin
        if not (np.any((start - tmin) % u) or np.any((end[closed] - tmin) % u)):
            unit = u
            break
    tb, kb, ib = _bits((tmax - tmin) // unit), _bits(n_keys), _bits(2 * n)
    if tb + kb + ib <= 64 and tmax - tmin < 2**62:  # one packed word: key, time, event; no argsort
        packed = np.empty(m, dtype=np.uint64)
        for part, k, t, e in ((packed[:n], key, start, np.arange(n, dtype=np.int64) << 1),
                              (packed[n:], key[closed], end[closed], (closed << 1) | 1)):
            part[:] = k
            part <<= np.uint64(tb)
            rel = t - tmin
            if unit > 1:
                rel //= unit
            part |= rel.view(np.uint64)
            part <<= np.uint64(ib)
            part |= e.view(np.uint64)
            del rel, e
        _sort_u64(packed, np.uint64(min(n_keys, 1 << kb) // 2) << np.uint64(tb + ib))
        eid = (packed & np.uint64((1 << ib) - 1)).astype(np.int64)
        packed >>= np.uint64(ib)  # key and time
        np.not_equal(packed[1:], packed[:-1], out=last[:-1])
        ek = (packed >> np.uint64(tb)).astype(np.int64)
        packed &= np.uint64((1 << tb) - 1)
        et = packed.view(np.int64)
        if unit > 1:
            et *= unit
        et += tmin
    else:
        ev_key = np.concatenate([key, key[closed]])
        ev_t = np.concatenate([start, end[closed]])
        order = np.lexsort((ev_t, ev_key))
        ek, et = ev_key[order], ev_t[order]
        eid = np.where(order < n, order << 1, (closed[np.maximum(order - n, 0)] << 1) | 1) \
            if len(closed) else order << 1
        del ev_key, ev_t, order
        np.not_equal(et[1:], et[:-1], out=last[:-1])
    np.not_equal(ek[1:], ek[:-1], out=new_key[1:])
    last[:-1] |= new_key[1:]
    return ek, et, eid, new_key, last


def _lengths(plen: NDArray[np.int16]) -> list[int]:
    """The distinct prefix lengths, ascending."""
    if len(plen) == 0:
        return []
    if np.any((plen < 0) | (plen > 128)):
        raise ValueError("bad prefix length")
    return [int(x) for x in np.flatnonzero(np.bincount(plen, minlength=129))]


def _sort_u64(values: NDArray[np.uint64], middle: np.uint64) -> None:
    """Sort in place; large arrays as two halves (below and from ``middle``) in two
    threads (numpy releases the GIL while sorting)."""
    if len(values) < 1 << 20 or _THREADS < 2:
        values.sort()
        return
    low = values < middle
    parts = [values[low], values[~low]]
    del low
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(np.ndarray.sort, parts))
    values[:len(parts[0])] = parts[0]
    values[len(parts[0]):] = parts[1]


def _unique_u32(values: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """Sorted distinct values; a bitmap when they are dense enough."""
    if len(values) == 0:
        return values[:0].copy()
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 32 * len(values) + (1 << 16):
        return np.unique(values)
    seen = np.zeros(hi - lo + 1, dtype=bool)
    seen[values - np.uint32(lo)] = True
    return (np.flatnonzero(seen) + lo).astype(np.uint32)


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
        if len(end) != n:
            raise ValueError("start and end differ in length")
        if np.any(end < start):
            raise ValueError("a lease ends before it starts")
        self.size = n
        self._subscriber = subscriber
        # address ids: IPv4 keys first, then IPv6 keys; one per (network, prefix length)
        is4 = fam == 4
        if is4.all():  # IPv4 only
            self._lens4 = _lengths(plen)
            self._lens6 = []
        else:
            self._lens4 = _lengths(plen[is4])
            self._lens6 = _lengths(plen[~is4])
        if not self._lens6 and self._lens4 == [32]:  # IPv4 hosts only: no 64-bit keys
            hosts = _unique_u32(ip4)
            self._u4 = (hosts.astype(np.uint64) << np.uint64(8)) | np.uint64(32)
            self._u6 = np.empty(0, dtype="S17")
            self._hosts: _HostTable | None = _HostTable(hosts)
            aid = self._hosts.lookup(ip4)
        else:
            self._hosts = None
            i4, i6 = np.flatnonzero(is4), np.flatnonzero(~is4)
            aid = np.empty(n, dtype=np.int64)
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
            aid[i4] = inv4.ravel()
            aid[i6] = len(self._u4) + inv6.ravel()
        n_addr = len(self._u4) + len(self._u6)
        # port segments: every address starts one at port 0; CGNAT blocks cut more
        ported = p0 >= 0
        self._segmented = bool(ported.any())
        if self._segmented:
            self._hosts = None
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
            self._map = _IntervalMap(key, start[row_lease], end[row_lease], row_lease, n_keys)
        else:
            self._map = _IntervalMap(aid, start, end, None, n_addr)

    # ------------------------------------------------------------------ query

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
        res, cands = self._map.lookup(key, t[obs])
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

    def _chunked(self, n: int, part: Callable[[int, int, Int64s], dict[int, tuple[int, ...]]],
                 ) -> ArrayMatches:
        """Answers for rows ``0..n``: `part` fills the answers of rows ``a..b`` into the
        array it is given and returns their candidates; chunks of `_CHUNK` rows, in two
        threads when there are several."""
        out = ArrayMatches(np.empty(n, dtype=np.int64))
        bounds = list(range(0, n, _CHUNK))

        def run(a: int) -> None:
            b = min(a + _CHUNK, n)
            for r, v in part(a, b, out.lease[a:b]).items():
                out.candidates[a + r] = v

        workers = min(_THREADS, len(bounds))
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, bounds))
            out.candidates = dict(sorted(out.candidates.items()))
        else:
            for a in bounds:
                run(a)
        return out

    @staticmethod
    def _into(got: ArrayMatches, out: Int64s) -> dict[int, tuple[int, ...]]:
        out[:] = got.lease
        return got.candidates

    def match4(self, ip: Any, t: Any, port: Any = None) -> ArrayMatches:
        """IPv4 observations: ``ip`` uint32, ``t`` int64 ns, ``port`` int (-1 = unknown)."""
        ipa = np.asarray(ip, dtype=np.uint32)
        ta = _as_i64(t)
        n = len(ipa)
        if len(ta) != n:
            raise ValueError("ip and t differ in length")
        hosts = self._hosts
        if hosts is not None:  # IPv4 hosts, no port blocks: the fast path
            def fast(a: int, b: int, out: Int64s) -> dict[int, tuple[int, ...]]:
                return self._map.lookup(hosts.lookup(ipa[a:b]), ta[a:b], out)[1]

            return self._chunked(n, fast)
        pa = None if port is None else _as_i64(port)
        return self._chunked(n, lambda a, b, out: self._into(self._match4(
            ipa[a:b], ta[a:b], None if pa is None else pa[a:b]), out))

    def _match4(self, ipa: NDArray[np.uint32], t: Int64s, port: Int64s | None) -> ArrayMatches:
        n = len(ipa)
        addr: list[tuple[Int64s, Int64s]] = []
        for length in self._lens4:
            k = _v4_keys(ipa, length)
            pos = np.searchsorted(self._u4, k)
            np.minimum(pos, len(self._u4) - 1, out=pos)
            hit = np.flatnonzero(self._u4[pos] == k)
            addr.append((hit, pos[hit].astype(np.int64)))
        obs, key = self._rows(n, addr, port)
        return self._finish(n, obs, key, t)

    def match6(self, ip: Any, t: Any, port: Any = None) -> ArrayMatches:
        """IPv6 observations: ``ip`` (n, 2) uint64 high/low halves, else like `match4`."""
        six = np.asarray(ip, dtype=np.uint64).reshape(-1, 2)
        ta = _as_i64(t)
        n = len(six)
        if len(ta) != n:
            raise ValueError("ip and t differ in length")
        pa = None if port is None else _as_i64(port)
        return self._chunked(n, lambda a, b, out: self._into(self._match6(
            six[a:b], ta[a:b], None if pa is None else pa[a:b]), out))

    def _match6(self, six: NDArray[np.uint64], t: Int64s, port: Int64s | None) -> ArrayMatches:
        n = len(six)
        hi, lo = six[:, 0].copy(), six[:, 1].copy()
        addr: list[tuple[Int64s, Int64s]] = []
        for length in self._lens6:
            k = _v6_keys(hi, lo, length)
            pos = np.searchsorted(self._u6, k)
            np.minimum(pos, len(self._u6) - 1, out=pos)
            hit = np.flatnonzero(self._u6[pos] == k)
            addr.append((hit, pos[hit].astype(np.int64) + len(self._u4)))
        obs, key = self._rows(n, addr, port)
        return self._finish(n, obs, key, t)

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
