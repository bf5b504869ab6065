"""Samples for analysts: upload (stored, never run), one sample with its report, search.

An upload is one file or one archive (zip, 7z, rar, ... with password ``infected`` or
none), as multipart field ``file``. The body is refused with 413 past the upload limit
while it arrives; the file goes to a temp file in the data dir, never whole into memory,
and then through the same ingest as ``cleancenter ingest files`` (tag ``upload``): an
archive's members are stored as samples of their own, and a bad member is an error for
that member while the rest goes in. Nothing is ever executed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from cleancenter.analyze.service import latest_label, report_for
from cleancenter.center import open_blob_store
from cleancenter.collect.ingest import Ingestor
from cleancenter.portal.auth.deps import require
from cleancenter.portal.auth.principal import Principal
from cleancenter.portal.params import query_time
from cleancenter.portal.search import MAX_PER_PAGE, BadCursor, SampleSearch, search_samples
from cleancenter.portal.state import portal_state
from cleancenter.store.catalog import RELATION, SAMPLE
from cleancenter.store.queries import get_sample

router = APIRouter()
upload_router = APIRouter()  # included with the upload limit as its body limit

UPLOAD_TAG = "upload"
CHUNK = 1 << 20
MAX_LISTED = 10_000  # sha256s listed in an upload's answer (an archive may hold more)
_UNSAFE_NAME = re.compile(r"[^\w.+@()\[\] -]+")
SHA256 = Annotated[str, PathParam(pattern="^[0-9a-fA-F]{64}$",
                                  description="the sample's sha256")]


async def save_upload(item: UploadFile, target: Path) -> tuple[str, int]:
    """Copy an uploaded file to ``target`` in chunks; its sha256 and size."""
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := await item.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def safe_name(name: str | None) -> str:
    """The upload's file name as a sample name: no folders, no control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE_NAME.sub("_", base).strip(" .")[:200]
    return base or "upload.bin"


@router.get("/api/v1/samples", summary="Search samples (newest first, by pages)",
            responses={401: {"description": "no or bad credentials"},
                       403: {"description": "not an analyst"}})
def samples(
    request: Request,
    q: Annotated[str | None, Query(max_length=256, description=(
        "a hash prefix (4+ hex digits: md5, sha1 or sha256) or part of a file name "
        "(* and ? are wildcards)"))] = None,
    family: Annotated[str | None, Query(max_length=128)] = None,
    tag: Annotated[str | None, Query(max_length=128)] = None,
    type: Annotated[str | None, Query(max_length=64, description="file type")] = None,
    since: Annotated[str | None, Query(max_length=40, description="first seen at or after "
                                                                 "(ISO 8601)")] = None,
    until: Annotated[str | None, Query(max_length=40, description="first seen before")] = None,
    ioc: Annotated[str | None, Query(max_length=2048, description="an IOC value, "
                                                                 "exactly")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
    after: Annotated[str | None, Query(max_length=100, description=(
        "the 'next' value of the previous page: the following page, as fast as the first "
        "(page is then only echoed back)"))] = None,
    principal: Principal = Depends(require("analyst")),
) -> dict[str, Any]:
    """Newest first. ``total`` is exact up to 200; above that ``total_exact`` is false
    and ``total`` is 201. Follow ``next`` for the following page (a page asked for by
    ``after`` has ``total`` null: the first page gave it)."""
    search = SampleSearch(q=q, family=family, tag=tag, file_type=type,
                          since=query_time(since, "since"),
                          until=query_time(until, "until"), ioc=ioc,
                          page=page, per_page=per_page, after=after)
    with portal_state(request).center.catalog.engine.connect() as conn:
        try:
            return search_samples(conn, search)
        except BadCursor as exc:
            raise HTTPException(422, str(exc)) from None


@router.get("/api/v1/samples/{sha256}", summary="One sample: catalog record and analysis report",
            responses={401: {"description": "no or bad credentials"},
                       403: {"description": "not an analyst"},
                       404: {"description": "no such sample"}})
def sample(request: Request, sha256: SHA256,
           principal: Principal = Depends(require("analyst"))) -> dict[str, Any]:
    catalog = portal_state(request).center.catalog
    sha256 = sha256.lower()
    with catalog.engine.connect() as conn:
        detail = get_sample(conn, sha256)
        if detail is None or detail.sha256 != sha256:
            raise HTTPException(404, "no such sample")
        data = detail.to_dict()
        data["verdict"], data["family"] = conn.execute(
            select(SAMPLE.c.verdict, SAMPLE.c.family).where(SAMPLE.c.sha256 == sha256)).one()
        label = latest_label(conn, sha256)
    data["analyst_label"] = None if label is None else {
        "verdict": label.verdict, "family": label.family, "note": label.note,
        "author": label.author, "created": label.created.isoformat()}
    report = report_for(catalog, sha256)
    data["report"] = report.model_dump(mode="json") if report else None
    return data


def _descendants(request: Request, top: str) -> list[str]:
    """The upload and what was extracted from it (nested archives too), top first."""
    found = [top]
    seen = {top}
    frontier = [top]
    with portal_state(request).center.catalog.engine.connect() as conn:
        while frontier and len(found) < MAX_LISTED:
            rows = conn.execute(select(RELATION.c.child_sha256).where(
                RELATION.c.parent_sha256.in_(frontier[:500]),
                RELATION.c.kind == "extracted")).scalars().all()
            frontier = frontier[500:]
            for child in rows:
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    frontier.append(child)
    return found[:MAX_LISTED]


@upload_router.post(
    "/api/v1/samples",
    summary="Upload one file or archive (multipart field 'file'); stored, never run",
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["file"],
                   "properties": {"file": {"type": "string", "format": "binary"}}}}}}},
    responses={200: {"description": "the sha256s stored (the upload first) and per-item "
                                    "errors"},
               401: {"description": "no or bad credentials"},
               403: {"description": "not an analyst (or a cookie request without CSRF)"},
               413: {"description": "larger than the upload limit"},
               415: {"description": "not multipart/form-data"},
               422: {"description": "no file in field 'file'"}},
)
async def upload(request: Request, principal: Principal = Depends(require("analyst"))
                 ) -> JSONResponse:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise HTTPException(415, "send multipart/form-data with the file in field 'file'")
    center = portal_state(request).center
    center.settings.work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=center.settings.work_dir))
    try:
        async with request.form(max_files=1, max_fields=10, max_part_size=4096) as form:
            item = form.get("file")
            if not isinstance(item, UploadFile):
                raise HTTPException(422, "no file in field 'file'")
            name = safe_name(item.filename)
            target = folder / name
            sha256, size = await save_upload(item, target)
        if size == 0:
            raise HTTPException(422, "the file is empty")

        def ingest() -> dict[str, Any]:
            blobs = open_blob_store(center.settings)  # its own batch state
            report = Ingestor(center.catalog, blobs, tags=(UPLOAD_TAG,)).ingest_paths([target])
            prefix = str(folder) + "/"
            return {"samples_new": report.samples_new, "samples_known": report.samples_known,
                    "members": report.members,
                    "errors": [{"location": e.location.replace(prefix, ""),
                                "message": e.message.replace(prefix, "")}
                               for e in report.errors]}

        result = await run_in_threadpool(ingest)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    listed = await run_in_threadpool(_descendants, request, sha256)
    return JSONResponse({"name": name, "size": size, "sha256": sha256, "sha256s": listed,
                         "tag": UPLOAD_TAG, **result})
