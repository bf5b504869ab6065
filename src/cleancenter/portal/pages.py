"""The public pages: home (figures and charts), the landing page of a notification token,
downloads, and what a bot is (/about)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from cleancenter.definitions.keys import PUBLIC_NAME
from cleancenter.notify.funnel import CCC_FY2006, FunnelFigures, record_step
from cleancenter.portal.charts import Texts, bar_chart, day_chart
from cleancenter.portal.downloads import SUMS_NAME, read_key
from cleancenter.portal.figures import (
    CCC_2009_NEW_PER_DAY,
    Figures,
    FiguresCache,
)
from cleancenter.portal.figures import (
    CCC_FY2006 as CCC_FIGURES,
)
from cleancenter.portal.i18n import MESSAGES
from cleancenter.portal.render import TOKEN, render, request_lang
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


def figures_cache(portal: PortalState) -> FiguresCache:
    """The figures cache lives beside the funnel's, with the same lifetime."""
    cache = portal.extra.get("figures")
    if not isinstance(cache, FiguresCache):
        cache = portal.extra.setdefault("figures", FiguresCache(portal.funnel.ttl))
    assert isinstance(cache, FiguresCache)
    return cache


def figure_rows(figures: Figures, t: Mapping[str, str]) -> list[dict[str, str]]:
    """Our figures beside CCC's (empty where CCC published none)."""
    f = figures.funnel

    def ours(count: int, rated: bool = False) -> str:
        rate = f.rate(count) if rated else None
        return f"{count:,}" + (f" ({rate:.1%})" if rate is not None else "")

    ccc = CCC_FIGURES
    rows = [
        ("fig_samples_collected", ours(figures.samples_collected),
         f"{ccc['samples_collected']:,}"),
        ("fig_samples_unique", ours(figures.samples_unique), f"{ccc['samples_unique']:,}"),
        ("fig_samples_new_today", ours(figures.samples_new_today),
         t["fig_ccc_new_per_day"].replace("{n}", f"{CCC_2009_NEW_PER_DAY:,}")),
        ("fig_families", ours(figures.families), ""),
        ("fig_infected_hosts", ours(figures.infected_hosts), ""),
        ("fig_notified", ours(f.notified), f"{ccc['notified']:,}"),
        ("fig_downloaded", ours(f.downloaded, True),
         f"{ccc['downloaded']:,} ({ccc['downloaded_rate']:.1%})"),
        ("fig_cleaned", ours(f.cleaned, True), ""),
        ("fig_seen_again", ours(f.seen_again, True), t["fig_ccc_seen_again"]),
    ]
    return [{"key": key, "label": t[key], "ours": value, "ccc": reference}
            for key, value, reference in rows]


def _texts(t: Mapping[str, str], name: str, x_label: str, y_label: str,
           label_header: str) -> Texts:
    return Texts(title=t[f"chart_{name}_title"], desc=t[f"chart_{name}_desc"],
                 x_label=x_label, y_label=y_label, table_summary=t["chart_table"],
                 label_header=label_header, value_header=t["chart_count"],
                 empty=t["chart_empty"])


def home_charts(figures: Figures, t: Mapping[str, str]) -> list[Any]:
    f = figures.funnel
    steps = [(t["funnel_notified"], f.notified), (t["funnel_visited"], f.visited),
             (t["funnel_downloaded"], f.downloaded), (t["funnel_cleaned"], f.cleaned),
             (t["funnel_seen_again"], f.seen_again)]
    return [
        day_chart("chart-infections",
                  _texts(t, "infections", t["chart_day"], t["chart_infections_y"],
                         t["chart_day"]), figures.infections_per_day),
        day_chart("chart-samples",
                  _texts(t, "samples", t["chart_day"], t["chart_samples_y"], t["chart_day"]),
                  figures.new_samples_per_day),
        bar_chart("chart-families",
                  _texts(t, "families", t["chart_families_x"], t["chart_families_y"],
                         t["chart_families_y"]), figures.top_families),
        bar_chart("chart-funnel",
                  _texts(t, "funnel", t["chart_funnel_x"], t["chart_funnel_y"],
                         t["chart_funnel_y"]), steps),
    ]


HOME_PAGES_KEPT = 16  # rendered home pages kept for anonymous visitors


@router.get("/", include_in_schema=False)
def home(request: Request, portal: PortalState = Depends(portal_state)) -> Response:
    funnel_figures = portal.funnel.get(portal.center)
    figures = figures_cache(portal).get(portal.center, funnel_figures[-1])
    cleaner = portal.downloads.cleaner()
    signed_in = getattr(request.state, "principal", None) is not None
    # The page is the same for every anonymous visitor until the figures are recounted:
    # render it once per language and query, not on every request.
    key = (id(funnel_figures), id(figures), figures.computed, request_lang(request),
           request.url.query, cleaner.sha256 if cleaner else None)
    kept: dict[Any, bytes] = portal.extra.setdefault("home_pages", {})
    if not signed_in and key in kept:
        lang = request_lang(request)[0]
        return Response(kept[key], media_type="text/html; charset=utf-8",
                        headers={"Vary": "Accept-Language", "Content-Language": lang})
    t = MESSAGES[request_lang(request)[0]]
    ccc = {"notified": f"{CCC_FY2006_NOTIFIED:,}",
           "downloaded": f"{CCC_FY2006_DOWNLOADED:,} ({CCC_FY2006['downloaded']:.1%})",
           "seen_again": f"< {CCC_FY2006['seen_again']:.0%}"}
    rows = funnel_rows(funnel_figures, "") if funnel_figures[-1].notified else []
    today = figures.computed.date()
    window = t["fig_window"].replace("{start}", figures.window_start.isoformat()) \
        .replace("{end}", figures.window_end.isoformat())
    page = render(request, "home.html", {
        "rows": rows, "ccc": ccc, "cleaner": cleaner,
        "figures": figure_rows(figures, t), "charts": home_charts(figures, t),
        "window": window, "historic": figures.window_end < today,
        "computed": figures.computed.strftime("%Y-%m-%d %H:%M")})
    if not signed_in:
        if len(kept) >= HOME_PAGES_KEPT:
            kept.clear()  # the figures moved on: the old pages are stale anyway
        kept[key] = bytes(page.body)
    return page


@router.get("/about", include_in_schema=False)
def about(request: Request) -> Response:
    """What a bot is and how to protect yourself, for the people the ISPs mail."""
    return render(request, "about.html")


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
        step = record_step(conn, token, "visit")
    if step is not None and step.first:  # later visits change no figure
        portal.funnel.invalidate()
    isp = step.isp if step is not None else None
    return render(request, "landing.html",
                  {"isp": isp, "token": token if isp is not None else None},
                  headers=PRIVATE_HEADERS)


@router.get("/download/", include_in_schema=False)
def downloads(request: Request, portal: PortalState = Depends(portal_state)) -> Response:
    center_key_path = portal.center.settings.data_dir / "keys" / PUBLIC_NAME
    center_key = read_key(center_key_path) if center_key_path.is_file() else None
    folder = portal.downloads
    return render(request, "downloads.html", {
        "artifacts": folder.artifacts(), "pyz": folder.newest(".pyz"),
        "whl": folder.newest(".whl"), "definitions": folder.definitions(center_key),
        "key": folder.published_key(center_key), "sums": folder.find(SUMS_NAME)})


@router.get("/download/cleaner", include_in_schema=False)
def download_cleaner(request: Request, t: str | None = None,
                     portal: PortalState = Depends(portal_state)) -> Response:
    """The newest cleaner build; a download counts for a known token, and only when
    there is something to download."""
    artifact = portal.downloads.cleaner()
    if artifact is None:
        return render(request, "unavailable.html", status_code=404, headers=PRIVATE_HEADERS)
    whole = request.headers.get("range") is None or request.headers["range"].replace(
        " ", "").startswith("bytes=0-")  # a resumed or partial fetch is not a new download
    if t is not None and TOKEN.match(t) and whole:
        with portal.center.catalog.transaction() as conn:
            step = record_step(conn, t, "download")
        if step is not None and step.first:
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
