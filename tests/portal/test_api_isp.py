"""ISP scoping: a token sees its own ISP's list and no other, by any route or parameter."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cleancenter.center import Center
from cleancenter.notify.infections import infected_hosts
from cleancenter.notify.isps import isp_incidents
from tests.portal.conftest import ISP, notify_one
from tests.portal.test_auth import (
    add,
    bearer,
    login,
    make_client,
    new_token,
    page_csrf,
    register_isp,
)

OTHER = "beta-net"
ISP_ROUTES = [("GET", "/api/v1/isp/incidents"), ("POST", "/api/v1/isp/sent-report")]


def two_isps(center: Center, corpus: Path) -> tuple[str, str]:
    """alpha-net owns one infected address (and has a notice), beta-net another."""
    mine = notify_one(center, corpus)
    with center.catalog.engine.connect() as conn:
        other = next(h.src_ip for h in infected_hosts(conn) if str(h.src_ip) != mine)
    register_isp(center, OTHER, f"{other}/32")
    return mine, str(other)


def test_an_isp_token_sees_only_its_own_list(center: Center, corpus: Path) -> None:
    mine, other = two_isps(center, corpus)
    token_a = new_token(center, f"isp:{ISP}")
    token_b = new_token(center, f"isp:{OTHER}")
    with make_client(center) as client:
        for fmt in ("json", "xarf", "csv", "intelmq"):
            own = client.get(f"/api/v1/isp/incidents?format={fmt}", headers=bearer(token_a))
            assert own.status_code == 200, own.text
            assert mine in own.text and other not in own.text, fmt
            theirs = client.get(f"/api/v1/isp/incidents?format={fmt}", headers=bearer(token_b))
            assert other in theirs.text and mine not in theirs.text, fmt
        listed = client.get("/api/v1/isp/incidents", headers=bearer(token_a)).json()
        assert [i["ip"] for i in listed] == [mine]
        rows = list(csv.DictReader(io.StringIO(client.get(
            "/api/v1/isp/incidents?format=csv", headers=bearer(token_a)).text)))
        assert [r["src_ip"] for r in rows] == [mine]
        # naming the other ISP is refused, by parameter, on every ISP route
        for method, path in ISP_ROUTES:
            for query in (f"?isp={OTHER}", f"?isp={OTHER}&isp={ISP}", "?isp=no-such-isp"):
                response = client.request(method, path + query, headers=bearer(token_a),
                                          json={"format": "cleancenter-sent-report/1",
                                                "notifications": []})
                assert response.status_code == 403, (method, path, query)
                assert other not in response.text
        same = client.get(f"/api/v1/isp/incidents?isp={ISP}", headers=bearer(token_a))
        assert same.status_code == 200 and other not in same.text
        assert client.get("/api/v1/isp/incidents?since=2000-01-01",
                          headers=bearer(token_a)).json()[0]["ip"] == mine
        assert client.get("/api/v1/isp/incidents?since=2999-01-01",
                          headers=bearer(token_a)).json() == []
        assert client.get("/api/v1/isp/incidents?format=pdf",
                          headers=bearer(token_a)).status_code == 422


def test_other_roles_and_anonymous_callers(center: Center, corpus: Path) -> None:
    mine, other = two_isps(center, corpus)
    analyst = new_token(center, "analyst")
    admin = new_token(center, "admin")
    with make_client(center) as client:
        for method, path in ISP_ROUTES:
            assert client.request(method, path).status_code == 401
            assert client.request(method, path, headers=bearer(analyst)).status_code == 403
        assert client.get("/api/v1/isp/incidents", headers=bearer(admin)).status_code == 400
        as_b = client.get(f"/api/v1/isp/incidents?isp={OTHER}", headers=bearer(admin))
        assert as_b.status_code == 200 and other in as_b.text and mine not in as_b.text
        assert client.get("/api/v1/isp/incidents?isp=nobody",
                          headers=bearer(admin)).status_code == 404


def test_sent_report_is_imported_for_the_tokens_isp_only(center: Center,
                                                         corpus: Path) -> None:
    two_isps(center, corpus)
    with center.catalog.engine.connect() as conn:
        theirs = isp_incidents(conn, OTHER)[0]
        own = isp_incidents(conn, ISP)[0]
    token_a = new_token(center, f"isp:{ISP}")
    token_b = new_token(center, f"isp:{OTHER}")
    url = "/api/v1/isp/sent-report"

    def report(token: str, incident: str) -> dict[str, object]:
        return {"format": "cleancenter-sent-report/1", "notifications": [
            {"token": token, "incidents": [incident], "sent_at": own.last_seen.isoformat()}]}

    with make_client(center) as client:
        # A cannot make B's address look notified: B's incident id is refused for A
        stolen = client.post(url, json=report("Stolen_token-0123456789", theirs.id),
                             headers=bearer(token_a))
        assert stolen.status_code == 200
        body = stolen.json()
        assert body["isp"] == ISP and body["new"] == 0 and len(body["errors"]) == 1
        assert theirs.ip not in stolen.text
        done = client.post(url, json=report("Beta_token-0123456789ab", theirs.id),
                           headers=bearer(token_b))
        assert done.json() | {"errors": []} == {"isp": OTHER, "new": 1, "known": 0,
                                                "incidents": 1, "errors": []}
        again = client.post(url, json=report("Beta_token-0123456789ab", theirs.id),
                            headers=bearer(token_b))
        assert again.json()["known"] == 1
        for bad, status in [(b"{", 422), (b'{"format": "other"}', 422),
                            (b'{"format": "cleancenter-sent-report/1"}', 422)]:
            response = client.post(url, content=bad, headers={
                **bearer(token_b), "content-type": "application/json"})
            assert response.status_code == status
        assert client.post(url, content=b"x", headers={
            **bearer(token_b), "content-type": "text/plain"}).status_code == 415


def test_an_isp_user_signed_in_by_cookie_is_scoped_too(center: Center, corpus: Path) -> None:
    mine, other = two_isps(center, corpus)
    add(center, "alpha-staff", f"isp:{ISP}")
    with make_client(center) as client:
        login(client, "alpha-staff")
        own = client.get("/api/v1/isp/incidents")
        assert own.status_code == 200 and mine in own.text and other not in own.text
        assert client.get(f"/api/v1/isp/incidents?isp={OTHER}").status_code == 403
        csrf = page_csrf(client)
        sent = {"format": "cleancenter-sent-report/1", "notifications": []}
        assert client.post("/api/v1/isp/sent-report", json=sent).status_code == 403  # no CSRF
        ok = client.post("/api/v1/isp/sent-report", json=sent, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and json.loads(ok.text)["isp"] == ISP
