"""A synthetic catalog: up to millions of made-up samples that look like a real center's.

For benchmarks and load tests only. Rows go into the real tables (``sample``,
``sample_name``, ``sample_tag``) through the current schema and every one carries the tag
``synthetic``. The same seed (and the same seed digests) gives the same rows, whatever the
batch size: row ``i`` is made from chunk ``i // CHUNK`` with its own random generator.

What the rows look like:

- file types in a honeypot center's proportions: 32-bit ELF for many CPUs (IoT bots), some
  64-bit ELF, PE32 and PE32+, shell/Perl/Python scripts, archives, plain data;
- sizes log-normal per type (a Mirai build is tens of KiB, a Go miner megabytes);
- families from a fixed list, Zipf-distributed by rank, plus "unknown" (family NULL);
- tags: where it came from (cowrie, dionaea, submission, archive) and what it does;
- first/last seen between 2022-01-01 and 2026-11-01, denser towards the end;
- md5/sha1/sha256: the real digests of a per-row string, so unique and well-formed;
- TLSH digests made from real ones: files of this machine (/usr/bin, /usr/lib) are hashed,
  seeds far apart are picked greedily, and each family gets a root seed; its variants are
  the root with 5-9 body nibbles changed, its members a variant with 3-7 more changed,
  and each gets a new checksum and sometimes a length or quartile ratio one step away
  (`jitter_header`), so members of a family are tens apart and families hundreds.
  Unknown samples are heavier mutations of seeds of their own.

Loading: SQLite through ``executemany`` in transactions of 100,000 rows with
``synchronous=OFF`` and a large page cache for the load; PostgreSQL through ``COPY``.
Both run ``ANALYZE`` at the end so the planners know the new data (PostgreSQL
``VACUUM ANALYZE``, which also lets it answer from indexes alone).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import tlsh
from sqlalchemy import select, text

from cleancenter.store.catalog import SAMPLE, Catalog, CatalogError

CHUNK = 10_000  # rows made with one random generator; fixes the rows whatever the batch
TAG = "synthetic"
EPOCH_START = np.datetime64("2022-01-01T00:00:00", "s")
EPOCH_END = np.datetime64("2026-11-01T00:00:00", "s")
SEED_DIRS = ("/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/lib")
SEED_READ = 256 * 1024  # bytes of each real file hashed for a seed digest
SEED_FILES = 1500
SEED_MIN_APART = 100  # seeds kept are at least this TLSH distance from each other

HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
BODY_FROM = 8  # "T1" + checksum, lvalue and qratio hex digits


class SyntheticError(CatalogError):
    """The synthetic catalog cannot be made or loaded."""


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, n: int = 1) -> None: ...


@dataclass(frozen=True)
class Family:
    name: str | None  # None: unknown
    platform: str  # elf, pe, script, any
    tags: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family("Mirai", "elf", ("ddos", "scanner")),
    Family("Gafgyt", "elf", ("ddos",)),
    Family("Mozi", "elf", ("p2p", "ddos")),
    Family("XorDDoS", "elf", ("ddos", "rootkit")),
    Family("Tsunami", "elf", ("irc", "ddos")),
    Family("CoinMiner", "elf", ("miner",)),
    Family("Emotet", "pe", ("downloader", "spam")),
    Family("AgentTesla", "pe", ("stealer",)),
    Family("ShellBot", "script", ("irc",)),
    Family("Formbook", "pe", ("stealer",)),
    Family("QakBot", "pe", ("banker",)),
    Family("njRAT", "pe", ("rat",)),
    Family("Moobot", "elf", ("ddos",)),
    Family("Kaiten", "elf", ("irc", "ddos")),
    Family("Dofloo", "elf", ("ddos",)),
    Family("Ramnit", "pe", ("worm",)),
    Family("Sality", "pe", ("virus",)),
    Family("Conficker", "pe", ("worm",)),
    Family("TrickBot", "pe", ("banker",)),
    Family("Dridex", "pe", ("banker",)),
    Family("IcedID", "pe", ("banker",)),
    Family("Cutwail", "pe", ("spam",)),
    Family("Rustock", "pe", ("spam", "rootkit")),
    Family("Rbot", "pe", ("irc",)),
    Family("SDBot", "pe", ("irc",)),
    Family("Hajime", "elf", ("p2p",)),
    Family("Zeus", "pe", ("banker",)),
    Family("Andromeda", "pe", ("downloader",)),
    Family("Necurs", "pe", ("spam", "rootkit")),
    Family("Perlbot", "script", ("irc",)),
)
UNKNOWN_SHARE = 0.25
ZIPF_S = 1.1

# file type, share among unknown samples, log-normal median bytes, sigma
TYPES: dict[str, tuple[float, float, float]] = {
    "elf32": (0.30, 90e3, 0.8),
    "elf64": (0.08, 1.5e6, 1.0),
    "pe32": (0.27, 350e3, 1.0),
    "pe32+": (0.07, 1.2e6, 1.0),
    "text": (0.12, 2.5e3, 1.2),
    "zip": (0.06, 600e3, 1.2),
    "gzip": (0.03, 400e3, 1.2),
    "rar": (0.02, 800e3, 1.0),
    "data": (0.05, 60e3, 1.8),
}
PLATFORM_TYPES: dict[str, tuple[tuple[str, float], ...]] = {
    "elf": (("elf32", 0.9), ("elf64", 0.1)),
    "pe": (("pe32", 0.85), ("pe32+", 0.15)),
    "script": (("text", 1.0),),
}
SOURCES = (("cowrie", 0.35), ("dionaea", 0.20), ("submission", 0.30), ("archive", 0.15))
EXTRA_TAGS = (("upx", 0.08), ("packed", 0.05), ("persistence", 0.04))
VERDICTS_UNKNOWN = (("malicious", 0.45), ("suspicious", 0.30), ("clean", 0.10), (None, 0.15))
ARCHES = ("arm", "arm5", "arm6", "arm7", "mips", "mpsl", "x86", "x86_64", "ppc", "m68k",
          "sh4", "spc", "i686", "aarch64")
ELF_STEMS = ("bins", "mirai", "sora", "x", "dvr", "jaws", "kuso", "hoho", "lol", "bot",
             "sshd", "kworker", ".nttpd", "dbus-daemon")
PE_NAMES = ("svchost.exe", "spoolsvc.exe", "winlogon32.exe", "update.exe", "setup.exe",
            "csrss.exe", "lsass.exe", "msupdate.dll", "invoice.exe", "payment_copy.exe",
            "scan_0042.pif", "taskhostw.exe", "explorer32.exe", "wuauclt.dll")
SCRIPT_NAMES = ("bins.sh", "wget.sh", "t.sh", "update.pl", "x.py", "i.sh", "ohshit.sh",
                "run.pl", "c.sh")
ARCHIVE_NAMES = ("invoice.zip", "docs.rar", "update.tar.gz", "payload.zip", "photos.zip")
DATA_NAMES = ("data.bin", "cfg.dat", "dump.raw", "blob", "tmp.bin")


@dataclass(frozen=True)
class SyntheticSample:
    sha256: str
    md5: str
    sha1: str
    size: int
    file_type: str
    first_seen: str  # "YYYY-MM-DD HH:MM:SS.ffffff", naive UTC
    last_seen: str
    tlsh: str | None
    family: str | None
    verdict: str | None
    name: str
    tags: tuple[str, ...]


@dataclass
class LoadReport:
    backend: str
    samples: int = 0
    names: int = 0
    tags: int = 0
    seconds: float = 0.0
    generate_seconds: float = 0.0
    analyze_seconds: float = 0.0
    seed: int = 0
    seed_digests: int = 0
    families: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "samples": self.samples, "names": self.names,
            "tags": self.tags, "seconds": round(self.seconds, 2),
            "generate_seconds": round(self.generate_seconds, 2),
            "analyze_seconds": round(self.analyze_seconds, 2),
            "rows_per_second": round(self.rows_per_second),
            "seed": self.seed, "seed_digests": self.seed_digests,
        }


# -- seed digests from real files -------------------------------------------------------
def _seed_files(limit: int) -> list[Path]:
    out: list[Path] = []
    seen: set[Path] = set()
    for folder in SEED_DIRS:
        base = Path(folder)
        if not base.is_dir():
            continue
        for p in sorted(base.iterdir()):
            try:
                real = p.resolve()
                if real in seen or not real.is_file() or real.stat().st_size < 4096:
                    continue
            except OSError:
                continue
            seen.add(real)
            out.append(real)
            if len(out) >= limit:
                return out
    return out


@lru_cache(maxsize=4)
def real_seed_digests(limit: int = SEED_FILES) -> tuple[str, ...]:
    """TLSH digests of real files of this machine (their first 256 KiB), sorted."""
    digests: set[str] = set()
    for path in _seed_files(limit):
        try:
            with path.open("rb") as fh:
                data = fh.read(SEED_READ)
        except OSError:
            continue
        digest = tlsh.hash(data)
        if digest and digest != "TNULL":
            digests.add(digest)
    return tuple(sorted(digests))


def spread_out(digests: Sequence[str], min_apart: int, rng: np.random.Generator) -> list[str]:
    """Greedily keep digests at least `min_apart` from every one kept before."""
    order = rng.permutation(len(digests))
    kept: list[str] = []
    for i in order.tolist():
        d = digests[i]
        if all(tlsh.diff(d, k) >= min_apart for k in kept):
            kept.append(d)
    return kept


def _ascii(digests: Sequence[str]) -> npt.NDArray[np.uint8]:
    blob = "".join(d.upper() for d in digests).encode("ascii")
    return np.frombuffer(blob, dtype=np.uint8).reshape(len(digests), 72).copy()


def mutate(base: npt.NDArray[np.uint8], rng: np.random.Generator, kmin: int,
           kmax: int) -> npt.NDArray[np.uint8]:
    """Change kmin..kmax random body nibbles of each row of "T1..." ASCII digests."""
    out = base.copy()
    m = out.shape[0]
    k = rng.integers(kmin, kmax + 1, size=m)
    pos = rng.integers(BODY_FROM, 72, size=(m, kmax))
    val = rng.integers(0, 16, size=(m, kmax))
    for j in range(kmax):
        rows = np.flatnonzero(k > j)
        out[rows, pos[rows, j]] = HEX[val[rows, j]]
    return out


_HEXVAL = np.zeros(256, dtype=np.uint8)
_HEXVAL[np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_HEXVAL[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def jitter_header(digests: npt.NDArray[np.uint8], rng: np.random.Generator, *,
                  length: float = 0.3, ratio: float = 0.2) -> npt.NDArray[np.uint8]:
    """Variants of a file differ a little in size and shape too: a new checksum byte, the
    length (lvalue) one step up or down with probability `length`, each quartile ratio
    one step with probability `ratio`. Each change costs 1 in ``tlsh.diff``."""
    out = digests.copy()
    m = out.shape[0]
    val = _HEXVAL[out[:, 2:8]].astype(np.int64)  # checksum, lvalue, qratios: 6 nibbles
    byte = val[:, 0::2] * 16 + val[:, 1::2]  # as written (nibbles swapped)
    byte[:, 0] = rng.integers(0, 256, size=m)
    lvalue = ((byte[:, 1] & 0x0F) << 4) | (byte[:, 1] >> 4)
    step = np.where(rng.random(m) < length, rng.choice([-1, 1], size=m), 0)
    lvalue = (lvalue + step) % 256
    byte[:, 1] = ((lvalue & 0x0F) << 4) | (lvalue >> 4)
    q_hi, q_lo = byte[:, 2] >> 4, byte[:, 2] & 0x0F
    q_hi = (q_hi + np.where(rng.random(m) < ratio, rng.choice([-1, 1], size=m), 0)) % 16
    q_lo = (q_lo + np.where(rng.random(m) < ratio, rng.choice([-1, 1], size=m), 0)) % 16
    byte[:, 2] = q_hi * 16 + q_lo
    nibbles = np.stack([byte >> 4, byte & 0x0F], axis=2).reshape(m, 6)
    out[:, 2:8] = HEX[nibbles]
    return out


def _strings(arr: npt.NDArray[np.uint8]) -> list[str]:
    return [s.decode("ascii") for s in arr.view("S72").ravel().tolist()]


def _pick(rng: np.random.Generator, choices: Sequence[tuple[Any, float]], n: int
          ) -> npt.NDArray[np.int64]:
    p = np.array([w for _, w in choices], dtype=np.float64)
    return rng.choice(len(choices), size=n, p=p / p.sum())


class Generator:
    """Deterministic rows for a seed; `seed_digests` defaults to this machine's files."""

    def __init__(self, seed: int = 0, seed_digests: Sequence[str] | None = None) -> None:
        self.seed = seed
        pool = list(seed_digests) if seed_digests is not None else list(real_seed_digests())
        for d in pool:
            tlsh.diff(d, d)  # raises ValueError on a bad seed
        rng = np.random.default_rng([seed, 0x5EED])
        spread = spread_out(sorted(set(pool)), SEED_MIN_APART, rng)
        if len(spread) < len(FAMILIES) + 1:
            raise SyntheticError(f"{len(spread)} seed digests far enough apart; "
                                 f"need at least {len(FAMILIES) + 1}")
        self.seed_count = len(spread)
        roots = spread[: len(FAMILIES)]
        self.unknown_seeds = _ascii(spread[len(FAMILIES):])
        ranks = np.arange(1, len(FAMILIES) + 1, dtype=np.float64)
        zipf = ranks ** -ZIPF_S
        self.family_p = np.append(zipf / zipf.sum() * (1 - UNKNOWN_SHARE), UNKNOWN_SHARE)
        # variants per family: more for the big ones (2..12)
        self.variants: list[npt.NDArray[np.uint8]] = []
        for i, root in enumerate(roots):
            count = int(np.clip(round(12 * (1 / (i + 1)) ** 0.5), 2, 12))
            self.variants.append(jitter_header(mutate(_ascii([root] * count), rng, 5, 9),
                                               rng))
        self.type_names = list(TYPES)
        self.unknown_type_p = np.array([TYPES[t][0] for t in self.type_names])
        self.unknown_type_p /= self.unknown_type_p.sum()

    # -- rows ------------------------------------------------------------------------
    def chunk(self, number: int, count: int = CHUNK) -> list[SyntheticSample]:
        """Rows number*CHUNK .. number*CHUNK+count-1 (count <= CHUNK)."""
        rng = np.random.default_rng([self.seed, number])
        n = CHUNK  # always draw a whole chunk so a short last chunk is a prefix of it
        nf = len(FAMILIES)
        fam = rng.choice(nf + 1, size=n, p=self.family_p)
        # file types
        types = np.empty(n, dtype=object)
        u = rng.random(n)
        unknown = fam == nf
        types[unknown] = np.array(self.type_names, dtype=object)[
            rng.choice(len(self.type_names), size=n, p=self.unknown_type_p)[unknown]]
        for i, fam_def in enumerate(FAMILIES):
            rows = np.flatnonzero(fam == i)
            acc = 0.0
            options = PLATFORM_TYPES[fam_def.platform]
            for t, share in options:
                sel = rows[(u[rows] >= acc) & (u[rows] < acc + share)] if share < 1 else rows
                types[sel] = t
                acc += share
            types[rows[types[rows] == None]] = options[0][0]  # noqa: E711 (numpy mask)
        # sizes
        medians = np.array([TYPES[t][1] for t in types])
        sigmas = np.array([TYPES[t][2] for t in types])
        sizes = np.clip(np.exp(np.log(medians) + sigmas * rng.standard_normal(n)),
                        64, 64 * 2**20).astype(np.int64)
        # dates: denser towards the end
        span = int((EPOCH_END - EPOCH_START) / np.timedelta64(1, "s"))
        first = EPOCH_START + (rng.random(n) ** 0.7 * span).astype("timedelta64[s]")
        stay = np.minimum(rng.exponential(20 * 86400, n), 400 * 86400).astype(np.int64)
        last = np.minimum(first + stay.astype("timedelta64[s]"), EPOCH_END)
        first_txt = np.char.replace(np.datetime_as_string(first.astype("datetime64[us]")),
                                    "T", " ").tolist()
        last_txt = np.char.replace(np.datetime_as_string(last.astype("datetime64[us]")),
                                   "T", " ").tolist()
        # TLSH: family members around one of the family's variants, unknowns farther out
        digests = np.empty((n, 72), dtype=np.uint8)
        for i in range(nf):
            rows = np.flatnonzero(fam == i)
            if len(rows):
                var = self.variants[i]
                base = var[rng.integers(len(var), size=len(rows))]
                digests[rows] = jitter_header(mutate(base, rng, 3, 7), rng)
        rows = np.flatnonzero(unknown)
        if len(rows):
            seeds = self.unknown_seeds
            base = seeds[rng.integers(len(seeds), size=len(rows))]
            digests[rows] = jitter_header(mutate(base, rng, 12, 30), rng, length=0.5,
                                          ratio=0.4)
        tlsh_txt = _strings(digests)
        # tags, names, verdicts
        source = _pick(rng, SOURCES, n)
        extra = rng.random((n, len(EXTRA_TAGS)))
        verdict_unknown = _pick(rng, VERDICTS_UNKNOWN, n)
        name_pick = rng.integers(0, 1 << 30, size=(n, 2))
        out = []
        base_index = number * CHUNK
        for j in range(count):
            i = base_index + j
            key = f"cleancenter-synthetic:{self.seed}:{i}".encode()
            f = int(fam[j])
            family = FAMILIES[f] if f < nf else None
            t = str(types[j])
            size = int(sizes[j])
            tags = [TAG, SOURCES[int(source[j])][0]]
            if family is not None:
                tags += family.tags
            for x, (tag, share) in enumerate(EXTRA_TAGS):
                if extra[j, x] < share:
                    tags.append(tag)
            out.append(SyntheticSample(
                sha256=hashlib.sha256(key).hexdigest(),
                md5=hashlib.md5(key, usedforsecurity=False).hexdigest(),
                sha1=hashlib.sha1(key, usedforsecurity=False).hexdigest(),
                size=size, file_type=t,
                first_seen=first_txt[j], last_seen=last_txt[j],
                tlsh=tlsh_txt[j] if size >= 256 else None,
                family=family.name if family else None,
                verdict="malicious" if family else VERDICTS_UNKNOWN[int(verdict_unknown[j])][0],
                name=_name(t, int(name_pick[j, 0]), int(name_pick[j, 1])),
                tags=tuple(sorted(set(tags))),
            ))
        return out

    def rows(self, n: int) -> Iterator[SyntheticSample]:
        for number in range((n + CHUNK - 1) // CHUNK):
            yield from self.chunk(number, min(CHUNK, n - number * CHUNK))


def _name(file_type: str, a: int, b: int) -> str:
    if file_type.startswith("elf"):
        return f"{ELF_STEMS[a % len(ELF_STEMS)]}.{ARCHES[b % len(ARCHES)]}"
    if file_type.startswith("pe"):
        return PE_NAMES[a % len(PE_NAMES)]
    if file_type == "text":
        return SCRIPT_NAMES[a % len(SCRIPT_NAMES)]
    if file_type in ("zip", "gzip", "rar"):
        return ARCHIVE_NAMES[a % len(ARCHIVE_NAMES)]
    return DATA_NAMES[a % len(DATA_NAMES)]


# -- loading ---------------------------------------------------------------------------
SQLITE_BATCH = 100_000

_SAMPLE_COLS = ("sha256", "md5", "sha1", "size", "file_type", "first_seen", "last_seen",
                "tlsh", "analysis_state", "verdict", "family")


def _sample_row(s: SyntheticSample) -> tuple[Any, ...]:
    return (s.sha256, s.md5, s.sha1, s.size, s.file_type, s.first_seen, s.last_seen,
            s.tlsh, "done", s.verdict, s.family)


def load(catalog: Catalog, n: int, *, seed: int = 0, progress: Progress | None = None,
         generator: Generator | None = None) -> LoadReport:
    """Put n synthetic samples into the catalog (which must not hold this seed's rows)."""
    gen = generator if generator is not None else Generator(seed)
    report = LoadReport(backend=catalog.dialect, seed=gen.seed, seed_digests=gen.seed_count)
    first = gen.chunk(0, 1)[0].sha256 if n else None
    if first is not None:
        with catalog.engine.connect() as conn:
            if conn.execute(select(SAMPLE.c.sha256).where(SAMPLE.c.sha256 == first)).first():
                raise SyntheticError(f"the catalog already holds synthetic rows of seed "
                                     f"{gen.seed}")
    if progress is not None:
        progress.start(f"synthetic samples ({catalog.dialect})", n)
    start = time.perf_counter()
    if catalog.dialect == "sqlite":
        _load_sqlite(catalog, gen, n, report, progress)
    elif catalog.dialect == "postgresql":
        _load_postgresql(catalog, gen, n, report, progress)
    else:
        raise SyntheticError(f"no bulk loader for {catalog.dialect}")
    loaded = time.perf_counter()
    if catalog.dialect == "postgresql":
        # VACUUM too: fresh COPY rows are not all-visible, so no index-only scans before it
        with catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("sample", "sample_name", "sample_tag"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    else:
        with catalog.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    report.analyze_seconds = time.perf_counter() - loaded
    report.seconds = time.perf_counter() - start
    return report


def _chunks(gen: Generator, n: int, report: LoadReport) -> Iterator[list[SyntheticSample]]:
    for number in range((n + CHUNK - 1) // CHUNK):
        t0 = time.perf_counter()
        rows = gen.chunk(number, min(CHUNK, n - number * CHUNK))
        report.generate_seconds += time.perf_counter() - t0
        yield rows


def _load_sqlite(catalog: Catalog, gen: Generator, n: int, report: LoadReport,
                 progress: Progress | None) -> None:
    raw = catalog.engine.raw_connection()
    try:
        db: Any = raw.driver_connection
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1048576")  # 1 GiB while the b-trees grow
        db.execute("PRAGMA temp_store=MEMORY")
        sample_sql = (f"INSERT INTO sample ({', '.join(_SAMPLE_COLS)}) "
                      f"VALUES ({', '.join('?' * len(_SAMPLE_COLS))})")
        name_sql = "INSERT INTO sample_name (sha256, name, first_seen) VALUES (?, ?, ?)"
        tag_sql = "INSERT INTO sample_tag (sha256, tag) VALUES (?, ?)"
        pending = 0
        db.execute("BEGIN")
        for rows in _chunks(gen, n, report):
            db.executemany(sample_sql, [_sample_row(s) for s in rows])
            db.executemany(name_sql, [(s.sha256, s.name, s.first_seen) for s in rows])
            tags = [(s.sha256, t) for s in rows for t in s.tags]
            db.executemany(tag_sql, tags)
            report.samples += len(rows)
            report.names += len(rows)
            report.tags += len(tags)
            pending += len(rows)
            if pending >= SQLITE_BATCH:
                db.execute("COMMIT")
                db.execute("BEGIN")
                pending = 0
            if progress is not None:
                progress.advance(len(rows))
        db.execute("COMMIT")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA cache_size=-65536")
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def _tsv(values: Sequence[Any]) -> str:
    return "\t".join("\\N" if v is None else str(v) for v in values)


def _load_postgresql(catalog: Catalog, gen: Generator, n: int, report: LoadReport,
                     progress: Progress | None) -> None:
    raw = catalog.engine.raw_connection()
    try:
        pg: Any = raw.driver_connection
        with pg.cursor() as cur:
            for rows in _chunks(gen, n, report):
                samples = io.StringIO()
                names = io.StringIO()
                tags = io.StringIO()
                tag_count = 0
                for s in rows:
                    samples.write(_tsv(_sample_row(s)) + "\n")
                    names.write(f"{s.sha256}\t{s.name}\t{s.first_seen}\n")
                    for t in s.tags:
                        tags.write(f"{s.sha256}\t{t}\n")
                        tag_count += 1
                with cur.copy(f"COPY sample ({', '.join(_SAMPLE_COLS)}) FROM STDIN") as cp:
                    cp.write(samples.getvalue())
                with cur.copy("COPY sample_name (sha256, name, first_seen) FROM STDIN") as cp:
                    cp.write(names.getvalue())
                with cur.copy("COPY sample_tag (sha256, tag) FROM STDIN") as cp:
                    cp.write(tags.getvalue())
                report.samples += len(rows)
                report.names += len(rows)
                report.tags += tag_count
                if progress is not None:
                    progress.advance(len(rows))
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
