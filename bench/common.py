"""Shared helpers for benchmarks: machine description, medians, fresh catalogs."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "CLEANCENTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parent.parent


def corpus() -> Path:
    return Path(os.environ.get("CLEANCENTER_CORPUS", REPO.parent / "shared" / "corpus"))


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pg = "unreachable"
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            pg = str(conn.execute(text("show server_version")).scalar_one())
        engine.dispose()
    except Exception:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "kernel": platform.release(),
        "load_avg_at_start": os.getloadavg(),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def run_quiet(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, dropped afterwards."""
    schema = f"cc_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def sqlite_url() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP", "/var/tmp")) as d:
        yield f"sqlite:///{d}/data/catalog.sqlite", Path(d) / "data"


SYSTEM_ELF_MAX = 32 * 2**20  # bigger system files are left out of the corpus


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def spread(items: list[Path], n: int) -> list[Path]:
    """n items evenly spaced through a sorted list: a stable, unbiased sample."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def system_elfs(n: int) -> list[Path]:
    """About n real ELF files of this machine, half programs, half shared libraries."""
    out: list[Path] = []
    seen: set[Path] = set()
    for pattern in ("usr/bin/*", "usr/lib/x86_64-linux-gnu/*.so*"):
        found: list[Path] = []
        for p in sorted(Path("/").glob(pattern)):
            real = p.resolve()
            if real in seen or not real.is_file() or not is_elf(real):
                continue
            if real.stat().st_size > SYSTEM_ELF_MAX:
                continue
            seen.add(real)
            found.append(real)
        out += spread(found, n // 2)
    return out
