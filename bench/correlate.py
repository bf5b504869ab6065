"""Benchmark: observations joined to leases on IP and half-open time (issue #5 §5).

Synthetic, seeded: ``1,000,000 * scale`` IPv4 leases over ``100,000 * scale`` addresses
(ten sessions each, back to back or with gaps; ``--overlap`` of them, 0.1% by default,
are stretched into the next session or never closed: a Stop that never came) and
``10,000,000 * scale`` observations (90% on leased addresses, 10% elsewhere, times
uniform over the leases' span). Ours: `LeaseIndex.from_columns` + `LeaseIndex.match4`
from unsorted arrays. Peers in the same run on the same data, each given input already
sorted as it needs (not timed): pandas ``merge_asof``, polars ``join_asof``, DuckDB
``ASOF JOIN``, each followed by the ``t < end`` filter. Every peer must give our lease on
every row we call unambiguous; on the rows we call ambiguous the count of rows a peer
silently assigns to one lease is reported. Peak memory: RSS sampled every 5 ms above the
RSS before the method (and tracemalloc for ours). With ``--runs N`` every method is run N
times and the median time is reported.

PostgreSQL (``postgres`` in ``--peers``; skipped with a message if the server at
``CLEANCENTER_TEST_PG_URL`` is unreachable): all leases and a subsample of the
observations (the first ``--pg-rows`` for the plain plan, ``--pg-gist-rows`` for GiST)
are loaded with COPY into a schema of their own (load time reported apart, dropped
afterwards). Plain plan: a btree on ``(ip, s) INCLUDE (e, id)`` and a LATERAL subquery
counting the leases with ``s <= t AND (e IS NULL OR t < e)``; GiST plan: an ``int8range``
column, a GiST index on ``(ip, r)`` (btree_gist) and ``r @> t``. Timed: the query on the
server into an unlogged table (``CREATE TABLE AS``), not the transfer to Python. Checked:
per row the count of covering leases (0, 1, 2 or more) and the lease equal ours.

    .venv/bin/pip install pandas polars duckdb   # peers, benchmark only
    .venv/bin/python bench/correlate.py [--scale 1] [--runs 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

from cleancenter.notify.isp.correlate import AMBIGUOUS, NONE, OPEN, LeaseIndex
from common import PG_URL, machine

SEED = 20261128
SEC = 10**9


def synthetic(scale: float, overlap: float) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    n_ip = int(100_000 * scale)
    per = 10
    n = n_ip * per
    ips = rng.choice(np.arange(0x0A000000, 0x0A000000 + 4 * n_ip, dtype=np.uint32), n_ip,
                     replace=False)
    length = rng.integers(60, 3 * 86400, size=(n_ip, per)) * SEC
    gap = np.where(rng.random((n_ip, per)) < 0.5, 0, rng.integers(1, 3600, (n_ip, per)) * SEC)
    t0 = 1_790_000_000 * SEC + rng.integers(0, 86400, n_ip)[:, None] * SEC
    start = t0 + np.cumsum(length + gap, axis=1) - length - gap + gap[:, :1] * 0
    end = start + length
    ip = np.repeat(ips, per)
    start, end = start.ravel().astype(np.int64), end.ravel().astype(np.int64)
    marked = rng.random(n) < overlap
    never = marked & (rng.random(n) < 0.5)
    end[never] = OPEN
    stretch = marked & ~never
    end[stretch] += rng.integers(600, 86400, int(stretch.sum())) * SEC
    order = rng.permutation(n)  # leases arrive in no particular order
    ip, start, end = ip[order], start[order], end[order]
    m = int(10_000_000 * scale)
    lo, hi = int(start.min()), int(np.where(end == OPEN, start, end).max())
    obs_ip = np.where(rng.random(m) < 0.9, ips[rng.integers(0, n_ip, m)],
                      rng.integers(0x0B000000, 0x0C000000, m).astype(np.uint32))
    obs_t = rng.integers(lo, hi, m, dtype=np.int64) // SEC * SEC
    return {"ip": ip, "start": start, "end": end, "obs_ip": obs_ip.astype(np.uint32),
            "obs_t": obs_t, "marked": int(marked.sum())}


class Peak:
    """RSS above the starting RSS, sampled in a thread."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def measure(fn: Callable[[], Any], runs: int = 1) -> tuple[float, float, Any]:
    """Median seconds over ``runs``, the largest peak RSS delta, the last result."""
    times: list[float] = []
    peaks: list[float] = []
    result: Any = None
    for _ in range(runs):
        result = None
        gc.collect()
        with Peak() as peak:
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        peaks.append(peak.mib)
    return statistics.median(times), max(peaks), result


def ours(d: dict[str, Any]) -> tuple[Any, Any]:
    index = LeaseIndex.from_columns(d["start"], d["end"], ip4=d["ip"])
    return index, index.match4(d["obs_ip"], d["obs_t"])


PG_SCHEMA = f"cc_bench_correlate_{os.getpid()}"
PLAIN = """
CREATE UNLOGGED TABLE {s}.res AS
SELECT o.i, c.n, c.id FROM {s}.obs o
CROSS JOIN LATERAL (
    SELECT count(*) AS n, min(l.id) AS id FROM {s}.leases l
    WHERE l.ip = o.ip AND l.s <= o.t AND (l.e IS NULL OR o.t < l.e)) c
"""
GIST = """
CREATE UNLOGGED TABLE {s}.res AS
SELECT o.i, c.n, c.id FROM {s}.obs o
CROSS JOIN LATERAL (
    SELECT count(*) AS n, min(l.id) AS id FROM {s}.leases_gist l
    WHERE l.ip = o.ip AND l.r @> o.t) c
"""


def postgres(d: dict[str, Any], res: Any, rows: list[dict[str, Any]],
             args: argparse.Namespace) -> None:
    """The plain and the GiST plan on the real server, on subsamples (see the module)."""
    try:
        import psycopg

        conn = psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"),
                               connect_timeout=5, autocommit=True)
    except Exception as exc:  # any failure: skip the peer
        print(f"postgres: skipped, server unreachable ({exc})")
        return
    s = PG_SCHEMA
    n_leases = len(d["ip"])
    ours_lease = res.lease
    made_ext = False
    try:
        version = conn.execute("SHOW server_version").fetchone()
        conn.execute(f"CREATE SCHEMA {s}")
        t0 = time.perf_counter()
        conn.execute(f"CREATE UNLOGGED TABLE {s}.leases (id bigint, ip bigint, s bigint, "
                     "e bigint)")
        ends = [None if x == OPEN else int(x) for x in d["end"].tolist()]
        with conn.cursor().copy(f"COPY {s}.leases (id, ip, s, e) FROM STDIN") as cp:
            for row in zip(range(n_leases), d["ip"].tolist(), d["start"].tolist(), ends,
                           strict=True):
                cp.write_row(row)
        conn.execute(f"CREATE INDEX ON {s}.leases (ip, s) INCLUDE (e, id)")
        conn.execute(f"VACUUM ANALYZE {s}.leases")
        load = time.perf_counter() - t0
        print(f"postgres {version[0] if version else '?'}: {n_leases:,} leases loaded (COPY, "
              f"btree, VACUUM ANALYZE) in {load:.1f} s")

        def run(sql: str, k: int, name: str, load_s: float) -> None:
            conn.execute(f"DROP TABLE IF EXISTS {s}.obs")
            conn.execute(f"CREATE UNLOGGED TABLE {s}.obs (i bigint, ip bigint, t bigint)")
            t1 = time.perf_counter()
            with conn.cursor().copy(f"COPY {s}.obs (i, ip, t) FROM STDIN") as cp:
                for row in zip(range(k), d["obs_ip"][:k].tolist(), d["obs_t"][:k].tolist(),
                               strict=True):
                    cp.write_row(row)
            conn.execute(f"VACUUM ANALYZE {s}.obs")
            obs_load = time.perf_counter() - t1
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN " + sql.format(s=s).split(" AS\n", 1)[1]).fetchall())
            times = []
            for _ in range(args.runs):
                conn.execute(f"DROP TABLE IF EXISTS {s}.res")
                t2 = time.perf_counter()
                conn.execute(sql.format(s=s))
                times.append(time.perf_counter() - t2)
            seconds = statistics.median(times)
            got = conn.execute(f"SELECT i, n, coalesce(id, -1) FROM {s}.res").fetchall()
            arr = np.asarray(got, dtype=np.int64).reshape(-1, 3)
            n_cov = np.zeros(k, dtype=np.int64)
            lease = np.full(k, NONE, dtype=np.int64)
            n_cov[arr[:, 0]] = arr[:, 1]
            lease[arr[:, 0]] = np.where(arr[:, 1] == 1, arr[:, 2],
                                        np.where(arr[:, 1] == 0, NONE, AMBIGUOUS))
            mine = ours_lease[:k]
            want_n = np.where(mine >= 0, 1, np.where(mine == NONE, 0, -1))
            for r, cands in res.candidates.items():
                if r < k:
                    want_n[r] = len(cands)
            disagree = int(np.count_nonzero((lease != mine) | (n_cov != want_n)))
            amb = int(np.count_nonzero(mine == AMBIGUOUS))
            print(f"{name}: {k:,} observations in {seconds:.2f} s ({k / seconds:,.0f}/s), "
                  f"observations loaded in {obs_load:.1f} s; {disagree} rows differ from "
                  f"ours (lease or count of covering leases); {amb} ambiguous rows, "
                  f"counted alike\n{plan}")
            rows.append({"method": name, "seconds": seconds, "events_per_s": k / seconds,
                         "rss_mib": None, "disagree": disagree, "ambiguous_assigned": 0,
                         "subsample": k, "load_seconds": load_s + obs_load,
                         "ambiguous_rows": amb, "plan": plan})

        run(PLAIN, min(args.pg_rows, len(d["obs_ip"])),
            f"PostgreSQL {version[0] if version else ''} btree + LATERAL count", load)
        if args.pg_gist_rows > 0:
            made_ext = conn.execute("SELECT count(*) FROM pg_extension "
                                    "WHERE extname = 'btree_gist'").fetchone() == (0,)
            conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            t0 = time.perf_counter()
            conn.execute(f"CREATE UNLOGGED TABLE {s}.leases_gist AS SELECT id, ip, "
                         f"int8range(s, e, '[)') AS r FROM {s}.leases")
            conn.execute(f"CREATE INDEX ON {s}.leases_gist USING gist (ip, r)")
            conn.execute(f"VACUUM ANALYZE {s}.leases_gist")
            gist_load = time.perf_counter() - t0
            print(f"postgres: GiST table and index built in {gist_load:.1f} s")
            run(GIST, min(args.pg_gist_rows, len(d["obs_ip"])),
                f"PostgreSQL {version[0] if version else ''} GiST (ip, int8range) @>",
                load + gist_load)
    finally:
        conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
        if made_ext:
            conn.execute("DROP EXTENSION IF EXISTS btree_gist")
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--overlap", type=float, default=0.001)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--peers", default="pandas,polars,duckdb,postgres")
    ap.add_argument("--pg-rows", type=int, default=1_000_000,
                    help="observations for the plain PostgreSQL plan")
    ap.add_argument("--pg-gist-rows", type=int, default=100_000,
                    help="observations for the GiST plan (0: skip)")
    ap.add_argument("--json")
    args = ap.parse_args()
    info = machine()
    print(json.dumps(info))
    t0 = time.perf_counter()
    d = synthetic(args.scale, args.overlap)
    n_obs, n_leases = len(d["obs_ip"]), len(d["ip"])
    print(f"data: {n_leases:,} leases ({d['marked']:,} marked overlapping), {n_obs:,} "
          f"observations, generated in {time.perf_counter() - t0:.1f} s")
    rows: list[dict[str, Any]] = []

    seconds, mib, (index, res) = measure(lambda: ours(d), args.runs)
    build_s, _, _ = measure(lambda: LeaseIndex.from_columns(d["start"], d["end"], ip4=d["ip"]),
                            args.runs)
    query_s, query_mib, _ = measure(lambda: index.match4(d["obs_ip"], d["obs_t"]), args.runs)
    tracemalloc.start()
    ours(d)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    ours_lease = res.lease
    counts = res.counts()
    amb = ours_lease == AMBIGUOUS
    print(f"ours: {counts}")
    rows.append({"method": "ours (build + query, unsorted input)", "seconds": seconds,
                 "events_per_s": n_obs / seconds, "rss_mib": mib, "traced_mib": traced,
                 "disagree": 0, "ambiguous_assigned": 0})
    rows.append({"method": "ours, query only (index built)", "seconds": query_s,
                 "events_per_s": n_obs / query_s, "rss_mib": query_mib,
                 "build_seconds": build_s})

    # peers: sorted input prepared outside the timing, lease ids = positions in our input
    lease_id = np.arange(n_leases, dtype=np.int64)
    by_start = np.argsort(d["start"], kind="stable")
    by_t = np.argsort(d["obs_t"], kind="stable")
    peers = args.peers.split(",") if args.peers else []

    def check(name: str, seconds: float, mib: float, peer_lease: Any) -> None:
        peer_lease = np.asarray(peer_lease, dtype=np.int64)
        disagree = int(np.count_nonzero((peer_lease != ours_lease) & ~amb))
        assigned = int(np.count_nonzero(amb & (peer_lease >= 0)))
        missed = int(np.count_nonzero(~amb & (ours_lease >= 0) & (peer_lease == NONE)))
        print(f"{name}: {disagree} disagreements on rows we call unambiguous, {missed} of "
              "them a lease that started earlier still covers t (the peer says none)")
        rows.append({"method": name, "seconds": seconds, "events_per_s": n_obs / seconds,
                     "rss_mib": mib, "disagree": disagree, "ambiguous_assigned": assigned})

    obs_idx = by_t.astype(np.int64)
    if "pandas" in peers:
        import pandas as pd

        left = pd.DataFrame({"t": d["obs_t"][by_t], "ip": d["obs_ip"][by_t], "i": obs_idx})
        right = pd.DataFrame({"s": d["start"][by_start], "ip": d["ip"][by_start],
                              "e": d["end"][by_start], "id": lease_id[by_start]})

        def run_pandas() -> Any:
            j = pd.merge_asof(left, right, left_on="t", right_on="s", by="ip",
                              direction="backward", allow_exact_matches=True)
            hit = j["id"].notna().to_numpy() & (j["e"].fillna(0).to_numpy() > j["t"].to_numpy())
            out = np.full(n_obs, NONE, dtype=np.int64)
            out[j["i"].to_numpy()] = np.where(hit, j["id"].fillna(-1).to_numpy(), NONE)
            return out

        s, mb, out = measure(run_pandas, args.runs)
        check(f"pandas {pd.__version__} merge_asof (pre-sorted)", s, mb, out)
        del left, right
    if "polars" in peers:
        import polars as pl

        left_pl = pl.DataFrame({"t": d["obs_t"][by_t], "ip": d["obs_ip"][by_t], "i": obs_idx})
        right_pl = pl.DataFrame({"s": d["start"][by_start], "ip": d["ip"][by_start],
                                 "e": d["end"][by_start], "id": lease_id[by_start]})
        left_pl = left_pl.set_sorted("t")
        right_pl = right_pl.set_sorted("s")

        warnings.filterwarnings("ignore", "Sortedness of columns")

        def run_polars() -> Any:
            j = left_pl.join_asof(right_pl, left_on="t", right_on="s", by="ip",
                                  strategy="backward")
            j = j.with_columns(pl.when(pl.col("e") > pl.col("t")).then(pl.col("id"))
                               .otherwise(NONE).fill_null(NONE).alias("m"))
            out = np.full(n_obs, NONE, dtype=np.int64)
            out[j["i"].to_numpy()] = j["m"].to_numpy()
            return out

        s, mb, out = measure(run_polars, args.runs)
        check(f"polars {pl.__version__} join_asof (pre-sorted)", s, mb, out)
        del left_pl, right_pl
    if "duckdb" in peers:
        import duckdb
        import pandas as pd

        con = duckdb.connect()
        con.register("obs", pd.DataFrame({"t": d["obs_t"], "ip": d["obs_ip"],
                                      "i": np.arange(n_obs, dtype=np.int64)}))
        con.register("leases", pd.DataFrame({"s": d["start"][by_start], "ip": d["ip"][by_start],
                                         "e": d["end"][by_start], "id": lease_id[by_start]}))

        def run_duckdb() -> Any:
            r = con.execute(
                "SELECT o.i, CASE WHEN l.e > o.t THEN l.id ELSE -1 END AS m "
                "FROM obs o ASOF LEFT JOIN leases l ON o.ip = l.ip AND o.t >= l.s"
            ).fetchnumpy()
            out = np.full(n_obs, NONE, dtype=np.int64)
            m = np.asarray(r["m"])
            out[np.asarray(r["i"])] = np.where(np.isnan(m.astype(float)), NONE, m) \
                if m.dtype.kind == "f" else m
            return out

        s, mb, out = measure(run_duckdb, args.runs)
        check(f"DuckDB {duckdb.__version__} ASOF JOIN", s, mb, out)
        con.close()

    if "postgres" in peers:
        postgres(d, res, rows, args)

    fastest_peer = max((r["events_per_s"] for r in rows[2:] if "subsample" not in r),
                       default=0.0)
    print(f"\nscale {args.scale}: {n_obs:,} observations x {n_leases:,} leases; "
          f"ambiguous rows (ours): {counts['ambiguous']:,}")
    print(f"{'method':60} {'s':>7} {'events/s':>12} {'RSS MiB':>8} {'vs ours':>8} "
          f"{'disagree':>8} {'amb. assigned':>13}")
    for r in rows:
        ratio = rows[0]["events_per_s"] / r["events_per_s"]
        rss = "" if r.get("rss_mib") is None else f"{r['rss_mib']:8.0f}"
        print(f"{r['method']:60} {r['seconds']:7.2f} {r['events_per_s']:12,.0f} "
              f"{rss:>8} {ratio:8.2f} {r.get('disagree', ''):>8} "
              f"{r.get('ambiguous_assigned', ''):>13}")
    print(f"ours traced (tracemalloc) peak: {traced:.0f} MiB; fastest peer "
          f"{fastest_peer:,.0f}/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "scale": args.scale, "counts": counts,
                       "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
