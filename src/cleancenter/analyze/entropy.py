"""Shannon entropy of bytes, the one definition every extractor uses; digests of regions.

Measured with CPython 3.11, pure stdlib (no numpy): `collections.Counter` over the bytes
counts in C and is the fastest way here at every size, ~0.1 ms for 4 KiB and ~32 ms for
1 MiB; 256 passes of ``bytes.count`` take ~0.4 ms and ~97 ms, ``bytes.replace`` passes
~46 ms for 1 MiB, a Counter over 16-bit words ~45 ms.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from math import log2

__all__ = ["RegionDigests", "shannon", "shannon_regions"]


def _from_counts(counts: Iterable[int], n: int) -> float:
    if n == 0:
        return 0.0
    total = sum(c * log2(c) for c in counts if c)
    # H = log2(n) - (1/n) * sum(c * log2(c)); clamp the float rounding noise to 0..8.
    return min(8.0, max(0.0, log2(n) - total / n))


def shannon(data: bytes | bytearray | memoryview) -> float:
    """Shannon entropy of ``data`` in bits per byte: 0.0 (empty or one value) to 8.0."""
    view = memoryview(data).cast("B")
    return _from_counts(Counter(view).values(), len(view))


def shannon_regions(data: bytes, regions: Iterable[tuple[int, int]]) -> list[float]:
    """`shannon` of ``data[start:start + size]`` for each ``(start, size)``, clipped to the
    data, counting each byte once however much the regions overlap (ELF segments hold
    the sections, the PE resource section holds the resources): the same numbers as
    `shannon` on each slice, in about half the time, and never more than one pass over
    the data even for hundreds of sections that all span the whole file.

    The region boundaries cut the data into pieces, each counted once; running totals
    of the piece counts give any region's counts by one subtraction.
    """
    n = len(data)
    spans = []
    for start, size in regions:
        low = min(max(start, 0), n)
        spans.append((low, min(max(start + max(size, 0), low), n)))
    cuts = sorted({point for span in spans for point in span})
    index = {point: i for i, point in enumerate(cuts)}
    needed: set[int] = set()
    for low, high in spans:
        needed.update(range(index[low], index[high]))
    view = memoryview(data)
    running = [[0] * 256]
    for i in range(len(cuts) - 1):
        totals = running[-1].copy()
        if i in needed:
            for value, count in Counter(view[cuts[i] : cuts[i + 1]]).items():
                totals[value] += count
        running.append(totals)
    out = []
    for low, high in spans:
        before, after = running[index[low]], running[index[high]]
        out.append(_from_counts((a - b for a, b in zip(after, before, strict=True)), high - low))
    return out


class RegionDigests:
    """MD5 and SHA-256 of regions of one file, each distinct region hashed once, and no
    more than ``budget`` bytes in all (default: 8 times the file, plus 16 MiB), so a
    hostile header whose hundreds of sections or resources all span the whole file
    cannot make hashing take minutes; past the budget the digests are None."""

    def __init__(self, data: bytes, budget: int | None = None) -> None:
        self.data = data
        self.budget = 8 * len(data) + (16 << 20) if budget is None else budget
        self._done: dict[tuple[int, int], tuple[str | None, str | None]] = {}

    def __call__(self, start: int | None, size: int) -> tuple[str | None, str | None]:
        if start is None or start < 0 or size <= 0 or start >= len(self.data):
            return None, None
        end = min(start + size, len(self.data))
        key = (start, end)
        if key not in self._done:
            if end - start > self.budget:
                return None, None
            self.budget -= end - start
            raw = self.data[start:end]
            self._done[key] = (hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest())
        return self._done[key]
