"""Sample search for the portal: the store's filter plus family and IOC, with pages.

Builds on `cleancenter.store.queries` (its filter query, names and tags) without changing
it; the portal adds what the command line does not have yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from cleancenter.store.catalog import SAMPLE
from cleancenter.store.models import Ioc, SampleIoc
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
MAX_PER_PAGE = 200


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
        # first_seen) index of migration 0009 serves the search in date order
        query = query.where(func.lower(SAMPLE.c.family) == func.lower(search.family))
    if search.ioc:
        with_ioc = (select(SAMPLE_IOC.c.sha256)
                    .join(IOC, IOC.c.id == SAMPLE_IOC.c.ioc_id)
                    .where(IOC.c.value == search.ioc.strip()))
        query = query.where(SAMPLE.c.sha256.in_(with_ioc))
    return query


def search_samples(conn: Connection, search: SampleSearch) -> dict[str, Any]:
    """``{"total", "page", "per_page", "samples": [...]}``, newest first."""
    per_page = max(1, min(search.per_page, MAX_PER_PAGE))
    page = max(1, search.page)
    query = _query(search)
    total = int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())
    rows = conn.execute(query.order_by(SAMPLE.c.first_seen.desc(), SAMPLE.c.sha256)
                        .limit(per_page).offset((page - 1) * per_page)).all()
    names, tags = _names_and_tags(conn, [r.sha256 for r in rows])
    samples = []
    for row in rows:
        data = _summary(row, names[row.sha256], tags[row.sha256]).to_dict()
        data["verdict"], data["family"] = row.verdict, row.family
        samples.append(data)
    return {"total": total, "page": page, "per_page": per_page, "samples": samples}
