"""The analyst views: login, roles, samples from the real pipeline, search, families,
events, infections, releases (CSRF), uploads, exports; hostile samples stay inert."""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cleancenter.analyze.service import AnalysisService, set_label
from cleancenter.center import Center
from cleancenter.cli import app as cli_app
from cleancenter.collect.ingest import Ingestor
from cleancenter.definitions.keys import init_keys
from cleancenter.notify.infections import update_infections
from tests.portal.hostile import (
    ESC_SHOWN,
    HOSTILE_DOMAIN,
    IMG,
    IMG_ESCAPED,
    SCRIPT,
    SCRIPT_ESCAPED,
    add_hostile_sample,
)
from tests.portal.test_api_samples import EICAR, infected_zip
from tests.portal.test_auth import add, bearer, login, make_client, new_token, register_isp

PAGES = ["/analyst/", "/analyst/samples", "/analyst/families", "/analyst/events",
         "/analyst/infections", "/analyst/releases", "/analyst/upload"]
_ACTION_CSRF = re.compile(r'action="/analyst/upload\?csrf_token=([^"]+)"')
_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in(center: Center, name: str = "ana", role: str = "analyst",
              **access: object) -> TestClient:
    add(center, name, role)
    client = make_client(center, **access)
    assert login(client, name).status_code == 303
    return client


@pytest.fixture
def analyst(center: Center) -> Iterator[TestClient]:
    with signed_in(center, upload_limit=512 * 1024) as client:
        yield client


def analyse_real_elfs(center: Center, tmp_path: Path) -> tuple[str, str]:
    """/bin/true and /bin/false (harmless system ELF files) through the real pipeline."""
    folder = tmp_path / "elf"
    folder.mkdir()
    for name in ("true", "false"):
        shutil.copyfile(shutil.which(name) or f"/bin/{name}", folder / f"{name}.elf")
    report = Ingestor(center.catalog, center.blobs, tags=("system",)).ingest_paths([folder])
    assert report.error_count == 0
    service = AnalysisService(center.catalog, center.blobs, center.settings.work_dir / "unpack",
                              workers=1)
    summary = service.run(service.pending())
    assert summary.failed == 0, summary.errors
    return tuple(hashlib.sha256((folder / f"{n}.elf").read_bytes()).hexdigest()
                 for n in ("true", "false"))  # type: ignore[return-value]


# -- who may see them ---------------------------------------------------------------------


def test_anonymous_callers_are_sent_to_the_login(sqlite_center: Center) -> None:
    with make_client(sqlite_center) as client:
        for path in [*PAGES, "/analyst/samples/" + "a" * 64, "/analyst/families/x/stix"]:
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=%2Fanalyst%2F")
        assert client.post("/analyst/releases/build").status_code == 401
        assert client.post("/analyst/upload", files={"files": ("a", b"x")}).status_code == 401
        assert "/analyst/" not in client.get("/").text  # no nav link for visitors


def test_isp_staff_and_isp_tokens_are_refused(center: Center) -> None:
    register_isp(center, "alpha-net", "192.0.2.0/24")
    with signed_in(center, "isp-staff", "isp:alpha-net") as client:
        for path in PAGES:
            assert client.get(path).status_code == 403, path
        assert 'href="/analyst/"' not in client.get("/").text
    token = new_token(center, "isp:alpha-net")
    with make_client(center) as client:
        for path in [*PAGES, "/analyst/families/x/misp"]:
            assert client.get(path, headers=bearer(token)).status_code == 403, path
        analyst_token = new_token(center, "analyst")
        assert client.get("/analyst/", headers=bearer(analyst_token)).status_code == 200


def test_pages_in_both_languages_with_the_nav_link(analyst: TestClient) -> None:
    for path in PAGES:
        ja = analyst.get(path + "?lang=ja")
        en = analyst.get(path + "?lang=en")
        assert ja.status_code == en.status_code == 200, path
        assert ja.headers["cache-control"] == "no-store"
        assert 'lang="ja"' in ja.text and 'lang="en"' in en.text
        assert 'href="/analyst/?lang=en">Analyst</a>' in en.text
        assert "<script" not in en.text and "style=" not in en.text


# -- samples -------------------------------------------------------------------------------


def test_a_real_elf_with_its_hashes_similar_samples_and_search(
        center: Center, analyst: TestClient, tmp_path: Path) -> None:
    true_sha, false_sha = analyse_real_elfs(center, tmp_path)
    set_label(center.catalog, true_sha, verdict="suspicious", family="TestFam",
              note="looked at it", author="ana")
    page = analyst.get(f"/analyst/samples/{true_sha}?lang=en")
    assert page.status_code == 200
    with center.catalog.engine.connect() as conn:
        from cleancenter.store.queries import get_sample

        detail = get_sample(conn, true_sha)
    assert detail is not None and detail.tlsh and detail.ssdeep
    for value in (detail.md5, detail.sha1, detail.sha256, detail.tlsh, detail.ssdeep,
                  "true.elf", "system", "TestFam", "looked at it", "elf64"):
        assert html.escape(value, quote=False) in page.text, value
    assert "/analyst/samples/" + false_sha in page.text  # a TLSH neighbour
    assert f'href="/analyst/samples/{true_sha}/stix"' in page.text
    assert analyst.get(f"/analyst/samples/{'0' * 64}").status_code == 404
    assert analyst.get("/analyst/samples/not-a-hash").status_code == 422

    def found(query: str) -> set[str]:
        response = analyst.get("/analyst/samples?" + query)
        assert response.status_code == 200, response.text
        return set(re.findall(r'href="/analyst/samples/([0-9a-f]{64})"', response.text))

    assert found("") == {true_sha, false_sha}
    assert found("family=testfam") == {true_sha}
    assert found("tag=system") == {true_sha, false_sha}
    assert found("type=elf64") == {true_sha, false_sha}
    assert found("type=pe") == set()
    assert found(f"q={detail.md5[:8]}") == {true_sha}
    assert found(f"q={false_sha[:10]}") == {false_sha}
    assert found("q=false.elf") == {false_sha}
    assert found("since=2000-01-01&until=2999-12-31") == {true_sha, false_sha}
    assert found("since=2999-01-01") == set()
    assert analyst.get("/analyst/samples?since=yesterday").status_code == 422

    families = analyst.get("/analyst/families")
    assert 'href="/analyst/families/TestFam"' in families.text
    family = analyst.get("/analyst/families/testfam")
    assert family.status_code == 200 and true_sha in family.text and false_sha not in family.text
    assert analyst.get("/analyst/families/NoSuchFamily").status_code == 404


def test_a_hostile_sample_renders_inert(center: Center, analyst: TestClient) -> None:
    sha = add_hostile_sample(center)
    update_infections(center.catalog)
    pages = {
        "detail": analyst.get(f"/analyst/samples/{sha}"),
        "search": analyst.get("/analyst/samples", params={"ioc": HOSTILE_DOMAIN}),
        "families": analyst.get("/analyst/families"),
        "events": analyst.get("/analyst/events", params={"sample": sha}),
        "infections": analyst.get("/analyst/infections"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        text = response.text
        assert SCRIPT not in text and IMG not in text and "\x1b" not in text, name
        assert "<img" not in text and 'href="javascript' not in text, name
        assert SCRIPT_ESCAPED in text or name == "infections", name
    detail = pages["detail"].text
    assert IMG_ESCAPED in detail and ESC_SHOWN in detail
    assert sha in pages["search"].text  # found by its IOC
    assert 'href="https://ref.example/?' in detail  # a web reference is a link...
    assert "javascript:alert(1)//" in detail  # ...anything else is only text
    family_link = re.search(r'href="(/analyst/families/Hostile[^"]*)"', pages["families"].text)
    assert family_link is not None
    family = analyst.get(html.unescape(family_link.group(1)))
    assert family.status_code == 200 and sha in family.text and SCRIPT not in family.text
    for kind in ("stix", "misp"):
        exported = analyst.get(f"/analyst/samples/{sha}/{kind}")
        assert exported.status_code == 200
        assert exported.headers["content-disposition"] == \
            f'attachment; filename="{sha}.{kind}.json"'
        json.loads(exported.content)
        family_export = analyst.get(html.unescape(family_link.group(1)) + "/" + kind)
        assert family_export.status_code == 200
        assert "attachment" in family_export.headers["content-disposition"]

    result = CliRunner().invoke(cli_app, ["--data-dir", str(center.settings.data_dir),
                                          "--database-url", center.settings.database_url,
                                          "samples", "show", sha])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and ESC_SHOWN in result.stdout


def test_events_and_infections_filters(center: Center, analyst: TestClient,
                                       corpus: Path) -> None:
    log = min((corpus / "honeypot" / "cowrie").glob("cowrie.json*"),
              key=lambda p: p.stat().st_size)
    Ingestor(center.catalog, center.blobs).ingest_cowrie([log])
    update_infections(center.catalog)
    everything = analyst.get("/analyst/events")
    assert everything.status_code == 200
    sources = re.compile(r'class="text src"><code>(\d+\.\d+\.\d+\.\d+):\d+</code>')
    addresses = sources.findall(everything.text)
    assert addresses
    one = addresses[0]
    only = analyst.get("/analyst/events", params={"ip": one})
    assert set(sources.findall(only.text)) == {one}
    network = one.rsplit(".", 1)[0] + ".0/24"
    assert one in analyst.get("/analyst/events", params={"ip": network}).text
    assert analyst.get("/analyst/events", params={"ip": "not-an-ip"}).status_code == 422
    assert sources.findall(analyst.get("/analyst/events", params={"since": "2999-01-01"}).text) \
        == []
    assert analyst.get("/analyst/events", params={"kind": "login"}).status_code == 200
    hosts = analyst.get("/analyst/infections")
    assert hosts.status_code == 200
    listed = re.findall(r'href="/analyst/events\?ip=([^"]+)"', hosts.text)
    assert listed and set(listed) <= set(sources.findall(
        analyst.get("/analyst/events?page=1").text)) | set(listed)
    first = analyst.get("/analyst/events", params={"ip": listed[0]})
    assert set(sources.findall(first.text)) == {listed[0]}
    assert "/analyst/events?ip=" not in analyst.get("/analyst/infections?since=2999-01-01").text


# -- releases ------------------------------------------------------------------------------


def test_release_build_and_publish_need_the_csrf_token(center: Center,
                                                       analyst: TestClient) -> None:
    page = analyst.get("/analyst/releases")
    csrf = _FORM_CSRF.findall(page.text)[-1]
    assert analyst.post("/analyst/releases/build").status_code == 403
    assert analyst.post("/analyst/releases/build", data={"csrf_token": "wrong"}).status_code \
        == 403
    no_keys = analyst.post("/analyst/releases/build", data={"csrf_token": csrf})
    assert no_keys.status_code == 409 and "cleancenter keys init" in no_keys.text

    init_keys(center.settings.data_dir / "keys")
    built = analyst.post("/analyst/releases/build", data={"csrf_token": csrf})
    assert built.status_code == 303 and built.headers["location"] == "/analyst/releases?built=1"
    listed = analyst.get("/analyst/releases?built=1&lang=en")
    assert "Definitions built: version 1" in listed.text
    assert "definitions-1.ccdef" in listed.text
    assert 'action="/analyst/releases/1/publish"' in listed.text

    assert analyst.post("/analyst/releases/1/publish").status_code == 403
    assert analyst.post("/analyst/releases/9/publish",
                        data={"csrf_token": csrf}).status_code == 404
    published = analyst.post("/analyst/releases/1/publish", data={"csrf_token": csrf})
    assert published.status_code == 303, published.text
    downloads = center.settings.data_dir / "downloads"
    assert (downloads / "definitions-1.ccdef").is_file()
    assert (downloads / "definitions.pub").is_file()
    after = analyst.get("/analyst/releases?lang=en")
    assert 'action="/analyst/releases/1/publish"' not in after.text  # shown as published


# -- uploads -------------------------------------------------------------------------------


def test_upload_a_file_and_a_zip(center: Center, analyst: TestClient) -> None:
    form = analyst.get("/analyst/upload")
    match = _ACTION_CSRF.search(form.text)
    assert match and 'enctype="multipart/form-data"' in form.text
    csrf = html.unescape(match.group(1))
    files = {"files": ("eicar.com", EICAR, "application/octet-stream")}
    assert analyst.post("/analyst/upload", files=files).status_code == 403  # no CSRF
    done = analyst.post("/analyst/upload", params={"csrf_token": csrf}, files=files)
    assert done.status_code == 200, done.text
    sha = hashlib.sha256(EICAR).hexdigest()
    assert f'href="/analyst/samples/{sha}"' in done.text

    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("inner/readme.txt", b"a harmless member\n")
    members = {"bot/eicar.com": EICAR, "bot/notes.txt": b"notes\n"}
    done = analyst.post("/analyst/upload", params={"csrf_token": csrf, "lang": "en"}, files=[
        ("files", ("../sample.zip", infected_zip(members), "application/zip")),
        ("files", ("plain.zip", plain.getvalue(), "application/zip")),
        ("files", ("empty.bin", b"", "application/octet-stream"))])
    assert done.status_code == 200, done.text
    for data in (*members.values(), b"a harmless member\n"):
        assert f'href="/analyst/samples/{hashlib.sha256(data).hexdigest()}?lang=en"' in done.text
    assert "sample.zip" in done.text and "the file is empty" in done.text
    notes = hashlib.sha256(b"notes\n").hexdigest()
    child = analyst.get(f"/analyst/samples/{notes}")
    assert "extracted" in child.text  # the relation to the archive it came from
    with center.catalog.engine.connect() as conn:
        from cleancenter.store.queries import get_sample

        stored = get_sample(conn, notes)
    assert stored is not None and "upload" in stored.tags and stored.parents


def test_upload_over_the_limit_is_refused(sqlite_center: Center) -> None:
    with signed_in(sqlite_center, upload_limit=64 * 1024) as client:
        csrf = html.unescape(_ACTION_CSRF.findall(client.get("/analyst/upload").text)[0])
        big = client.post("/analyst/upload", params={"csrf_token": csrf},
                          files={"files": ("big.bin", b"x" * (200 * 1024))})
        assert big.status_code == 413
        none = client.post("/analyst/upload", params={"csrf_token": csrf},
                           data={"other": "x"}, files={"nothing": ("", b"")})
        assert none.status_code in (422, 400)


def test_search_pages_follow_the_cursor_to_the_end(center: Center, analyst: TestClient) -> None:
    from cleancenter.store.synthetic import Generator, load

    load(center.catalog, 130, seed=5, generator=Generator(seed=5))
    seen: list[str] = []
    url: str | None = "/analyst/samples?lang=en"
    pages = 0
    while url:
        response = analyst.get(url)
        assert response.status_code == 200, response.text
        seen += re.findall(r'href="/analyst/samples/([0-9a-f]{64})[?"]', response.text)
        match = re.search(r'<a href="([^"]+)" rel="next">', response.text)
        url = html.unescape(match.group(1)) if match else None
        pages += 1
        assert pages < 10
    assert len(seen) == 130 and len(set(seen)) == 130 and pages == 3
    assert "after=" in analyst.get("/analyst/samples?lang=en").text
    assert analyst.get("/analyst/samples?after=nonsense").status_code == 422
