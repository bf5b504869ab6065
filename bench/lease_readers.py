"""Lease log readers (issue #5): lines/s of each reader against a bare loop in the same run.

Generates (seeded) about ``--lines`` lines of each format in a temp folder, then times
each reader and its peers on the same file, round robin (reader, peers; ``--runs``
rounds; medians), so that both see the same load on a shared machine. Peers: Python's
`csv` module in a bare loop for the CSV formats (Kea, radacct), a bare ``for line in f``
loop for the text formats (dhcpd.leases, detail, CGNAT); for the CSV formats also
``pandas.read_csv`` (all columns as text) when pandas is installed (it is not a
dependency: ``.venv/bin/pip install pandas``).
Kea and radacct are timed twice: the streaming reader (`open_leases`) and the columnar
one (`read_columns`, numpy columns for `LeaseIndex.from_columns`; both formats have a
columnar reader of their own). Goal: >= 500,000 lines/s. Besides wall time, each row has
the CPU time (`time.process_time`) of reader and peer: on a busy machine it is the
steadier figure. The load average is recorded at the start (`machine`) and at the end.

    .venv/bin/python bench/lease_readers.py --lines 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cleancenter.notify.isp.leases import Lease, open_leases, read_columns
from common import machine

T0 = 1795651200  # 2026-11-26 00:00 UTC
POOL = 65536  # addresses in the generated pool (10.0.0.0/16, 100.80.0.0/16, ...)


def _ip(prefix: str, n: int) -> str:
    return f"{prefix}.{n >> 8}.{n & 255}"


def _mac(n: int) -> str:
    return f"00:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"


def gen_dhcpd(path: Path, lines: int, rng: random.Random) -> None:
    out = ["# The format of this file is documented in the dhcpd.leases(5) manual page.\n"]
    n = 1
    t = T0
    while n < lines:
        t += rng.randint(0, 3)
        a = rng.randrange(POOL)
        s = datetime.fromtimestamp(t, UTC)
        e = s + timedelta(seconds=3600)
        out.append(
            f"lease {_ip('10.0', a)} {{\n"
            f"  starts {s:%w %Y/%m/%d %H:%M:%S};\n"
            f"  ends {e:%w %Y/%m/%d %H:%M:%S};\n"
            f"  binding state active;\n"
            f"  hardware ethernet {_mac(rng.randrange(200000))};\n"
            f'  client-hostname "host-{a}";\n'
            "}\n"
        )
        n += 7
    path.write_text("".join(out))


def gen_kea(path: Path, lines: int, rng: random.Random) -> None:
    out = ["address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,"
           "hostname,state,user_context,pool_id\n"]
    t = T0
    for _ in range(lines - 1):
        t += rng.randint(0, 3)
        a = rng.randrange(POOL)
        out.append(f"{_ip('10.0', a)},{_mac(rng.randrange(200000))},,3600,{t + 3600},1,0,0,"
                   f"host-{a}&#x2cexample,0,,0\n")
    path.write_text("".join(out))


def gen_kea6(path: Path, lines: int, rng: random.Random) -> None:
    out = ["address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,"
           "prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,"
           "hwaddr_source,pool_id\n"]
    t = T0
    for _ in range(lines - 1):
        t += rng.randint(0, 3)
        a = rng.randrange(POOL)
        out.append(f"2001:db8::{a >> 8:x}:{a & 255:x},00:03:00:01:{_mac(rng.randrange(200000))},"
                   f"3600,{t + 3600},1,1800,0,1,128,0,0,host-{a}&#x2cexample,,0,,0,0,0\n")
    path.write_text("".join(out))


def gen_radacct(path: Path, lines: int, rng: random.Random) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["radacctid", "acctsessionid", "acctuniqueid", "username", "nasipaddress",
                    "acctstarttime", "acctupdatetime", "acctstoptime", "acctsessiontime",
                    "callingstationid", "framedipaddress", "framedipv6address"])
        t = T0
        for i in range(lines - 1):
            t += rng.randint(0, 3)
            s = datetime.fromtimestamp(t, UTC)
            stop = "" if i % 10 == 0 else f"{s + timedelta(seconds=5400):%Y-%m-%d %H:%M:%S}+00"
            w.writerow([i, f"{i:08x}", f"u{i:016x}", f"user{rng.randrange(200000)}",
                        "192.0.2.1", f"{s:%Y-%m-%d %H:%M:%S}+00", "", stop, "",
                        "00-11-22-33-44-55", _ip("100.80", rng.randrange(POOL)), ""])


def gen_detail(path: Path, lines: int, rng: random.Random) -> None:
    out: list[str] = []
    n = 0
    t = T0
    open_sessions: list[tuple[int, int, int]] = []
    sid = 0
    while n < lines:
        t += rng.randint(0, 2)
        stamp = datetime.fromtimestamp(t, UTC)
        if open_sessions and (len(open_sessions) > 5000 or rng.random() < 0.5):
            s, user, a = open_sessions.pop(rng.randrange(len(open_sessions)))
            status = "Stop"
        else:
            sid += 1
            s, user, a = sid, rng.randrange(200000), rng.randrange(POOL)
            open_sessions.append((s, user, a))
            status = "Start"
        out.append(
            f"{stamp:%a %b %d %H:%M:%S %Y}\n"
            f"\tAcct-Status-Type = {status}\n"
            f'\tUser-Name = "user{user}"\n'
            f'\tAcct-Session-Id = "{s:08x}"\n'
            f"\tNAS-IP-Address = 192.0.2.1\n"
            f"\tFramed-IP-Address = {_ip('100.80', a)}\n"
            f"\tEvent-Timestamp = {t}\n"
            f"\tTimestamp = {t}\n"
            "\n"
        )
        n += 9
    path.write_text("".join(out))


def gen_cgnat(path: Path, lines: int, rng: random.Random) -> None:
    out = ["# time action inside public ports\n"]
    allocated: dict[tuple[int, int], int] = {}
    t = T0
    for _ in range(lines - 1):
        if rng.random() < 0.7:
            t += 1
        when = f"{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ}"
        public, block = rng.randrange(256), rng.randrange(60)
        key = (public, block)
        inside = allocated.pop(key, None)
        action = "RELEASE"
        if inside is None:
            inside = rng.randrange(POOL)
            allocated[key] = inside
            action = "ALLOC"
        p0 = 1024 + block * 1024
        out.append(f"{when} {action} {_ip('100.64', inside)} 203.0.113.{public} "
                   f"{p0}-{p0 + 1023}\n")
    path.write_text("".join(out))


def peer_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for _line in fh:
            n += 1
    return n


def peer_csv(path: Path) -> int:
    n = 0
    with path.open(newline="", encoding="utf-8") as fh:
        for _row in csv.reader(fh):
            n += 1
    return n


def peer_pandas(path: Path) -> int:
    import pandas  # type: ignore[import-untyped]

    return len(pandas.read_csv(path, dtype=str, keep_default_na=False))


def columns(fmt: str) -> Callable[[Path], int]:
    def run(path: Path) -> int:
        got = read_columns(path, fmt)
        if got.errors:
            raise SystemExit(f"{fmt}: {len(got.errors)} errors in generated data")
        return len(got)

    return run


def reader(fmt: str) -> Callable[[Path], int]:
    def run(path: Path) -> int:
        leases = errors = 0
        for item in open_leases(path, fmt):
            if item.__class__ is Lease:
                leases += 1
            else:
                errors += 1
        if errors:
            raise SystemExit(f"{fmt}: {errors} errors in generated data")
        return leases

    return run


FORMATS: dict[str, tuple[Callable[[Path, int, random.Random], None], Callable[[Path], int],
                         str]] = {
    "dhcpd": (gen_dhcpd, peer_lines, "for line in f"),
    "kea": (gen_kea, peer_csv, "csv.reader"),
    "kea-columns": (gen_kea, peer_csv, "csv.reader"),
    "kea6": (gen_kea6, peer_csv, "csv.reader"),
    "kea6-columns": (gen_kea6, peer_csv, "csv.reader"),
    "radacct": (gen_radacct, peer_csv, "csv.reader"),
    "radacct-columns": (gen_radacct, peer_csv, "csv.reader"),
    "radius-detail": (gen_detail, peer_lines, "for line in f"),
    "cgnat": (gen_cgnat, peer_lines, "for line in f"),
}


def pandas_installed() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--only", nargs="*", choices=sorted(FORMATS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    formats: dict[str, dict[str, object]] = {}
    results: dict[str, object] = {"machine": machine(), "lines": args.lines, "runs": args.runs,
                                  "formats": formats}
    print(json.dumps(results["machine"]))
    with tempfile.TemporaryDirectory(prefix="lease-bench-") as tmp:
        for fmt, (gen, peer, peer_name) in FORMATS.items():
            if args.only and fmt not in args.only:
                continue
            path = Path(tmp) / f"{fmt.removesuffix('-columns')}.log"
            if not path.exists():
                gen(path, args.lines, random.Random(args.seed))
            lines = peer_lines(path)
            # kea6: the same reader as kea; "-columns": read_columns of the format
            base = "kea" if fmt.startswith("kea") else fmt.removesuffix("-columns")
            ours = columns(base) if fmt.endswith("-columns") else reader(base)
            peers: list[Callable[[Path], int]] = [peer]
            if peer is peer_csv and pandas_installed() and not fmt.endswith("-columns"):
                peers.append(peer_pandas)
            # round robin (ours, then each peer, per run): all see the same load
            times: list[list[float]] = [[] for _ in range(1 + len(peers))]
            cpu: list[list[float]] = [[] for _ in range(1 + len(peers))]
            leases = 0
            for _ in range(args.runs):
                for k, fn in enumerate([ours, *peers]):
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    got = fn(path)
                    times[k].append(time.perf_counter() - t0)
                    cpu[k].append(time.process_time() - c0)
                    if k == 0:
                        leases = got
            t_reader, t_peer = statistics.median(times[0]), statistics.median(times[1])
            c_reader, c_peer = statistics.median(cpu[0]), statistics.median(cpu[1])
            row: dict[str, object] = {
                "lines": lines,
                "leases": leases,
                "reader_s": round(t_reader, 3),
                "reader_lines_per_s": round(lines / t_reader),
                "peer": peer_name,
                "peer_lines_per_s": round(lines / t_peer),
                "ratio": round(t_peer / t_reader, 3),
                "goal_met": lines / t_reader >= 500_000,
                "reader_cpu_s": round(c_reader, 3),
                "reader_cpu_lines_per_s": round(lines / c_reader),
                "peer_cpu_lines_per_s": round(lines / c_peer),
            }
            if len(peers) > 1:
                row["pandas_read_csv_lines_per_s"] = round(lines / statistics.median(times[2]))
            formats[fmt] = row
            print(fmt, json.dumps(row), flush=True)
    results["load_end"] = os.getloadavg()
    print(json.dumps({"load_avg_at_end": results["load_end"]}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
