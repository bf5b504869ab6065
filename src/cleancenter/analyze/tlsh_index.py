"""Nearest neighbours by TLSH distance over a million digests: buckets by TLSH header.

Why this index, and why it is exact
-----------------------------------
A TLSH digest is a header (checksum, length "lvalue", two quartile ratios) and a body of
128 two-bit buckets. ``tlsh.diff`` adds a header part and a body part, and the header part
grows fast: a length two steps away costs 24, three steps 36; a quartile ratio two steps
away costs 12. Files near each other have near lengths and ratios, so the header is a
natural bucket key.

Rows are sorted by their header bucket, (lvalue, q1, q2): at most 65,536 buckets. For a
query the exact header cost of every bucket is one small vectorized sum, and it is a lower
bound of the distance of every row in that bucket (the body and checksum parts are >= 0).
So:

- all within T: only buckets costing <= T are read, every row of them scored exactly;
- k nearest: the cheapest buckets until k rows are scored give an upper bound D of the
  k-th distance; then every other bucket costing <= D is scored. Nothing outside can be
  nearer, so the answer is the brute-force answer, ties broken by sha256: exact, not an
  approximation.

Scoring is the real TLSH distance computed with numpy for many rows at once on bit planes
of the body (equal to ``tlsh.diff``, checked by the tests). The same scoring over all rows
(`TlshIndex.scan`) is the vectorized brute force; `brute_force` is the plain
``tlsh.diff`` loop, the reference for both. How much an index query reads depends on the
data: a member of a family stops after its family's buckets; a digest far from
everything reads many buckets, at worst all of them (then it costs what `scan` costs).

A vantage-point tree over a metric lower bound of the distance (the body's L1 distance plus
the circular distances of the header fields) was tried first: also exact, but that bound
is weak on the header (1 per length step where TLSH charges 12), and it read about half the
rows per query at 100,000 digests. Locality-sensitive bands on body nibbles would read
less but lose neighbours (TLSH family members differ in scattered nibbles).

The index is a single ``.npz`` file (written to a temporary name, then renamed), rebuilt
from the catalog with `TlshIndex.from_catalog`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tlsh
from sqlalchemy import Connection, select

from cleancenter.store.catalog import SAMPLE

FORMAT_VERSION = 2
HEX_LEN = 70  # checksum, lvalue, qratios (3 bytes) + 32 body bytes, after the "T1" prefix
INDEX_FILE = "tlsh-index.npz"
FULL_SCAN_SHARE = 0.4  # when more rows than this share qualify, score them all in one pass

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


class TlshIndexError(Exception):
    """The index file cannot be read, or a digest is not TLSH."""


@dataclass(frozen=True)
class Hit:
    sha256: str
    distance: int


@dataclass
class BuildReport:
    digests: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (sha256, why)
    seconds: float = 0.0


def _swap(byte: int) -> int:
    return ((byte & 0x0F) << 4) | (byte >> 4)


def digest_bytes(digest: str) -> bytes:
    """The 35 bytes of a TLSH hex digest ("T1" prefix optional); raises TlshIndexError."""
    text = digest.strip()
    if len(text) == HEX_LEN + 2 and text[:2].upper() == "T1":
        text = text[2:]
    if len(text) != HEX_LEN:
        raise TlshIndexError(f"not a TLSH digest (length {len(digest)}): {digest[:80]!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise TlshIndexError(f"not a TLSH digest (not hex): {digest[:80]!r}") from None


def _parse(raw: U8) -> tuple[U8, U64, U64]:
    """(n, 35) bytes -> header (n, 4: checksum, lvalue, q1, q2) and body bit planes."""
    n = raw.shape[0]
    header = np.empty((n, 4), dtype=np.uint8)
    header[:, 0] = raw[:, 0]
    lv = raw[:, 1]
    header[:, 1] = ((lv & 0x0F) << 4) | (lv >> 4)  # the hex form swaps nibbles
    header[:, 2] = raw[:, 2] >> 4
    header[:, 3] = raw[:, 2] & 0x0F
    bits = np.unpackbits(raw[:, 3:], axis=1)  # (n, 256): per byte b7..b0, codes (b7 b6)...
    high = np.packbits(bits[:, 0::2], axis=1).view(np.uint64)  # (n, 2)
    low = np.packbits(bits[:, 1::2], axis=1).view(np.uint64)
    return header, np.ascontiguousarray(high), np.ascontiguousarray(low)


def _circular(a: npt.NDArray[Any], b: int, mod: int) -> I64:
    d = np.abs(a.astype(np.int64) - b)
    out: I64 = np.minimum(d, mod - d)
    return out


@dataclass(frozen=True)
class _Query:
    header: tuple[int, int, int, int]
    high: U64  # (2,)
    low: U64
    own: U64  # high ^ low of the query: buckets holding code 1 or 2
    costs: I32  # header cost of each (lvalue, q1, q2) bucket

    @classmethod
    def of(cls, digest: str) -> _Query:
        raw = np.frombuffer(digest_bytes(digest), dtype=np.uint8).reshape(1, 35)
        header, high, low = _parse(raw)
        h, lo = high[0], low[0]
        hdr = (int(header[0, 0]), int(header[0, 1]), int(header[0, 2]), int(header[0, 3]))
        return cls(header=hdr, high=h, low=lo, own=h ^ lo,
                   costs=_bucket_costs(hdr).astype(np.int32))


def _bucket_costs(header: tuple[int, int, int, int]) -> I64:
    """The exact header cost (length and quartile parts) of each of the 65,536
    (lvalue, q1, q2) buckets, indexed by `_bucket`."""
    _, lv, q1, q2 = header
    dl = _circular(np.arange(256), lv, 256)
    lcost = np.where(dl <= 1, dl, dl * 12)
    qcost = []
    for v in (q1, q2):
        dq = _circular(np.arange(16), v, 16)
        qcost.append(np.where(dq <= 1, dq, (dq - 1) * 12))
    costs: I64 = (lcost[:, None, None] + qcost[0][None, :, None]
                  + qcost[1][None, None, :]).reshape(-1)
    return costs


def _exact(q: _Query, check: U8, keys: npt.NDArray[np.uint16], high: U64, low: U64
           ) -> I32:
    """tlsh.diff(q, row) for every row, vectorized: the header part by table look-up on
    the row's bucket, the body from its two bit planes ((2, n) arrays of 64-bit words)."""
    dist: I32 = q.costs[keys]
    dist += check != q.header[0]
    for w in (0, 1):
        hd = high[w] ^ q.high[w]
        ld = low[w] ^ q.low[w]
        both = hd & ld  # both bits differ: 1<->2 (cost 1) or 0<->3 (cost 6)
        dist += np.bitwise_count(ld & ~hd)
        dist += np.bitwise_count(hd & ~ld) * np.int32(2)
        dist += np.bitwise_count(both & q.own[w])
        dist += np.bitwise_count(both & ~q.own[w]) * np.int32(6)
    return dist


def brute_force(digest: str, rows: Iterable[tuple[str, str]], *, k: int | None = 10,
                max_distance: int | None = None) -> list[Hit]:
    """The reference answer: ``tlsh.diff`` against every (sha256, digest), sorted."""
    hits = []
    for sha, other in rows:
        d = int(tlsh.diff(digest, other))
        if max_distance is None or d <= max_distance:
            hits.append(Hit(sha, d))
    hits.sort(key=lambda h: (h.distance, h.sha256))
    return hits if k is None else hits[:k]


def _bucket(header: U8) -> I64:
    key: I64 = (header[:, 1].astype(np.int64) * 256 + header[:, 2].astype(np.int64) * 16
                + header[:, 3].astype(np.int64))
    return key


def _ranges(starts: I64, ends: I64) -> I64:
    """The row numbers of several [start, end) ranges, concatenated."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    rows: I64 = np.arange(total, dtype=np.int64) + shift
    return rows


class TlshIndex:
    """Digests sorted by header bucket; every query answer equals brute force's."""

    def __init__(self, ids: npt.NDArray[np.bytes_], header: U8, high: U64, low: U64) -> None:
        self.ids = ids  # sha256 (ASCII) per row, rows sorted by bucket then sha256
        self.header = header
        self.high = high
        self.low = low
        keys = _bucket(header)
        self.buckets, self.starts = np.unique(keys, return_index=True)
        self.ends = np.append(self.starts[1:], len(keys)).astype(np.int64)
        self.starts = self.starts.astype(np.int64)
        # what scoring reads, laid out for it: contiguous columns and (2, n) bit planes
        self._check = np.ascontiguousarray(header[:, 0])
        self._keys = keys.astype(np.uint16)
        self._high = np.ascontiguousarray(high.T)
        self._low = np.ascontiguousarray(low.T)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    # -- building ------------------------------------------------------------------
    @classmethod
    def build(cls, rows: Iterable[tuple[str, str]], *,
              report: BuildReport | None = None) -> TlshIndex:
        """From (sha256, digest) pairs; a bad digest is recorded in `report` and skipped."""
        report = report if report is not None else BuildReport()
        ids: list[bytes] = []
        chunks: list[bytes] = []
        for sha, digest in rows:
            try:
                chunks.append(digest_bytes(digest))
            except TlshIndexError as exc:
                report.errors.append((sha, str(exc)))
                continue
            ids.append(sha.encode("ascii"))
        report.digests = len(ids)
        n = len(ids)
        raw = (np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(n, 35)
               if n else np.zeros((0, 35), dtype=np.uint8))
        header, high, low = _parse(raw)
        id_array = np.array(ids, dtype="S64") if n else np.zeros(0, dtype="S64")
        order = np.lexsort((id_array, _bucket(header)))
        return cls(id_array[order], np.ascontiguousarray(header[order]),
                   np.ascontiguousarray(high[order]), np.ascontiguousarray(low[order]))

    @classmethod
    def from_catalog(cls, conn: Connection, *, report: BuildReport | None = None) -> TlshIndex:
        """Every TLSH digest in the catalog."""
        result = conn.execution_options(stream_results=True, yield_per=50_000).execute(
            select(SAMPLE.c.sha256, SAMPLE.c.tlsh).where(SAMPLE.c.tlsh.is_not(None)))
        rows = ((str(sha), str(digest)) for sha, digest in result)
        return cls.build(rows, report=report)

    # -- persistence ---------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically: a temporary file beside `path`, then a rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tlsh-index-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, version=np.array([FORMAT_VERSION]), ids=self.ids,
                         header=self.header, high=self.high, low=self.low)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> TlshIndex:
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["version"][0])
                if version != FORMAT_VERSION:
                    raise TlshIndexError(f"{path}: index format {version}, expected "
                                         f"{FORMAT_VERSION}; rebuild it")
                return cls(data["ids"], data["header"], data["high"], data["low"])
        except TlshIndexError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise TlshIndexError(f"cannot read TLSH index {path}: {exc}") from exc

    # -- queries -------------------------------------------------------------------
    def _score(self, q: _Query, rows: I64) -> I32:
        return _exact(q, self._check[rows], self._keys[rows], self._high[:, rows],
                      self._low[:, rows])

    def _answer(self, rows: I64, dists: I32, *, k: int | None, max_distance: int | None,
                exclude: str | None) -> list[Hit]:
        keep = np.ones(len(rows), dtype=bool)
        if max_distance is not None:
            keep &= dists <= max_distance
        if exclude is not None:
            keep &= self.ids[rows] != exclude.encode("ascii")
        rows, dists = rows[keep], dists[keep]
        if k is not None and len(rows) > k:
            # everything at or under the k-th distance (ties), then sort only those
            kth = np.partition(dists, k - 1)[k - 1]
            sel = dists <= kth
            rows, dists = rows[sel], dists[sel]
        order = np.lexsort((self.ids[rows], dists))
        if k is not None:
            order = order[:k]
        return [Hit(self.ids[r].decode("ascii"), int(d))
                for r, d in zip(rows[order].tolist(), dists[order].tolist(), strict=True)]

    def scan(self, digest: str, *, k: int | None = 10, max_distance: int | None = None,
             exclude: str | None = None) -> list[Hit]:
        """Vectorized brute force: the exact distance to every row."""
        q = _Query.of(digest)
        dists = _exact(q, self._check, self._keys, self._high, self._low)
        rows = np.arange(len(dists), dtype=np.int64)
        return self._answer(rows, dists, k=k, max_distance=max_distance, exclude=exclude)

    def query(self, digest: str, *, k: int | None = 10, max_distance: int | None = None,
              exclude: str | None = None,
              stats: Callable[[int], None] | None = None) -> list[Hit]:
        """The k nearest (k=None: all) within `max_distance`: exactly brute force's answer."""
        q = _Query.of(digest)
        if len(self) == 0 or k == 0:
            return []
        costs = q.costs[self.buckets]
        order = np.argsort(costs, kind="stable")
        limit = max_distance
        scored_rows: list[I64] = []
        scored_dists: list[I32] = []
        done = 0  # buckets (in cost order) already scored
        if k is not None:
            # pass 1: the cheapest buckets holding k rows (k+1 if one may be excluded)
            need = k + (1 if exclude is not None else 0)
            sizes = (self.ends - self.starts)[order]
            done = int(np.searchsorted(np.cumsum(sizes), need)) + 1
            first = order[:done]
            if limit is not None:
                first = first[costs[first] <= limit]
            rows = _ranges(self.starts[first], self.ends[first])
            dists = self._score(q, rows)
            scored_rows.append(rows)
            scored_dists.append(dists)
            skip = exclude.encode("ascii") if exclude is not None else None
            usable = dists if skip is None else dists[self.ids[rows] != skip]
            if len(usable) >= k:
                bound = int(np.partition(usable, k - 1)[k - 1])
                limit = bound if limit is None else min(limit, bound)
        rest = order[done:]
        if limit is not None:
            rest = rest[costs[rest] <= limit]
        if int((self.ends[rest] - self.starts[rest]).sum()) > FULL_SCAN_SHARE * len(self):
            # most rows qualify: one contiguous pass is cheaper than gathering them
            if stats is not None:
                stats(len(self))
            return self.scan(digest, k=k, max_distance=max_distance, exclude=exclude)
        rows = _ranges(self.starts[rest], self.ends[rest])
        if len(rows):
            scored_rows.append(rows)
            scored_dists.append(self._score(q, rows))
        all_rows = np.concatenate(scored_rows) if scored_rows else np.zeros(0, np.int64)
        all_dists = np.concatenate(scored_dists) if scored_dists else np.zeros(0, np.int32)
        if stats is not None:
            stats(len(all_rows))
        return self._answer(all_rows, all_dists, k=k, max_distance=max_distance,
                            exclude=exclude)


def index_path(data_dir: Path) -> Path:
    return data_dir / INDEX_FILE
