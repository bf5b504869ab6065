"""Similar samples by TLSH distance, and family by the nearest labelled neighbour.

Brute force over every TLSH digest in the catalog: fine for the tens of thousands of
samples one center holds; the million-sample index (TLSH buckets) is issue 7's.
"""

from __future__ import annotations

from dataclasses import dataclass

import tlsh
from sqlalchemy import Connection, select

from cleancenter.analyze.report import Family
from cleancenter.store.catalog import SAMPLE

FAMILY_DISTANCE = 70  # at or under this TLSH distance a labelled neighbour lends its family


@dataclass(frozen=True)
class Neighbour:
    sha256: str
    distance: int
    family: str | None
    verdict: str | None


def similar(conn: Connection, digest: str, *, limit: int = 10, exclude: str | None = None,
            max_distance: int | None = None) -> list[Neighbour]:
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
