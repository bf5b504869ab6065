"""Upload files and archives from the browser: stored (tag ``upload``), never run.

The form is multipart, so its CSRF token rides on the action URL (``?csrf_token=``), as
the access middleware expects. The body limit is the samples API's
(``AccessSettings.upload_limit``); each file goes to a temp file in the work dir and
through the same ingest as the API and ``cleancenter ingest files``: an archive's
members become samples of their own, a bad member is an error of that member.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from cleancenter.center import Center, open_blob_store
from cleancenter.collect.ingest import Ingestor
from cleancenter.portal.analyst.common import ANALYST, center_of, inert, page
from cleancenter.portal.api_samples import UPLOAD_TAG, safe_name, save_upload
from cleancenter.portal.auth import Principal
from cleancenter.store.catalog import RELATION

router = APIRouter(prefix="/analyst", include_in_schema=False)
upload_router = APIRouter(prefix="/analyst", include_in_schema=False)
MAX_FILES = 20
MAX_LISTED = 1000  # samples listed per uploaded file (an archive may hold more)


@router.get("/upload")
def upload_form(request: Request, principal: Principal = ANALYST) -> Response:
    return page(request, "analyst/upload.html", {"results": None, "problem": None})


def _extracted(center: Center, top: str) -> list[str]:
    """What was extracted from an upload (nested archives too), in the order found."""
    found: list[str] = []
    seen = {top}
    frontier = [top]
    with center.catalog.engine.connect() as conn:
        while frontier and len(found) < MAX_LISTED:
            batch, frontier = frontier[:500], frontier[500:]
            for child in conn.execute(select(RELATION.c.child_sha256).where(
                    RELATION.c.parent_sha256.in_(batch), RELATION.c.kind == "extracted")
                    ).scalars():
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    frontier.append(child)
    return found[:MAX_LISTED]


def _ingest(center: Center, folder: Path, target: Path, sha256: str) -> dict[str, Any]:
    blobs = open_blob_store(center.settings)  # its own batch state
    report = Ingestor(center.catalog, blobs, tags=(UPLOAD_TAG,)).ingest_paths([target])
    prefix = str(folder) + "/"
    return {"samples_new": report.samples_new, "samples_known": report.samples_known,
            "members": report.members, "extracted": _extracted(center, sha256),
            "errors": [{"location": e.location.replace(prefix, ""),
                        "message": e.message.replace(prefix, "")} for e in report.errors]}


@upload_router.post("/upload")
async def upload(request: Request, principal: Principal = ANALYST) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        return page(request, "analyst/upload.html",
                    {"results": None, "problem": "analyst_upload_not_multipart"},
                    status_code=415)
    center = center_of(request)
    center.settings.work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=center.settings.work_dir))
    results: list[dict[str, Any]] = []
    try:
        saved: list[tuple[str, Path, str, int]] = []
        async with request.form(max_files=MAX_FILES, max_fields=10,
                                max_part_size=4096) as form:
            for number, item in enumerate(form.getlist("files")):
                if not isinstance(item, UploadFile) or not item.filename:
                    continue
                name = safe_name(item.filename)
                slot = folder / str(number)
                slot.mkdir()
                target = slot / name
                sha256, size = await save_upload(item, target)
                saved.append((name, target, sha256, size))
        if not saved:
            return page(request, "analyst/upload.html",
                        {"results": None, "problem": "analyst_upload_none"}, status_code=422)
        for name, target, sha256, size in saved:
            entry: dict[str, Any] = {"name": name, "size": size, "sha256": sha256}
            if size == 0:
                entry.update(samples_new=0, samples_known=0, members=0, extracted=[],
                             errors=[{"location": name, "message": "the file is empty"}])
            else:
                entry.update(await run_in_threadpool(_ingest, center, target.parent, target,
                                                     sha256))
            results.append(entry)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return page(request, "analyst/upload.html", {"results": inert(results), "problem": None})
