"""A real browser (Debian's Chromium, driven by Playwright) against a served portal.

One portal process and one browser serve every test of this folder. Screenshots go to
``$CLEANCENTER_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the working folder).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cleancenter.center import Center
from cleancenter.config import load_settings
from cleancenter.portal.auth.store import add_user
from tests.e2e.portal_server import served_portal
from tests.portal.conftest import TOKEN, notify_one
from tests.portal.hostile import add_hostile_sample

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


ANALYST = "ana"
PASSWORD = "browser test password"


@dataclass
class Site:
    base: str
    data_dir: Path
    token: str
    hostile: str  # sha256 of a sample whose every text is an attack on the page


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Iterator[Site]:
    """A center with real Cowrie events and one notified token, served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("browser-site")
    data = root / "data"
    center = Center(load_settings(overrides={"data_dir": str(data)}, environ={}))
    try:
        notify_one(center, corpus)
        hostile = add_hostile_sample(center)
        with center.catalog.transaction() as conn:
            add_user(conn, ANALYST, PASSWORD, ["analyst"])
    finally:
        center.close()
    with served_portal(data, root / "server.log", "--funnel-cache", "0") as base:
        yield Site(base, data, TOKEN, hostile)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("CLEANCENTER_TEST_ARTIFACTS", "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (./quickstart test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[object]:
    """A fresh browser context per test; a screenshot of where it ended is kept."""
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(locale="en-US", java_script_enabled=True)
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    try:
        yield tab
        assert errors == [], errors  # no script error, and never an alert() from data
    finally:
        tab.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
        context.close()
