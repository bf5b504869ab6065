"""The ISP's side of the API: its own incident list, and its sent report back.

Which ISP a caller is comes from its role (``isp:NAME``) and from nothing else: an ISP
token that names another ISP in ``?isp=`` gets 403, never the other list. An ``admin``
names the ISP with ``?isp=NAME`` (it has no ISP of its own).
"""

from __future__ import annotations

import io
import json
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from cleancenter.notify.exports import FORMATS, Reporter, export
from cleancenter.notify.funnel import (
    MAX_REPORT_NOTICES,
    SENT_REPORT_FORMAT,
    import_sent_report,
)
from cleancenter.notify.infections import update_infections
from cleancenter.notify.isps import RegistryError, get_isp, isp_incidents
from cleancenter.portal.auth.deps import require
from cleancenter.portal.auth.principal import ANY_ISP, Principal
from cleancenter.portal.params import query_time
from cleancenter.portal.state import portal_state

router = APIRouter()
upload_router = APIRouter()  # included with the sent report's body limit

MEDIA = {"json": "application/json", "xarf": "application/x-ndjson",
         "intelmq": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
IspParam = Annotated[str | None, Query(max_length=64, description=(
    "admin only: the ISP whose list this is; an ISP's own token may leave it out (naming "
    "another ISP is 403)"))]


def scoped_isp(principal: Principal, request: Request) -> str:
    """The one ISP this caller acts as. Never taken from a parameter alone."""
    own = principal.isps
    named = request.query_params.getlist("isp")
    if not principal.is_admin and any(name not in own for name in named):
        raise HTTPException(403, "not your ISP")
    if len(set(named)) > 1:
        raise HTTPException(400, "name one ISP")
    requested = named[0] if named else None
    if requested is not None and requested in own:
        return requested
    if principal.is_admin:
        if requested is None:
            if len(own) == 1:
                return own[0]
            raise HTTPException(400, "an admin names the ISP: ?isp=NAME")
        return requested
    if requested is not None:
        raise HTTPException(403, "not your ISP")
    if len(own) == 1:
        return own[0]
    if own:
        raise HTTPException(400, "this account acts for several ISPs: give ?isp=NAME")
    raise HTTPException(403, "not an ISP account")


def reporter() -> Reporter:
    """The center as it signs reports (the same variables as ``notify export``)."""
    return Reporter(org=os.environ.get("CLEANCENTER_REPORTER_ORG", "cleancenter"),
                    contact=os.environ.get("CLEANCENTER_REPORTER_CONTACT",
                                           "abuse@cleancenter.invalid"),
                    domain=os.environ.get("CLEANCENTER_REPORTER_DOMAIN",
                                          "cleancenter.invalid"))


@router.get(
    "/api/v1/isp/incidents",
    summary="Your ISP's incident list: json, X-ARF (JSON lines), CSV or IntelMQ (JSON lines)",
    responses={200: {"content": {m: {} for m in set(MEDIA.values())}},
               401: {"description": "no or bad credentials"},
               403: {"description": "not an ISP account, or another ISP named"}},
)
def isp_incident_list(
    request: Request,
    format: Annotated[str, Query(pattern="^(" + "|".join(FORMATS) + ")$")] = "json",
    since: Annotated[str | None, Query(max_length=40,
                                       description="hosts last seen since (ISO 8601)")] = None,
    isp: IspParam = None,
    principal: Principal = Depends(require(ANY_ISP)),
) -> Response:
    name = scoped_isp(principal, request)
    when = query_time(since, "since")
    center = portal_state(request).center
    update_infections(center.catalog)
    try:
        with center.catalog.engine.connect() as conn:
            incidents = isp_incidents(conn, name, since=when)
    except RegistryError:
        raise HTTPException(403 if not principal.is_admin else 404, "no such ISP") from None
    buffer = io.StringIO(newline="")
    count = export(incidents, format, reporter(), buffer)
    return Response(buffer.getvalue(), media_type=MEDIA[format],
                    headers={"Cache-Control": "no-store", "X-Incident-Count": str(count)})


@upload_router.post(
    "/api/v1/isp/sent-report",
    summary="Your sent report (cleancenter-sent-report/1): the tokens you mailed",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["format", "notifications"], "properties": {
            "format": {"const": SENT_REPORT_FORMAT},
            "notifications": {"type": "array", "items": {"type": "object"}}}}}}}},
    responses={200: {"description": "the import summary: new, known, incidents, errors"},
               401: {"description": "no or bad credentials"},
               403: {"description": "not an ISP account, or another ISP named"},
               413: {"description": "body too large"}, 415: {"description": "not JSON"},
               422: {"description": "not a sent report"}},
)
async def sent_report(request: Request, isp: IspParam = None,
                      principal: Principal = Depends(require(ANY_ISP))) -> JSONResponse:
    name = scoped_isp(principal, request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise HTTPException(415, "send application/json")
    body = await request.body()  # the route's body limit applies while this is read
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(422, "not JSON") from None
    if not isinstance(data, dict) or data.get("format") != SENT_REPORT_FORMAT:
        raise HTTPException(422, f"not a {SENT_REPORT_FORMAT} document")
    rows = data.get("notifications")
    if not isinstance(rows, list):
        raise HTTPException(422, "'notifications' is not a list")
    if len(rows) > MAX_REPORT_NOTICES:
        raise HTTPException(422, f"more than {MAX_REPORT_NOTICES:,} notifications")
    center = portal_state(request).center

    def take() -> dict[str, Any]:
        with center.catalog.transaction() as conn:
            get_isp(conn, name)
            return import_sent_report(conn, name, rows).to_dict()

    try:
        summary = await run_in_threadpool(take)
    except RegistryError:
        raise HTTPException(403 if not principal.is_admin else 404, "no such ISP") from None
    if summary["new"]:
        portal_state(request).funnel.invalidate()
    return JSONResponse(summary)
