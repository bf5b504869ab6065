"""The cleaner as users get it: the zipapp run by the system's Python (not this venv), the
wheel installed into a fresh venv, and what the wheel holds and leaves out."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.publish.sums import read_sums
from cleancenter.publish.wheel import build_wheel, cleaner_closure
from tests.cleaner.bundles import make_bundle, new_key
from tests.publish.conftest import SYSTEM_PYTHON, Build, system_python_311

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CENTER_ONLY = ("store", "analyze", "notify", "portal", "collect", "publish", "jobs")


def run_zipapp(build: Build, cleaner_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The zipapp under ``/usr/bin/python3 -I``, with a bare environment: no venv, no
    CLEANCENTER_CLEANER_KEY, a temporary HOME."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(build.shiv_home), "LANG": "C.UTF-8",
           "CLEANCENTER_CLEANER_HOME": str(cleaner_home)}
    return subprocess.run([str(SYSTEM_PYTHON), "-I", str(build.zipapp.path), *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _rows(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def system_python() -> None:
    problem = system_python_311()
    if problem:
        pytest.skip(problem)


@pytest.mark.usefixtures("system_python")
def test_zipapp_runs_on_the_system_python_and_trusts_the_built_in_key(
        build: Build, tmp_path: Path) -> None:
    home = tmp_path / "cleaner-home"
    assert build.zipapp.path.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(build.zipapp.path, os.X_OK)

    helped = run_zipapp(build, home, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "scan" in helped.stdout and "update" in helped.stdout

    status = run_zipapp(build, home, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["key_fingerprint"] == build.public.fingerprint
    assert not (home / "pinned.pub").exists()  # the packaged key, not a pin

    bundle = make_bundle(tmp_path / "definitions-5.ccdef", build.key, version=5,
                         hashes={hashlib.sha256(EICAR).hexdigest(): "EICAR-Test"})
    updated = run_zipapp(build, home, "update", str(bundle), "--json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["after"] == 5

    tree = tmp_path / "tree"
    (tree / "docs").mkdir(parents=True)
    (tree / "docs" / "readme.txt").write_text("nothing to see")
    (tree / "invoice.pdf.com").write_bytes(EICAR)
    scanned = run_zipapp(build, home, "scan", str(tree), "--checks", "files", "--json")
    assert scanned.returncode == 1, scanned.stderr
    header, *findings = _rows(scanned.stdout)
    assert header["definitions_version"] == 5 and header["counts"]["malicious"] == 1
    assert [f["where"] for f in findings] == [str(tree / "invoice.pdf.com")]
    assert findings[0]["evidence"][0]["detail"] == "EICAR-Test"
    assert (tree / "invoice.pdf.com").exists()  # only looked

    other_key, _ = new_key()
    foreign = make_bundle(tmp_path / "foreign.ccdef", other_key, version=9)
    refused = run_zipapp(build, home, "update", str(foreign))
    assert refused.returncode == 2 and "signature" in (refused.stdout + refused.stderr)


def test_wheel_installs_into_a_fresh_venv_from_the_wheelhouse(build: Build,
                                                                tmp_path: Path) -> None:
    problem = system_python_311()
    python = str(SYSTEM_PYTHON) if problem is None else sys.executable
    venv = tmp_path / "venv"
    # nothing of this test run's own paths may leak into the fresh venv's imports
    bare = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120, env=bare)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", str(build.zipapp.wheelhouse), str(build.wheel.path)],
        capture_output=True, text=True, timeout=600, check=False, env=bare)
    assert installed.returncode == 0, installed.stderr
    helped = subprocess.run([str(venv / "bin" / "cleancenter-cleaner"), "--help"],
                            capture_output=True, text=True, timeout=120, check=False, env=bare)
    assert helped.returncode == 0 and "scan" in helped.stdout, helped.stderr
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.util as u\n"
         f"print(','.join(m for m in {CENTER_ONLY!r} "
         "if u.find_spec('cleancenter.' + m)))\n"
         "import sqlalchemy"],
        capture_output=True, text=True, timeout=60, check=False, env=bare)
    assert probe.stdout.strip() == ""  # no center-only package installed
    assert "No module named 'sqlalchemy'" in probe.stderr


def test_wheel_holds_the_cleaner_only(build: Build) -> None:
    with zipfile.ZipFile(build.wheel.path) as zf:
        names = zf.namelist()
        files = {name: zf.read(name) for name in names}
    packages = {n.split("/")[1] for n in names if n.startswith("cleancenter/") and
                n.count("/") > 1}
    assert packages == {"cleaner", "definitions"}
    assert not [n for n in names if n.startswith(tuple(f"cleancenter/{m}" for m in CENTER_ONLY))]
    assert {n for n in names if n.startswith("cleancenter/definitions/")} == {
        f"cleancenter/definitions/{m}.py" for m in ("__init__", "behaviour", "bundle", "keys")}
    assert "cleancenter/cleaner/cli.py" in names and "cleancenter/atomicfile.py" in names
    assert files["cleancenter/cleaner/pinned.pub"].decode().strip() == build.public.text()

    info = "cleancenter_cleaner-0.1.0.dist-info"
    metadata = files[f"{info}/METADATA"].decode()
    assert "Name: cleancenter-cleaner" in metadata
    requires = sorted(line.split(": ", 1)[1] for line in metadata.splitlines()
                      if line.startswith("Requires-Dist: "))
    assert [r.split(">")[0].split(";")[0] for r in requires] == [
        "construct", "cryptography", "defusedxml", "psutil", "regipy", "rich", "typer",
        "yara-x"]
    assert 'psutil>=5.9; sys_platform == "win32"' in requires
    assert b"cleancenter-cleaner = cleancenter.cleaner.cli:main" in \
        files[f"{info}/entry_points.txt"]
    # RECORD names every other file with its hash and size
    for line in files[f"{info}/RECORD"].decode().splitlines():
        name, digest, size = line.rsplit(",", 2)
        if name.endswith("RECORD"):
            continue
        data = files[name]
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        assert digest == "sha256=" + expected.decode() and int(size) == len(data)
    assert len([n for n in names if not n.endswith("RECORD")]) == \
        len(files[f"{info}/RECORD"].decode().splitlines()) - 1


def test_closure_covers_everything_the_cleaner_loads() -> None:
    closure = set(cleaner_closure().modules)
    code = ("import sys, pkgutil, importlib, cleancenter.cleaner as c\n"
            "for m in pkgutil.walk_packages(c.__path__, 'cleancenter.cleaner.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "print('\\n'.join(m for m in sys.modules if m.startswith('cleancenter')))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert loaded <= closure, loaded - closure


def test_sums_match_the_files(build: Build) -> None:
    sums = read_sums(build.downloads / "SHA256SUMS")
    assert set(sums) == {build.wheel.name, build.zipapp.name}
    for name, sha in sums.items():
        assert hashlib.sha256((build.downloads / name).read_bytes()).hexdigest() == sha
    if shutil.which("sha256sum"):
        checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=build.downloads,
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_wheel_is_reproducible(build: Build, tmp_path: Path) -> None:
    again = build_wheel(tmp_path, build.public)
    assert again.sha256 == build.wheel.sha256
    plain = build_wheel(tmp_path / "nokey", None)
    with zipfile.ZipFile(plain.path) as zf:
        assert "cleancenter/cleaner/pinned.pub" not in zf.namelist()


def test_publish_cleaner_command_uses_the_centers_key(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "data"
    assert runner.invoke(app, ["--data-dir", str(data), "keys", "init"]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["--data-dir", str(data), "keys", "show",
                                           "--json"]).stdout)
    result = runner.invoke(app, ["--data-dir", str(data), "publish", "cleaner",
                                 "--no-zipapp", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["key_fingerprint"] == shown["fingerprint"] and summary["zipapp"] is None
    wheel = data / "downloads" / summary["wheel"]["name"]
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == summary["wheel"]["sha256"]
    assert read_sums(data / "downloads" / "SHA256SUMS") == {wheel.name: summary["wheel"]["sha256"]}
    missing = runner.invoke(app, ["--data-dir", str(data), "publish", "cleaner", "--no-zipapp",
                                  "--key", str(tmp_path / "nope.pub")])
    assert missing.exit_code == 2
