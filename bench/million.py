"""A million samples (issue #7 §2): load, hash lookup, paged search, TLSH neighbours.

Peers in the same run: SQLite against PostgreSQL for the catalog queries (the same query
functions the command line and the portal use), and for TLSH the index against brute
force (the vectorized scan over every digest, and the plain ``tlsh.diff`` loop on a few
queries), with the index's recall against brute force.

    .venv/bin/python bench/million.py --samples 1000000 --json bench/results/million.json
    .venv/bin/python bench/million.py --samples 100000 --backends sqlite   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from cleancenter.analyze.tlsh_index import BuildReport, TlshIndex, brute_force
from cleancenter.console import RichProgress
from cleancenter.portal.search import SampleSearch, search_samples
from cleancenter.store.catalog import SAMPLE, Catalog
from cleancenter.store.queries import get_sample
from cleancenter.store.synthetic import (
    CHUNK,
    SOURCES,
    Generator,
    SyntheticSample,
    load,
    mutate,
)
from common import machine, pg_schema_url, sqlite_url

console = Console(stderr=True)
NN_THRESHOLD = 70


def stats(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {"n": len(ms), "median_ms": round(float(np.median(a)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3), "max_ms": round(float(a.max()), 3)}


def timed_each(items: list[Any], fn: Callable[[Any], Any]) -> tuple[list[float], list[Any]]:
    ms, out = [], []
    for item in items:
        t0 = time.perf_counter()
        out.append(fn(item))
        ms.append((time.perf_counter() - t0) * 1000)
    return ms, out


def pick_rows(gen: Generator, n_total: int, count: int, rnd: random.Random
              ) -> list[SyntheticSample]:
    wanted = sorted(rnd.sample(range(n_total), count))
    by_chunk: dict[int, list[int]] = {}
    for i in wanted:
        by_chunk.setdefault(i // CHUNK, []).append(i % CHUNK)
    rows = []
    for number, offsets in by_chunk.items():
        chunk = gen.chunk(number, min(CHUNK, n_total - number * CHUNK))
        rows += [chunk[o] for o in offsets]
    rnd.shuffle(rows)
    return rows


def searches(rows: list[SyntheticSample], rnd: random.Random, page: int) -> list[SampleSearch]:
    """Family, tag and a one-year window, drawn like the data (big families more often)."""
    out = []
    sources = [s for s, _ in SOURCES]
    families = [s.family for s in rows if s.family]
    for _ in rows:
        start = datetime(2022, 1, 1, tzinfo=UTC) + timedelta(days=rnd.randrange(0, 4 * 365))
        out.append(SampleSearch(family=rnd.choice(families), tag=rnd.choice(sources),
                                since=start, until=start + timedelta(days=365),
                                page=page, per_page=50))
    return out


def exact_total(conn: Any, search: SampleSearch) -> dict[str, Any]:
    """The product's query with an exact total (what the portal did before the cap)."""
    return search_samples(conn, search, total_cap=None)


def by_cursor(conn: Any, search: SampleSearch) -> dict[str, Any]:
    """The product's page reached by its cursor: ``search.after`` was set, untimed, from
    the page before (see `with_cursors`)."""
    return search_samples(conn, search)


def with_cursors(conn: Any, queries: list[SampleSearch]) -> list[SampleSearch]:
    """The same searches asking for their page by the cursor of the page before it."""
    out = []
    for q in queries:
        before = search_samples(conn, SampleSearch(**{**q.__dict__, "page": q.page - 1}))
        out.append(SampleSearch(**{**q.__dict__, "after": before["next"] or "", "page": q.page}))
    return [q for q in out if q.after]


def catalog_queries(catalog: Catalog, sample_rows: list[SyntheticSample],
                    rnd: random.Random, skip_exact: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with catalog.engine.connect() as conn:
        def lookup(key: str) -> Any:
            found = get_sample(conn, key)
            assert found is not None, key
            return found

        for label, attr in (("sha256", "sha256"), ("md5", "md5"), ("sha1", "sha1")):
            keys = [getattr(s, attr) for s in sample_rows]
            lookup(keys[0])  # warm
            ms, _ = timed_each(keys, lookup)
            results[f"lookup_{label}"] = stats(ms)
        prefixes = [s.sha256[:12] for s in sample_rows]
        ms, _ = timed_each(prefixes, lookup)
        results["lookup_sha256_prefix12"] = stats(ms)
        variants: dict[str, Callable[[Any, SampleSearch], dict[str, Any]]] = {
            "search": search_samples,  # the product: portal/search.py as it is
            "search_exact_total": exact_total,
            "search_cursor": by_cursor,
        }
        if skip_exact:
            del variants["search_exact_total"]
        for name, fn in variants.items():
            for page in (1, 20):
                queries = searches(sample_rows, random.Random(page), page)
                if name == "search_cursor":
                    if page == 1:
                        continue  # page 1 has no cursor: it is "search"
                    queries = with_cursors(conn, queries)
                fn(conn, queries[0])
                ms, out = timed_each(queries, lambda q, fn=fn: fn(conn, q))
                totals = [o["total"] for o in out if o["total"] is not None]
                results[f"{name}_page{page}"] = stats(ms) | {
                    "median_total": int(np.median(totals)) if totals else None,
                    "capped_totals": sum(not o["total_exact"] for o in out),
                    "empty_pages": sum(not o["samples"] for o in out)}
    return results


def nn_queries(index: TlshIndex, digests: list[str], rnd: random.Random,
               n_queries: int) -> list[str]:
    """Half digests that are in the catalog, half unseen near-variants of them."""
    base = rnd.sample(digests, n_queries)
    half = n_queries // 2
    arr = np.frombuffer("".join(base[half:]).encode(), dtype=np.uint8).reshape(-1, 72)
    mutated = mutate(arr, np.random.default_rng(rnd.randrange(2**32)), 3, 8)
    return base[:half] + [s.decode() for s in mutated.view("S72").ravel().tolist()]


def recall(index_hits: list[Any], exact_hits: list[Any]) -> float:
    """Found / expected by distance (ties at the k-th distance are interchangeable)."""
    if not exact_hits:
        return 1.0
    want = sorted(h.distance for h in exact_hits)
    got = sorted(h.distance for h in index_hits)
    hits = sum(1 for a, b in zip(got, want, strict=False) if a <= b)
    return hits / len(want)


def tlsh_bench(catalog: Catalog, rnd: random.Random, n_queries: int, n_loop: int,
               data_dir: Path, n_all: int = 200) -> dict[str, Any]:
    """k nearest and "within 70" (the family threshold), index against brute force.
    "All within 70" returns every hit as an object: tens of thousands for a member of a
    big family, so it is output-bound for both peers; run on fewer queries."""
    out: dict[str, Any] = {}
    report = BuildReport()
    t0 = time.perf_counter()
    with catalog.engine.connect() as conn:
        index = TlshIndex.from_catalog(conn, report=report)
    out["build_s"] = round(time.perf_counter() - t0, 2)
    out["digests"] = len(index)
    out["bad_digests"] = len(report.errors)
    path = data_dir / "tlsh-index.npz"
    t0 = time.perf_counter()
    index.save(path)
    out["save_s"] = round(time.perf_counter() - t0, 2)
    out["file_mib"] = round(path.stat().st_size / 2**20, 1)
    t0 = time.perf_counter()
    index = TlshIndex.load(path)
    out["load_s"] = round(time.perf_counter() - t0, 2)

    with catalog.engine.connect() as conn:
        rows = [(str(s), str(d)) for s, d in conn.execute(
            SAMPLE.select().with_only_columns(SAMPLE.c.sha256, SAMPLE.c.tlsh)
            .where(SAMPLE.c.tlsh.is_not(None)))]
    digests = [d for _, d in rows]
    queries = nn_queries(index, digests, rnd, n_queries)
    index.query(queries[0])
    index.scan(queries[0])

    visited: list[int] = []
    for label, kwargs in (("k1", {"k": 1}), ("k10", {"k": 10}),
                          ("within70_k100", {"k": 100, "max_distance": NN_THRESHOLD}),
                          ("within70_all", {"k": None, "max_distance": NN_THRESHOLD})):
        if label == "within70_all" and n_all < len(queries):
            queries = queries[:n_all]
        visited.clear()
        ms_index, got = timed_each(queries, lambda q, kw=kwargs: index.query(
            q, stats=visited.append, **kw))
        ms_scan, exact = timed_each(queries, lambda q, kw=kwargs: index.scan(q, **kw))
        same = sum(a == b for a, b in zip(got, exact, strict=True))
        out[f"index_{label}"] = stats(ms_index)
        out[f"scan_{label}"] = stats(ms_scan)
        out[f"recall_{label}"] = round(float(np.mean(
            [recall(a, b) for a, b in zip(got, exact, strict=True)])), 4)
        out[f"identical_{label}"] = f"{same}/{len(queries)}"
        out[f"rows_scored_{label}"] = int(np.median(visited))
        if label == "within70_all":
            hits = [len(b) for b in exact]
            out["within70_hits"] = {"median": int(np.median(hits)),
                                    "p99": int(np.percentile(hits, 99)), "max": max(hits)}
    # the plain tlsh.diff loop, on a few queries
    loop_q = queries[:n_loop]
    ms_loop, loop_hits = timed_each(loop_q, lambda q: brute_force(q, rows, k=10))
    out["tlsh_diff_loop_k10"] = stats(ms_loop)
    out["loop_equals_index"] = sum(
        index.query(q, k=10) == h for q, h in zip(loop_q, loop_hits, strict=True))
    return out


@contextmanager
def backend_url(name: str) -> Iterator[tuple[str, Path]]:
    if name == "sqlite":
        with sqlite_url() as (url, data):
            yield url, data
    else:
        with pg_schema_url() as url, sqlite_url() as (_, data):
            yield url, data


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "samples": args.samples,
                              "queries": args.queries, "seed": args.seed, "backends": {}}
    t0 = time.perf_counter()
    gen = Generator(args.seed)
    result["generator_init_s"] = round(time.perf_counter() - t0, 2)
    result["seed_digests"] = gen.seed_count
    rnd = random.Random(args.seed)
    sample_rows = pick_rows(gen, args.samples, args.queries, rnd)
    for name in args.backends.split(","):
        with backend_url(name) as (url, data):
            data.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(url)
            try:
                with RichProgress(enabled=not args.quiet) as progress:
                    loaded = load(catalog, args.samples, generator=gen, progress=progress)
                entry: dict[str, Any] = {"load": loaded.to_dict()}
                console.print(f"{name}: loaded {loaded.samples} in {loaded.seconds:.1f} s")
                entry["queries"] = catalog_queries(catalog, sample_rows,
                                                   random.Random(args.seed + 1),
                                                   args.skip_exact)
                console.print(f"{name}: catalog queries done")
                if name == args.backends.split(",")[0] and not args.no_tlsh:
                    entry["tlsh"] = tlsh_bench(catalog, random.Random(args.seed + 2),
                                               args.nn_queries, args.loop_queries, data)
                    console.print(f"{name}: TLSH done")
                result["backends"][name] = entry
            finally:
                catalog.close()
    result["load_avg_at_end"] = list(os.getloadavg())
    return result


def show(result: dict[str, Any]) -> None:
    out = Console()
    table = Table("query (per_page 50)", *[f"{b} median / p99 ms" for b in result["backends"]],
                  "goal p99")
    goals = {"lookup_sha256": 5, "lookup_md5": 5, "lookup_sha1": 5,
             "lookup_sha256_prefix12": 5}
    for name in ("search", "search_exact_total"):
        goals[f"{name}_page1"] = goals[f"{name}_page20"] = 50
    goals["search_cursor_page20"] = 50
    for key, goal in goals.items():
        if any(key not in e["queries"] for e in result["backends"].values()):
            continue
        cells = []
        for entry in result["backends"].values():
            s = entry["queries"][key]
            cells.append(f"{s['median_ms']:.2f} / {s['p99_ms']:.2f}")
        table.add_row(key, *cells, f"<= {goal}")
    out.print(table)
    load_t = Table("backend", "samples", "load s", "samples/s", "ANALYZE s")
    for name, entry in result["backends"].items():
        ld = entry["load"]
        load_t.add_row(name, str(ld["samples"]), str(ld["seconds"]),
                       str(ld["rows_per_second"]), str(ld["analyze_seconds"]))
    out.print(load_t)
    for name, entry in result["backends"].items():
        if "tlsh" not in entry:
            continue
        t = entry["tlsh"]
        nn = Table("TLSH query", "index median / p99 ms", "scan (brute) median / p99 ms",
                   "recall", "identical")
        for label in ("k1", "k10", "within70_k100", "within70_all"):
            i, s = t[f"index_{label}"], t[f"scan_{label}"]
            nn.add_row(label, f"{i['median_ms']:.2f} / {i['p99_ms']:.2f}",
                       f"{s['median_ms']:.2f} / {s['p99_ms']:.2f}",
                       str(t[f"recall_{label}"]), t[f"identical_{label}"])
        loop = t["tlsh_diff_loop_k10"]
        nn.add_row("k10, tlsh.diff loop", "", f"{loop['median_ms']:.0f} / {loop['p99_ms']:.0f}",
                   "", f"{t['loop_equals_index']}/{loop['n']}")
        out.print(f"TLSH over {t['digests']} digests ({name} catalog): build {t['build_s']} s, "
                  f"file {t['file_mib']} MiB, load {t['load_s']} s, rows scored per query "
                  f"(median, k10) {t['rows_scored_k10']}, hits within 70: "
                  f"{t['within70_hits']}")
        out.print(nn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--nn-queries", type=int, default=1_000)
    ap.add_argument("--loop-queries", type=int, default=20,
                    help="queries for the plain tlsh.diff loop (about 1 s each at 1M)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--no-tlsh", action="store_true")
    ap.add_argument("--skip-exact", action="store_true",
                    help="leave out the search with an exact total (minutes at 1M)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    result = run(args)
    show(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
