"""Query parameters the APIs share, parsed once, with a 422 that says what was wrong."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.exceptions import HTTPException


def query_time(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or time (UTC if it has no zone), or None when not given."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01T00:00+01:00 overflows into UTC
        raise HTTPException(422, f"{name}: an ISO 8601 date or time") from None
