"""The public definitions API: latest manifest (cached), bundles, the signing key."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from cleancenter.center import Center
from cleancenter.definitions.build import build_release
from cleancenter.definitions.bundle import read_bundle
from cleancenter.definitions.keys import PublicKey, init_keys
from tests.portal.test_auth import make_client


def build(center: Center) -> Path:
    data = center.settings.data_dir
    built = build_release(center.catalog, keys_dir=data / "keys", rules_registry=data / "rules",
                          out=None, releases_dir=data / "releases", generate=False)
    return built.path


def test_latest_bundle_and_key(center: Center, tmp_path: Path) -> None:
    with make_client(center) as client:
        assert client.get("/api/v1/definitions/latest").status_code == 404
        assert client.get("/api/v1/definitions/latest/bundle").status_code == 404
        assert client.get("/api/v1/definitions/key").status_code == 404
        public = init_keys(center.settings.data_dir / "keys")
        first = build(center)
        latest = client.get("/api/v1/definitions/latest")
        assert latest.status_code == 200, latest.text
        body = latest.json()
        assert body["version"] == 1 and body["key_fingerprint"] == public.fingerprint
        assert body["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
        assert body["bundle"] == "/api/v1/definitions/1/bundle" and "hashes" in body["counts"]
        assert "anonymous" not in body and latest.headers["cache-control"].startswith("public")

        key = client.get("/api/v1/definitions/key").json()
        assert key["public_key"] == public.text() and key["fingerprint"] == public.fingerprint
        second = build(center)
        assert client.get("/api/v1/definitions/latest").json()["version"] == 2  # not stale
        fetched = client.get("/api/v1/definitions/latest/bundle")
        assert fetched.status_code == 200 and fetched.content == second.read_bytes()
        assert fetched.headers["x-content-sha256"] == hashlib.sha256(fetched.content).hexdigest()
        saved = tmp_path / "got.ccdef"
        saved.write_bytes(client.get("/api/v1/definitions/1/bundle").content)
        bundle = read_bundle(saved, PublicKey.parse(key["public_key"]))  # a cleaner's check
        assert bundle.version == 1
        assert client.get("/api/v1/definitions/3/bundle").status_code == 404
        assert client.get("/api/v1/definitions/0/bundle").status_code == 404
        assert client.get("/api/v1/definitions/x/bundle").status_code == 422


def test_a_tampered_bundle_is_not_announced(center: Center) -> None:
    init_keys(center.settings.data_dir / "keys")
    path = build(center)
    with make_client(center) as client:
        assert client.get("/api/v1/definitions/latest").status_code == 200
        other = center.settings.data_dir / "other-keys"
        init_keys(other)
        data = center.settings.data_dir
        forged = build_release(center.catalog, keys_dir=other, rules_registry=data / "rules",
                               out=path, releases_dir=data / "releases", generate=False)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert forged.path == path
        refused = client.get("/api/v1/definitions/latest")
        assert refused.status_code == 503 and "signature" in refused.json()["detail"]


def test_latest_is_served_from_memory(center: Center) -> None:
    init_keys(center.settings.data_dir / "keys")
    build(center)
    with make_client(center, rate_limits=False) as client:
        client.get("/api/v1/definitions/latest")
        started = time.perf_counter()
        for _ in range(300):
            assert client.get("/api/v1/definitions/latest").status_code == 200
        assert time.perf_counter() - started < 10  # no re-reading, no database


def test_nothing_is_announced_when_the_key_cannot_verify(center: Center) -> None:
    """A bundle signed by another key stays refused whatever happens to the center's key
    file: corrupt, missing, or put back after a request was answered."""
    data = center.settings.data_dir
    keys = data / "keys"
    init_keys(keys)
    good = (keys / "definitions.pub").read_bytes()
    os.rename(keys, data / "center-keys")
    init_keys(keys)
    build(center)  # signed by a rogue key
    for name in os.listdir(keys):
        os.unlink(keys / name)
    os.rmdir(keys)
    os.rename(data / "center-keys", keys)
    with make_client(center) as client:
        assert client.get("/api/v1/definitions/latest").status_code == 503
        (keys / "definitions.pub").write_text("garbage\n")
        assert client.get("/api/v1/definitions/latest").status_code == 503
        (keys / "definitions.pub").unlink()
        assert client.get("/api/v1/definitions/latest").status_code == 503
        assert client.get("/api/v1/definitions/latest/bundle").status_code == 503
        (keys / "definitions.pub").write_bytes(good)
        assert client.get("/api/v1/definitions/latest").status_code == 503
