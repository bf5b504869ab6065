"""Server-rendered pages: one Jinja2 environment (autoescape on), the language, links."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from cleancenter.notify.funnel import _TOKEN
from cleancenter.portal.i18n import LANGS, MESSAGES, pick_lang

TEMPLATES_DIR = Path(__file__).parent / "templates"
TOKEN = _TOKEN  # 16-64 of [A-Za-z0-9_-]: the funnel's own rule, so both always agree
_KEPT_PARAMS = ("t",)  # query parameters the language switch carries over


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def request_lang(request: Request) -> tuple[str, bool]:
    return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"))


def _safe_path(path: str) -> str:
    """A path of this site only: never ``//host`` or ``/\\host`` (other sites)."""
    if not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    return quote(path, safe="/")


def render(request: Request, name: str, context: Mapping[str, Any] | None = None, *,
           status_code: int = 200, headers: Mapping[str, str] | None = None,
           switch_path: str | None = None) -> Response:
    """A page in the visitor's language, with links that keep a chosen language."""
    lang, explicit = request_lang(request)
    other = next(code for code in LANGS if code != lang)

    def link(path: str, **params: str) -> str:
        query = dict(params)
        if explicit:
            query["lang"] = lang
        return path + ("?" + urlencode(query) if query else "")

    kept = {k: v for k in _KEPT_PARAMS if (v := request.query_params.get(k))
            and (k != "t" or TOKEN.match(v))}
    switch = _safe_path(switch_path or request.url.path) + "?" + urlencode(
        {**kept, "lang": other})
    templates: Jinja2Templates = request.app.state.templates
    values = {"lang": lang, "other_lang": other, "t": MESSAGES[lang], "link": link,
              "switch_url": switch, **(context or {})}
    all_headers = {"Vary": "Accept-Language", "Content-Language": lang, **(headers or {})}
    return templates.TemplateResponse(request, name, values, status_code=status_code,
                                      headers=all_headers)
