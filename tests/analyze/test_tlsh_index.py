"""The TLSH index answers exactly what brute force over ``tlsh.diff`` answers."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import tlsh

from cleancenter.analyze.tlsh_index import (
    BuildReport,
    Hit,
    TlshIndex,
    TlshIndexError,
    brute_force,
)
from cleancenter.center import Center
from cleancenter.store.synthetic import Generator, load, real_seed_digests


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str]]:
    """3,000 digests in families (synthetic, mutated from real files) plus random ones."""
    gen = Generator(seed=11)
    out = [(s.sha256, s.tlsh) for s in gen.rows(2_500) if s.tlsh]
    rnd = random.Random(5)
    for i in range(500):
        body = "".join(rnd.choice("0123456789ABCDEF") for _ in range(70))
        out.append((f"{i:064x}", "T1" + body))
    # exact duplicates: ties must be broken by sha256 like brute force does
    out += [(f"{i + 10**6:064x}", out[i][1]) for i in range(0, 200, 7)]
    return out


@pytest.fixture(scope="module")
def index(rows: list[tuple[str, str]]) -> TlshIndex:
    return TlshIndex.build(rows)


def test_vectorized_distance_equals_tlsh_diff(rows: list[tuple[str, str]]) -> None:
    digests = [d for _, d in rows] + list(real_seed_digests()[:300])
    idx = TlshIndex.build((f"{i:064x}", d) for i, d in enumerate(digests))
    for q in random.Random(1).sample(digests, 60):
        got = {h.sha256: h.distance for h in idx.scan(q, k=None)}
        assert [got[f"{i:064x}"] for i in range(len(digests))] == [
            tlsh.diff(q, d) for d in digests]


@pytest.mark.parametrize(("k", "limit"), [(1, None), (10, None), (None, 70), (5, 100)])
def test_index_is_exactly_brute_force(index: TlshIndex, rows: list[tuple[str, str]],
                                      k: int | None, limit: int | None) -> None:
    rnd = random.Random(k or 0)
    queries = [d for _, d in rnd.sample(rows, 40)]
    # and digests that are not in the index: mutated members and far-off random ones
    queries += [q[:-6] + "0A1B2C" for q in queries[:10]]
    queries += ["T1" + "".join(rnd.choice("0123456789ABCDEF") for _ in range(70))
                for _ in range(5)]
    for q in queries:
        expected = brute_force(q, rows, k=k, max_distance=limit)
        assert index.query(q, k=k, max_distance=limit) == expected
        assert index.scan(q, k=k, max_distance=limit) == expected


def test_exclude_leaves_out_the_sample_itself(index: TlshIndex,
                                              rows: list[tuple[str, str]]) -> None:
    sha, digest = rows[3]
    hits = index.query(digest, k=5, exclude=sha)
    assert sha not in {h.sha256 for h in hits}
    assert hits == [h for h in brute_force(digest, rows, k=6) if h.sha256 != sha][:5]


def test_family_members_are_near_and_families_far(rows: list[tuple[str, str]]) -> None:
    gen = Generator(seed=11)
    samples = [s for s in gen.rows(2_000) if s.tlsh]
    mirai = [s.tlsh for s in samples if s.family == "Mirai"]
    others = [s.tlsh for s in samples if s.family not in ("Mirai", None)]
    assert mirai and others
    assert all(d is not None for d in mirai + others)
    near = sorted(tlsh.diff(a, b) for a, b in itertools.pairwise(mirai[:201]))
    far = sorted(tlsh.diff(a, b) for a, b in zip(mirai[:200], others[:200], strict=False))
    assert near[len(near) // 2] <= 80
    assert far[len(far) // 10] > 120


def test_save_and_load_round_trip(index: TlshIndex, rows: list[tuple[str, str]],
                                  tmp_path: Path) -> None:
    path = tmp_path / "idx" / "tlsh-index.npz"
    index.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["tlsh-index.npz"]  # no temp left
    again = TlshIndex.load(path)
    assert len(again) == len(index)
    for _, q in rows[:20]:
        assert again.query(q, k=10) == index.query(q, k=10)
    path.write_bytes(b"not an index")
    with pytest.raises(TlshIndexError):
        TlshIndex.load(path)


def test_a_bad_digest_is_an_error_for_its_row_only(rows: list[tuple[str, str]]) -> None:
    bad = [("a" * 64, "T1XYZ"), ("b" * 64, "not tlsh"), ("c" * 64, "T1" + "G" * 70)]
    report = BuildReport()
    idx = TlshIndex.build(rows[:100] + bad, report=report)
    assert len(idx) == 100 and report.digests == 100
    assert [sha for sha, _ in report.errors] == ["a" * 64, "b" * 64, "c" * 64]
    with pytest.raises(TlshIndexError):
        idx.query("T1XYZ")


def test_empty_index() -> None:
    idx = TlshIndex.build([])
    assert len(idx) == 0
    assert idx.query("T1" + "A" * 70) == []


def test_built_from_the_catalog(center: Center) -> None:
    load(center.catalog, 1_500, seed=4)
    with center.catalog.engine.connect() as conn:
        idx = TlshIndex.from_catalog(conn)
    gen = Generator(seed=4)
    pairs = [(s.sha256, s.tlsh) for s in gen.rows(1_500) if s.tlsh]
    assert len(idx) == len(pairs)
    q = pairs[0][1]
    assert idx.query(q, k=10) == brute_force(q, pairs, k=10)
    assert idx.query(q, k=1)[0] == Hit(pairs[0][0], 0)


def test_similar_with_the_index_equals_without(center: Center) -> None:
    from cleancenter.analyze.similarity import similar

    load(center.catalog, 800, seed=9)
    with center.catalog.engine.connect() as conn:
        idx = TlshIndex.from_catalog(conn)
        digests = [s.tlsh for s in Generator(seed=9).rows(40) if s.tlsh]
        for d in digests[:10]:
            assert similar(conn, d, limit=5, index=idx) == similar(conn, d, limit=5)
            assert similar(conn, d, limit=50, max_distance=70, index=idx) == similar(
                conn, d, limit=50, max_distance=70)
