"""`cleancenter publish definitions`: only a bundle that verifies reaches the downloads."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.definitions.bundle import read_bundle
from cleancenter.definitions.keys import load_private, load_public
from cleancenter.publish.sums import read_sums
from tests.cleaner.bundles import make_bundle, new_key

runner = CliRunner()


def _cc(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data), *args])
    return result.exit_code, result.output


def _center(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    assert _cc(data, "keys", "init")[0] == 0
    return data


def _tamper(path: Path) -> None:
    """Change one signed file's content, keep the signed manifest."""
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    members["hashes.jsonl"] += b'{"sha256": "' + b"0" * 64 + b'", "family": "x"}\n'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def test_publishes_the_newest_release_with_its_key_and_sums(tmp_path: Path) -> None:
    data = _center(tmp_path)
    key = load_private(data / "keys")
    public = load_public(data / "keys" / "definitions.pub")
    releases = data / "releases"
    make_bundle(releases / "definitions-2.ccdef", key, version=2)
    make_bundle(releases / "definitions-10.ccdef", key, version=10)  # 10 > 2, not "1" < "2"
    code, output = _cc(data, "publish", "definitions", "--json")
    assert code == 0, output
    summary = json.loads(output)
    downloads = data / "downloads"
    assert summary["version"] == 10 and summary["key_fingerprint"] == public.fingerprint
    published = downloads / "definitions-10.ccdef"
    assert published.read_bytes() == (releases / "definitions-10.ccdef").read_bytes()
    assert (downloads / "definitions-latest.ccdef").read_bytes() == published.read_bytes()
    assert read_bundle(downloads / "definitions-latest.ccdef", public).version == 10
    assert load_public(downloads / "definitions.pub") == public
    sums = read_sums(downloads / "SHA256SUMS")
    assert set(sums) == {"definitions-10.ccdef", "definitions-latest.ccdef", "definitions.pub"}
    for name, sha in sums.items():
        assert hashlib.sha256((downloads / name).read_bytes()).hexdigest() == sha
    assert [p.name for p in downloads.iterdir() if p.name.startswith(".")] == []

    # an older release is a rollback for every cleaner: refused
    code, output = _cc(data, "publish", "definitions", "--bundle",
                       str(releases / "definitions-2.ccdef"))
    assert code == 2 and "older" in output


def test_refuses_a_tampered_or_foreign_bundle_and_writes_nothing(tmp_path: Path) -> None:
    data = _center(tmp_path)
    key = load_private(data / "keys")
    releases = data / "releases"
    tampered = make_bundle(releases / "definitions-3.ccdef", key, version=3)
    _tamper(tampered)
    code, output = _cc(data, "publish", "definitions")
    assert code == 2 and "refused" in output and "differs" in output
    other, _ = new_key()
    make_bundle(releases / "definitions-4.ccdef", other, version=4)
    code, output = _cc(data, "publish", "definitions")
    assert code == 2 and "signature" in output
    downloads = data / "downloads"
    assert not downloads.exists() or list(downloads.iterdir()) == []


def test_nothing_to_publish(tmp_path: Path) -> None:
    data = _center(tmp_path)
    code, output = _cc(data, "publish", "definitions")
    assert code == 2 and "definitions build" in output
    code, output = _cc(tmp_path / "keyless", "publish", "definitions")
    assert code == 2 and "no public key" in output
