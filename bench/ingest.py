"""Benchmark: ingest of the real Cowrie logs and of 10,000 small files, SQLite and PostgreSQL.

Peers, measured in the same run:
- Cowrie: a bare ``json.loads`` loop over the same lines (the floor any JSON-log
  ingester pays), goal >= 0.3 of it and >= 50,000 events/s on SQLite;
- files: ``cp -r`` of the same folder (coreutils; copying is the floor of a blob store),
  and ``sha256sum`` over the files; goal >= 1,000 samples/s.

    .venv/bin/python bench/ingest.py [--runs 5] [--files 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor, IngestReport
from cleancenter.config import load_settings
from common import (
    corpus,
    machine,
    median,
    pg_schema_url,
    run_quiet,
    sqlite_url,
    timed,
)


def center_for(url: str, data_dir: Path) -> Center:
    return Center(load_settings(overrides={"data_dir": str(data_dir), "database_url": url},
                                environ={}))


def timed_ingest(
    backend: str, work: Callable[[Ingestor], IngestReport], **options: Any
) -> tuple[float, IngestReport]:
    """Run ``work`` on a fresh, empty center of ``backend``; time only the work."""
    tmp_root = os.environ.get("BENCH_TMP", "/var/tmp")
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url, data = stack.enter_context(sqlite_url())
        else:
            url = stack.enter_context(pg_schema_url())
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=tmp_root)))
        center = center_for(url, data)
        try:
            ingestor = Ingestor(center.catalog, center.blobs, **options)  # opens, migrates
            return timed(lambda: work(ingestor))
        finally:
            center.close()


def bench_cowrie(runs: int) -> dict[str, Any]:
    logs = [Path(p) for p in sorted(glob.glob(str(corpus() / "honeypot/cowrie/cowrie.json*")))]
    if not logs:
        raise SystemExit(f"no Cowrie logs under {corpus()}")
    lines = [line for p in logs for line in p.read_bytes().splitlines() if line.strip()]

    def bare() -> int:
        n = 0
        for line in lines:
            json.loads(line)
            n += 1
        return n

    bare_times = [timed(bare)[0] for _ in range(runs)]
    results: dict[str, Any] = {"events": len(lines),
                               "bare_json_loads_per_s": len(lines) / median(bare_times)}
    variants: dict[str, tuple[str, dict[str, Any]]] = {
        "sqlite": ("sqlite", {}), "postgresql": ("postgresql", {})}
    for name, (backend, options) in variants.items():
        times = []
        for _ in range(runs):
            dt, report = timed_ingest(backend, lambda i: i.ingest_cowrie(logs), **options)
            assert report.events_new == len(lines), report.to_dict()
            times.append(dt)
        rate = len(lines) / median(times)
        results[name] = {
            "median_s": median(times),
            "events_per_s": rate,
            "ratio_to_bare_loop": rate / results["bare_json_loads_per_s"],
            "runs_s": times,
        }
    return results


def make_files(root: Path, n: int) -> None:
    rng = random.Random(42)
    for i in range(n):
        sub = root / f"{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(200, 8192)))


def bench_files(runs: int, n: int) -> dict[str, Any]:
    tmp_root = os.environ.get("BENCH_TMP", "/var/tmp")
    with tempfile.TemporaryDirectory(dir=tmp_root) as d:
        src = Path(d) / "files"
        make_files(src, n)
        paths = sorted(str(p) for p in src.rglob("*.bin"))
        cp_times = []
        for i in range(runs):
            dest = Path(d) / f"copy{i}"
            cp_times.append(run_quiet(["cp", "-r", str(src), str(dest)]))
            shutil.rmtree(dest)
        sha_times = [run_quiet(["sha256sum", *paths]) for _ in range(runs)]
        results: dict[str, Any] = {
            "files": n,
            "cp_r_files_per_s": n / median(cp_times),
            "sha256sum_files_per_s": n / median(sha_times),
        }
        for backend in ("sqlite", "postgresql"):
            times = []
            for _ in range(runs):
                dt, report = timed_ingest(backend, lambda i: i.ingest_paths([src]))
                assert report.samples_new == n, report.to_dict()
                times.append(dt)
            rate = n / median(times)
            results[backend] = {
                "median_s": median(times),
                "samples_per_s": rate,
                "ratio_to_cp_r": rate / results["cp_r_files_per_s"],
                "runs_s": times,
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = {"machine": machine(), "cowrie": bench_cowrie(args.runs),
           "files": bench_files(args.runs, args.files)}
    c, f = out["cowrie"], out["files"]
    print(f"machine: {out['machine']}")
    print(f"\nCowrie ingest, {c['events']} real events, median of {args.runs}:")
    print(f"  bare json.loads loop: {c['bare_json_loads_per_s']:,.0f} lines/s")
    for b in ("sqlite", "postgresql"):
        print(f"  cleancenter on {b}: {c[b]['events_per_s']:,.0f} events/s "
              f"(ratio {c[b]['ratio_to_bare_loop']:.2f})")
    print(f"\nFile ingest, {f['files']} small files, median of {args.runs}:")
    print(f"  cp -r: {f['cp_r_files_per_s']:,.0f} files/s; "
          f"sha256sum: {f['sha256sum_files_per_s']:,.0f} files/s")
    for b in ("sqlite", "postgresql"):
        print(f"  cleancenter on {b}: {f[b]['samples_per_s']:,.0f} samples/s "
              f"(ratio to cp -r {f[b]['ratio_to_cp_r']:.2f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
