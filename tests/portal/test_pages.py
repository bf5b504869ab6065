"""Pages, languages, headers and the route inventory of the portal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cleancenter.config import load_settings
from cleancenter.notify.funnel import _TOKEN as FUNNEL_TOKEN
from cleancenter.portal.app import create_app, route_inventory
from cleancenter.portal.i18n import MESSAGES, pick_lang
from cleancenter.portal.render import TOKEN
from cleancenter.portal.security import CONTENT_SECURITY_POLICY
from cleancenter.portal.serve import redact

# Every route anyone may use without signing in. Any other route must refuse anonymous
# callers (401, 403, or a 303 to the login page): the inventory test asks each of them.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/about"),
    ("GET", "/healthz"),
    ("GET", "/n/"),
    ("GET", "/n/{token}"),
    ("GET", "/download/"),
    ("GET", "/download/cleaner"),
    ("GET", "/download/files/{name}"),
    ("POST", "/api/v1/cleaner-reports"),
    ("GET", "/api/v1/funnel"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("MOUNT", "/static"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/api/v1/definitions/latest"),
    ("GET", "/api/v1/definitions/latest/bundle"),
    ("GET", "/api/v1/definitions/{version}/bundle"),
    ("GET", "/api/v1/definitions/key"),
}

# Plausible values for path parameters, so a refusal is not just a 404 or 422.
PATH_VALUES = {"sha256": "a" * 64, "sha": "a" * 64, "version": "1", "token": "x" * 20,
               "name": "alpha-net", "isp": "alpha-net", "id": "1"}


def fill_path(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "1"), path)


PAGES = ["/", "/?lang=en", "/download/", "/n/" + "x" * 20, "/download/cleaner",
         "/no/such/page", "/n/bad"]


def test_every_route_is_public_or_refuses_anonymous_callers(client: TestClient) -> None:
    assert isinstance(client.app, FastAPI)
    routes = route_inventory(client.app)
    assert routes >= PUBLIC, f"gone: {PUBLIC - routes}"
    for method, path in sorted(routes - PUBLIC):
        assert method != "MOUNT", f"mount {path} is not in PUBLIC"
        response = client.request(method, fill_path(path), follow_redirects=False)
        refused = response.status_code in (401, 403) or (
            response.status_code == 303
            and response.headers["location"].startswith("/login"))
        assert refused, f"{method} {path} answers anonymous callers: {response.status_code}"


@pytest.mark.parametrize("path", [*PAGES, "/healthz", "/api/v1/funnel", "/openapi.json",
                                  "/static/portal.css", "/static/nothing.css"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "server" not in response.headers or "uvicorn" not in response.headers["server"]


def test_security_headers_on_posts_and_errors(client: TestClient) -> None:
    for response in [client.post("/api/v1/cleaner-reports", content=b"{",
                                 headers={"content-type": "application/json"}),
                     client.post("/"), client.delete("/healthz")]:
        assert response.status_code in (405, 422)
        assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_nothing_from_elsewhere_and_have_no_inline_script(
        client: TestClient, path: str) -> None:
    html = client.get(path).text
    assert "<script" not in html and " style=" not in html and "<style" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html), html
    assert 'href="/static/portal.css"' in html
    assert re.search(r'<a class="lang" href="[^"]*lang=(en|ja)"', html)  # the switch


def test_static_files_and_no_swagger(client: TestClient) -> None:
    css = client.get("/static/portal.css")
    assert css.status_code == 200 and "url(" not in css.text and "@import" not in css.text
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    schema = client.get("/openapi.json").json()
    assert "/api/v1/cleaner-reports" in schema["paths"]
    assert "/n/{token}" not in schema["paths"]  # pages are not API


def test_language_from_query_then_accept_language_then_japanese(client: TestClient) -> None:
    ja = client.get("/n/" + "x" * 20)
    assert '<html lang="ja">' in ja.text and "ボット感染の疑い" in ja.text
    assert ja.headers["content-language"] == "ja" and "Accept-Language" in ja.headers["vary"]
    en = client.get("/n/" + "x" * 20 + "?lang=en")
    assert '<html lang="en">' in en.text and "Download and run the cleaner" in en.text
    assert "ボット感染" not in en.text
    browser = client.get("/", headers={"accept-language": "en-US,en;q=0.9,ja;q=0.5"})
    assert '<html lang="en">' in browser.text
    assert 'href="/download/"' in browser.text  # not chosen explicitly: links stay plain
    chosen = client.get("/?lang=ja", headers={"accept-language": "en"})
    assert '<html lang="ja">' in chosen.text and 'href="/download/?lang=ja"' in chosen.text
    assert 'href="/?lang=en"' in chosen.text
    odd = client.get("/?lang=<script>", headers={"accept-language": "fr, de"})
    assert '<html lang="ja">' in odd.text and "<script>" not in odd.text


@pytest.mark.parametrize(("query", "header", "expected"), [
    (None, None, "ja"), ("en", "ja", "en"), ("xx", "en", "en"), (None, "fr, en;q=0.3", "en"),
    (None, "en;q=0.2, ja;q=0.8", "ja"), (None, "en-GB;q=0, ja;q=0", "ja"),
    (None, "en;q=bogus, ja", "ja"), (None, "*", "ja"),
])
def test_pick_lang(query: str | None, header: str | None, expected: str) -> None:
    assert pick_lang(query, header)[0] == expected


def test_both_catalogues_are_complete() -> None:
    assert set(MESSAGES["ja"]) == set(MESSAGES["en"])
    for lang, messages in MESSAGES.items():
        assert all(text.strip() for text in messages.values()), lang
        assert all("<" not in text for text in messages.values()), lang  # plain text only


def test_token_rule_is_the_funnels() -> None:
    assert TOKEN.pattern == FUNNEL_TOKEN.pattern


def test_access_log_paths_lose_their_tokens() -> None:
    assert redact("/n/Tok_en-0123456789abcdef?lang=en") == "/n/[token]?lang=en"
    assert redact("/download/cleaner?lang=ja&t=Tok_en-0123456789abcdef") == (
        "/download/cleaner?lang=ja&t=[token]")
    assert redact("/download/") == "/download/"
    assert redact("/n/?code=Tok_en-0123456789abcdef&lang=en") == "/n/?code=[token]&lang=en"
    assert redact("/analyst/upload?csrf_token=abc123") == "/analyst/upload?csrf_token=[token]"


def test_app_from_settings_opens_and_closes_its_own_center(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path / "data")}, environ={})
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert "まだ通知はありません" in c.get("/").text
    assert (tmp_path / "data" / "catalog.sqlite").exists()
