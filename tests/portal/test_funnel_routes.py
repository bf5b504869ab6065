"""The token's way through the portal: landing visit, cleaner download, cleaner report."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cleancenter.notify.funnel import FUNNEL_EVENT
from tests.portal.conftest import ISP, TOKEN, UNKNOWN, Portal


def _stored(portal: Portal) -> int:
    with portal.center.catalog.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(FUNNEL_EVENT)).scalar() or 0)


def _report(**extra: object) -> dict[str, object]:
    return {"token": TOKEN, "cleaner_version": "0.1.0", "definitions_version": 3,
            "counts": {"malicious": 1, "suspicious": 0, "info": 2},
            "kinds": {"file:hash-match": 1}, "cleaned": False, "families": ["EICAR-Test"],
            **extra}


def test_a_known_token_visit_counts_and_shows_the_token_parts(portal: Portal) -> None:
    before = portal.funnel()
    assert (before["notified"], before["visited"]) == (1, 0)
    page = portal.client.get(f"/n/{TOKEN}?lang=en")
    assert page.status_code == 200
    assert ISP in page.text and f"/download/cleaner?t={TOKEN}" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "noindex" in page.headers["x-robots-tag"]
    assert portal.address not in page.text  # the page never shows the address
    portal.client.get(f"/n/{TOKEN}")  # a second visit: one notice visited
    after = portal.funnel()
    assert after["visited"] == 1 and after["rates"]["visited"] == 1.0  # type: ignore[index]
    assert _stored(portal) == 1  # the second visit stores nothing: notices are counted


def test_unknown_and_malformed_tokens_record_nothing(portal: Portal) -> None:
    unknown = portal.client.get(f"/n/{UNKNOWN}?lang=en")
    assert unknown.status_code == 200
    # the token is only in the language switch (the visitor's own address), as for a
    # known token: the page does not tell whether it exists
    switch = f'href="/n/{UNKNOWN}?lang=ja"'
    assert switch in unknown.text
    assert UNKNOWN not in unknown.text.replace(switch, "") and ISP not in unknown.text
    assert "could not find the notice" in unknown.text
    assert 'href="/download/cleaner?lang=en"' in unknown.text  # the steps are still there
    for bad in ["short", "a" * 65, "%3Cscript%3Ealert(1)%3C%2Fscript%3E" + "a" * 20,
                TOKEN + "%00", "..%2F..%2Fetc%2Fpasswd-xxxxxxxxxx"]:
        page = portal.client.get(f"/n/{bad}")
        assert page.status_code == (400 if bad.endswith("%00") else 404), bad
        assert "<script>" not in page.text and "passwd" not in page.text
    assert _stored(portal) == 0 and portal.funnel()["visited"] == 0


def test_download_without_an_artifact_is_404_and_records_nothing(portal: Portal) -> None:
    for lang, words in [("en", "not available yet"), ("ja", "まだ配布していません")]:
        page = portal.client.get(f"/download/cleaner?t={TOKEN}&lang={lang}")
        assert page.status_code == 404 and words in page.text
        # the language switch keeps the token (escaped), nothing else of the query
        other = "ja" if lang == "en" else "en"
        assert f'href="/download/cleaner?t={TOKEN}&amp;lang={other}"' in page.text
    listing = portal.client.get("/download/?lang=en")
    assert listing.status_code == 200 and "Nothing to download yet" in listing.text
    assert _stored(portal) == 0 and portal.funnel()["downloaded"] == 0


def test_download_serves_the_newest_cleaner_and_counts_a_known_token(
        portal: Portal, tmp_path: Path) -> None:
    folder = portal.center.settings.data_dir / "downloads"
    folder.mkdir(parents=True)
    old = folder / "cleancenter-cleaner-0.0.9.pyz"
    old.write_bytes(b"old build")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    new = folder / "cleancenter_cleaner-0.1.0-py3-none-any.whl"
    new.write_bytes(b"new build")
    (folder / "definitions.pub").write_text("ed25519:not-a-real-key\n")
    (folder / "other-tool.pyz").write_bytes(b"not the cleaner")
    os.utime(folder / "other-tool.pyz", (2_000_000_000, 2_000_000_000))  # newer, not ours
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the downloads folder")
    (folder / "cleancenter-cleaner-link.pyz").symlink_to(outside)

    anonymous = portal.client.get("/download/cleaner")
    assert anonymous.status_code == 200 and anonymous.content == b"new build"
    assert _stored(portal) == 0  # no token: served, not counted
    tail = portal.client.get(f"/download/cleaner?t={TOKEN}", headers={"Range": "bytes=4-"})
    assert tail.status_code == 206 and tail.content == b"build"
    assert _stored(portal) == 0  # the rest of a fetch already begun: not a new download
    got = portal.client.get(f"/download/cleaner?t={TOKEN}")
    assert got.status_code == 200 and got.content == b"new build"
    assert got.headers["content-type"] == "application/octet-stream"
    assert new.name in got.headers["content-disposition"]
    assert got.headers["cache-control"] == "no-store"
    portal.client.get(f"/download/cleaner?t={UNKNOWN}")
    assert portal.funnel()["downloaded"] == 1 and _stored(portal) == 1

    listing = portal.client.get("/download/")
    for path in (old, new, folder / "definitions.pub"):
        assert path.name in listing.text
        assert hashlib.sha256(path.read_bytes()).hexdigest() in listing.text
    assert "cleaner-link" not in listing.text and "secret" not in listing.text
    assert portal.client.get("/download/files/definitions.pub").text.startswith("ed25519:")
    for name in ["cleancenter-cleaner-link.pyz", "..%2Fcatalog.sqlite", "missing.pyz"]:
        assert portal.client.get(f"/download/files/{name}").status_code == 404


def test_cleaner_reports_known_unknown_too_big_and_invalid(portal: Portal) -> None:
    url = "/api/v1/cleaner-reports"
    ok = portal.client.post(url, json=_report(extra_key={"ignored": True}))
    assert ok.status_code == 200 and ok.json() == {"accepted": True}
    unknown = portal.client.post(url, json=_report(token=UNKNOWN))
    assert unknown.status_code == 404 and unknown.json() == {"accepted": False}
    big = portal.client.post(url, content=json.dumps(_report(families=["x" * 100] * 1000)),
                             headers={"content-type": "application/json"})
    assert big.status_code == 413
    chunked = portal.client.post(url, content=iter([b"{" + b" " * 40_000] * 2),
                                 headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    for body in [b"{not json", b"[]", json.dumps({"counts": {}}).encode(),
                 json.dumps(_report(counts={"malicious": "1"})).encode(),
                 json.dumps(_report(counts={"malicious": 1.5})).encode(),
                 json.dumps(_report(counts={"malicious": -1})).encode(),
                 json.dumps(_report(token="short")).encode()]:
        bad = portal.client.post(url, content=body, headers={"content-type": "application/json"})
        assert bad.status_code == 422, body
        assert "not json" not in bad.text  # errors say where and why, not the input
    form = portal.client.post(url, data={"token": TOKEN})
    assert form.status_code == 415
    total = portal.funnel()
    assert total["cleaned"] == 1 and _stored(portal) == 1


def test_funnel_api_is_public_counters_only(portal: Portal) -> None:
    portal.client.get(f"/n/{TOKEN}")
    data = portal.client.get("/api/v1/funnel").json()
    assert data["ccc_fy2006"] == {"downloaded": 0.308, "seen_again": 0.2}
    assert [row["isp"] for row in data["funnel"]] == [ISP, None]
    text = json.dumps(data)
    assert TOKEN not in text and portal.address not in text
    home = portal.client.get("/?lang=en")
    assert ISP in home.text and "CCC FY2006" in home.text and "1,851 (30.8%)" in home.text


@pytest.mark.parametrize("path", ["/healthz"])
def test_health(portal: Portal, path: str) -> None:
    assert portal.client.get(path).json() == {"status": "ok"}


def test_a_code_typed_by_hand_leads_to_its_landing_page(portal: Portal) -> None:
    form = portal.client.get("/?lang=en")
    assert 'action="/n/"' in form.text and 'name="code"' in form.text
    typed = portal.client.get(f"/n/?code=+{TOKEN}+&lang=en", follow_redirects=False)
    assert typed.status_code == 303
    assert typed.headers["location"] == f"/n/{TOKEN}?lang=en"
    assert typed.headers["referrer-policy"] == "no-referrer"
    landed = portal.client.get(typed.headers["location"])
    assert "alpha-net" in landed.text
    assert portal.client.get("/api/v1/funnel").json()["funnel"][-1]["visited"] == 1
    for bad in ["<script>alert(1)</script>", "short", "x" * 65]:
        page = portal.client.get("/n/", params={"code": bad, "lang": "en"})
        assert page.status_code == 400 and "not a code of ours" in page.text
        assert "<script>alert" not in page.text
    assert portal.client.get("/n/").status_code == 200  # the empty form
