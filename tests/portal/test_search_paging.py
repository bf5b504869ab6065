"""Search pages on a catalog of synthetic samples: the cursor walk, the capped total."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from cleancenter.center import Center
from cleancenter.portal.search import (
    TOTAL_CAP,
    BadCursor,
    SampleSearch,
    make_cursor,
    parse_cursor,
    search_samples,
)
from cleancenter.store.catalog import SAMPLE
from cleancenter.store.synthetic import Generator, load

N = 600


@pytest.fixture
def loaded(center: Center) -> Center:
    load(center.catalog, N, seed=3, generator=Generator(seed=3))
    with center.catalog.engine.begin() as conn:
        # ties on first_seen: the cursor must still visit each sample once
        some = list(conn.execute(select(SAMPLE.c.sha256).order_by(SAMPLE.c.sha256).limit(9))
                    .scalars())
        conn.execute(update(SAMPLE).where(SAMPLE.c.sha256.in_(some))
                     .values(first_seen=datetime(2024, 5, 1, 12, tzinfo=UTC)))
    return center


def _walk(center: Center, search: SampleSearch) -> list[str]:
    seen: list[str] = []
    with center.catalog.engine.connect() as conn:
        while True:
            result = search_samples(conn, search)
            seen += [s["sha256"] for s in result["samples"]]
            if result["next"] is None:
                return seen
            search.after, search.page = result["next"], search.page + 1


def test_cursor_walk_visits_every_sample_once_newest_first(loaded: Center) -> None:
    seen = _walk(loaded, SampleSearch(per_page=37))
    assert len(seen) == N and len(set(seen)) == N
    with loaded.catalog.engine.connect() as conn:
        expected = list(conn.execute(select(SAMPLE.c.sha256).order_by(
            SAMPLE.c.first_seen.desc(), SAMPLE.c.sha256.desc())).scalars())
    assert seen == expected


def test_cursor_pages_equal_offset_pages_with_filters(loaded: Center) -> None:
    with loaded.catalog.engine.connect() as conn:
        family = conn.execute(select(SAMPLE.c.family).where(SAMPLE.c.family.is_not(None))
                              .group_by(SAMPLE.c.family)
                              .order_by(func.count().desc()).limit(1)).scalar_one()
        by_offset: list[str] = []
        page = 1
        while True:
            result = search_samples(conn, SampleSearch(family=family.upper(), tag="cowrie",
                                                       page=page, per_page=10))
            if not result["samples"]:
                break
            by_offset += [s["sha256"] for s in result["samples"]]
            page += 1
    by_cursor = _walk(loaded, SampleSearch(family=family.upper(), tag="cowrie", per_page=10))
    assert by_cursor == by_offset and len(by_cursor) > 20


def test_total_is_exact_up_to_the_cap_then_a_lower_bound(loaded: Center) -> None:
    with loaded.catalog.engine.connect() as conn:
        exact = search_samples(conn, SampleSearch(), total_cap=None)
        assert exact["total"] == N and exact["total_exact"]
        capped = search_samples(conn, SampleSearch(), total_cap=100)
        assert capped["total"] == 101 and not capped["total_exact"]
        under = search_samples(conn, SampleSearch(), total_cap=N)
        assert under["total"] == N and under["total_exact"]
        # the default cap is below this catalog's size
        first = search_samples(conn, SampleSearch())
        assert first["total"] == TOTAL_CAP + 1 < N and not first["total_exact"]
        # a cap below one page: the page is whole, the total a lower bound
        small = search_samples(conn, SampleSearch(per_page=50), total_cap=10)
        assert len(small["samples"]) == 50 and small["total"] == 11
        assert not small["total_exact"] and small["next"]
        # a page by number counts (capped); a page by cursor does not count at all
        assert search_samples(conn, SampleSearch(page=3), total_cap=100)["total"] == 101
        followed = search_samples(conn, SampleSearch(after=first["next"]))
        assert followed["total"] is None and not followed["total_exact"]
        assert len(followed["samples"]) == 50


def test_last_page_has_no_next(loaded: Center) -> None:
    with loaded.catalog.engine.connect() as conn:
        full = search_samples(conn, SampleSearch(page=N // 50, per_page=50))
        assert len(full["samples"]) == 50 and full["next"] is None
        assert search_samples(conn, SampleSearch(page=1, per_page=50))["next"] is not None


@pytest.mark.parametrize("bad", ["", "x", "2024-01-01T00:00:00~" + "g" * 64,
                                 "2024-13-01T00:00:00~" + "a" * 64,
                                 "2024-01-01 00:00:00~" + "a" * 64,
                                 "2024-01-01T00:00:00~" + "A" * 64,
                                 "2024-01-01T00:00:00~" + "a" * 63,
                                 "' OR 1=1 --"])
def test_bad_cursor_is_refused(bad: str) -> None:
    with pytest.raises(BadCursor):
        parse_cursor(bad)


def test_cursor_round_trips() -> None:
    when = datetime(2025, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
    assert parse_cursor(make_cursor(when, "ab" * 32)) == (when, "ab" * 32)
