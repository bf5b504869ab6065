"""The home page is rendered once per language for anonymous visitors, until the figures
move; a signed-in user always gets a page of their own."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cleancenter.center import Center
from cleancenter.portal.app import create_app
from cleancenter.portal.auth.settings import AccessSettings
from tests.portal.conftest import TOKEN, notify_one
from tests.portal.test_auth import add, login


def test_anonymous_pages_are_kept_until_the_figures_move(sqlite_center: Center,
                                                         corpus: Path) -> None:
    notify_one(sqlite_center, corpus)
    app = create_app(sqlite_center, funnel_ttl=300, access=AccessSettings())
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        first = client.get("/?lang=en")
        assert client.get("/?lang=en").content == first.content
        japanese = client.get("/?lang=ja")
        assert japanese.content != first.content and japanese.headers[
            "content-language"] == "ja"
        assert client.get("/?lang=en").headers["content-security-policy"] == first.headers[
            "content-security-policy"]  # kept pages get the same headers
        client.get(f"/n/{TOKEN}")  # the first visit: the figures move at once
        after = client.get("/?lang=en")
        assert after.content != first.content and "1 (100.0%)" in after.text
        add(sqlite_center, "ana", "analyst")
        assert login(client, "ana").status_code == 303
        mine = client.get("/?lang=en")
        assert "Sign out" in mine.text and "Sign out" not in after.text
