"""``cleancenter serve`` as a real server, and the real cleaner reporting to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cleancenter.center import Center
from cleancenter.config import load_settings
from tests.cleaner.bundles import make_bundle, new_key
from tests.portal.conftest import TOKEN, notify_one

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


@pytest.mark.e2e
def test_the_cleaner_reports_to_a_served_portal(tmp_path: Path, corpus: Path) -> None:
    data = tmp_path / "data"
    center = Center(load_settings(overrides={"data_dir": str(data)}, environ={}))
    try:
        notify_one(center, corpus)
    finally:
        center.close()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANCENTER_")}
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "cleancenter"), "--data-dir", str(data), "serve", "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env,
        cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if _get(base + "/healthz") == (200, {"status": "ok"}):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the portal did not answer /healthz"
            time.sleep(0.2)

        with urllib.request.urlopen(f"{base}/n/{TOKEN}?lang=en", timeout=5) as page:
            assert page.status == 200 and "Download the cleaner" in page.read().decode()
            assert page.headers["Referrer-Policy"] == "no-referrer"
            assert page.headers["Server"] is None  # uvicorn does not announce itself

        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "notes.txt").write_text("a harmless file\n")
        key, public = new_key()
        bundle = make_bundle(tmp_path / "defs.ccdef", key, version=1, hashes={})
        cleaner = subprocess.run(
            [str(BIN / "cleancenter-cleaner"), "scan", str(tree), "-d", str(bundle),
             "--checks", "files", "--token", TOKEN, "--center", base,
             "--home", str(tmp_path / "cleaner-home")],
            env={**env, "CLEANCENTER_CLEANER_KEY": public.text()}, capture_output=True,
            text=True, timeout=300)
        assert cleaner.returncode == 0, cleaner.stderr
        assert "summary not sent" not in cleaner.stderr

        status, figures = _get(base + "/api/v1/funnel")
        assert status == 200
        total = figures["funnel"][-1]
        assert (total["notified"], total["visited"], total["cleaned"]) == (1, 1, 1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    text = (tmp_path / "server.log").read_text()
    assert "POST /api/v1/cleaner-reports" in text and "GET /n/[token]?lang=en" in text
    assert TOKEN not in text  # the access log keeps no token
