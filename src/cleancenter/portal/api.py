"""The JSON APIs: cleaner reports (the last step of the funnel), public figures, health."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from cleancenter.notify.funnel import CCC_FY2006, Step, record_step
from cleancenter.portal.security import read_limited_body
from cleancenter.portal.state import PortalState, portal_state

router = APIRouter()
log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 64 * 1024

Count = Annotated[int, Field(strict=True, ge=0)]
Name = Annotated[str, StringConstraints(max_length=200)]


class CleanerReport(BaseModel):
    """The anonymous summary ``cleancenter-cleaner scan --token`` sends: counts, no paths."""

    model_config = ConfigDict(extra="ignore")

    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
    cleaner_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    definitions_version: Count | None = None
    counts: dict[Name, Count] = Field(default_factory=dict)
    kinds: dict[Name, Count] = Field(default_factory=dict)
    cleaned: bool = False
    families: list[Name] = Field(default_factory=list, max_length=10_000)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and why, never the input itself (it may be anything)."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)]


@router.post(
    "/api/v1/cleaner-reports",
    summary="A cleaner's anonymous summary for a notification token",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": CleanerReport.model_json_schema()}}}},
    responses={200: {"description": "counted: {\"accepted\": true}"},
               404: {"description": "unknown token: {\"accepted\": false}"},
               413: {"description": f"body over {MAX_REPORT_BYTES} bytes"},
               415: {"description": "not application/json"},
               422: {"description": "not JSON, or not a cleaner report"}},
)
async def cleaner_report(request: Request,
                         portal: PortalState = Depends(portal_state)) -> JSONResponse:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":  # also keeps browsers' cross-site form posts out
        raise HTTPException(415, "send application/json")
    body = await read_limited_body(request, MAX_REPORT_BYTES)
    try:
        report = CleanerReport.model_validate_json(body)
    except ValidationError as exc:
        return JSONResponse({"detail": _errors(exc)}, status_code=422)

    def record() -> Step | None:
        with portal.center.catalog.transaction() as conn:
            return record_step(conn, report.token, "report")

    step = await run_in_threadpool(record)
    if step is None:
        return JSONResponse({"accepted": False}, status_code=404)
    if step.first:
        portal.funnel.invalidate()
    return JSONResponse({"accepted": True})


@router.get("/api/v1/funnel", summary="Public funnel figures per ISP and overall")
def funnel_figures(portal: PortalState = Depends(portal_state)) -> dict[str, Any]:
    """Counts and rates only: no tokens, no addresses."""
    return {"funnel": [f.to_dict() for f in portal.funnel.get(portal.center)],
            "ccc_fy2006": CCC_FY2006}


@router.get("/healthz", summary="Liveness and catalog reachability")
def healthz(portal: PortalState = Depends(portal_state)) -> JSONResponse:
    try:
        with portal.center.catalog.engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception:  # which driver error it was is for the log, not for the caller
        log.exception("health check: catalog unreachable")
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
