"""`cleancenter demo` builds a center from real, harmless material and says what it did."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.demo import eicar

runner = CliRunner()


def test_demo_collects_real_material(tmp_path: Path, corpus: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLEANCENTER_CORPUS", str(corpus))
    result = runner.invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["data_dir"] == str(tmp_path / "cleancenter-demo")
    counts = summary["counts"]
    assert counts["samples"] >= 5
    assert summary["samples_by_type"].get("elf64", 0) >= 1
    cowrie_lines = sum(
        1 for p in (corpus / "honeypot" / "cowrie").glob("cowrie.json*")
        for line in p.read_bytes().splitlines() if line.strip())
    assert summary["ingest"]["cowrie"]["events_new"] == cowrie_lines
    assert summary["ingest"]["files"]["error_count"] == 0
    if shutil.which("upx"):
        assert any("UPX-packed" in n for n in summary["gathered"])

    eicar_sha = hashlib.sha256(eicar()).hexdigest()
    cleaner = summary["cleaner"]  # signed definitions, then the cleaner on the samples
    assert cleaner["definitions"]["counts"]["hashes"] >= 1
    assert Path(cleaner["definitions"]["path"]).is_file()
    malicious = [f for f in cleaner["findings"] if f["severity"] == "malicious"]
    assert [Path(f["where"]).read_bytes() for f in malicious] == [eicar()]
    assert malicious[0]["evidence"][0] == {
        "type": "hash", "value": eicar_sha, "source": "current.ccdef", "author": "",
        "reference": "", "detail": "EICAR"}
    assert cleaner["scan"]["exit_code"] == 1
    result = runner.invoke(app, ["--data-dir", "cleancenter-demo", "samples", "show", eicar_sha,
                                 "--json"])
    shown = json.loads(result.stdout)
    assert "eicar.com" in shown["names"]
    assert any(p["kind"] == "extracted" for p in shown["parents"])  # also inside the zip

    again = runner.invoke(app, ["demo", "--json"])  # a second run starts afresh
    assert again.exit_code == 0
    assert json.loads(again.stdout)["counts"] == counts


def test_demo_never_wipes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["--data-dir", str(precious), "demo"])
    assert result.exit_code != 0
    assert "not made by the demo" in result.output
    assert (precious / "keep.txt").read_text() == "mine"
