"""Benchmark (issue 4 section 4): the cleaner's file scan against yara and clamscan.

One real tree (default: /usr/lib/x86_64-linux-gnu, /usr/lib/jvm, /usr/lib/llvm-14,
/usr/share/doc and this venv's site-packages, about 2 GB), one rule set and one hash list
for every tool, in the same run, tools in rotating order, median of --runs:

- rules: every ``.yar``/``.yara`` file of the signature-base and ReversingLabs packs in
  the corpus (read there, never copied into the repository) that compiles alone under
  both yara-x (the cleaner's compiler settings) and the Debian ``yarac``; signature-base
  needs the LOKI externals filename, filepath, extension, filetype and owner (defined
  empty at compile time; the cleaner sets name, path and extension per file, the yara CLI
  cannot);
- hashes: --hashes sha256 values (default 100,000): random ones from a seeded RNG plus the
  real sha256 of 10 files of the tree, so there are hash hits;
- ``yara -C -r -N -p WORKERS -z MAX --scan-list``: the pack compiled once with ``yarac``;
  ``-N`` because ``yara -r`` follows file and directory symlinks by default;
- ``clamscan`` with a ``.hsb`` of the same hashes (``sha256:*:Name:73`` for unknown sizes,
  ``sha256:size:Name`` for the real ones), symlinks not followed; once as it comes
  (archives unpacked, HTML normalized) and once lean (``--scan-archive=no
  --normalize=no``: normalized HTML is hashed instead of the file, so it misses hash hits
  on HTML files); clamscan is single-threaded by design;
- ``cleancenter-cleaner scan ... --checks files --workers WORKERS``: a signed bundle
  (fresh Ed25519 key) of the same rules and hashes. First scan with an empty scan cache,
  then a re-scan of the unchanged tree (cache hits). The compiled rules are cached in the
  cleaner's home: cold compiling is measured apart (a scan of one tiny file with an empty
  home vs with the compiled cache), and every timed scan runs with the compiled cache.

Every tool sees the same files: regular files only, symlinks not followed, at most
--max-size-mb (default 128 MiB, the cleaner's default). The tree is read once, untimed,
before the runs (page cache warm; the machine has far more RAM than the tree). Peak memory
is the largest sum of RSS over the tool's process and all its children, sampled every
0.1 s with psutil (shared pages count once per process); CPU seconds are each process's
own, from the same samples. The machine is shared: before each timed step the script waits
(--wait-idle) for other processes to go quiet, and reports the CPU seconds the rest of the
machine used during each run ("others' CPU s"). Afterwards, in this process: what loading
the definitions, deserializing the rules and read + sha256 + yara-x over the same files cost
without worker processes (the diagnostics).

Not under ``nice``: the tools are compared by wall time and must not yield to other jobs.

    .venv/bin/python bench/cleaner_scan.py [--runs 5] [--roots DIR ...] [--workers 2]
        [--max-size-mb 128] [--json /var/tmp/cleaner_scan.json] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import psutil
import yara_x
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleancenter.cleaner import CLEANER_VERSION
from cleancenter.cleaner.rules import EXTERNALS
from cleancenter.definitions.bundle import write_bundle
from cleancenter.definitions.keys import public_of
from common import REPO, corpus, machine, median, spread

PACKS = ("signature-base", "reversinglabs")
VENV = REPO / ".venv"
CLEANER = VENV / "bin" / "cleancenter-cleaner"
REAL_HASHES = 10


def default_roots() -> list[Path]:
    site = next(VENV.glob("lib/python3*/site-packages"))
    return [Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib/jvm"), Path("/usr/lib/llvm-14"),
            Path("/usr/share/doc"), site]


# ---------------------------------------------------------------- the tree


@dataclass
class Tree:
    files: list[tuple[str, int]] = field(default_factory=list)  # path, size
    symlinks: int = 0
    too_large: list[str] = field(default_factory=list)
    other: int = 0  # sockets, fifos, devices

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.files)


def walk_tree(roots: list[Path], max_size: int) -> Tree:
    """What every tool must see: regular files, symlinks not followed, size capped."""
    tree = Tree()
    for root in roots:
        stack = [str(root)]
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        tree.symlinks += 1
                    elif stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
                    elif not stat.S_ISREG(st.st_mode):
                        tree.other += 1
                    elif st.st_size > max_size:
                        tree.too_large.append(entry.path)
                    else:
                        tree.files.append((entry.path, st.st_size))
    tree.files.sort()
    return tree


def warm(tree: Tree) -> float:
    """Read every file once (untimed for the tools) so the page cache holds the tree."""
    start = time.perf_counter()
    for path, _ in tree.files:
        with open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    return time.perf_counter() - start


# ---------------------------------------------------------------- rules and hashes


def rule_files(root: Path) -> list[tuple[str, Path]]:
    """(bundle name 'pack/relative path', file) for every rule file of the packs."""
    found = []
    for pack in PACKS:
        base = root / pack
        for path in sorted(base.rglob("*")):
            if path.suffix in (".yar", ".yara") and path.is_file():
                found.append((f"{pack}/{path.relative_to(base).as_posix()}", path))
    if not found:
        raise SystemExit(f"no YARA rules under {root}: set CLEANCENTER_CORPUS")
    return found


def define_args() -> list[str]:
    return [arg for name in EXTERNALS for arg in ("-d", f"{name}=")]


def compiles_both(path: Path) -> str | None:
    """None if the file compiles alone under yara-x and yarac, else why not."""
    compiler = yara_x.Compiler(relaxed_re_syntax=True, includes_enabled=False)
    for name in EXTERNALS:
        compiler.define_global(name, "")
    try:
        compiler.add_source(path.read_bytes().decode("utf-8-sig"), origin=str(path))
    except (yara_x.CompileError, UnicodeDecodeError) as exc:
        return f"yara-x: {(str(exc).strip().splitlines() or ['error'])[0]}"
    done = subprocess.run(["yarac", "-w", *define_args(), str(path), "/dev/null"],
                          capture_output=True, text=True)
    if done.returncode:
        return f"yarac: {(done.stderr.strip().splitlines() or ['error'])[0]}"
    return None


def choose_rules(root: Path) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    kept, dropped = [], {}
    for name, path in rule_files(root):
        problem = compiles_both(path)
        if problem:
            dropped[name] = problem
        else:
            kept.append((name, path))
    return kept, dropped


def yarac_compile(rules: list[tuple[str, Path]], out: Path) -> float:
    """One compiled file, one namespace per rule file (as the cleaner does)."""
    start = time.perf_counter()
    subprocess.run(["yarac", "-w", *define_args(),
                    *[f"{name}:{path}" for name, path in rules], str(out)], check=True)
    return time.perf_counter() - start


@dataclass
class HashSet:
    random: list[str]
    real: list[tuple[str, int, str]]  # sha256, size, a path of the tree that has it


def make_hashes(tree: Tree, total: int, seed: int) -> HashSet:
    rng = random.Random(seed)
    candidates = spread([(p, s) for p, s in tree.files if s > 0], REAL_HASHES)
    real = []
    for path, size in candidates:
        with open(path, "rb") as handle:
            real.append((hashlib.file_digest(handle, "sha256").hexdigest(), size, path))
    randoms = [f"{rng.getrandbits(256):064x}" for _ in range(total - len(real))]
    return HashSet(randoms, real)


def write_hsb(hashes: HashSet, out: Path) -> None:
    with out.open("w") as handle:
        for i, sha in enumerate(hashes.random):
            handle.write(f"{sha}:*:Bench.Random.{i}:73\n")
        for i, (sha, size, _) in enumerate(hashes.real):
            handle.write(f"{sha}:{size}:Bench.Real.{i}\n")


def make_bundle(rules: list[tuple[str, Path]], hashes: HashSet, out: Path) -> str:
    """A signed bundle of the same rules and hashes; returns the public key's text."""
    lines = [json.dumps({"sha256": sha, "size": None, "family": f"Bench.Random.{i}"})
             for i, sha in enumerate(hashes.random)]
    lines += [json.dumps({"sha256": sha, "size": size, "family": f"Bench.Real.{i}"})
              for i, (sha, size, _) in enumerate(hashes.real)]
    files = {f"rules/{name}": path.read_bytes() for name, path in rules}
    files["hashes.jsonl"] = ("\n".join(lines) + "\n").encode()
    files["iocs.json"] = b"{}"
    files["behaviour.json"] = b"{}"
    key = Ed25519PrivateKey.generate()
    manifest = {"version": 1, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "min_cleaner_version": "0.1.0"}
    write_bundle(out, manifest, files, key)
    return public_of(key).text()


# ---------------------------------------------------------------- running a tool


def busy_cpu() -> float:
    """CPU seconds the whole machine has been busy (steal included: a shared VM)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)


def wait_idle(limit: float, threshold: float = 0.25) -> float:
    """Wait (at most limit seconds) until the machine's other work uses less than
    threshold of one core over 2 s; the shared machine runs other people's jobs."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        before = busy_cpu()
        time.sleep(2)
        if (busy_cpu() - before) / 2 < threshold:
            break
    return time.perf_counter() - start


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of the process tree (sampled, see run_measured)
    peak_rss: int
    load: float  # 1-minute load average when the run started
    foreign: float  # CPU seconds the rest of the machine used meanwhile (incl. steal)
    stdout: str
    stderr: str
    code: int


def run_measured(cmd: list[str], env: dict[str, str] | None = None,
                 ok: tuple[int, ...] = (0, 1)) -> Run:
    """Wall time, CPU time and peak RSS of one command and all its descendants.

    Every 0.1 s the tree is listed: RSS is summed (the peak is kept) and each process's
    own CPU time is remembered, so the CPU total misses at most the last 0.1 s of each
    process."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        busy_before = busy_cpu()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = 0
        cpu: dict[int, float] = {}
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            try:
                top = psutil.Process(proc.pid)
                while not stop.is_set():
                    total = 0
                    for p in [top, *top.children(recursive=True)]:
                        with contextlib.suppress(psutil.NoSuchProcess):
                            with p.oneshot():
                                total += p.memory_info().rss
                                times = p.cpu_times()
                            cpu[p.pid] = times.user + times.system
                    peak = max(peak, total)
                    stop.wait(0.1)
            except psutil.NoSuchProcess:
                return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        wall = time.perf_counter() - start
        stop.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        own = sum(cpu.values())
        foreign = max(0.0, busy_cpu() - busy_before - own)
        run = Run(wall, own, peak, load, foreign, out.read(), err.read(), code)
    if code not in ok:
        raise RuntimeError(f"{cmd[0]} exited {code}: {run.stderr[-2000:]}")
    return run


@dataclass
class Result:
    """One tool's runs and what it found (the last run's output)."""

    name: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    foreign: list[float] = field(default_factory=list)
    files: int | None = None
    bytes: int | None = None
    findings: int = 0
    matched: dict[str, set[str]] = field(default_factory=dict)  # path -> rules
    hash_hits: set[str] = field(default_factory=set)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, run: Run) -> None:
        self.walls.append(run.wall)
        self.cpus.append(run.cpu)
        self.peaks.append(run.peak_rss)
        self.loads.append(run.load)
        self.foreign.append(run.foreign)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, tree: Tree) -> None:
        self.args = args
        self.work = work
        self.tree = tree
        self.roots_file = work / "roots.txt"
        self.roots_file.write_text("".join(f"{r}\n" for r in args.roots))
        self.yarc = work / "rules.yarc"
        self.hsb = work / "hashes.hsb"
        self.bundle = work / "bench.ccdef"
        self.home = work / "home"
        self.env: dict[str, str] = {}

    # -- yara

    def yara(self, result: Result) -> None:
        cmd = ["yara", "-C", "-r", "-N", "-p", str(self.args.workers), "-z",
               str(self.args.max_size_mb << 20), "-w", *define_args(),
               "--scan-list", str(self.yarc), str(self.roots_file)]
        run = run_measured(cmd, ok=(0,))
        result.add(run)
        matched: dict[str, set[str]] = {}
        for line in run.stdout.splitlines():
            rule, _, path = line.partition(" ")
            matched.setdefault(path, set()).add(rule)
        result.matched = matched
        result.findings = len(matched)
        result.notes["cmd"] = " ".join(cmd)

    def yara_files(self) -> int:
        """yara's own count of files scanned (``-c`` prints one line per file), untimed."""
        cmd = ["yara", "-C", "-c", "-r", "-N", "-p", str(self.args.workers), "-z",
               str(self.args.max_size_mb << 20), "-w", *define_args(),
               "--scan-list", str(self.yarc), str(self.roots_file)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return sum(1 for line in done.stdout.splitlines() if line.strip())

    # -- clamscan

    def clamscan_cmd(self, lean: bool, summary: bool = False) -> list[str]:
        """As it comes, or lean: no archive unpacking and no HTML/script normalizing
        (normalized HTML is hashed instead of the file's bytes: no hash hit)."""
        size = f"{self.args.max_size_mb}M"
        return ["clamscan", "-r", "-i", *([] if summary else ["--no-summary"]),
                "-d", str(self.hsb), f"--max-filesize={size}", f"--max-scansize={size}",
                "--follow-dir-symlinks=0", "--follow-file-symlinks=0",
                *(["--scan-archive=no", "--normalize=no"] if lean else []),
                *[str(r) for r in self.args.roots]]

    def clamscan(self, result: Result, lean: bool) -> None:
        cmd = self.clamscan_cmd(lean)
        run = run_measured(cmd)
        result.add(run)
        hits = {line.rsplit(": ", 1)[0] for line in run.stdout.splitlines()
                if line.endswith(" FOUND")}
        result.hash_hits = hits
        result.findings = len(hits)
        result.notes["cmd"] = " ".join(cmd)

    def clamscan_files(self, lean: bool) -> int:
        """clamscan's own summary of files scanned (it leaves empty files out), untimed."""
        done = subprocess.run(self.clamscan_cmd(lean, summary=True), capture_output=True,
                              text=True)
        for line in done.stdout.splitlines():
            if line.startswith("Scanned files:"):
                return int(line.split(":")[1])
        raise RuntimeError(f"no clamscan summary: {done.stdout[-500:]} {done.stderr[-500:]}")

    # -- the cleaner

    def cleaner_cmd(self, roots: list[str], home: Path) -> list[str]:
        return [str(CLEANER), "scan", *roots, "--definitions", str(self.bundle),
                "--checks", "files", "--home", str(home), "--json",
                "--workers", str(self.args.workers)]

    def cleaner(self, result: Result) -> None:
        run = run_measured(self.cleaner_cmd([str(r) for r in self.args.roots], self.home),
                           env=self.env)
        result.add(run)
        lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        header = lines[0]
        stats = header["stats"]["files"]
        result.files, result.bytes = stats["files"], stats["bytes"]
        result.notes.update(from_cache=stats["from_cache"], errors=stats["errors"],
                            skipped_large=stats["skipped_large"],
                            rules=header["stats"].get("rules"),
                            cmd=" ".join(self.cleaner_cmd(["ROOTS..."], Path("HOME"))))
        matched: dict[str, set[str]] = {}
        hashes: set[str] = set()
        findings = [row for row in lines[1:] if row.get("record") == "finding"]
        for row in findings:
            for evidence in row["evidence"]:
                if evidence["type"] == "rule":
                    matched.setdefault(row["where"], set()).add(evidence["value"])
                elif evidence["type"] == "hash":
                    hashes.add(row["where"])
        result.findings = len(findings)
        result.matched, result.hash_hits = matched, hashes

    def forget_scans(self) -> None:
        for path in self.home.glob("scan-cache.sqlite*"):
            path.unlink()

    def compile_times(self) -> tuple[float, float]:
        """Scan one tiny file: with an empty home (compiles) and again (cached rules)."""
        tiny = self.work / "tiny"
        tiny.mkdir(exist_ok=True)
        (tiny / "a.txt").write_text("nothing to see\n")
        cold, warm_ = [], []
        for i in range(self.args.runs):
            home = self.work / f"compile-home-{i}"
            shutil.rmtree(home, ignore_errors=True)
            cmd = [*self.cleaner_cmd([str(tiny)], home), "--no-cache"]
            cold.append(run_measured(cmd, env=self.env).wall)
            warm_.append(run_measured(cmd, env=self.env).wall)
            shutil.rmtree(home, ignore_errors=True)
        return median(cold), median(warm_)


# ---------------------------------------------------------------- report


def tool_versions() -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        done = subprocess.run(cmd, capture_output=True, text=True)
        return (done.stdout.strip().splitlines() or ["?"])[0]

    return {"yara": first_line(["yara", "--version"]),
            "clamscan": first_line(["clamscan", "--version"]),
            "yara-x": dist_version("yara-x"), "cleaner": CLEANER_VERSION}


def mb(n: float) -> float:
    return n / 1e6


def compare_hits(yara: Result, cleaner: Result) -> dict[str, Any]:
    ys, cs = set(yara.matched), set(cleaner.matched)
    pairs_y = {(p, r) for p, rules in yara.matched.items() for r in rules}
    pairs_c = {(p, r) for p, rules in cleaner.matched.items() for r in rules}
    return {
        "files_yara": len(ys), "files_cleaner": len(cs), "files_both": len(ys & cs),
        "only_yara": sorted(ys - cs), "only_cleaner": sorted(cs - ys),
        "pairs_yara": len(pairs_y), "pairs_cleaner": len(pairs_c),
        "pairs_only_yara": sorted(pairs_y - pairs_c)[:50],
        "pairs_only_cleaner": sorted(pairs_c - pairs_y)[:50],
        "rules_only_yara": Counter(r for _, r in pairs_y - pairs_c).most_common(20),
        "rules_only_cleaner": Counter(r for _, r in pairs_c - pairs_y).most_common(20),
    }


def table(results: list[Result], scanned: int, files: int) -> str:
    rows = ["| tool | wall s (median) | every run | MB/s | CPU s (median) | others' CPU s "
            "| files | findings | peak RSS MB |",
            "| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in results:
        wall = median(r.walls)
        rows.append(
            f"| {r.name} | {wall:.2f} | {', '.join(f'{w:.1f}' for w in r.walls)} | "
            f"{mb(r.bytes or scanned) / wall:,.0f} | {median(r.cpus):.1f} | "
            f"{', '.join(f'{c:.1f}' for c in r.foreign)} | {r.files or files:,} | "
            f"{r.findings} | {max(r.peaks) / 2**20:,.0f} |")
    return "\n".join(rows)


def alone(tree: Tree, bench: Bench) -> dict[str, Any]:
    """Diagnostics in this process: what the cleaner's fixed costs and its workers' work
    cost without processes, pickling or the cache (CPU seconds)."""
    from cleancenter.cleaner.definitions import load_definitions
    from cleancenter.cleaner.rules import load_serialized, new_scanner, set_externals
    from cleancenter.definitions.keys import PublicKey

    out: dict[str, Any] = {}
    start = time.process_time()
    load_definitions(bench.bundle, PublicKey.parse(bench.env["CLEANCENTER_CLEANER_KEY"]))
    out["load_definitions_s"] = time.process_time() - start
    compiled = next((bench.home / "rules-cache").glob("*.yxc"))
    start = time.process_time()
    rules = load_serialized(compiled)
    out["deserialize_rules_s"] = time.process_time() - start
    scanner = new_scanner(rules)
    read = digest = scan = 0.0
    slowest: list[tuple[float, int, str]] = []
    for path, size in tree.files:
        t0 = time.process_time()
        with open(path, "rb") as handle:
            data = handle.read()
        t1 = time.process_time()
        hashlib.sha256(data).hexdigest()
        t2 = time.process_time()
        set_externals(scanner, path)
        scanner.scan(data)
        t3 = time.process_time()
        read, digest, scan = read + t1 - t0, digest + t2 - t1, scan + t3 - t2
        slowest.append((t3 - t2, size, path))
        del data
    slowest.sort(reverse=True)
    out.update(read_s=read, sha256_s=digest, yara_x_scan_s=scan,
               yara_x_mb_per_cpu_s=mb(tree.bytes) / scan,
               slowest=[(round(t, 3), size, path) for t, size, path in slowest[:10]])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roots", nargs="+", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="yara -p and cleaner --workers")
    parser.add_argument("--max-size-mb", type=int, default=128)
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--no-clamscan", action="store_true")
    parser.add_argument("--wait-idle", type=float, default=120,
                        help="before each timed step, wait at most this long for other "
                        "processes to go quiet")
    parser.add_argument("--no-alone", action="store_true",
                        help="skip the in-process yara-x diagnostics")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the work files here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.roots = [r.resolve() for r in (args.roots or default_roots())]

    info = {"machine": machine(), "tools": tool_versions(), "roots": [str(r) for r in args.roots],
            "runs": args.runs, "workers": args.workers, "max_size_mb": args.max_size_mb}
    print(json.dumps(info, indent=2), flush=True)
    owned = args.work is None
    work = Path(tempfile.mkdtemp(prefix="cc-cleaner-bench-", dir=os.environ.get(
        "BENCH_TMP", "/var/tmp"))) if owned else args.work
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_bench(args, work, info)
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_bench(args: argparse.Namespace, work: Path, info: dict[str, Any]) -> None:
    max_size = args.max_size_mb << 20
    tree = walk_tree(args.roots, max_size)
    log(f"tree: {len(tree.files):,} regular files, {mb(tree.bytes):,.1f} MB; "
        f"{tree.symlinks:,} symlinks and {tree.other} other entries not followed; "
        f"{len(tree.too_large)} larger than {args.max_size_mb} MiB left out: {tree.too_large}")
    log(f"warm-up read of the tree: {warm(tree):.1f} s")

    rules, dropped = choose_rules(corpus() / "yara")
    log(f"rules: {len(rules)} files compile under yara-x and yarac; {len(dropped)} left out")
    for name, why in dropped.items():
        log(f"  left out {name}: {why}")
    bench = Bench(args, work, tree)
    yarac_s = yarac_compile(rules, bench.yarc)
    hashes = make_hashes(tree, args.hashes, args.seed)
    write_hsb(hashes, bench.hsb)
    public = make_bundle(rules, hashes, bench.bundle)
    (work / "key.pub").write_text(public + "\n")  # to re-run the cleaner by hand
    bench.env = dict(os.environ, CLEANCENTER_CLEANER_KEY=public)
    log(f"yarac: {yarac_s:.2f} s; bundle {bench.bundle.stat().st_size / 1e6:.1f} MB; "
        f"{args.hashes:,} hashes, real ones: {[p for _, _, p in hashes.real]}")

    cold, cached = bench.compile_times()
    log(f"cleaner on one tiny file: empty home {cold:.2f} s, compiled rules cached "
        f"{cached:.2f} s (cold compile about {cold - cached:.2f} s)")
    bench.forget_scans()
    run_measured(bench.cleaner_cmd([str(work / "tiny")], bench.home), env=bench.env)

    yara_files = bench.yara_files()
    clam_files = {} if args.no_clamscan else \
        {"default": bench.clamscan_files(False), "lean": bench.clamscan_files(True)}
    log(f"files per tool's own count: yara -c {yara_files:,}; clamscan {clam_files}")

    yara_r = Result(f"`yara -p {args.workers}` (C, compiled rules)", files=yara_files)
    clam_a = Result("`clamscan` (hashes only; archives unpacked, HTML normalized)",
                    files=clam_files.get("default"))
    clam_n = Result("`clamscan --scan-archive=no --normalize=no` (hashes only)",
                    files=clam_files.get("lean"))
    first = Result(f"cleaner first scan (`--workers {args.workers}`, empty scan cache)")
    again = Result("cleaner re-scan (unchanged tree, cache hits)")

    def do_cleaner() -> None:
        bench.forget_scans()
        bench.cleaner(first)
        bench.cleaner(again)

    steps = [("yara", lambda: bench.yara(yara_r)), ("cleaner", do_cleaner)]
    if not args.no_clamscan:
        steps += [("clamscan", lambda: bench.clamscan(clam_a, False)),
                  ("clamscan lean", lambda: bench.clamscan(clam_n, True))]
    for i in range(args.runs):
        order = steps[i % len(steps):] + steps[:i % len(steps)]
        for name, step in order:
            waited = wait_idle(args.wait_idle)
            step()
            log(f"run {i + 1}: {name} done (waited {waited:.0f} s for a quiet machine)")
        log(f"run {i + 1}: yara {yara_r.walls[-1]:.1f} s, cleaner {first.walls[-1]:.1f} s "
            f"then {again.walls[-1]:.2f} s" + (
                "" if args.no_clamscan else
                f", clamscan {clam_a.walls[-1]:.1f} / {clam_n.walls[-1]:.1f} s"))

    diagnostics = {} if args.no_alone else alone(tree, bench)
    if diagnostics:
        log(f"in one process: {diagnostics}")
    results = [yara_r, *([] if args.no_clamscan else [clam_a, clam_n]), first, again]
    scanned = tree.bytes
    print()
    print(table(results, scanned, len(tree.files)))
    ratio_speed = median(yara_r.walls) / median(first.walls)
    ratio_rescan = median(first.walls) / median(again.walls)
    peak = max(first.peaks + again.peaks)
    print()
    print(f"- cleaner first scan / yara -p {args.workers} throughput: {ratio_speed:.2f}x "
          "(goal >= 1.2); per run: "
          f"{[round(y / c, 2) for y, c in zip(yara_r.walls, first.walls, strict=True)]}; "
          f"best of each: {min(yara_r.walls) / min(first.walls):.2f}x; CPU seconds yara / "
          f"cleaner: {median(yara_r.cpus) / median(first.cpus):.2f}")
    print(f"- re-scan speed-up over the first scan: {ratio_rescan:.1f}x (goal >= 10)")
    print(f"- cleaner peak RSS (process tree): {peak / 2**20:,.0f} MB (goal <= 1024); "
          f"yara: {max(yara_r.peaks) / 2**20:,.0f} MB")
    print(f"- cold rule compile: {cold:.2f} s vs {cached:.2f} s with the cache "
          f"(one tiny file scanned)")
    hits = compare_hits(yara_r, first)
    print(f"- YARA hits: yara {hits['files_yara']} files ({hits['pairs_yara']} file-rule "
          f"pairs), cleaner {hits['files_cleaner']} files ({hits['pairs_cleaner']}); both "
          f"{hits['files_both']}; only yara {len(hits['only_yara'])}, only cleaner "
          f"{len(hits['only_cleaner'])}")
    for key in ("only_yara", "only_cleaner", "pairs_only_yara", "pairs_only_cleaner",
                "rules_only_yara", "rules_only_cleaner"):
        print(f"  {key}: {hits[key][:20]}")
    real = {p for _, _, p in hashes.real}
    print(f"- hash hits: cleaner {len(first.hash_hits)} files, clamscan "
          f"{len(clam_a.hash_hits)} / {len(clam_n.hash_hits)}; the {len(real)} chosen files "
          f"all found by the cleaner: {real <= first.hash_hits}")
    print(f"- cleaner stats: first {first.notes}; re-scan {again.notes}")
    print(f"- load average (1 min) at each run's start: yara {yara_r.loads}, cleaner "
          f"{first.loads}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            **info, "tree": {"files": len(tree.files), "bytes": scanned,
                             "symlinks": tree.symlinks, "too_large": tree.too_large},
            "rules": {"kept": len(rules), "dropped": dropped, "yarac_s": yarac_s},
            "compile": {"cold_s": cold, "cached_s": cached},
            "results": [{"name": r.name, "walls": r.walls, "cpus": r.cpus, "peaks": r.peaks,
                         "loads": r.loads, "foreign": r.foreign, "files": r.files, "bytes": r.bytes,
                         "findings": r.findings, "notes": r.notes} for r in results],
            "diagnostics": diagnostics,
            "ratios": {"first_vs_yara": ratio_speed, "rescan_vs_first": ratio_rescan,
                       "first_vs_yara_best": min(yara_r.walls) / min(first.walls)},
            "hits": hits, "hash_hits": {"cleaner": sorted(first.hash_hits),
                                        "clamscan": sorted(clam_a.hash_hits)},
        }, indent=2, default=list))


if __name__ == "__main__":
    sys.exit(main())
