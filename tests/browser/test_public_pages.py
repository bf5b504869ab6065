"""The public pages in Chromium: home, the language switch, a mail's link and its code."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Site

pytestmark = pytest.mark.e2e


def _visited(page: object, site: Site) -> int:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    data = page.request.get(site.base + "/api/v1/funnel").json()
    return int(data["funnel"][-1]["visited"])


def test_home_page_in_both_languages(page: object, site: Site) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(site.base + "/?lang=ja")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#funnel table")).to_be_visible()
    assert page.locator("link[rel=stylesheet]").get_attribute("href") == "/static/portal.css"


def test_a_landing_visit_moves_the_count(page: object, site: Site) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    before = _visited(page, site)
    page.goto(f"{site.base}/n/{site.token}?lang=en")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    download = page.get_by_role("link", name=re.compile("cleaner", re.I)).first
    assert site.token in (download.get_attribute("href") or "")
    assert _visited(page, site) == before + 1
    page.goto(site.base + "/?lang=en")
    total = page.locator("#funnel tr.total")
    expect(total).to_contain_text("1")


def test_typing_the_code_from_the_mail(page: object, site: Site) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(site.base + "/?lang=en")
    page.get_by_label("Code").fill(site.token)
    page.get_by_role("button", name="Check").click()
    expect(page).to_have_url(re.compile(rf"/n/{site.token}\?lang=en$"))
    page.goto(site.base + "/?lang=en")
    page.get_by_label("Code").fill("<script>alert(1)</script>")
    page.get_by_label("Code").evaluate("e => e.removeAttribute('pattern')")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("alert")).to_contain_text("not a code of ours")


def test_the_home_page_charts_are_drawn(page: object, site: Site) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(site.base + "/?lang=en")
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    drawn = 0
    for index in range(4):
        chart = charts.nth(index)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
        bars = chart.locator("rect.bar")
        for bar in range(bars.count()):
            bar_box = bars.nth(bar).bounding_box()
            assert bar_box is not None
            drawn += bar_box["width"] > 0 and bar_box["height"] > 0
        # the bars carry their colour from the local style sheet, not inline styles
        if bars.count():
            fill = bars.first.evaluate("e => getComputedStyle(e).fill")
            assert fill not in ("", "none", "rgb(0, 0, 0)")
    assert drawn >= 2  # infections per day and the funnel have data in this center
