"""Samples and families: the overview, search, one sample, exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from sqlalchemy import Connection, func, select
from starlette.concurrency import run_in_threadpool

from cleancenter.analyze.report import Report
from cleancenter.analyze.service import latest_label, report_for
from cleancenter.analyze.similarity import similar
from cleancenter.portal.analyst.common import (
    ANALYST,
    PER_PAGE,
    SHA256_PATTERN,
    center_of,
    family_url,
    inert,
    not_found,
    page,
    pager,
    parse_day,
    search_pager,
    when,
)
from cleancenter.portal.auth import Principal
from cleancenter.portal.search import BadCursor, SampleSearch, search_samples
from cleancenter.share.gather import FamilyData, family_name, load_family, load_sample
from cleancenter.share.misp import misp_family_event, misp_sample_event
from cleancenter.share.stix import MEDIA_TYPE, stix_family_bundle, stix_sample_bundle
from cleancenter.store.catalog import SAMPLE
from cleancenter.store.models import Infection, Release
from cleancenter.store.queries import get_sample, store_counts

router = APIRouter(prefix="/analyst", include_in_schema=False)
SHA256 = Annotated[str, PathParam(pattern=SHA256_PATTERN)]
FAMILY = Annotated[str, PathParam(min_length=1, max_length=256)]
SIMILAR = 10


@router.get("/")
def overview(request: Request, principal: Principal = ANALYST) -> Response:
    with center_of(request).catalog.engine.connect() as conn:
        counts = store_counts(conn)
        counts["families"] = int(conn.execute(
            select(func.count(func.distinct(SAMPLE.c.family)))).scalar_one())
        counts["infections"] = int(conn.execute(
            select(func.count()).select_from(Infection.__table__)).scalar_one())
        counts["releases"] = int(conn.execute(
            select(func.count()).select_from(Release.__table__)).scalar_one())
        analysed: dict[str, int] = dict(conn.execute(select(SAMPLE.c.analysis_state, func.count())
                                     .group_by(SAMPLE.c.analysis_state)).all())
    return page(request, "analyst/overview.html",
                {"counts": counts, "states": inert({str(k): int(v) for k, v in analysed.items()})})


@router.get("/samples")
def samples(
    request: Request,
    q: Annotated[str | None, Query(max_length=256)] = None,
    family: Annotated[str | None, Query(max_length=256)] = None,
    tag: Annotated[str | None, Query(max_length=128)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    ioc: Annotated[str | None, Query(max_length=2048)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    after: Annotated[str | None, Query(max_length=100)] = None,
    principal: Principal = ANALYST,
) -> Response:
    form = {"q": q or "", "family": family or "", "tag": tag or "", "type": type or "",
            "since": since or "", "until": until or "", "ioc": ioc or ""}
    problem = None
    try:
        start, end = parse_day(since), parse_day(until, end=True)
    except ValueError:
        start = end = None
        problem = "analyst_bad_date"
    result: dict[str, Any] = {"total": 0, "total_exact": True, "page": 1,
                              "per_page": PER_PAGE, "next": None, "samples": []}
    types: list[str] = []
    if problem is None:
        search = SampleSearch(q=q or None, family=family or None, tag=tag or None,
                              file_type=type or None, since=start, until=end,
                              ioc=ioc or None, page=page_number, per_page=PER_PAGE,
                              after=after or None)
        with center_of(request).catalog.engine.connect() as conn:
            try:
                result = search_samples(conn, search)
            except BadCursor:
                problem = "analyst_bad_cursor"
            types = list(conn.execute(select(SAMPLE.c.file_type).distinct()
                                      .order_by(SAMPLE.c.file_type)).scalars())
    rows = [{**s, "family_url": family_url(s["family"]) if s.get("family") else None,
             "first_seen": when(s["first_seen"])} for s in result["samples"]]
    return page(request, "analyst/samples.html", {
        "form": inert(form), "rows": inert(rows), "types": inert(types),
        "pager": search_pager(request, result), "problem": problem,
    }, status_code=422 if problem else 200)


def _yara(report: Report) -> list[dict[str, Any]]:
    hits = []
    for match in report.yara:
        meta = {str(k): str(v) for k, v in match.meta.items()}
        reference = meta.get("reference") or meta.get("url") or ""
        scheme = urlsplit(reference).scheme.lower() if reference else ""
        hits.append({"rule": match.rule, "pack": match.pack, "namespace": match.namespace,
                     "tags": match.tags, "author": meta.get("author", ""),
                     "reference": reference,
                     # a link only to a web page; anything else (javascript:...) is text
                     "reference_link": scheme in ("http", "https") and "\n" not in reference,
                     "description": meta.get("description", "")})
    return hits


def _configs(report: Report) -> list[dict[str, Any]]:
    shown = []
    for result in report.configs:
        config = result.config
        servers = []
        for proto in ("tcp", "udp"):
            for conn in config.get(proto) or []:
                if isinstance(conn, dict):
                    host = conn.get("server_domain") or conn.get("server_ip") or "?"
                    port = conn.get("server_port")
                    servers.append({"proto": proto, "host": str(host),
                                    "port": "" if port is None else str(port),
                                    "usage": str(conn.get("usage") or "")})
        urls = [str(h.get("uri") or h.get("hostname") or "") for h in config.get("http") or []
                if isinstance(h, dict)]
        other = config.get("other") if isinstance(config.get("other"), dict) else {}
        irc = other.get("irc") if isinstance(other, dict) else None
        shown.append({
            "family": result.family, "extractor": result.extractor, "servers": servers,
            "urls": urls, "passwords": [str(p) for p in config.get("password") or []],
            "irc": irc if isinstance(irc, dict) else None,
            # the whole configuration as JSON: every non-ASCII and control character as
            # a \\u escape, so nothing in it can act on the page or the terminal
            "json": json.dumps(config, indent=2, ensure_ascii=True, sort_keys=True),
        })
    return shown


def _sample_context(request: Request, conn: Connection, sha256: str) -> dict[str, Any] | None:
    catalog = center_of(request).catalog
    detail = get_sample(conn, sha256)
    if detail is None or detail.sha256 != sha256:
        return None
    verdict, family, state = conn.execute(
        select(SAMPLE.c.verdict, SAMPLE.c.family, SAMPLE.c.analysis_state)
        .where(SAMPLE.c.sha256 == sha256)).one()
    label = latest_label(conn, sha256)
    report = report_for(catalog, sha256)
    neighbours = similar(conn, detail.tlsh, limit=SIMILAR, exclude=sha256) \
        if detail.tlsh else []
    data = detail.to_dict()
    data.update(verdict=verdict, family=family, analysis_state=state,
                first_seen=when(detail.first_seen), last_seen=when(detail.last_seen))
    return {
        "s": data,
        "family_url": family_url(family) if family else None,
        "label": None if label is None else {
            "verdict": label.verdict, "family": label.family, "note": label.note,
            "author": label.author, "created": when(label.created)},
        "report": None if report is None else report.model_dump(mode="json"),
        "report_created": when(report.created) if report else "",
        "yara": _yara(report) if report else [],
        "configs": _configs(report) if report else [],
        "similar": [{"sha256": n.sha256, "distance": n.distance, "family": n.family,
                     "family_url": family_url(n.family) if n.family else None,
                     "verdict": n.verdict} for n in neighbours],
    }


@router.get("/samples/{sha256}")
def sample(request: Request, sha256: SHA256, principal: Principal = ANALYST) -> Response:
    sha256 = sha256.lower()
    with center_of(request).catalog.engine.connect() as conn:
        context = _sample_context(request, conn, sha256)
    if context is None:
        raise not_found()
    return page(request, "analyst/sample.html", inert(context))


def _download(body: bytes, filename: str, media_type: str,
              extra: dict[str, str] | None = None) -> Response:
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow", **(extra or {})})


def _serialize(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")


async def _family_document(request: Request, name: str,
                           build: Callable[[FamilyData], dict[str, Any]]
                           ) -> tuple[FamilyData, bytes]:
    """Gather, build and serialize off the event loop: a family can be large."""
    def work() -> tuple[FamilyData, bytes] | None:
        data = load_family(center_of(request).catalog, name)
        return None if data is None else (data, _serialize(build(data)))

    done = await run_in_threadpool(work)
    if done is None:
        raise not_found()
    return done


async def _sample_data(request: Request, sha256: str) -> Any:
    data = await run_in_threadpool(load_sample, center_of(request).catalog, sha256.lower())
    if data is None or data.sha256 != sha256.lower():
        raise not_found()
    return data


@router.get("/samples/{sha256}/stix")
async def sample_stix(request: Request, sha256: SHA256, principal: Principal = ANALYST
                      ) -> Response:
    data = await _sample_data(request, sha256)
    body = await run_in_threadpool(lambda: _serialize(stix_sample_bundle(data)))
    return _download(body, f"{data.sha256}.stix.json", MEDIA_TYPE)


@router.get("/samples/{sha256}/misp")
async def sample_misp(request: Request, sha256: SHA256, principal: Principal = ANALYST
                      ) -> Response:
    data = await _sample_data(request, sha256)
    body = await run_in_threadpool(lambda: _serialize(misp_sample_event(data)))
    return _download(body, f"{data.sha256}.misp.json", "application/json")


@router.get("/families")
def families(request: Request,
             page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
             principal: Principal = ANALYST) -> Response:
    count = func.count().label("n")
    query = (select(SAMPLE.c.family, count, func.min(SAMPLE.c.first_seen).label("first"),
                    func.max(SAMPLE.c.last_seen).label("last"))
             .where(SAMPLE.c.family.is_not(None)).group_by(SAMPLE.c.family))
    with center_of(request).catalog.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(query.subquery()))
                    .scalar_one())
        rows = conn.execute(query.order_by(count.desc(), SAMPLE.c.family)
                            .limit(PER_PAGE).offset((page_number - 1) * PER_PAGE)).all()
    listed = [{"name": r.family, "url": family_url(r.family), "count": int(r.n),
               "first_seen": when(r.first), "last_seen": when(r.last)} for r in rows]
    return page(request, "analyst/families.html", {
        "rows": inert(listed), "pager": pager(request, total, page_number)})


def _safe_file_name(name: str) -> str:
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    return cleaned.strip("._")[:80] or "family"


@router.get("/families/{name:path}/stix")
async def family_stix(request: Request, name: FAMILY, principal: Principal = ANALYST
                      ) -> Response:
    data, body = await _family_document(request, name, stix_family_bundle)
    return _download(body, f"{_safe_file_name(data.name)}.stix.json", MEDIA_TYPE,
                     {"X-Indicators-Left-Out": str(data.indicators_left_out)})


@router.get("/families/{name:path}/misp")
async def family_misp(request: Request, name: FAMILY, principal: Principal = ANALYST
                      ) -> Response:
    data, body = await _family_document(request, name, misp_family_event)
    return _download(body, f"{_safe_file_name(data.name)}.misp.json", "application/json",
                     {"X-Indicators-Left-Out": str(data.indicators_left_out)})


@router.get("/families/{name:path}")
def family(request: Request, name: FAMILY,
           page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
           after: Annotated[str | None, Query(max_length=100)] = None,
           principal: Principal = ANALYST) -> Response:
    with center_of(request).catalog.engine.connect() as conn:
        canonical = family_name(conn, name)
        if canonical is None:
            raise not_found()
        try:
            result = search_samples(conn, SampleSearch(family=canonical, page=page_number,
                                                       per_page=PER_PAGE, after=after))
        except BadCursor:
            raise HTTPException(422, "not a cursor of this list") from None
    rows = [{**s, "first_seen": when(s["first_seen"])} for s in result["samples"]]
    return page(request, "analyst/family.html", {
        "name": printable_name(canonical), "url": family_url(canonical), "rows": inert(rows),
        "pager": search_pager(request, result)})


def printable_name(name: str) -> str:
    return str(inert(name))
