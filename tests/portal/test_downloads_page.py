"""The downloads page: the cleaner builds, the definitions with their signature status, the
key's fingerprint and how to check them; fake artifacts (the real build is tests/publish)."""

from __future__ import annotations

import hashlib
import html as htmllib
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cleancenter.definitions.keys import init_keys, load_private
from cleancenter.publish.sums import update_sums
from tests.cleaner.bundles import make_bundle, new_key


def _data_dir(client: TestClient) -> Path:
    portal = client.app.state.portal  # type: ignore[attr-defined]
    path: Path = portal.center.settings.data_dir
    return path


def _publish(client: TestClient) -> tuple[Path, str]:
    """A published folder as `cleancenter publish` leaves it; returns it and the key's
    fingerprint."""
    data = _data_dir(client)
    public = init_keys(data / "keys")
    folder = data / "downloads"
    folder.mkdir(parents=True)
    (folder / "cleancenter_cleaner-0.1.0-py3-none-any.whl").write_bytes(b"wheel " * 100)
    pyz = folder / "cleancenter-cleaner-0.1.0-linux-x86_64.pyz"
    pyz.write_bytes(b"#!/usr/bin/env python3\n" + b"z" * 5000)
    old = folder / "cleancenter-cleaner-0.0.9-linux-x86_64.pyz"
    old.write_bytes(b"older build")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    bundle = make_bundle(folder / "definitions-7.ccdef", load_private(data / "keys"), version=7)
    (folder / "definitions-latest.ccdef").write_bytes(bundle.read_bytes())
    make_bundle(folder / "definitions-6.ccdef", load_private(data / "keys"), version=6)
    (folder / "definitions.pub").write_text(public.text() + "\n")
    update_sums(folder, {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in folder.iterdir()})
    return folder, public.fingerprint


@pytest.mark.parametrize(("lang", "words"), [
    ("en", ["The cleaner", "Signature checked with the center's key", "Version 7 (made",
            "Fingerprint (SHA-256)", "How to check the files"]),
    ("ja", ["クリーナー", "署名を確認しました(当センターの鍵)", "バージョン 7",
            "指紋(SHA-256)", "ファイルが本物か確かめるには"]),
])
def test_lists_builds_definitions_key_and_checks(client: TestClient, lang: str,
                                                  words: list[str]) -> None:
    folder, fingerprint = _publish(client)
    page = client.get(f"/download/?lang={lang}")
    assert page.status_code == 200
    html = page.text
    for word in words:
        assert word in htmllib.unescape(html), word
    for path in folder.iterdir():  # every file with its sha256 (SHA256SUMS too)
        assert path.name in html
        assert hashlib.sha256(path.read_bytes()).hexdigest() in html
    assert f'<code class="hash fingerprint">{fingerprint}</code>' in html
    assert "cleancenter-cleaner-0.1.0-linux-x86_64.pyz</a>" in html
    assert "5,023" in html  # the pyz's size
    for command in ("sha256sum -c --ignore-missing SHA256SUMS",
                    "cleancenter-cleaner pin definitions.pub",
                    "cleancenter-cleaner update definitions-latest.ccdef",
                    "/download/files/definitions-latest.ccdef"):
        assert command in html, command
    assert "<script" not in html and " style=" not in html
    # the newest cleaner build is what /download/cleaner serves
    served = client.get("/download/cleaner")
    assert served.content == (folder / "cleancenter-cleaner-0.1.0-linux-x86_64.pyz").read_bytes()


def test_a_bundle_that_fails_its_signature_is_flagged(client: TestClient) -> None:
    folder, _ = _publish(client)
    other, _ = new_key()
    make_bundle(folder / "definitions-8.ccdef", other, version=8)
    html = client.get("/download/?lang=en").text
    assert "The signature could not be verified. Do not use this file." in html
    assert "signature does not match" in html


def test_a_published_key_that_is_not_the_centers_is_flagged(client: TestClient) -> None:
    folder, _ = _publish(client)
    _, stranger = new_key()
    (folder / "definitions.pub").write_text(stranger.text() + "\n")
    html = htmllib.unescape(client.get("/download/?lang=en").text)
    assert "is not the center's signing key" in html
    assert stranger.fingerprint in html


def test_without_a_center_key_the_published_key_checks_the_bundle(client: TestClient) -> None:
    folder, _ = _publish(client)
    (_data_dir(client) / "keys" / "definitions.pub").unlink()
    html = client.get("/download/?lang=en").text
    assert "Signature checked with the key published on this page." in html
    (folder / "definitions.pub").write_text("ed25519:not-a-real-key\n")
    html = client.get("/download/?lang=en").text
    assert "There is no key to check the signature with." in html


def test_only_a_cleaner_no_definitions(client: TestClient) -> None:
    folder = _data_dir(client) / "downloads"
    folder.mkdir(parents=True)
    (folder / "cleancenter_cleaner-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    html = client.get("/download/?lang=en").text
    assert "No definitions published yet." in html and "No public key published yet." in html
    assert "Package for pip" in html and "Single file" not in html
