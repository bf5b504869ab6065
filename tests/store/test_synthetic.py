"""The synthetic catalog: same seed same rows, valid and unique, loaded on both backends."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest
import tlsh
from sqlalchemy import func, select
from typer.testing import CliRunner

from cleancenter.center import Center
from cleancenter.store.catalog import SAMPLE, SAMPLE_NAME, SAMPLE_TAG
from cleancenter.store.queries import SampleFilter, find_samples, get_sample
from cleancenter.store.synthetic import (
    CHUNK,
    FAMILIES,
    TAG,
    Generator,
    SyntheticError,
    load,
    real_seed_digests,
)

N = 2_000
HEXES = {"sha256": 64, "sha1": 40, "md5": 32}


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator(seed=7)


def test_same_seed_same_rows(gen: Generator) -> None:
    assert list(gen.rows(N)) == list(Generator(seed=7).rows(N))
    other = list(Generator(seed=8).rows(50))
    assert {s.sha256 for s in other}.isdisjoint(s.sha256 for s in gen.rows(50))


def test_rows_do_not_depend_on_how_many_are_asked_for(gen: Generator) -> None:
    many = list(gen.rows(CHUNK + 10))
    assert list(gen.rows(25)) == many[:25]
    assert many[CHUNK:] == gen.chunk(1, 10)


def test_rows_are_valid_and_unique(gen: Generator) -> None:
    rows = list(gen.rows(N))
    for key, length in HEXES.items():
        values = [getattr(s, key) for s in rows]
        assert len(set(values)) == N
        assert all(re.fullmatch(f"[0-9a-f]{{{length}}}", v) for v in values)
    digests = [s.tlsh for s in rows if s.tlsh]
    assert len(digests) > 0.9 * N
    for d in digests[:500]:
        assert tlsh.diff(d, d) == 0 and tlsh.diff(d, digests[0]) >= 0
    assert all(s.tlsh is None for s in rows if s.size < 256)
    assert all(TAG in s.tags for s in rows)
    assert all(s.first_seen <= s.last_seen for s in rows)
    assert all("2022-01-01" <= s.first_seen < "2026-11-02" for s in rows)


def test_proportions_look_like_a_center(gen: Generator) -> None:
    rows = list(gen.rows(N))
    families = collections.Counter(s.family for s in rows)
    assert families.most_common(1)[0][0] in (None, "Mirai")  # unknown or the top family
    assert families["Mirai"] > families["Gafgyt"] > families["Tsunami"]
    assert set(families) <= {f.name for f in FAMILIES} | {None}
    types = collections.Counter(s.file_type for s in rows)
    assert types["elf32"] > types["pe32"] > types["pe32+"]
    assert {"text", "zip", "elf64"} <= set(types)
    sizes = sorted(s.size for s in rows if s.file_type == "elf32")
    assert 20_000 < sizes[len(sizes) // 2] < 300_000


def test_bad_seed_digest_is_refused() -> None:
    with pytest.raises(ValueError):
        Generator(seed=1, seed_digests=["T1XYZ"])
    with pytest.raises(SyntheticError):
        Generator(seed=1, seed_digests=list(real_seed_digests()[:3]))


def test_loaded_into_the_catalog(center: Center, gen: Generator) -> None:
    report = load(center.catalog, N, seed=7, generator=gen)
    assert report.samples == N and report.names == N
    rows = list(gen.rows(N))
    with center.catalog.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SAMPLE)).scalar_one() == N
        assert conn.execute(select(func.count()).select_from(SAMPLE_NAME)).scalar_one() == N
        tagged = select(func.count()).select_from(SAMPLE_TAG).where(SAMPLE_TAG.c.tag == TAG)
        assert conn.execute(tagged).scalar_one() == N
        assert report.tags == sum(len(s.tags) for s in rows)
        one = rows[123]
        detail = get_sample(conn, one.sha256)
        assert detail is not None
        assert (detail.md5, detail.sha1, detail.size, detail.tlsh, detail.file_type) == (
            one.md5, one.sha1, one.size, one.tlsh, one.file_type)
        assert detail.first_seen.isoformat(sep=" ").startswith(one.first_seen[:19])
        assert detail.names == [one.name] and detail.tags == list(one.tags)
        assert get_sample(conn, one.md5) is not None
        newest = find_samples(conn, SampleFilter(tag=TAG, limit=5))
        expected = sorted(rows, key=lambda s: (s.first_seen, s.sha256), reverse=True)
        assert newest[0].first_seen.isoformat(sep=" ")[:19] == expected[0].first_seen[:19]
    with pytest.raises(SyntheticError):
        load(center.catalog, 10, seed=7, generator=gen)


def test_cli_generate(tmp_path: Path) -> None:
    from cleancenter.cli import app

    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "store",
                                      "generate", "--samples", "300", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 300
