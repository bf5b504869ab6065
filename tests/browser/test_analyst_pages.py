"""The analyst's side in Chromium: sign in, search a sample, open it, sign out; a sample
whose strings attack the page stays text (no script runs, no element is injected)."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ANALYST, PASSWORD, Site
from tests.portal.hostile import HOSTILE_DOMAIN, SCRIPT

pytestmark = pytest.mark.e2e


def _sign_in(page: object, site: Site) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(site.base + "/analyst/?lang=en")
    expect(page).to_have_url(re.compile(r"/login\?"))  # anonymous: sent to sign in
    page.get_by_label("User name").fill(ANALYST)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/analyst/"))


def test_sign_in_search_open_a_sample_and_sign_out(page: object, site: Site) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    _sign_in(page, site)
    page.goto(site.base + "/analyst/samples?lang=en")
    page.locator("#q").fill(site.hostile[:16])
    page.locator("form.search button[type=submit]").click()
    link = page.locator(f"a[href*='/analyst/samples/{site.hostile}']").first
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(re.compile(site.hostile))
    expect(page.get_by_text(site.hostile).first).to_be_visible()
    page.get_by_role("button", name=re.compile("Sign out")).click()
    page.goto(site.base + "/analyst/?lang=en")
    expect(page).to_have_url(re.compile(r"/login\?"))


def test_a_hostile_sample_renders_as_text(page: object, site: Site) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    _sign_in(page, site)
    for path in (f"/analyst/samples/{site.hostile}", "/analyst/samples",
                 "/analyst/families", "/analyst/events"):
        page.goto(site.base + path + "?lang=en")
        # what the attacker wrote is on the page as text ...
        if path.endswith(site.hostile):
            expect(page.get_by_text(SCRIPT).first).to_be_visible()
            expect(page.get_by_text(HOSTILE_DOMAIN).first).to_be_visible()
        # ... and nothing of it became markup: no script, no image with a handler
        assert page.evaluate("document.scripts.length") == 0
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert page.evaluate("""[...document.querySelectorAll('*')].filter(e =>
            [...e.attributes].some(a => a.name.startsWith('on'))).length""") == 0
        assert page.evaluate("typeof window.alerted") == "undefined"
    # the page fixture fails the test on any dialog (an alert() that ran) or script error
