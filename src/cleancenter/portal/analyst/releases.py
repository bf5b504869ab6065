"""Definition releases: the list, building and signing a new one, publishing one.

Building calls `build_release` with the center's key (``<data_dir>/keys``), its rule
packs and, when one was built, its goodware index, as ``cleancenter definitions build``
does. Publishing calls `cleancenter.publish.definitions.publish_definitions`: the bundle
is verified against the center's public key and copied into ``<data_dir>/downloads``.
Both are cookie-authenticated POSTs: the middleware refuses them without the CSRF token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Table, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from cleancenter.center import Center
from cleancenter.definitions.build import BuildProblem, build_release
from cleancenter.definitions.goodware import GoodwareError, load_index
from cleancenter.definitions.keys import PUBLIC_NAME, KeyProblem, load_public
from cleancenter.portal.analyst.common import ANALYST, center_of, inert, not_found, page, when
from cleancenter.portal.auth import Principal
from cleancenter.publish import PublishError
from cleancenter.publish.definitions import publish_definitions, releases
from cleancenter.store.models import Release

router = APIRouter(prefix="/analyst", include_in_schema=False)
RELEASE = cast(Table, Release.__table__)
MAX_LISTED = 200


def _dirs(center: Center) -> dict[str, Path]:
    data = center.settings.data_dir
    return {"keys": data / "keys", "rules": data / "rules", "releases": data / "releases",
            "downloads": data / "downloads"}


def _listing(request: Request, *, built: int | None = None, published: int | None = None,
             problem: str | None = None, status_code: int = 200) -> Response:
    center = center_of(request)
    with center.catalog.engine.connect() as conn:
        rows = conn.execute(select(RELEASE).order_by(RELEASE.c.version.desc())
                            .limit(MAX_LISTED)).all()
    public = {v for v, _ in releases(_dirs(center)["downloads"])}
    listed: list[dict[str, Any]] = []
    for row in rows:
        try:
            counts = {str(k): v for k, v in json.loads(row.counts).items()}
        except (ValueError, AttributeError):
            counts = {}
        listed.append({"version": int(row.version), "created": when(row.created),
                       "sha256": row.sha256, "fingerprint": row.key_fingerprint,
                       "counts": counts, "file": Path(row.path).name,
                       "published": int(row.version) in public})
    return page(request, "analyst/releases.html", {
        "rows": inert(listed), "built": built, "published": published,
        # the message of a failed build or publish: the center's own text (paths, the
        # command to run); made inert like everything else
        "problem": inert(problem) if problem else None,
    }, status_code=status_code)


@router.get("/releases")
def release_list(request: Request, built: int | None = None, published: int | None = None,
                 principal: Principal = ANALYST) -> Response:
    return _listing(request, built=built, published=published)


def _build(center: Center) -> int:
    dirs = _dirs(center)
    goodware = load_index(center.settings.data_dir)
    built = build_release(center.catalog, keys_dir=dirs["keys"], rules_registry=dirs["rules"],
                          out=None, releases_dir=dirs["releases"], blobs=center.blobs,
                          goodware=goodware, generate=True)
    return built.version


@router.post("/releases/build")
async def release_build(request: Request, principal: Principal = ANALYST) -> Response:
    try:
        version = await run_in_threadpool(_build, center_of(request))
    except (KeyProblem, GoodwareError, BuildProblem, OSError) as exc:
        return _listing(request, problem=str(exc), status_code=409)
    except SQLAlchemyError as exc:  # e.g. a release recorded by a build on another machine
        return _listing(request, problem=f"the release could not be recorded: "
                                         f"{type(exc).__name__}", status_code=409)
    return RedirectResponse(f"/analyst/releases?built={version}", status_code=303)


def _publish(center: Center, version: int) -> int | None:
    with center.catalog.engine.connect() as conn:
        path = conn.execute(select(RELEASE.c.path).where(RELEASE.c.version == version)
                            ).scalar_one_or_none()
    if path is None:
        return None
    dirs = _dirs(center)
    key = load_public(dirs["keys"] / PUBLIC_NAME)
    done = publish_definitions(key, dirs["downloads"], releases_dir=dirs["releases"],
                               bundle=Path(path))
    return done.version


@router.post("/releases/{version}/publish")
async def release_publish(request: Request,
                          version: Annotated[int, PathParam(ge=1, le=10**9)],
                          principal: Principal = ANALYST) -> Response:
    try:
        published = await run_in_threadpool(_publish, center_of(request), version)
    except (KeyProblem, PublishError, OSError) as exc:
        return _listing(request, problem=str(exc), status_code=409)
    if published is None:
        raise not_found()
    return RedirectResponse(f"/analyst/releases?published={published}", status_code=303)
