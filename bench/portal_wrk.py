"""Benchmark: the portal under `wrk` on loopback (issue #6 §7).

The demo's center (real honeypot events, samples, a signed release, notices) is built in a
temporary folder and served by one `cleancenter serve` process; `wrk` (Debian's package)
loads it from the same machine. Goals: the home page >= 500 requests/s with p99 <= 50 ms,
the definitions manifest >= 2,000 requests/s. References in the same run: a static file
and `/healthz` from the same server (what the server costs without our code), so the
figures can be read as a ratio on a noisy 2-core machine where wrk takes a core too.

    apt-get install wrk
    .venv/bin/python bench/portal_wrk.py [--seconds 10] [--runs 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import machine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.e2e.portal_server import BIN, served_portal  # noqa: E402

ROUTES = {
    "home": "/?lang=ja",
    "manifest": "/api/v1/definitions/latest",
    "static css (reference)": "/static/portal.css",
    "healthz (reference)": "/healthz",
}
GOALS = {"home": (500, 50.0), "manifest": (2000, None)}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s and the latency percentiles (ms) of `wrk --latency` output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rate is None:
        raise ValueError(f"not wrk output:\n{text}")
    found = {"rps": float(rate.group(1))}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text,
                                       re.M):
        found[f"p{pct}_ms"] = float(value) * _UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    found["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return found


def run_wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    result = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
                             "--latency", url], capture_output=True, text=True, check=True)
    return parse_wrk(result.stdout)


def build_demo(folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANCENTER_")}
    subprocess.run([str(BIN / "cleancenter"), "--data-dir", str(folder), "demo", "--json"],
                   check=True, stdout=subprocess.DEVNULL, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--data-dir", type=Path, help="serve this center instead of a demo")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="cc-wrk-") as tmp:
        data = args.data_dir or Path(tmp) / "demo"
        if args.data_dir is None:
            print("building the demo center ...", flush=True)
            build_demo(data)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in ROUTES}
        with served_portal(data, Path(tmp) / "server.log", "--funnel-cache", "30",
                           *os.environ.get("CC_SERVE_ARGS", "").split()) as base:
            for path in ROUTES.values():  # warm up every route once
                run_wrk(base + path, 1, 4)
            for run in range(args.runs):
                for name, path in ROUTES.items():
                    results[name].append(run_wrk(base + path, args.seconds,
                                                 args.connections))
                    got = results[name][-1]
                    print(f"run {run + 1} {name:24} {got['rps']:9,.0f} req/s  p99 "
                          f"{got.get('p99_ms', float('nan')):7.1f} ms  non-2xx "
                          f"{got['non_2xx']:.0f}", flush=True)
    summary: dict[str, Any] = {"machine": machine(), "connections": args.connections,
                               "seconds": args.seconds, "runs": args.runs, "routes": {}}
    print(f"\nmedians of {args.runs} runs, {args.connections} connections, wrk -t1:")
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p99 = statistics.median(r.get("p99_ms", float("nan")) for r in runs)
        non_2xx = sum(r["non_2xx"] for r in runs)
        goal = GOALS.get(name)
        verdict = ""
        if goal:
            ok = rps >= goal[0] and (goal[1] is None or p99 <= goal[1]) and non_2xx == 0
            verdict = "met" if ok else "NOT met"
        summary["routes"][name] = {"path": ROUTES[name], "rps": rps, "p99_ms": p99,
                                   "non_2xx": non_2xx, "goal": goal, "verdict": verdict}
        print(f"{name:24} {rps:9,.0f} req/s  p99 {p99:7.1f} ms  {verdict}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
