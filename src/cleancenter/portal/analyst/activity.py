"""What the sensors saw: events (filtered, paged) and the infected hosts."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import Table, func, select

from cleancenter.portal.analyst.common import (
    ANALYST,
    PER_PAGE,
    center_of,
    family_url,
    inert,
    page,
    pager,
    parse_day,
    when,
)
from cleancenter.portal.auth import Principal
from cleancenter.store.catalog import EVENT, CatalogError
from cleancenter.store.models import Infection
from cleancenter.store.queries import (
    EVENT_COLUMNS,
    EventFilter,
    _event_query,
    count_events,
    event_kind_counts,
)

router = APIRouter(prefix="/analyst", include_in_schema=False)
INFECTION = cast(Table, Infection.__table__)


@router.get("/events")
def events(
    request: Request,
    ip: Annotated[str | None, Query(max_length=64, description="an address or CIDR")] = None,
    kind: Annotated[str | None, Query(max_length=24)] = None,
    sensor: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    sample: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{64}$")] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    principal: Principal = ANALYST,
) -> Response:
    form = {"ip": ip or "", "kind": kind or "", "sensor": sensor or "", "since": since or "",
            "sample": sample or ""}
    problem = None
    rows: list[dict[str, Any]] = []
    total = 0
    with center_of(request).catalog.engine.connect() as conn:
        kinds = sorted(event_kind_counts(conn))
        try:
            flt = EventFilter(since=parse_day(since), ip=(ip or "").strip() or None,
                              sensor=sensor or None, kind=kind or None, sample=sample or None,
                              limit=PER_PAGE, offset=(page_number - 1) * PER_PAGE)
            total = count_events(conn, flt)
            query = (_event_query(flt, [EVENT.c[n] for n in EVENT_COLUMNS])
                     .order_by(EVENT.c.time.desc(), EVENT.c.id.desc())
                     .limit(flt.limit).offset(flt.offset))
            rows = [dict(r) for r in conn.execute(query).mappings()]
        except ValueError:
            problem = "analyst_bad_date"
        except CatalogError:
            problem = "analyst_bad_ip"
    for row in rows:
        row["time"] = when(row["time"])
    return page(request, "analyst/events.html", {
        "form": inert(form), "kinds": inert(kinds), "rows": inert(rows), "problem": problem,
        "pager": pager(request, total, page_number)}, status_code=422 if problem else 200)


@router.get("/infections")
def infections(
    request: Request,
    since: Annotated[str | None, Query(max_length=40)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    principal: Principal = ANALYST,
) -> Response:
    problem = None
    try:
        start = parse_day(since)
    except ValueError:
        start, problem = None, "analyst_bad_date"
    query = select(INFECTION)
    if start is not None:
        query = query.where(INFECTION.c.last_seen >= start)
    with center_of(request).catalog.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(query.subquery()))
                    .scalar_one())
        found = conn.execute(query.order_by(INFECTION.c.last_seen.desc(), INFECTION.c.src_ip)
                             .limit(PER_PAGE).offset((page_number - 1) * PER_PAGE)).all()
    rows = []
    for row in found:
        families = [str(f) for f in json.loads(row.families)]
        rows.append({"src_ip": row.src_ip, "first_seen": when(row.first_seen),
                     "last_seen": when(row.last_seen), "events": int(row.events),
                     "ports": [int(p) for p in json.loads(row.ports)][:20],
                     "sensors": [str(s) for s in json.loads(row.sensors)],
                     "families": [{"name": f, "url": family_url(f)} for f in families]})
    return page(request, "analyst/infections.html", {
        "since": inert(since or ""), "rows": inert(rows), "problem": problem,
        "pager": pager(request, total, page_number)}, status_code=422 if problem else 200)
