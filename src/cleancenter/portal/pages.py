"""The public pages: home, the landing page of a notification token, downloads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from cleancenter.notify.funnel import CCC_FY2006, FunnelFigures, record_step
from cleancenter.portal.render import TOKEN, render
from cleancenter.portal.security import PRIVATE_HEADERS
from cleancenter.portal.state import PortalState, portal_state

router = APIRouter()

# CCC FY2006 as published (DESIGN.md section 1): 6,005 users notified, 1,851 downloaded.
CCC_FY2006_NOTIFIED = 6_005
CCC_FY2006_DOWNLOADED = 1_851


def _cell(figures: FunnelFigures, count: int) -> str:
    rate = figures.rate(count)
    return f"{count:,}" + (f" ({rate:.1%})" if rate is not None else "")


def funnel_rows(figures: list[FunnelFigures], all_label: str) -> list[dict[str, Any]]:
    return [{"isp": f.isp or all_label, "total": f.isp is None,
             "notified": f"{f.notified:,}", "visited": _cell(f, f.visited),
             "downloaded": _cell(f, f.downloaded), "cleaned": _cell(f, f.cleaned),
             "seen_again": _cell(f, f.seen_again)} for f in figures]


@router.get("/", include_in_schema=False)
def home(request: Request, portal: PortalState = Depends(portal_state)) -> Response:
    figures = portal.funnel.get(portal.center)
    ccc = {"notified": f"{CCC_FY2006_NOTIFIED:,}",
           "downloaded": f"{CCC_FY2006_DOWNLOADED:,} ({CCC_FY2006['downloaded']:.1%})",
           "seen_again": f"< {CCC_FY2006['seen_again']:.0%}"}
    rows = funnel_rows(figures, "") if figures[-1].notified else []
    return render(request, "home.html", {"rows": rows, "ccc": ccc,
                                         "cleaner": portal.downloads.cleaner()})


@router.get("/n/", include_in_schema=False)
def enter_code(request: Request, code: str = "") -> Response:
    """The mail's code typed by hand (for people who do not click links in mails)."""
    code = code.strip()
    if not TOKEN.match(code):
        return render(request, "code.html", {"bad": bool(code)},
                      status_code=400 if code else 200, headers=PRIVATE_HEADERS)
    lang = request.query_params.get("lang")
    target = f"/n/{code}" + (f"?lang={lang}" if lang in ("ja", "en") else "")
    return RedirectResponse(target, status_code=303, headers=PRIVATE_HEADERS)


@router.get("/n/{token}", include_in_schema=False)
def landing(token: str, request: Request,
            portal: PortalState = Depends(portal_state)) -> Response:
    """What the person who got the mail reads. A visit counts for a known token only."""
    if not TOKEN.match(token):
        raise HTTPException(404)
    with portal.center.catalog.transaction() as conn:
        isp = record_step(conn, token, "visit")
    if isp is not None:
        portal.funnel.invalidate()
    return render(request, "landing.html",
                  {"isp": isp, "token": token if isp is not None else None},
                  headers=PRIVATE_HEADERS)


@router.get("/download/", include_in_schema=False)
def downloads(request: Request, portal: PortalState = Depends(portal_state)) -> Response:
    return render(request, "downloads.html", {"artifacts": portal.downloads.artifacts()})


@router.get("/download/cleaner", include_in_schema=False)
def download_cleaner(request: Request, t: str | None = None,
                     portal: PortalState = Depends(portal_state)) -> Response:
    """The newest cleaner build; a download counts for a known token, and only when
    there is something to download."""
    artifact = portal.downloads.cleaner()
    if artifact is None:
        return render(request, "unavailable.html", status_code=404, headers=PRIVATE_HEADERS)
    if t is not None and TOKEN.match(t):
        with portal.center.catalog.transaction() as conn:
            if record_step(conn, t, "download") is not None:
                portal.funnel.invalidate()
    return _file(artifact.path, artifact.name, artifact.sha256)


@router.get("/download/files/{name}", include_in_schema=False)
def download_file(name: str, portal: PortalState = Depends(portal_state)) -> Response:
    """Any file the downloads page lists (definitions bundles, the public key, ...)."""
    artifact = portal.downloads.find(name)
    if artifact is None:
        raise HTTPException(404)
    return _file(artifact.path, artifact.name, artifact.sha256)


def _file(path: Any, name: str, sha256: str) -> Response:
    return FileResponse(path, filename=name, media_type="application/octet-stream",
                        headers={**PRIVATE_HEADERS, "X-Content-SHA256": sha256})
