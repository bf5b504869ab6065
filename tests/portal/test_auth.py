"""Users, tokens, sessions, CSRF, roles and the login rate limit (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from httpx import Response
from typer.testing import CliRunner

from cleancenter.center import Center
from cleancenter.cli import app as cli_app
from cleancenter.notify.isps import add_isp
from cleancenter.portal.app import create_app
from cleancenter.portal.auth import AccessSettings, Principal, require
from cleancenter.portal.auth.store import (
    AccessError,
    add_user,
    authenticate,
    create_token,
    hash_password,
    list_tokens,
    revoke_token,
    verify_password,
)

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- helpers (the other test modules of the portal use them too) -------------------------


def make_client(center: Center, **access: Any) -> TestClient:
    """The portal over https (so Secure cookies are sent back), as behind a TLS proxy."""
    return TestClient(create_app(center, funnel_ttl=0, access=AccessSettings(**access)),
                      base_url="https://testserver", follow_redirects=False)


def add(center: Center, name: str, *roles: str, password: str = PASSWORD) -> None:
    with center.catalog.transaction() as conn:
        add_user(conn, name, password, list(roles))


def new_token(center: Center, role: str, name: str = "job") -> str:
    with center.catalog.transaction() as conn:
        return create_token(conn, name, role)[1]


def register_isp(center: Center, name: str, prefix: str) -> None:
    with center.catalog.transaction() as conn:
        add_isp(conn, name, contact=f"abuse@{name}.example", lang="en", prefixes=[prefix],
                asns=[])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, name: str, password: str = PASSWORD,
          next_path: str | None = None) -> Response:
    form = client.get("/login")
    assert form.status_code == 200
    found = _CSRF.findall(form.text)  # the login form's is the last (the nav's logout first)
    assert found, form.text
    data = {"name": name, "password": password, "csrf_token": found[-1]}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/login", data=data)


def page_csrf(client: TestClient) -> str:
    """The signed-in user's CSRF token, from the logout form every page carries."""
    match = _CSRF.search(client.get("/download/").text)
    assert match, "not signed in"
    return match.group(1)


@pytest.fixture
def web(center: Center) -> Iterator[TestClient]:
    with make_client(center) as client:
        yield client


# -- passwords, users, tokens --------------------------------------------------------------


def test_password_hashes_are_salted_scrypt_and_checked() -> None:
    one, two = hash_password("same password!"), hash_password("same password!")
    assert one != two and one.startswith("scrypt$32768$8$1$")
    assert verify_password("same password!", one)
    assert not verify_password("same password?", one)
    assert not verify_password("x", "md5$whatever") and not verify_password("x", "garbage")


def test_users_roles_and_authentication(center: Center) -> None:
    register_isp(center, "alpha-net", "192.0.2.0/24")
    add(center, "ana", "analyst")
    add(center, "isp-a", "isp:alpha-net")
    with center.catalog.transaction() as conn:
        for name, roles, password in [("bad role", ["analyst"], PASSWORD),
                                      ("eve", ["root"], PASSWORD),
                                      ("eve", ["isp:no-such-isp"], PASSWORD),
                                      ("eve", ["analyst"], "short"),
                                      ("ana", ["analyst"], PASSWORD),
                                      ("eve", [], PASSWORD)]:
            with pytest.raises(AccessError):
                add_user(conn, name, password, roles)
        user = authenticate(conn, "ana", PASSWORD)
        assert user is not None and user.roles == ("analyst",)
        assert authenticate(conn, "ana", PASSWORD + "x") is None
        assert authenticate(conn, "nobody", PASSWORD) is None


def test_tokens_are_kept_as_hashes_and_revoked(center: Center, web: TestClient) -> None:
    token = new_token(center, "analyst", "nightly")
    assert token.startswith("cct_")
    me = web.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json() == {"kind": "token", "name": "nightly", "id": token[4:16],
                         "roles": ["analyst"]}
    with center.catalog.engine.connect() as conn:
        rows = [dict(r) for r in conn.exec_driver_sql("select * from api_token").mappings()]
        entry = list_tokens(conn)[0]
    assert token not in json.dumps(rows, default=str)  # only its sha256 is stored
    assert entry.last_used is not None
    for wrong in [token[:-1] + ("A" if token[-1] != "A" else "B"), "cct_x", "nonsense", ""]:
        assert web.get("/api/v1/me", headers=bearer(wrong)).status_code == 401
    with center.catalog.transaction() as conn:
        revoke_token(conn, entry.id)
    revoked = web.get("/api/v1/me", headers=bearer(token))
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"].startswith("Bearer")


def test_cli_users_and_tokens_never_print_secrets(center: Center,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(center.settings.data_dir),
            "--database-url", center.settings.database_url]

    def cc(*args: str, env: dict[str, str] | None = None, stdin: str | None = None
           ) -> tuple[int, str]:
        result = runner.invoke(cli_app, [*base, *args], env=env, input=stdin)
        return result.exit_code, result.stdout

    register_isp(center, "alpha-net", "192.0.2.0/24")
    code, out = cc("users", "add", "ana", "--role", "analyst", "--password-env", "PW",
                   "--json", env={"PW": PASSWORD})
    assert code == 0, out
    assert json.loads(out) == {"name": "ana", "roles": ["analyst"], "disabled": False,
                               "created": json.loads(out)["created"]}
    code, out = cc("users", "add", "bob", "--role", "isp:alpha-net", "--role", "analyst",
                   stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0, out
    code, _ = cc("users", "add", "eve", "--role", "isp:beta-net", "--password-env", "PW",
                 env={"PW": PASSWORD})
    assert code != 0
    code, out = cc("users", "list", "--json")
    users = json.loads(out)
    assert [u["name"] for u in users] == ["ana", "bob"]
    assert users[1]["roles"] == ["isp:alpha-net", "analyst"]
    assert "scrypt" not in out and PASSWORD not in out
    assert cc("users", "disable", "bob")[0] == 0
    assert json.loads(cc("users", "list", "--json")[1])[1]["disabled"] is True
    assert cc("users", "disable", "nobody")[0] != 0

    code, out = cc("tokens", "create", "--name", "alpha export", "--role", "isp:alpha-net")
    assert code == 0
    secret = out.strip()
    assert re.fullmatch(r"cct_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    code, out = cc("tokens", "create", "--name", "x", "--role", "analyst", "--json")
    made = json.loads(out)
    assert made["token"].startswith("cct_" + made["id"])
    listed_json = cc("tokens", "list", "--json")[1]
    listed_text = cc("tokens", "list")[1]
    for text in (listed_json, listed_text):
        assert secret not in text and made["token"] not in text
        assert secret[17:] not in text
    tokens = json.loads(listed_json)
    assert {t["role"] for t in tokens} == {"isp:alpha-net", "analyst"}
    assert set(tokens[0]) == {"id", "name", "role", "created", "last_used", "revoked"}
    assert cc("tokens", "revoke", made["id"])[0] == 0
    assert json.loads(cc("tokens", "list", "--json")[1])[1]["revoked"] is not None
    assert cc("tokens", "revoke", "zzzz")[0] != 0
    assert cc("tokens", "create", "--name", "x", "--role", "root")[0] != 0


# -- sessions ------------------------------------------------------------------------------


def test_login_sets_a_strict_httponly_secure_cookie_and_logout_ends_it(
        center: Center, web: TestClient) -> None:
    add(center, "ana", "analyst")
    assert web.get("/api/v1/me").status_code == 401
    done = login(web, "ana", next_path="/download/?lang=en")
    assert done.status_code == 303 and done.headers["location"] == "/download/?lang=en"
    cookie = next(v for k, v in done.headers.multi_items()
                  if k == "set-cookie" and v.startswith("cc_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags
    assert "path=/" in flags
    me = web.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["kind"] == "user"
    assert me.headers["cache-control"] == "no-store"
    page = web.get("/download/")
    assert "ana" in page.text and 'action="/logout"' in page.text
    # logout: without the CSRF token refused, with it the session ends
    assert web.post("/logout").status_code == 403
    assert web.get("/api/v1/me").status_code == 200
    out = web.post("/logout", data={"csrf_token": page_csrf(web)})
    assert out.status_code == 303
    assert web.get("/api/v1/me").status_code == 401


def test_wrong_name_and_wrong_password_read_the_same(center: Center, web: TestClient) -> None:
    add(center, "ana", "analyst")
    wrong_password = login(web, "ana", "not the password at all")
    wrong_user = login(web, "nobody", PASSWORD)
    assert wrong_password.status_code == wrong_user.status_code == 401
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", wrong_password.text) == strip.sub("", wrong_user.text)
    assert "cc_session" not in wrong_password.headers.get("set-cookie", "")


def test_disabled_users_cannot_sign_in_and_lose_their_sessions(center: Center,
                                                               web: TestClient) -> None:
    add(center, "ana", "analyst")
    assert login(web, "ana").status_code == 303
    runner = CliRunner()
    result = runner.invoke(cli_app, ["--data-dir", str(center.settings.data_dir),
                                     "--database-url", center.settings.database_url,
                                     "users", "disable", "ana"])
    assert result.exit_code == 0
    assert web.get("/api/v1/me").status_code == 401
    assert login(web, "ana").status_code == 401


def test_login_form_needs_its_own_csrf_token(center: Center, web: TestClient) -> None:
    add(center, "ana", "analyst")
    web.get("/login")
    forged = web.post("/login", data={"name": "ana", "password": PASSWORD,
                                      "csrf_token": "made-up"})
    assert forged.status_code == 403
    web.cookies.clear()
    no_cookie = web.post("/login", data={"name": "ana", "password": PASSWORD,
                                         "csrf_token": "made-up"})
    assert no_cookie.status_code == 403
    assert web.get("/api/v1/me").status_code == 401


def test_session_id_changes_at_login(center: Center, web: TestClient) -> None:
    add(center, "ana", "analyst")
    web.cookies.set("cc_session", "attacker-chosen-session-id-0123456789",
                    domain="testserver.local")
    assert web.get("/api/v1/me").status_code == 401  # an id the server did not make is nobody
    assert login(web, "ana").status_code == 303
    first = web.cookies.get("cc_session")
    assert first and first != "attacker-chosen-session-id-0123456789"
    assert login(web, "ana").status_code == 303
    second = web.cookies.get("cc_session")
    assert second and second != first
    with make_client(center) as other:  # the old id no longer works anywhere
        other.cookies.set("cc_session", first, domain="testserver.local")
        assert other.get("/api/v1/me").status_code == 401
        other.cookies.set("cc_session", second, domain="testserver.local")
        assert other.get("/api/v1/me").status_code == 200
    with center.catalog.engine.connect() as conn:
        stored = conn.exec_driver_sql("select id_sha256 from portal_session").scalars().all()
    assert second not in stored and first not in stored  # only hashes are kept


def test_login_redirects_only_within_the_site(center: Center, web: TestClient) -> None:
    add(center, "ana", "analyst")
    for bad in ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"]:
        done = login(web, "ana", next_path=bad)
        assert done.headers["location"] == "/", bad


def test_csrf_is_needed_for_cookie_writes_not_for_bearer_writes(center: Center,
                                                                web: TestClient) -> None:
    add(center, "ana", "analyst")
    login(web, "ana")
    url = "/api/v1/samples"
    files = {"file": ("a.txt", b"hello upload\n", "text/plain")}
    refused = web.post(url, files=files)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = web.post(url, files=files, headers={"X-CSRF-Token": "wrong"})
    assert wrong.status_code == 403
    csrf = page_csrf(web)
    assert web.post(url, files=files, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert web.post(url + f"?csrf_token={csrf}", files=files).status_code == 200
    # a urlencoded form field works for form posts (here a wrong media type after the check)
    form = web.post(url, data={"csrf_token": csrf, "x": "1"})
    assert form.status_code == 415
    assert web.post(url, data={"csrf_token": "nope"}).status_code == 403
    # a bearer request carries no cookie authority: no CSRF token needed
    web.cookies.clear()
    token = new_token(center, "analyst")
    assert web.post(url, files=files, headers=bearer(token)).status_code == 200


def test_login_is_rate_limited_per_address(center: Center) -> None:
    add(center, "ana", "analyst")
    with make_client(center, login_per_minute=3) as client:
        codes = [login(client, "ana", "wrong password!!").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        limited = login(client, "ana")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["referrer-policy"] == "no-referrer"  # still a portal response
    with make_client(center, login_per_minute=3, rate_limits=False) as free:
        assert [login(free, "ana", "wrong password!!").status_code
                for _ in range(5)] == [401] * 5


# -- roles ---------------------------------------------------------------------------------


def test_require_roles_redirects_pages_and_refuses_apis(center: Center) -> None:
    register_isp(center, "alpha-net", "192.0.2.0/24")
    add(center, "ana", "analyst")
    add(center, "root", "admin")
    add(center, "isp-a", "isp:alpha-net")
    client = make_client(center)
    app = client.app
    assert hasattr(app, "get")

    @app.get("/analyst-test/")  # type: ignore[misc, untyped-decorator, unused-ignore]
    def page(principal: Principal = Depends(require("analyst"))) -> dict[str, str]:
        return {"hello": principal.name}

    with client:
        anonymous = client.get("/analyst-test/?lang=en")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=%2Fanalyst-test%2F%3Flang%3Den"
        assert client.post("/analyst-test/").status_code in (401, 405)
        login(client, "isp-a")
        assert client.get("/analyst-test/").status_code == 403
        assert client.get("/api/v1/samples").status_code == 403
        login(client, "ana")
        assert client.get("/analyst-test/").json() == {"hello": "ana"}
        login(client, "root")
        assert client.get("/analyst-test/").json() == {"hello": "root"}
        assert client.get("/api/v1/samples").status_code == 200


def test_principal_roles() -> None:
    isp = Principal("token", "t", "abc", frozenset({"isp:alpha-net"}))
    assert isp.has_role("isp") and isp.has_role("isp:alpha-net")
    assert not isp.has_role("analyst") and not isp.has_role("isp:beta-net")
    assert isp.isps == ("alpha-net",)
    admin = Principal("user", "root", "root", frozenset({"admin"}))
    assert admin.has_role("analyst") and admin.has_role("isp") and admin.isps == ()


def test_settings_from_environment() -> None:
    settings = AccessSettings.from_env({"CLEANCENTER_PORTAL_RATE_LIMITS": "off",
                                        "CLEANCENTER_PORTAL_UPLOAD_MB": "1",
                                        "CLEANCENTER_PORTAL_SECURE_COOKIES": "never",
                                        "CLEANCENTER_PORTAL_LOGIN_PER_MINUTE": "5"})
    assert not settings.rate_limits and settings.upload_limit == 1 << 20
    assert settings.secure_cookies == "never" and settings.login_per_minute == 5
    assert AccessSettings.from_env({}) == AccessSettings()
    with pytest.raises(ValueError):
        AccessSettings.from_env({"CLEANCENTER_PORTAL_SECURE_COOKIES": "sometimes"})


def test_cookies_on_plain_http_loopback_are_not_secure(center: Center) -> None:
    add(center, "ana", "analyst")
    client = TestClient(create_app(center, access=AccessSettings()),
                        base_url="http://127.0.0.1:8080", follow_redirects=False)
    with client:
        done = login(client, "ana")
        cookie = done.headers["set-cookie"].lower()
        assert "cc_session=" in cookie and "secure" not in cookie
        assert client.get("/api/v1/me").status_code == 200


def test_no_response_carries_a_password_hash_token_or_session_id(center: Center,
                                                                 web: TestClient) -> None:
    add(center, "ana", "admin")
    token = new_token(center, "admin")
    login(web, "ana")
    session_id = web.cookies.get("cc_session")
    assert session_id
    with center.catalog.engine.connect() as conn:
        stored_hash = conn.exec_driver_sql("select password_hash from portal_user").scalar_one()
        token_hash = conn.exec_driver_sql("select secret_sha256 from api_token").scalar_one()
    schema = web.get("/openapi.json").json()
    for path in ["/api/v1/me", "/", "/download/", "/login", "/api/v1/samples", "/openapi.json",
                 "/api/v1/isp/incidents?isp=none", "/api/v1/definitions/latest"]:
        for response in (web.get(path), web.get(path, headers=bearer(token))):
            text = response.text + json.dumps(dict(response.headers))
            for secret in (PASSWORD, stored_hash, "scrypt$", token, token_hash, session_id):
                assert secret not in text, (path, secret[:8])
    assert {"/api/v1/me", "/api/v1/samples", "/api/v1/samples/{sha256}",
            "/api/v1/isp/incidents", "/api/v1/isp/sent-report", "/api/v1/definitions/latest",
            "/api/v1/definitions/key"} <= set(schema["paths"])
