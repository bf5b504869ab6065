"""What the analyst views share: inert text, times, paging, the page renderer."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from cleancenter.center import Center
from cleancenter.portal.auth import Principal, require
from cleancenter.portal.render import render
from cleancenter.portal.security import PRIVATE_HEADERS
from cleancenter.portal.state import portal_state
from cleancenter.textsafe import printable

ANALYST = Depends(require("analyst"))
PER_PAGE = 50
SHA256_PATTERN = "^[0-9a-fA-F]{64}$"


def center_of(request: Request) -> Center:
    return portal_state(request).center


def inert(value: Any) -> Any:
    """Plain data for a template: every string with its control and bidi characters shown
    as escapes (``\\x1b``), dataclasses and models as dicts. Autoescape does the HTML."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, BaseModel):
        return inert(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return inert(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {inert(k) if isinstance(k, str) else k: inert(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [inert(v) for v in value]
    if isinstance(value, datetime):
        return when(value)
    return value


def when(value: datetime | str | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` UTC (an ISO string is read first)."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return printable(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def family_url(name: str) -> str:
    return "/analyst/families/" + quote(name, safe="")


def parse_day(text: str | None, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (or a full ISO time) as UTC; a day as its start (``end``: the next
    day's start, so "until" includes the day). Raises ValueError, also for a time out of
    range (9999-12-31 as an end, year 1 with a positive offset)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time(), tzinfo=UTC) + timedelta(days=1 if end else 0)
        value = datetime.fromisoformat(text)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{text!r} is out of range") from exc


@dataclasses.dataclass(frozen=True)
class Pager:
    page: int
    pages: int | None  # None when the total is only known to be above a cap
    total: str  # "1,234", "1,000+" for a capped count, "" when not counted
    prev_url: str | None
    next_url: str | None


def pager(request: Request, total: int, page: int, per_page: int = PER_PAGE) -> Pager:
    """Links to the previous and next page, keeping the other query parameters."""
    pages = max(1, math.ceil(total / per_page))
    params = {k: v for k, v in request.query_params.items()
              if k not in ("page", "after") and v != ""}

    def url(number: int) -> str:
        return request.url.path + "?" + urlencode({**params, "page": str(number)})

    return Pager(page, pages, f"{total:,}", url(page - 1) if page > 1 else None,
                 url(page + 1) if page < pages else None)


def search_pager(request: Request, result: Mapping[str, Any]) -> Pager:
    """The pager of a `search_samples` result: "next" follows its cursor, so a deep page
    costs what the first does; "previous" is a page number (an offset)."""
    page_number, per_page = int(result["page"]), int(result["per_page"])
    total, exact = result["total"], bool(result["total_exact"])
    params = {k: v for k, v in request.query_params.items()
              if k not in ("page", "after") and v != ""}

    def url(extra: dict[str, str]) -> str:
        return request.url.path + "?" + urlencode({**params, **extra})

    prev_url = url({"page": str(page_number - 1)}) if page_number > 1 else None
    next_url = (url({"page": str(page_number + 1), "after": str(result["next"])})
                if result.get("next") else None)
    if total is None:  # a page reached by its cursor: the first page had the count
        return Pager(page_number, None, "", prev_url, next_url)
    pages = max(1, math.ceil(total / per_page)) if exact else None
    return Pager(page_number, pages, f"{total:,}" if exact else f"{total - 1:,}+",
                 prev_url, next_url)


def page(request: Request, name: str, context: Mapping[str, Any] | None = None, *,
         status_code: int = 200) -> Response:
    """An analyst page: private (never cached or indexed), with the signed-in user's
    CSRF token for its forms."""
    principal = getattr(request.state, "principal", None)
    csrf = principal.csrf if isinstance(principal, Principal) else None
    return render(request, name, {"noindex": True, "csrf": csrf or "", **(context or {})},
                  status_code=status_code, headers=PRIVATE_HEADERS)


def not_found() -> HTTPException:
    return HTTPException(404, "not found")
