"""Similar samples by TLSH distance, and family by the nearest labelled neighbour.

Brute force over every TLSH digest in the catalog by default: fine for the tens of
thousands of samples one center holds; `similar(..., index=TlshIndex)` answers the same
from the header-bucket index of `cleancenter.analyze.tlsh_index` (issue 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import tlsh
from sqlalchemy import Connection, select

from cleancenter.analyze.report import Family
from cleancenter.analyze.tlsh_index import TlshIndex
from cleancenter.store.catalog import SAMPLE

FAMILY_DISTANCE = 70  # at or under this TLSH distance a labelled neighbour lends its family


@dataclass(frozen=True)
class Neighbour:
    sha256: str
    distance: int
    family: str | None
    verdict: str | None


def similar(conn: Connection, digest: str, *, limit: int = 10, exclude: str | None = None,
            max_distance: int | None = None, index: TlshIndex | None = None
            ) -> list[Neighbour]:
    """The nearest samples by TLSH distance, nearest first (ties by sha256).

    With `index` (a `TlshIndex` built from this catalog) the same answer comes from the
    index instead of a pass over every digest; samples added after it was built are not
    in it."""
    if index is not None:
        return _similar_indexed(conn, index, digest, limit=limit, exclude=exclude,
                                max_distance=max_distance)
    rows = conn.execute(select(SAMPLE.c.sha256, SAMPLE.c.tlsh, SAMPLE.c.family,
                               SAMPLE.c.verdict).where(SAMPLE.c.tlsh.is_not(None))).all()
    found = []
    for sha, other, family, verdict in rows:
        if sha == exclude:
            continue
        distance = int(tlsh.diff(digest, other))
        if max_distance is None or distance <= max_distance:
            found.append(Neighbour(sha, distance, family, verdict))
    found.sort(key=lambda n: (n.distance, n.sha256))
    return found[:limit]


def _similar_indexed(conn: Connection, index: TlshIndex, digest: str, *, limit: int,
                     exclude: str | None, max_distance: int | None) -> list[Neighbour]:
    hits = index.query(digest, k=limit, max_distance=max_distance, exclude=exclude)
    labels = {
        sha: (family, verdict)
        for sha, family, verdict in conn.execute(
            select(SAMPLE.c.sha256, SAMPLE.c.family, SAMPLE.c.verdict)
            .where(SAMPLE.c.sha256.in_([h.sha256 for h in hits])))
    } if hits else {}
    return [Neighbour(h.sha256, h.distance, *labels.get(h.sha256, (None, None)))
            for h in hits]


def family_by_neighbour(conn: Connection, digest: str, exclude: str) -> Family | None:
    """The family of the nearest labelled sample within `FAMILY_DISTANCE`, with why."""
    for neighbour in similar(conn, digest, limit=50, exclude=exclude,
                             max_distance=FAMILY_DISTANCE):
        if neighbour.family:
            return Family(name=neighbour.family, source="similarity",
                          distance=neighbour.distance,
                          reason=f"TLSH distance {neighbour.distance} to {neighbour.sha256} "
                                 f"({neighbour.family})")
    return None
