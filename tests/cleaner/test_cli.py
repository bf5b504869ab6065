"""``cleancenter-cleaner`` as a user runs it: exit codes, reports, keys, hives, summaries."""

from __future__ import annotations

import hashlib
import http.server
import json
import lzma
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cleaner.bundles import make_bundle, new_key

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


def run(*args: str, home: Path, key: str | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLEANCENTER_CLEANER_KEY"}
    if key:
        env["CLEANCENTER_CLEANER_KEY"] = key
    return subprocess.run([sys.executable, "-m", "cleancenter.cleaner", *args,
                           "--home", str(home)], env=env, capture_output=True, text=True,
                          timeout=300, input=stdin)


def rows(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, str]:
    """A tree with EICAR, a bundle knowing its hash, and the pinned key text."""
    tree = tmp_path / "tree"
    (tree / "docs").mkdir(parents=True)
    (tree / "docs" / "readme.txt").write_text("hello")
    (tree / "invoice.pdf.com").write_bytes(EICAR)
    key, pub = new_key()
    bundle = make_bundle(tmp_path / "defs.ccdef", key, version=3,
                         hashes={hashlib.sha256(EICAR).hexdigest(): "EICAR-Test"})
    return tree, bundle, pub.text()


def test_exit_codes_and_json_report(tmp_path: Path, setup: tuple[Path, Path, str]) -> None:
    tree, bundle, key = setup
    home = tmp_path / "home"
    found = run("scan", str(tree), "-d", str(bundle), "--checks", "files", "--json",
                "--report", str(tmp_path / "out.jsonl"), home=home, key=key)
    assert found.returncode == 1, found.stderr
    header, *findings = rows(found.stdout)
    assert header["record"] == "scan" and header["definitions_version"] == 3
    assert header["counts"]["malicious"] == 1 and header["exit_code"] == 1
    assert [f["where"] for f in findings] == [str(tree / "invoice.pdf.com")]
    assert findings[0]["evidence"][0]["detail"] == "EICAR-Test"
    assert rows((tmp_path / "out.jsonl").read_text()) == rows(found.stdout)
    assert list((home / "reports").glob("scan-*.jsonl"))  # a copy stays with the cleaner
    clean = run("scan", str(tree / "docs"), "-d", str(bundle), "--checks", "files",
                home=home, key=key)
    assert clean.returncode == 0, clean.stderr
    assert "Nothing malicious or suspicious found" in clean.stdout


@pytest.mark.parametrize("problem", ["no key", "wrong key", "unknown check", "no definitions",
                                     "bad restore id"])
def test_errors_exit_2_with_a_reason(tmp_path: Path, setup: tuple[Path, Path, str],
                                     problem: str) -> None:
    tree, bundle, key = setup
    home = tmp_path / "home"
    _, other = new_key()
    args: dict[str, tuple[list[str], str | None, str]] = {
        "no key": (["scan", str(tree), "-d", str(bundle)], None, "no pinned public key"),
        "wrong key": (["scan", str(tree), "-d", str(bundle)], other.text(),
                      "signature does not match"),
        "unknown check": (["scan", str(tree), "--checks", "files,telepathy"], key,
                          "unknown check"),
        "no definitions": (["scan", str(tree)], key, "no definitions installed"),
        "bad restore id": (["restore", "../../etc/passwd"], key, "not a quarantine id"),
    }
    argv, use_key, message = args[problem]
    result = run(*argv, home=home, key=use_key)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_pin_update_status_clean_and_restore(tmp_path: Path,
                                             setup: tuple[Path, Path, str]) -> None:
    tree, bundle, key = setup
    home = tmp_path / "home"
    (tmp_path / "center.pub").write_text(key + "\n")
    pinned = run("pin", str(tmp_path / "center.pub"), home=home)
    assert pinned.returncode == 0 and "pinned" in pinned.stdout
    updated = run("update", str(bundle), "--json", home=home)
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["after"] == 3
    again = run("update", "--json", home=home)  # the remembered source
    assert json.loads(again.stdout)["changed"] is False
    status = json.loads(run("status", "--json", home=home).stdout)
    assert status["definitions_version"] == 3 and status["quarantined"] == 0
    cleaned = run("scan", str(tree), "--checks", "files", "--clean", "--json", home=home)
    assert cleaned.returncode == 1
    finding = rows(cleaned.stdout)[1]
    assert finding["action"] == "quarantined" and not (tree / "invoice.pdf.com").exists()
    listed = json.loads(run("quarantine", "list", "--json", home=home).stdout)
    assert [i["id"] for i in listed] == [finding["action_id"]]
    assert run("restore", finding["action_id"], home=home).returncode == 0
    assert (tree / "invoice.pdf.com").read_bytes() == EICAR


@pytest.fixture
def collector() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_token_sends_an_anonymous_summary(tmp_path: Path, setup: tuple[Path, Path, str],
                                          collector: tuple[str, list[dict[str, Any]]]) -> None:
    tree, bundle, key = setup
    url, received = collector
    result = run("scan", str(tree), "-d", str(bundle), "--checks", "files", "--token",
                 "tok-123", "--center", url, "--json", home=tmp_path / "home", key=key)
    assert result.returncode == 1
    assert len(received) == 1 and received[0]["path"] == "/api/v1/cleaner-reports"
    body = received[0]["body"]
    assert body["token"] == "tok-123" and body["counts"]["malicious"] == 1
    assert body["kinds"] == {"file:hash-match": 1} and body["families"] == ["EICAR-Test"]
    assert str(tree) not in json.dumps(body) and "invoice" not in json.dumps(body)


def test_a_center_that_does_not_answer_does_not_change_the_result(
        tmp_path: Path, setup: tuple[Path, Path, str]) -> None:
    tree, bundle, key = setup
    closed = "http://127.0.0.1:9"  # discard port on loopback: nothing listens
    result = run("scan", str(tree), "-d", str(bundle), "--checks", "files", "--token", "t",
                 "--center", closed, home=tmp_path / "home", key=key)
    assert result.returncode == 1 and "summary not sent" in result.stderr


def _hive(corpus: Path, name: str, folder: Path) -> Path:
    target = folder / name
    target.write_bytes(lzma.decompress((corpus / "hives" / f"{name}.xz").read_bytes()))
    return target


def test_offline_hives_list_the_run_entry_and_survive_a_corrupted_one(
        tmp_path: Path, corpus: Path) -> None:
    ntuser = _hive(corpus, "NTUSER.DAT", tmp_path)
    broken = _hive(corpus, "corrupted_system_hive", tmp_path)
    result = run("persistence", "--hive", str(broken), "--hive", str(ntuser), "--json",
                 home=tmp_path / "home")
    assert result.returncode in (0, 1), result.stderr
    header, *findings = rows(result.stdout)
    run_entries = [f for f in findings if f["target"]["entry"]["location"] == "registry-run"]
    assert [f["target"]["entry"]["command"] for f in run_entries] == [
        "%ProgramFiles%\\Windows Sidebar\\Sidebar.exe /autoRun"]
    assert run_entries[0]["kind"] == "autostart"
    assert any(f["target"]["entry"]["location"] == "service" for f in findings)
    errors = [e["error"] for e in header["errors"]]
    assert any(str(broken) in e and "damaged" in e for e in errors)


def test_windows_process_listing_snapshot(tmp_path: Path) -> None:
    listing = {"system": "windows", "processes": [
        {"pid": 4, "ppid": 0, "name": "System"},
        {"pid": 300, "ppid": 4, "name": "smss.exe", "exe": "C:\\Windows\\System32\\smss.exe"},
        {"pid": 500, "ppid": 300, "name": "wininit.exe",
         "exe": "C:\\Windows\\System32\\wininit.exe"},
        {"pid": 600, "ppid": 500, "name": "services.exe",
         "exe": "C:\\Windows\\System32\\services.exe"},
        {"pid": 700, "ppid": 600, "name": "svchost.exe",
         "exe": "C:\\Windows\\System32\\svchost.exe"},
        {"pid": 900, "ppid": 800, "name": "explorer.exe", "exe": "C:\\Windows\\explorer.exe"},
        {"pid": 1234, "ppid": 900, "name": "spoolsvc.exe",
         "exe": "C:\\Users\\amy\\AppData\\Local\\Temp\\spoolsvc.exe"},
    ]}
    path = tmp_path / "listing.json"
    path.write_text(json.dumps(listing))
    result = run("processes", "--snapshot", str(path), "--json", home=tmp_path / "home")
    assert result.returncode == 1, result.stderr
    _, *findings = rows(result.stdout)
    assert {f["target"]["pid"] for f in findings} == {1234}
    assert "spoolsv.exe" in json.dumps(findings[0])
