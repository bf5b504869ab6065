"""Times in query strings: a clear 422 for anything that is not a usable time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from cleancenter.portal.params import query_time


def test_query_times() -> None:
    assert query_time(None, "since") is None
    assert query_time("2026-11-26", "since") == datetime(2026, 11, 26, tzinfo=UTC)
    assert query_time(" 2026-11-26T09:00:00+09:00 ", "since") == datetime(
        2026, 11, 26, tzinfo=UTC)
    for bad in ["yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", ""]:
        with pytest.raises(HTTPException) as caught:
            query_time(bad, "until")
        assert caught.value.status_code == 422 and "until" in str(caught.value.detail)


def test_a_nul_byte_is_a_clear_400_everywhere(client: TestClient) -> None:
    for url in ["/api/v1/samples?q=zz%00", "/analyst/families/x%00/stix",
                "/analyst/samples?family=%00", "/n/%00abcdefabcdefabcdef"]:
        response = client.get(url)
        assert response.status_code == 400 and "NUL" in response.text, url
        assert response.headers["x-content-type-options"] == "nosniff"
