"""The home page's figures equal counts made independently from the raw rows, on SQLite and
PostgreSQL, with real Cowrie events; the charts are safe SVG; the pages in ja and en."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cleancenter.analyze.service import set_label
from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor
from cleancenter.notify.funnel import FUNNEL_EVENT, NOTICE, funnel, record_step
from cleancenter.notify.infections import DEFAULT_KINDS, update_infections
from cleancenter.portal.app import create_app
from cleancenter.portal.charts import Texts, bar_chart, day_chart, nice_max
from cleancenter.portal.figures import INFECTION, Figures, FiguresCache, compute_figures
from cleancenter.store.catalog import EVENT, SAMPLE
from tests.portal.conftest import TOKEN, notify_one

HOSTILE = "<script>alert(1)</script>\x1b[31mred"
TEXTS = Texts(title="T <b>", desc="D", x_label="X", y_label="Y", table_summary="S",
              label_header="L", value_header="V")


def _rows(center: Center, table: Any) -> list[Any]:
    with center.catalog.engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def _figures(center: Center, now: datetime | None = None) -> Figures:
    with center.catalog.engine.connect() as conn:
        return compute_figures(conn, funnel(conn)[-1], now=now)


def _independent_per_day(center: Center, start: date, end: date) -> dict[date, int]:
    hosts: dict[date, set[str]] = defaultdict(set)
    for e in _rows(center, EVENT):
        if e.kind in DEFAULT_KINDS and e.src_key is not None and \
                start <= e.time.date() <= end:
            hosts[e.time.date()].add(e.src_key)
    return {day: len(keys) for day, keys in hosts.items()}


def test_figures_equal_independent_counts(center: Center, corpus: Path,
                                          tmp_path: Path) -> None:
    notify_one(center, corpus)
    second = sorted((corpus / "honeypot" / "cowrie").glob("cowrie.json*"))[1]
    Ingestor(center.catalog, center.blobs).ingest_cowrie([second])
    update_infections(center.catalog)
    with center.catalog.transaction() as conn:
        record_step(conn, TOKEN, "visit")
        record_step(conn, TOKEN, "download")
        record_step(conn, TOKEN, "download")  # the same notice twice: counted once

    # phase 1: only the 2018 events: the charts show the data's own last 30 days
    figures = _figures(center)
    events = _rows(center, EVENT)
    last = max(e.time for e in events if e.kind in DEFAULT_KINDS).date()
    assert figures.window_end == last and figures.window_start == last - timedelta(days=29)
    assert len(figures.infections_per_day) == 30
    expected = _independent_per_day(center, figures.window_start, figures.window_end)
    assert {d: n for d, n in figures.infections_per_day if n} == expected
    assert sum(expected.values()) > 0
    assert figures.infected_hosts == len(_rows(center, INFECTION)) > 0
    assert figures.samples_unique == figures.samples_collected == 0

    # phase 2: samples (files, families, a hostile family name) and captures of them
    blobs = []
    for i in range(5):
        path = tmp_path / f"sample-{i}.bin"
        path.write_bytes(f"harmless test sample {i}\n".encode() * (i + 1))
        blobs.append(path)
    Ingestor(center.catalog, center.blobs).ingest_paths(blobs)
    samples = _rows(center, SAMPLE)
    shas = sorted(s.sha256 for s in samples)
    for sha, family in zip(shas, ["Mirai", "Mirai", "Mirai", HOSTILE, None], strict=True):
        if family:
            set_label(center.catalog, sha, verdict="malicious", family=family, note=None,
                      author="test")
    when = datetime(2018, 5, 7, 12, tzinfo=UTC)
    with center.catalog.transaction() as conn:
        for n, sha in enumerate([shas[0], shas[0], shas[1], "f" * 64]):
            conn.execute(EVENT.insert().values(
                uid=f"test-capture-{n}", time=when, source="test", sensor="t", kind="download",
                source_event="test.download", sample_sha256=sha, raw="{}"))
    now = datetime.now(UTC)
    figures = _figures(center, now)

    samples = _rows(center, SAMPLE)
    events = _rows(center, EVENT)
    known = {s.sha256 for s in samples}
    with_sample = [e for e in events if e.sample_sha256 in known]
    assert figures.samples_collected == len(with_sample) + len(
        known - {e.sample_sha256 for e in events}) == 3 + 3
    assert figures.samples_unique == len(samples) == 5
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    assert figures.samples_new_today == sum(s.first_seen >= midnight for s in samples) == 5
    assert figures.families == len({s.family for s in samples if s.family}) == 2
    assert figures.top_families == [("Mirai", 3), (HOSTILE, 1)]
    assert figures.window_end == now.date()  # the samples are new: the window is current
    assert dict(figures.new_samples_per_day)[now.date()] == 5
    notices = _rows(center, NOTICE)
    steps = _rows(center, FUNNEL_EVENT)
    assert figures.funnel.notified == len(notices) == 1
    assert figures.funnel.downloaded == len({s.token for s in steps if s.kind == "download"})
    assert figures.funnel.visited == 1
    json.dumps(figures.to_dict())  # serialisable

    # the page shows them, in both languages, with the hostile name escaped
    with TestClient(create_app(center, funnel_ttl=0)) as client:
        for lang, words in [("en", "Unique samples"), ("ja", "ユニークな検体")]:
            page = client.get(f"/?lang={lang}")
            assert page.status_code == 200 and words in page.text
            row = re.search(r'<tr id="fig_samples_unique">.*?<td>([^<]*)</td>', page.text,
                            re.S)
            assert row and row.group(1) == "5"
            assert page.text.count("<svg ") == 4
            assert "<script" not in page.text and "\x1b" not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31mred" in page.text
            assert " style=" not in page.text


def test_figures_cache_recounts_after_its_lifetime_or_a_funnel_change(
        sqlite_center: Center) -> None:
    clock = [100.0]
    cache = FiguresCache(30, clock=lambda: clock[0])
    with sqlite_center.catalog.engine.connect() as conn:
        total = funnel(conn)[-1]
    first = cache.get(sqlite_center, total)
    assert cache.get(sqlite_center, total) is first
    clock[0] += 31
    second = cache.get(sqlite_center, total)
    assert second is not first
    changed = type(total)(None, notified=1)
    assert cache.get(sqlite_center, changed).funnel == changed


def test_empty_center_window_ends_today(sqlite_center: Center) -> None:
    figures = _figures(sqlite_center)
    assert figures.window_end == datetime.now(UTC).date()
    assert all(n == 0 for _, n in figures.infections_per_day)
    assert figures.top_families == []


def test_bar_chart_one_bar_per_item_and_every_label_escaped() -> None:
    items = [("Mirai", 40), (HOSTILE, 7), ("a" * 100, 1)]
    svg = str(bar_chart("c1", TEXTS, items))
    assert svg.count('<rect class="bar"') == 3
    assert "<script" not in svg and "\x1b" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31mred" in svg
    assert "T &lt;b&gt;" in svg and "<b>" not in svg
    assert '<title id="c1-title">' in svg and '<desc id="c1-desc">' in svg
    assert 'aria-labelledby="c1-title c1-desc"' in svg and 'role="img"' in svg
    assert "\u2026" in svg and "a" * 100 in svg  # shortened on the bar, whole in the table
    assert svg.count("<tr><th scope=\"row\"") == 3 and "<details" in svg
    assert ">X</text>" in svg and ">Y</text>" in svg  # axis labels
    assert " style=" not in svg


def test_day_chart_one_column_per_day() -> None:
    start = date(2018, 5, 1)
    days = [(start + timedelta(days=i), i % 7) for i in range(30)]
    svg = str(day_chart("c2", TEXTS, days))
    assert svg.count('<rect class="bar"') == 30
    assert "2018-05-30: 1" in svg and svg.count("<tr><th scope=\"row\"") == 30
    empty = str(day_chart("c3", TEXTS, []))
    assert "<svg" in empty and '<rect class="bar"' not in empty


@pytest.mark.parametrize(("value", "expected"), [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10),
                                                 (11, 20), (250, 500), (1001, 2000)])
def test_nice_max(value: int, expected: int) -> None:
    assert nice_max(value) == expected


@pytest.mark.parametrize(("lang", "words"), [("en", "What a bot is"),
                                             ("ja", "ボットとは")])
def test_about_page(client: TestClient, lang: str, words: str) -> None:
    page = client.get(f"/about?lang={lang}")
    assert page.status_code == 200 and words in page.text
    assert f'href="/download/?lang={lang}"' in page.text
    for path in ("/", "/n/" + "x" * 20):
        assert f'href="/about?lang={lang}"' in client.get(f"{path}?lang={lang}").text
