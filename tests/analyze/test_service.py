"""Analysis as the center runs it: reports stored per version, children, limits, the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cleancenter.analyze.service import REPORT, AnalysisService, report_for
from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.collect.ingest import Ingestor
from cleancenter.demo import eicar, windows_launchers
from cleancenter.store.blobs import digest_bytes
from cleancenter.store.catalog import RELATION, SAMPLE


def ingest(center: Center, paths: list[Path]) -> None:
    report = Ingestor(center.catalog, center.blobs).ingest_paths(paths)
    assert report.error_count == 0


def service(center: Center, **kw: object) -> AnalysisService:
    return AnalysisService(center.catalog, center.blobs, center.settings.work_dir / "unpack",
                           **kw)  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("upx") is None, reason="upx is not installed")
def test_reports_children_and_reruns(center: Center, tmp_path: Path) -> None:
    gzip = Path(shutil.which("gzip") or "/usr/bin/gzip").resolve()
    packed = tmp_path / "gzip.upx"
    subprocess.run(["upx", "-q", "-q", "-o", str(packed), str(gzip)], check=True)
    (tmp_path / "eicar.com").write_bytes(eicar())
    ingest(center, [packed, tmp_path / "eicar.com"])

    svc = service(center, workers=1)
    todo = svc.pending()
    assert len(todo) == 2
    summary = svc.run(todo)
    assert (summary.analyzed, summary.failed, summary.children) == (3, 0, 1)

    packed_sha = digest_bytes(packed.read_bytes()).sha256
    plain_sha = digest_bytes(gzip.read_bytes()).sha256
    report = report_for(center.catalog, packed_sha)
    assert report is not None and report.packer.name == "UPX"
    assert report.unpacked == [plain_sha]
    with center.catalog.engine.connect() as conn:
        rel = conn.execute(select(RELATION.c.kind).where(
            RELATION.c.parent_sha256 == packed_sha, RELATION.c.child_sha256 == plain_sha)
        ).scalar_one()
        assert rel == "unpacked"
        states = dict(conn.execute(select(SAMPLE.c.sha256, SAMPLE.c.analysis_state)).all())
        assert set(states.values()) == {"done"}
        tlsh = conn.execute(select(SAMPLE.c.tlsh).where(SAMPLE.c.sha256 == plain_sha)
                            ).scalar_one()
        assert tlsh and tlsh.startswith("T1")
    child = report_for(center.catalog, plain_sha)
    assert child is not None and child.elf is not None and not child.packer.packed

    assert svc.pending() == []
    again = svc.run([packed_sha])
    assert (again.analyzed, again.skipped) == (0, 1)
    with center.catalog.engine.connect() as conn:
        assert len(conn.execute(select(REPORT.c.id)).all()) == 3


def test_a_sample_over_its_time_limit_is_an_error_and_the_rest_go_on(
        sqlite_center: Center, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (1 << 18))  # 64 MiB: hashing alone takes a while
    small = tmp_path / "small.txt"
    small.write_text("hello\n")
    ingest(sqlite_center, [big, small])
    summary = service(sqlite_center, workers=1, timeout=0.05).run(
        service(sqlite_center).pending())
    assert summary.failed == 1 and summary.analyzed == 1
    assert "longer than" in summary.errors[0]["message"]
    with sqlite_center.catalog.engine.connect() as conn:
        state = conn.execute(select(SAMPLE.c.analysis_state).where(
            SAMPLE.c.sha256 == digest_bytes(big.read_bytes()).sha256)).scalar_one()
    assert state == "error"


def test_process_pool_analyzes_many(sqlite_center: Center) -> None:
    launchers = windows_launchers()
    if len(launchers) < 4:
        pytest.skip("needs the pip/setuptools launchers")
    ingest(sqlite_center, launchers)
    svc = service(sqlite_center, workers=2)
    todo = svc.pending()
    summary = svc.run(todo)
    assert summary.analyzed == len(todo) and summary.failed == 0
    assert svc.pending() == []


def test_cli_rules_analyze_and_show(tmp_path: Path, corpus: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "data"

    def cc(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--data-dir", str(data), *args])
        return result.exit_code, result.stdout

    code, out = cc("rules", "add", str(corpus / "yara" / "elastic"), "--name", "elastic",
                   "--json")
    assert code == 0, out
    assert json.loads(out)["rules"] > 2000
    (tmp_path / "eicar.com").write_bytes(eicar())
    launcher = windows_launchers()[:1]
    assert cc("ingest", "--no-analyze", str(tmp_path / "eicar.com"), *map(str, launcher))[0] == 0
    code, out = cc("analyze", "--all", "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["failed"] == 0 and summary["analyzed"] == 1 + len(launcher)
    sha = digest_bytes(eicar()).sha256
    code, out = cc("samples", "show", sha, "--json")
    report = json.loads(out)["report"]
    assert report["verdict"]["value"] == "malicious"
    rules = [m["rule"] for m in report["yara"]]
    assert any("EICAR" in r for r in rules)
    code, out = cc("samples", "show", sha)
    assert "malicious" in out and "EICAR" in out
    if launcher:
        code, out = cc("samples", "show", digest_bytes(launcher[0].read_bytes()).sha256,
                       "--json")
        assert json.loads(out)["report"]["verdict"]["value"] != "malicious"
    code, out = cc("analyze", "--all", "--json")
    assert json.loads(out)["analyzed"] == 0


def test_mark_wins_and_similar_lends_the_family(center: Center, tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    base = bytes(rng.randrange(256) for _ in range(20_000))
    variant = bytearray(base)
    for i in range(0, len(variant), 997):
        variant[i] ^= 0x55  # a close relative: a few bytes changed
    (tmp_path / "a.bin").write_bytes(base)
    (tmp_path / "b.bin").write_bytes(bytes(variant))
    ingest(center, [tmp_path / "a.bin"])
    svc = service(center, workers=1)
    svc.run(svc.pending())
    a = digest_bytes(base).sha256
    runner = CliRunner()
    url = center.settings.database_url
    data = str(center.settings.data_dir)

    def cc(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--data-dir", data, "--database-url", url, *args])
        return result.exit_code, result.stdout

    code, out = cc("samples", "mark", a[:12], "--verdict", "malicious", "--family", "gafgyt",
                   "--note", "seen in the wild", "--author", "tester", "--json")
    assert code == 0, out
    assert json.loads(out)["family"] == "Gafgyt"  # through the alias table
    assert cc("samples", "mark", a, "--verdict", "evil")[0] == 2

    ingest(center, [tmp_path / "b.bin"])
    svc.run(svc.pending())
    b = digest_bytes(bytes(variant)).sha256
    report = report_for(center.catalog, b)
    assert report is not None and report.family is not None
    assert report.family.source == "similarity" and report.family.name == "Gafgyt"
    assert report.family.distance is not None and report.family.distance <= 70

    code, out = cc("samples", "similar", b, "--json")
    near = json.loads(out)
    assert near[0]["sha256"] == a and near[0]["family"] == "Gafgyt"
    code, out = cc("samples", "show", a, "--json")
    shown = json.loads(out)
    assert shown["verdict"] == "malicious" and shown["family"] == "Gafgyt"
    assert shown["analyst_label"]["author"] == "tester"
    assert shown["report"]["verdict"]["value"] == "unknown"  # the automatic one, kept
