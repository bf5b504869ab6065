"""Definitions updates: only signed, only forward, and a failed update changes nothing."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleancenter.cleaner.state import CleanerHome
from cleancenter.cleaner.update import open_definitions, update
from cleancenter.definitions.bundle import BundleError
from cleancenter.definitions.keys import KeyProblem, PublicKey
from tests.cleaner.bundles import make_bundle, new_key

SHA = "a" * 64


@pytest.fixture
def home(tmp_path: Path) -> CleanerHome:
    return CleanerHome(tmp_path / "home")


def test_install_then_newer_then_rollback_refused(tmp_path: Path, home: CleanerHome) -> None:
    key, pub = new_key()
    v1 = make_bundle(tmp_path / "v1.ccdef", key, version=1, hashes={SHA: "Mirai"})
    v2 = make_bundle(tmp_path / "v2.ccdef", key, version=2, hashes={SHA: "Mirai", "b" * 64: None})
    first = update(str(v1), home, pub)
    assert first.changed and first.before is None and first.after == 1
    assert update(str(v1), home, pub).changed is False  # same bundle again: no-op
    second = update(str(v2), home, pub)
    assert (second.before, second.after) == (1, 2)
    assert home.previous.read_bytes() == v1.read_bytes()
    with pytest.raises(BundleError, match="rollback"):
        update(str(v1), home, pub)
    installed, problems = home.installed(pub)
    assert installed is not None and installed.version == 2 and not problems
    assert set(installed.hashes) == {SHA, "b" * 64}


def _refused(tmp_path: Path, home: CleanerHome, pub: PublicKey, bad: Path, match: str) -> None:
    before = home.current.read_bytes()
    with pytest.raises(BundleError, match=match):
        update(str(bad), home, pub)
    assert home.current.read_bytes() == before  # the old bundle stays in force
    assert not list(home.definitions_dir.glob(".download-*"))  # no half-written file left


def test_bad_bundles_are_refused_and_the_old_one_stays(tmp_path: Path,
                                                        home: CleanerHome) -> None:
    key, pub = new_key()
    update(str(make_bundle(tmp_path / "v1.ccdef", key, version=1)), home, pub)
    other_key, _ = new_key()
    _refused(tmp_path, home, pub,
             make_bundle(tmp_path / "other.ccdef", other_key, version=5), "pinned public key")
    newer = make_bundle(tmp_path / "v3.ccdef", key, version=3, hashes={SHA: None})
    tampered = tmp_path / "tampered.ccdef"
    with zipfile.ZipFile(newer) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"\n" if info.filename == "hashes.jsonl" else data)
    _refused(tmp_path, home, pub, tampered, "differs from the signed manifest")
    unsigned = tmp_path / "unsigned.ccdef"
    with zipfile.ZipFile(newer) as src, zipfile.ZipFile(unsigned, "w") as dst:
        for info in src.infolist():
            if info.filename != "manifest.sig":
                dst.writestr(info, src.read(info))
    _refused(tmp_path, home, pub, unsigned, "unsigned")
    too_new = make_bundle(tmp_path / "v4.ccdef", key, version=4, min_cleaner_version="99.0")
    _refused(tmp_path, home, pub, too_new, "need cleaner 99.0")
    garbage = tmp_path / "garbage.ccdef"
    garbage.write_bytes(b"not a zip at all")
    _refused(tmp_path, home, pub, garbage, "not a readable bundle")
    _refused(tmp_path, home, pub, tmp_path / "missing.ccdef", "cannot fetch")
    same_version = make_bundle(tmp_path / "v1b.ccdef", key, version=1, hashes={SHA: None})
    _refused(tmp_path, home, pub, same_version, "other contents")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def test_update_and_scan_definitions_from_a_url(tmp_path: Path, home: CleanerHome,
                                                served: tuple[str, Path]) -> None:
    base, folder = served
    key, pub = new_key()
    make_bundle(folder / "definitions-2.ccdef", key, version=2, hashes={SHA: "Gafgyt"})
    result = update(f"{base}/definitions-2.ccdef", home, pub)
    assert result.changed and result.after == 2
    loaded = open_definitions(f"{base}/definitions-2.ccdef", home, pub)
    assert loaded.hashes[SHA].family == "Gafgyt"
    with pytest.raises(BundleError, match="cannot fetch"):
        update(f"{base}/missing.ccdef", home, pub)
    installed, _ = home.installed(pub)
    assert installed is not None and installed.version == 2


def test_damaged_current_falls_back_to_previous(tmp_path: Path, home: CleanerHome) -> None:
    key, pub = new_key()
    update(str(make_bundle(tmp_path / "v1.ccdef", key, version=1)), home, pub)
    update(str(make_bundle(tmp_path / "v2.ccdef", key, version=2)), home, pub)
    home.current.write_bytes(b"torn")
    installed, problems = home.installed(pub)
    assert installed is not None and installed.version == 1
    assert problems and "current.ccdef" in problems[0]


def test_pin_refuses_a_different_key_without_force(home: CleanerHome) -> None:
    _, first = new_key()
    _, second = new_key()
    home.pin(first)
    assert home.pinned_key() == first
    with pytest.raises(KeyProblem, match="different key"):
        home.pin(second)
    home.pin(second, force=True)
    assert home.pinned_key() == second
