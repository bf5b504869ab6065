"""``cleancenter serve`` as a real server, and the real cleaner reporting to it."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cleancenter.center import Center
from cleancenter.config import load_settings
from tests.cleaner.bundles import make_bundle, new_key
from tests.e2e.portal_server import BIN, get_json, served_portal
from tests.portal.conftest import TOKEN, notify_one


def notified_center(data: Path, corpus: Path) -> Path:
    """A center in ``data`` that notified one ISP about one real incident (its token:
    TOKEN); closed again, for a server process to open."""
    center = Center(load_settings(overrides={"data_dir": str(data)}, environ={}))
    try:
        notify_one(center, corpus)
    finally:
        center.close()
    return data


@pytest.mark.e2e
def test_the_cleaner_reports_to_a_served_portal(tmp_path: Path, corpus: Path) -> None:
    data = notified_center(tmp_path / "data", corpus)

    with served_portal(data, tmp_path / "server.log") as base:
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
            env={**{k: v for k, v in os.environ.items() if not k.startswith("CLEANCENTER_")},
                 "CLEANCENTER_CLEANER_KEY": public.text()}, capture_output=True,
            text=True, timeout=300)
        assert cleaner.returncode == 0, cleaner.stderr
        assert "summary not sent" not in cleaner.stderr

        status, figures = get_json(base + "/api/v1/funnel")
        assert status == 200
        total = figures["funnel"][-1]
        assert (total["notified"], total["visited"], total["cleaned"]) == (1, 1, 1)
    text = (tmp_path / "server.log").read_text()
    assert "POST /api/v1/cleaner-reports" in text and "GET /n/[token]?lang=en" in text
    assert TOKEN not in text  # the access log keeps no token


@pytest.mark.e2e
def test_several_server_processes_share_the_settings_and_the_log_rules(
        tmp_path: Path, corpus: Path) -> None:
    """``serve --workers 2``: the data dir given on the command line reaches both
    processes, both answer, and neither logs a token."""
    import psutil

    data = notified_center(tmp_path / "data", corpus)
    pids: list[int] = []
    with served_portal(data, tmp_path / "server.log", "--workers", "2", pids=pids) as base:
        children = psutil.Process(pids[0]).children(recursive=True)
        assert len([c for c in children if "python" in c.name().lower()]) >= 2, children
        for _ in range(20):
            with urllib.request.urlopen(f"{base}/n/{TOKEN}?lang=en", timeout=5) as page:
                assert page.status == 200 and "Download the cleaner" in page.read().decode()
        status, figures = get_json(base + "/api/v1/funnel")
        assert status == 200 and figures["funnel"][-1]["visited"] == 1
    text = (tmp_path / "server.log").read_text()
    assert text.count("GET /n/[token]?lang=en") == 20 and TOKEN not in text
    assert "2 processes" in text
