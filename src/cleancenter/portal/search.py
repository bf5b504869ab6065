"""Sample search for the portal: the store's filter plus family and IOC, with pages.

Builds on `cleancenter.store.queries` (its filter query, names and tags) without changing
it; the portal adds what the command line does not have yet.

Two things keep a search cheap on a catalog of a million samples (bench/million.py):

- the total is counted only up to `TOTAL_CAP` (shown as "200+"): an exact count of a big
  family over a year means probing tens of thousands of rows, whatever the index;
- pages after the first are asked for by a cursor (``after``: the last row's first_seen
  and sha256), so page 200 costs what page 1 costs. A page number alone still works (an
  OFFSET), for links people type by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, literal, select, tuple_

from cleancenter.store.catalog import SAMPLE
from cleancenter.store.models import Ioc, SampleIoc, UTCDateTime
from cleancenter.store.queries import (
    MIN_PREFIX,
    SampleFilter,
    _names_and_tags,
    _sample_query,
    _summary,
)

IOC = cast(Table, Ioc.__table__)
SAMPLE_IOC = cast(Table, SampleIoc.__table__)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_CURSOR = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?)~([0-9a-f]{64})$")
MAX_PER_PAGE = 200
TOTAL_CAP = 200  # totals above this are reported as "at least TOTAL_CAP + 1"


class BadCursor(ValueError):
    """An ``after`` value this search did not hand out."""


@dataclass
class SampleSearch:
    q: str | None = None  # a hash prefix (4+ hex digits) or a part of a name
    family: str | None = None
    tag: str | None = None
    file_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    ioc: str | None = None  # an IOC value, exactly (a URL, domain, address, ...)
    page: int = 1
    per_page: int = 50
    after: str | None = None  # the ``next`` cursor of the previous page


def make_cursor(first_seen: datetime, sha256: str) -> str:
    """``<first_seen as naive UTC ISO 8601>~<sha256>``: readable, and safe in a URL."""
    naive = first_seen.astimezone(UTC).replace(tzinfo=None)
    return f"{naive.isoformat(timespec='microseconds')}~{sha256}"


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    match = _CURSOR.match(cursor.strip())
    if match is None:
        raise BadCursor("not a cursor of this search (use the 'next' value of a page)")
    try:
        when = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
    except ValueError as exc:
        raise BadCursor(f"not a time in the cursor: {exc}") from None
    return when, match.group(2)


def _query(search: SampleSearch) -> Any:
    q = (search.q or "").strip()
    is_hash = bool(q) and _HEX.match(q) is not None and MIN_PREFIX <= len(q) <= 64
    flt = SampleFilter(hash_prefix=q if is_hash else None, name=q if q and not is_hash else None,
                       tag=search.tag, file_type=search.file_type, since=search.since,
                       until=search.until)
    query = _sample_query(flt)
    if search.family:
        # lower() on both sides, in SQL: each backend folds the name as it folds the
        # column (SQLite ASCII only, PostgreSQL all letters), and the (lower(family),
        # first_seen, sha256) index of migration 0009 serves the search in date order
        query = query.where(func.lower(SAMPLE.c.family) == func.lower(search.family))
    if search.ioc:
        with_ioc = (select(SAMPLE_IOC.c.sha256)
                    .join(IOC, IOC.c.id == SAMPLE_IOC.c.ioc_id)
                    .where(IOC.c.value == search.ioc.strip()))
        query = query.where(SAMPLE.c.sha256.in_(with_ioc))
    return query


def _count(conn: Connection, query: Any, cap: int | None) -> int:
    counted = query if cap is None else query.limit(cap + 1)
    return int(conn.execute(select(func.count()).select_from(counted.subquery())).scalar_one())


def search_samples(conn: Connection, search: SampleSearch, *,
                   total_cap: int | None = TOTAL_CAP) -> dict[str, Any]:
    """``{"total", "total_exact", "page", "per_page", "next", "samples": [...]}``, newest
    first (first_seen, then sha256, both descending).

    ``total`` is exact when ``total_exact``; otherwise there are more than ``total_cap``
    and ``total`` is ``total_cap + 1``. A page asked for by cursor (``after``) has no
    total (None: the first page gave it). ``next`` is the cursor of the following page,
    or None on the last one. Raises `BadCursor` for an ``after`` it cannot read.
    """
    per_page = max(1, min(search.per_page, MAX_PER_PAGE))
    page = max(1, search.page)
    c = SAMPLE.c
    query = _query(search)
    order = (c.first_seen.desc(), c.sha256.desc())
    total: int | None
    if search.after:
        # a following page: only its own rows, however deep
        when, sha = parse_cursor(search.after)
        keys = query.where(tuple_(c.first_seen, c.sha256)
                           < tuple_(literal(when, UTCDateTime), literal(sha)))
        ids = _ordered_ids(conn, keys, order, per_page + 1)
        total = None
    elif page == 1 and total_cap is not None:
        # the first page and the capped total from one ordered scan of the keys
        ids = _ordered_ids(conn, query, order, max(total_cap + 1, per_page + 1))
        total = min(len(ids), total_cap + 1)
    else:
        total = _count(conn, query, total_cap)
        ids = _ordered_ids(conn, query.offset((page - 1) * per_page), order, per_page + 1)
    more, ids = len(ids) > per_page, ids[:per_page]
    rows = {r.sha256: r for r in conn.execute(select(SAMPLE).where(c.sha256.in_(ids)))}
    names, tags = _names_and_tags(conn, ids)
    samples = []
    for sha in ids:
        row = rows[sha]
        data = _summary(row, names[sha], tags[sha]).to_dict()
        data["verdict"], data["family"] = row.verdict, row.family
        samples.append(data)
    last = rows[ids[-1]] if ids else None
    next_cursor = make_cursor(last.first_seen, last.sha256) if more and last else None
    exact = total is not None and (total_cap is None or total <= total_cap)
    return {"total": total, "total_exact": exact, "page": page, "per_page": per_page,
            "next": next_cursor, "samples": samples}


def _ordered_ids(conn: Connection, query: Any, order: tuple[Any, ...], limit: int
                 ) -> list[str]:
    """The sha256 of the matches in page order: the (lower(family), first_seen, sha256)
    and (first_seen) indexes answer this without reading the sample rows."""
    keyed = query.with_only_columns(SAMPLE.c.sha256).order_by(*order).limit(limit)
    return list(conn.execute(keyed).scalars())
