"""Sample upload (EICAR, a zip with password "infected", too big), search and detail."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator

import pytest
import pyzipper
from fastapi.testclient import TestClient

from cleancenter.center import Center
from tests.portal.test_auth import bearer, make_client, new_token

# The EICAR test file, built here so the repository holds no copy that scanners flag.
EICAR = ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*").encode()


def infected_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(b"infected")
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def analyst(center: Center) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with make_client(center, upload_limit=256 * 1024) as client:
        yield client, bearer(new_token(center, "analyst"))


def test_upload_eicar_then_find_and_show_it(center: Center,
                                            analyst: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = analyst
    sha = hashlib.sha256(EICAR).hexdigest()
    done = client.post("/api/v1/samples", headers=auth,
                       files={"file": ("../../etc/eicar.com", EICAR, "application/octet-stream")})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["sha256"] == sha and body["sha256s"] == [sha] and body["errors"] == []
    assert body["name"] == "eicar.com" and body["samples_new"] == 1
    assert center.blobs.exists(sha)
    again = client.post("/api/v1/samples", headers=auth, files={"file": ("e.com", EICAR)})
    assert again.json()["samples_known"] == 1

    shown = client.get(f"/api/v1/samples/{sha.upper()}", headers=auth)
    assert shown.status_code == 200
    sample = shown.json()
    assert sample["sha256"] == sha and "upload" in sample["tags"]
    assert set(sample["names"]) == {"eicar.com", "e.com"} and sample["report"] is None
    assert client.get("/api/v1/samples/" + "0" * 64, headers=auth).status_code == 404
    assert client.get("/api/v1/samples/xyz", headers=auth).status_code == 422

    found = client.get("/api/v1/samples?tag=upload&q=eicar", headers=auth).json()
    assert found["total"] == 1 and found["samples"][0]["sha256"] == sha
    assert client.get(f"/api/v1/samples?q={sha[:8]}", headers=auth).json()["total"] == 1
    assert client.get("/api/v1/samples?q=nothing-like-it", headers=auth).json()["total"] == 0
    assert client.get("/api/v1/samples?since=2999-01-01", headers=auth).json()["total"] == 0
    assert client.get("/api/v1/samples?ioc=http://nowhere.example/",
                      headers=auth).json()["total"] == 0
    assert client.get("/api/v1/samples?since=yesterday", headers=auth).status_code == 422


def test_upload_a_zip_with_password_infected(center: Center,
                                             analyst: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = analyst
    members = {"bot/eicar.com": EICAR, "bot/readme.txt": b"a harmless text member\n"}
    archive = infected_zip(members)
    done = client.post("/api/v1/samples", headers=auth,
                       files={"file": ("sample.zip", archive, "application/zip")})
    assert done.status_code == 200, done.text
    body = done.json()
    wanted = {hashlib.sha256(data).hexdigest() for data in members.values()}
    assert body["sha256"] == hashlib.sha256(archive).hexdigest()
    assert set(body["sha256s"]) == wanted | {body["sha256"]} and body["members"] == 2
    assert body["errors"] == []
    page = client.get("/api/v1/samples?tag=upload&per_page=2&page=1", headers=auth).json()
    assert page["total"] == 3 and len(page["samples"]) == 2
    assert page["total_exact"] and page["next"]
    last = client.get("/api/v1/samples?tag=upload&per_page=2&page=2", headers=auth).json()
    assert len(last["samples"]) == 1 and last["next"] is None
    followed = client.get("/api/v1/samples", headers=auth,
                          params={"tag": "upload", "per_page": 2, "after": page["next"]}).json()
    assert followed["samples"] == last["samples"]
    bad = client.get("/api/v1/samples", headers=auth, params={"after": "' OR 1=1 --"})
    assert bad.status_code == 422 and "cursor" in bad.text


def test_a_bad_member_does_not_stop_the_rest(analyst: tuple[TestClient, dict[str, str]]
                                             ) -> None:
    client, auth = analyst
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("good.txt", b"fine\n")
        zf.writestr("bad.txt", b"this member will be corrupted " * 20)
    data = bytearray(buffer.getvalue())
    at = data.find(b"this member will be corrupted")
    data[at:at + 10] = b"XXXXXXXXXX"  # its CRC no longer matches
    body = client.post("/api/v1/samples", headers=auth,
                       files={"file": ("mixed.zip", bytes(data))}).json()
    assert hashlib.sha256(b"fine\n").hexdigest() in body["sha256s"]
    assert body["errors"] and "mixed.zip" in body["errors"][0]["location"]
    assert "/work/" not in str(body["errors"]) and "upload-" not in str(body["errors"])


def test_upload_limits_and_refusals(center: Center,
                                    analyst: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = analyst
    big = client.post("/api/v1/samples", headers=auth,
                      files={"file": ("big.bin", b"\0" * (300 * 1024))})
    assert big.status_code == 413
    streamed = client.post("/api/v1/samples", headers={
        **auth, "content-type": "multipart/form-data; boundary=x"},
        content=iter([b"--x\r\n" + b"y" * 100_000] * 4))
    assert streamed.status_code == 413
    assert client.post("/api/v1/samples", headers=auth, json={"a": 1}).status_code == 415
    assert client.post("/api/v1/samples", headers=auth,
                       files={"other": ("a", b"x")}).status_code == 422
    assert client.post("/api/v1/samples", headers=auth,
                       files={"file": ("a", b"")}).status_code == 422
    assert not list(center.settings.work_dir.glob("upload-*"))  # temp files are gone
    isp_less = bearer(new_token(center, "admin"))
    assert client.post("/api/v1/samples", headers=isp_less,
                       files={"file": ("ok.txt", b"admin may\n")}).status_code == 200
    assert client.post("/api/v1/samples",
                       files={"file": ("ok.txt", b"anonymous may not\n")}).status_code == 401
