"""Tests for `cleancenter ingest cowrie`: real logs, downloads, bad lines, kill -9, --follow.

The real Cowrie logs of the shared corpus are counted independently with plain `json`
(the eventid -> kind table below is written out here, not imported) and compared with
what the catalog holds, on SQLite and PostgreSQL. Downloads, bad input, a killed run and
a followed log use small synthetic Cowrie lines with the fields real Cowrie writes
(see tests/e2e/cowrie_honeypot.py). Subprocess tests run on SQLite only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cleancenter.center import Center
from cleancenter.collect.cowrie_batches import cursor_key
from cleancenter.collect.ingest import FOLLOW_POLL_SECONDS, Ingestor, IngestReport
from cleancenter.store.queries import EventFilter, find_events, get_sample

COWRIE_DIR = Path("honeypot") / "cowrie"
REPO = Path(__file__).resolve().parents[2]

# Independent of cowrie.KIND_BY_EVENTID on purpose: the catalog's vocabulary, by hand.
EXPECTED_KIND = {
    "cowrie.session.connect": "connect",
    "cowrie.session.closed": "disconnect",
    "cowrie.login.success": "login",
    "cowrie.login.failed": "login-failed",
    "cowrie.command.input": "command",
    "cowrie.command.failed": "command",
    "cowrie.session.file_download": "download",
    "cowrie.session.file_download.failed": "download-failed",
    "cowrie.session.file_upload": "upload",
    "cowrie.direct-tcpip.request": "tunnel",
    "cowrie.direct-tcpip.data": "tunnel",
    "cowrie.client.version": "client",
    "cowrie.client.kex": "client",
    "cowrie.client.size": "client",
    "cowrie.client.var": "client",
    "cowrie.client.fingerprint": "client",
    "cowrie.log.open": "other",  # a tty log started: no kind of its own
    "cowrie.log.closed": "other",
}

SENSOR = "cc-test-sensor"
WAIT_SECONDS = 20.0


# -- helpers ---------------------------------------------------------------------------
def cowrie_line(eventid: str, session: str, second: int, **fields: Any) -> bytes:
    """One log line shaped like Cowrie's own (timestamps one second apart)."""
    rec: dict[str, Any] = {
        "eventid": eventid,
        "timestamp": f"2018-05-06T17:{second // 60 % 60:02d}:{second % 60:02d}.{second:06d}Z",
        "session": session,
        "src_ip": fields.pop("src_ip", "198.51.100.7"),
        "sensor": SENSOR,
        "message": eventid,
        "isError": 0,
        "system": "HoneyPotSSHTransport,0,198.51.100.7",
    }
    rec.update(fields)
    return json.dumps(rec).encode() + b"\n"


def connect_line(session: str, second: int, src_port: int = 40022,
                 src_ip: str = "198.51.100.7") -> bytes:
    return cowrie_line(
        "cowrie.session.connect", session, second, src_ip=src_ip, src_port=src_port,
        dst_ip="10.0.0.5", dst_port=2222, protocol="ssh",
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ingest(center: Center, logs: list[Path], **kwargs: Any) -> IngestReport:
    return Ingestor(center.catalog, center.blobs).ingest_cowrie(logs, **kwargs)


def rows(center: Center, sql: str, **params: Any) -> list[Any]:
    with center.catalog.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def scalar(center: Center, sql: str, **params: Any) -> Any:
    return rows(center, sql, **params)[0][0]


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "cleancenter"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cleancenter"]


def cli_env() -> dict[str, str]:
    """The environment without CLEANCENTER_* settings, so --data-dir alone decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CLEANCENTER_")}


def run_cli(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_command(), "--data-dir", str(data_dir), "ingest", "cowrie", *args],
        capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=data_dir.parent,
    )


def start_cli(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cli_command(), "--data-dir", str(data_dir), "ingest", "cowrie", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        cwd=data_dir.parent,
    )


def db_query(data_dir: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """Read the SQLite catalog of a running CLI (read-only); None while it is not there."""
    db = data_dir / "catalog.sqlite"
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # schema not created yet, or busy
        return None


def event_count(data_dir: Path) -> int | None:
    found = db_query(data_dir, "select count(*) from event")
    return None if found is None else int(found[0][0])


def has_events(data_dir: Path) -> Callable[[], bool]:
    return lambda: bool(event_count(data_dir))


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[str] | None = None,
             timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"cleancenter exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"cleancenter did not stop on signal {sig}:\n{out}\n{err}")
    return proc.returncode, out, err


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen[str]]]:
    """Subprocesses a test started; any still running at the end is killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# -- the real corpus, counted with plain json ---------------------------------------------
@dataclass
class CorpusFacts:
    files: list[Path]
    lines: int = 0
    per_eventid: Counter[str] = field(default_factory=Counter)
    src_ips: set[str] = field(default_factory=set)
    # session -> (src_port, dst_ip, dst_port, protocol) of its cowrie.session.connect
    connects: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    session_files: dict[str, set[Path]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def cowrie_logs(corpus: Path) -> list[Path]:
    files = sorted((corpus / COWRIE_DIR).glob("cowrie.json.2018-05-*"))
    if not files:
        pytest.skip(f"no Cowrie logs under {corpus / COWRIE_DIR}")
    return files


@pytest.fixture(scope="module")
def facts(cowrie_logs: list[Path]) -> CorpusFacts:
    found = CorpusFacts(files=cowrie_logs)
    for path in cowrie_logs:
        with path.open("rb") as fh:
            for line in fh:
                rec = json.loads(line)
                found.lines += 1
                found.per_eventid[rec["eventid"]] += 1
                found.src_ips.add(rec["src_ip"])
                found.session_files.setdefault(rec["session"], set()).add(path)
                if rec["eventid"] == "cowrie.session.connect":
                    found.connects[rec["session"]] = (
                        rec["src_port"], rec["dst_ip"], rec["dst_port"], rec["protocol"])
    return found


def test_real_corpus_counts_match_catalog(center: Center, facts: CorpusFacts) -> None:
    unknown = set(facts.per_eventid) - set(EXPECTED_KIND)
    assert not unknown, f"eventids the test has no kind for: {unknown}"
    expected_kinds: Counter[str] = Counter()
    for eventid, n in facts.per_eventid.items():
        expected_kinds[EXPECTED_KIND[eventid]] += n

    report = ingest(center, facts.files)

    assert report.error_count == 0, report.errors[:5]
    assert report.events_read == report.events_new == facts.lines
    assert dict(rows(center, "select kind, count(*) from event group by kind")) == expected_kinds
    assert dict(rows(center, "select source_event, count(*) from event group by source_event")
                ) == facts.per_eventid
    assert scalar(center, "select count(distinct src_ip) from event") == len(facts.src_ips)
    assert {r[0] for r in rows(center, "select distinct src_ip from event")} == facts.src_ips
    assert scalar(center, "select count(distinct uid) from event") == facts.lines
    assert scalar(center, "select count(*) from event where source = 'cowrie'") == facts.lines
    assert scalar(center, "select count(*) from ingest_error") == 0

    # Every record of a session whose connect was seen carries the connect's facts.
    carried = rows(center, "select session, src_port, dst_ip, dst_port, protocol from event "
                           "where kind <> 'connect'")
    assert len(carried) == facts.lines - facts.per_eventid["cowrie.session.connect"]
    wrong = [r for r in carried if r[0] in facts.connects
             and tuple(r[1:]) != facts.connects[r[0]]]
    assert not wrong, wrong[:5]
    assert all(r[0] in facts.connects for r in carried)
    # a tunnel request names its own target in raw; the event keeps the session's ports
    tunnel = rows(center, "select session, dst_port, raw from event "
                          "where source_event = 'cowrie.direct-tcpip.request' limit 1")[0]
    assert tunnel[1] == facts.connects[tunnel[0]][2]
    assert json.loads(tunnel[2])["dst_port"] != tunnel[1]

    # time, sensor, session, source and kind of each record of a real session
    lines = [json.loads(x) for x in facts.files[3].read_bytes().splitlines()]
    session = Counter(r["session"] for r in lines).most_common(1)[0][0]
    mine = [r for r in lines if r["session"] == session]
    with center.catalog.engine.connect() as conn:
        got = find_events(conn, EventFilter(session=session, limit=10_000), with_raw=True)
    assert sorted((e["time"], e["sensor"], e["src_ip"], e["source_event"], e["kind"])
                  for e in got) == sorted(
        (datetime.fromisoformat(r["timestamp"]), r["sensor"], r["src_ip"], r["eventid"],
         EXPECTED_KIND[r["eventid"]]) for r in mine)
    assert all(e["time"].tzinfo is not None for e in got)

    # the raw JSON is the line as written; a download keeps url and shasum
    first = facts.files[0].read_bytes().splitlines()[0].decode()
    assert rows(center, "select raw from event where raw = :raw", raw=first)
    downloads = rows(center, "select url, sample_sha256 from event where kind = 'download'")
    assert len(downloads) == facts.per_eventid["cowrie.session.file_download"] == 4
    assert all(url and len(sha or "") == 64 for url, sha in downloads)

    # Ingesting the same logs again adds nothing: the cursors are at the end...
    again = ingest(center, facts.files)
    assert (again.events_read, again.events_new, again.error_count) == (0, 0, 0)
    assert scalar(center, "select count(*) from event") == facts.lines


def test_same_records_under_another_name_add_nothing(
    center: Center, facts: CorpusFacts, tmp_path: Path
) -> None:
    """No cursor for a copy, so it is read again; the record uids keep it out."""
    day = facts.files[-1]
    n = len(day.read_bytes().splitlines())
    assert ingest(center, [day]).events_new == n
    copy = tmp_path / "copy-of-log.json"
    shutil.copyfile(day, copy)
    again = ingest(center, [copy])
    assert (again.events_read, again.events_new) == (n, 0)
    assert scalar(center, "select count(*) from event") == n


def test_session_split_over_two_logs_ingested_in_separate_runs(
    center: Center, facts: CorpusFacts, tmp_path: Path
) -> None:
    """A session that continues in the next daily log gets its connect's ports from the
    catalog. No real session spans two days of this corpus (``facts.session_files``), so
    one real day is cut in two in the middle of its longest session."""
    day = facts.files[-1]
    lines = day.read_bytes().splitlines(keepends=True)
    sessions = [json.loads(line)["session"] for line in lines]
    longest = Counter(sessions).most_common(1)[0][0]
    at = [i for i, s in enumerate(sessions) if s == longest]
    cut = at[len(at) // 2]
    first, second = tmp_path / "cowrie.json.1", tmp_path / "cowrie.json"
    first.write_bytes(b"".join(lines[:cut]))
    second.write_bytes(b"".join(lines[cut:]))
    open_at_cut = set(sessions[:cut]) & set(sessions[cut:])
    assert longest in open_at_cut and len(at[len(at) // 2:]) >= 2

    assert ingest(center, [first]).events_new == cut
    assert ingest(center, [second]).events_new == len(lines) - cut

    for session in sorted(open_at_cut):
        got = rows(center, "select src_port, dst_ip, dst_port, protocol from event "
                           "where session = :s and kind <> 'connect'", s=session)
        assert got, session
        assert {tuple(r) for r in got} == {facts.connects[session]}, session


# -- downloads -----------------------------------------------------------------------------
WGET = b"#!/bin/sh\necho 'harmless cleancenter test loader'\n"
REDIR = b"\x7fELF-not-really\x00harmless redirect bytes\x00\xff\n"
UPLOAD = b"#!/bin/sh\necho harmless sftp upload\n"
CLAIMED = b"what the log says was downloaded"
TAMPERED = b"what the download dir holds instead"
MISSING = b"never saved in the download dir"
SESSION = "c0ffee000001"
WGET_URL = "http://203.0.113.9/bins/x.sh?id=1"


def download_log(path: Path) -> Path:
    outfile = "var/lib/cowrie/downloads/"
    lines = [
        connect_line(SESSION, 1),
        cowrie_line("cowrie.login.success", SESSION, 2, username="root", password="admin"),
        cowrie_line("cowrie.command.input", SESSION, 3, input=f"wget {WGET_URL}"),
        cowrie_line("cowrie.session.file_download", SESSION, 4, url=WGET_URL,
                    shasum=sha256(WGET), outfile=outfile + sha256(WGET)),
        cowrie_line("cowrie.session.file_download", SESSION, 5, destfile="/tmp/.d/echo.bin",
                    shasum=sha256(REDIR), outfile=outfile + sha256(REDIR), duplicate=False),
        cowrie_line("cowrie.session.file_upload", SESSION, 6, filename="up.sh",
                    shasum=sha256(UPLOAD).upper(), outfile=outfile + sha256(UPLOAD)),
        cowrie_line("cowrie.session.file_download", SESSION, 7, url="http://203.0.113.9/b.sh",
                    shasum=sha256(CLAIMED), outfile=outfile + sha256(CLAIMED)),
        cowrie_line("cowrie.session.file_download", SESSION, 8, url="http://203.0.113.9/gone",
                    shasum=sha256(MISSING), outfile=outfile + sha256(MISSING)),
        cowrie_line("cowrie.session.closed", SESSION, 9, duration=8.0),
    ]
    path.write_bytes(b"".join(lines))
    return path


def downloads_dir(path: Path) -> Path:
    path.mkdir()
    for content in (WGET, REDIR, UPLOAD):
        (path / sha256(content)).write_bytes(content)
    (path / sha256(CLAIMED)).write_bytes(TAMPERED)  # its name is not its hash
    return path


def check_downloaded_samples(center: Center) -> None:
    expected = {sha256(WGET): ("x.sh", WGET), sha256(REDIR): ("echo.bin", REDIR),
                sha256(UPLOAD): ("up.sh", UPLOAD)}
    with center.catalog.engine.connect() as conn:
        for sha, (name, content) in expected.items():
            sample = get_sample(conn, sha)
            assert sample is not None, name
            assert (sample.sha256, sample.md5, sample.sha1, sample.size) == (
                sha, hashlib.md5(content).hexdigest(), hashlib.sha1(content).hexdigest(),
                len(content))
            assert sample.names == [name]
            assert "cowrie" in sample.tags
            assert sample.event_count == 1
            assert center.blobs.read(sha) == content
        assert get_sample(conn, sha256(CLAIMED)) is None
        assert get_sample(conn, sha256(MISSING)) is None
    linked = rows(center, "select source_event, sample_sha256, src_port, dst_port, protocol "
                          "from event where sample_sha256 is not null order by time")
    assert linked == [
        ("cowrie.session.file_download", sha256(WGET), 40022, 2222, "ssh"),
        ("cowrie.session.file_download", sha256(REDIR), 40022, 2222, "ssh"),
        ("cowrie.session.file_upload", sha256(UPLOAD), 40022, 2222, "ssh"),
        ("cowrie.session.file_download", sha256(CLAIMED), 40022, 2222, "ssh"),
        ("cowrie.session.file_download", sha256(MISSING), 40022, 2222, "ssh"),
    ]
    # the tampered file is kept under its real hash, and no event points at it
    assert scalar(center, "select count(*) from event where sample_sha256 = :s",
                  s=sha256(TAMPERED)) == 0


def test_downloads_become_linked_samples(center: Center, tmp_path: Path) -> None:
    log = download_log(tmp_path / "cowrie.json")
    dl = downloads_dir(tmp_path / "downloads")

    report = ingest(center, [log], downloads=dl)

    assert report.events_new == 9
    assert report.samples_new >= 3
    check_downloaded_samples(center)
    mismatch = str(dl / sha256(CLAIMED))
    assert mismatch in {e.location for e in report.errors}
    assert all(e.location == mismatch for e in report.errors), report.errors
    assert all(sha256(TAMPERED) in e.message for e in report.errors)
    stored = rows(center, "select source, location, message from ingest_error")
    assert stored and {(s, loc) for s, loc, _ in stored} == {("cowrie", mismatch)}
    assert (dl / sha256(WGET)).read_bytes() == WGET  # the download dir is only read


@pytest.mark.parametrize("follow", [False, True], ids=["once", "follow"])
def test_mismatched_download_is_reported_once_per_run(
    sqlite_center: Center, tmp_path: Path, follow: bool
) -> None:
    log = download_log(tmp_path / "cowrie.json")
    dl = downloads_dir(tmp_path / "downloads")
    flag = threading.Event()
    if follow:  # about four polls of the follow loop, then stop
        threading.Timer(4 * FOLLOW_POLL_SECONDS, flag.set).start()
    report = ingest(sqlite_center, [log], downloads=dl, follow=follow, stop=flag)
    assert report.error_count == 1
    assert scalar(sqlite_center, "select count(*) from ingest_error") == 1


def test_downloads_dir_given_later_is_backfilled(center: Center, tmp_path: Path) -> None:
    log = download_log(tmp_path / "cowrie.json")
    dl = downloads_dir(tmp_path / "downloads")

    first = ingest(center, [log])
    assert (first.events_new, first.samples_new, first.error_count) == (9, 0, 0)
    assert scalar(center, "select count(*) from sample") == 0

    second = ingest(center, [log], downloads=dl)
    assert (second.events_read, second.events_new) == (0, 0)
    check_downloaded_samples(center)

    third = ingest(center, [log], downloads=dl)
    assert third.samples_new == 0


# -- bad lines -----------------------------------------------------------------------------
def _good(second: int, **fields: Any) -> bytes:
    return cowrie_line("cowrie.login.failed", "bad0bad0bad0", second,
                       username="root", password=f"pw{second}", **fields)


def _json(rec: Any) -> bytes:
    return json.dumps(rec).encode() + b"\n"


def _without(key: str) -> bytes:
    rec = json.loads(_good(50))
    del rec[key]
    return _json(rec)


def _with(**fields: Any) -> bytes:
    rec = json.loads(_good(60))
    rec.update(fields)
    return _json(rec)


# (line, what the ingest must do with it, a word the error message must contain)
BAD_INPUT: list[tuple[bytes, str, str]] = [
    (connect_line("bad0bad0bad0", 1), "ok", ""),
    (_good(2)[:57] + b"\n", "error", "JSON"),  # truncated: Cowrie died mid-write
    (_good(3), "ok", ""),
    (_with(src_port="abc"), "error", "src_port"),
    (_with(timestamp=5), "error", "timestamp"),
    (_good(6).replace(b"pw6", b"pw\xff\xfe6"), "error", "UTF-8"),
    (_without("eventid"), "error", "eventid"),
    (_without("timestamp"), "error", "timestamp"),
    (_json([json.loads(_good(9))]), "error", "list"),
    (b"\n", "blank", ""),
    (_good(11), "ok", ""),
    (_json(None), "error", "NoneType"),
    (_with(timestamp="yesterday"), "error", "timestamp"),
    (_with(timestamp="9999-12-31T23:59:59-01:00"), "error", "timestamp"),
    (_with(src_port=70000), "error", "src_port"),
    (_with(session=["x"]), "error", "session"),
    (_with(session="s" * 200), "error", "session"),  # longer than the catalog column
    (_with(src_ip="10.0.0.1\u0000"), "error", "NUL"),
    (_with(eventid="cowrie.session.file_download", url="http://x/y"), "error", "shasum"),
    (_with(eventid="cowrie.session.file_download", shasum="not-a-hash"), "error", "sha256"),
    (b'{"eventid": "cowrie.login.failed", "src_port": ' + b"9" * 5000 + b"}\n", "error",
     "JSON"),
    (b"[" * 5000 + b"]" * 5000 + b"\n", "error", "JSON"),
    (_with(url="http://x/\udc80"), "error", "surrogate"),
    (_with(src_port=float("nan")), "error", "JSON"),
    (_with(eventid="cowrie.session.file_download.failed", url="http://203.0.113.9/a\u0000b"),
     "ok", ""),  # a NUL in free text is kept (as U+FFFD; raw keeps the original)
    (_good(26), "ok", ""),
]
BAD_LINE_NUMBERS = [2, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]


def bad_log(path: Path) -> Path:
    path.write_bytes(b"".join(line for line, _, _ in BAD_INPUT))
    return path


def test_bad_lines_are_reported_and_the_rest_goes_in(center: Center, tmp_path: Path) -> None:
    log = bad_log(tmp_path / "cowrie.json")
    expected = [n for n, (_, what, _) in enumerate(BAD_INPUT, 1) if what == "error"]
    assert expected == BAD_LINE_NUMBERS
    good = [line for line, what, _ in BAD_INPUT if what == "ok"]

    report = ingest(center, [log])

    assert [e.location for e in report.errors] == [f"{log}:{n}" for n in BAD_LINE_NUMBERS]
    for error, n in zip(report.errors, BAD_LINE_NUMBERS, strict=True):
        word = BAD_INPUT[n - 1][2]
        assert word.lower() in error.message.lower(), (n, error.message)
    assert (report.events_read, report.events_new) == (len(good), len(good))
    assert report.lines_skipped == 1
    stored = rows(center, "select source, location, message from ingest_error order by id")
    assert [(s, loc, msg) for s, loc, msg in stored] == [
        ("cowrie", e.location, e.message) for e in report.errors]
    raws = {r[0] for r in rows(center, "select raw from event")}
    assert raws == {line.decode().strip() for line in good}
    # the login failures of the session got its connect's port, the kept NUL became U+FFFD
    assert {r[0] for r in rows(center, "select src_port from event")} == {40022}
    assert rows(center, "select url from event where kind = 'download-failed'") == [
        ("http://203.0.113.9/a\ufffdb",)]

    again = ingest(center, [log])  # the cursor is past the bad lines: nothing new, no noise
    assert (again.events_read, again.error_count) == (0, 0)


def test_cli_reports_bad_lines_with_exit_code_1(tmp_path: Path) -> None:
    log = bad_log(tmp_path / "cowrie.json")
    data = tmp_path / "data"

    done = run_cli(data, str(log), "--json")

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    n_good = sum(1 for _, what, _ in BAD_INPUT if what == "ok")
    assert report["error_count"] == len(BAD_LINE_NUMBERS) == len(report["errors"])
    assert [e["location"] for e in report["errors"]] == [
        f"{log}:{n}" for n in BAD_LINE_NUMBERS]
    assert (report["events_read"], report["events_new"]) == (n_good, n_good)
    assert report["lines_skipped"] == 1

    again = run_cli(data, str(log), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["events_new"] == 0


def test_unfinished_last_line_waits_for_the_next_run(center: Center, tmp_path: Path) -> None:
    log = tmp_path / "cowrie.json"
    last = _good(3)
    log.write_bytes(connect_line("bad0bad0bad0", 1) + _good(2) + last[:40])

    first = ingest(center, [log])
    assert first.events_new == 2
    assert {e.location for e in first.errors} == {f"{log}:3"}
    assert all("no newline" in e.message for e in first.errors)

    with log.open("ab") as fh:  # the writer finishes its line
        fh.write(last[40:])
    second = ingest(center, [log])
    assert (second.events_new, second.error_count) == (1, 0)
    assert scalar(center, "select count(*) from event") == 3


def test_unfinished_last_line_is_reported_once(sqlite_center: Center, tmp_path: Path) -> None:
    log = tmp_path / "cowrie.json"
    log.write_bytes(connect_line("bad0bad0bad0", 1) + _good(2)[:40])
    assert ingest(sqlite_center, [log]).error_count == 1


# -- kill -9 and resume --------------------------------------------------------------------
def test_kill_9_leaves_whole_batches_and_the_next_run_finishes(
    facts: CorpusFacts, tmp_path: Path, reap: list[subprocess.Popen[str]]
) -> None:
    """All 26 real days in one log, with a synthetic download every 4000 lines (so blobs
    are being written when the kill lands); killed once the first batch is committed."""
    big = tmp_path / "cowrie.json"
    dl = tmp_path / "downloads"
    dl.mkdir()
    payloads: list[bytes] = []
    total = 0
    with big.open("wb") as out:
        for path in facts.files:
            for line in path.read_bytes().splitlines(keepends=True):
                out.write(line)
                total += 1
                if total % 4000 == 0:
                    payload = f"#!/bin/sh\necho harmless kill-test payload {total}\n".encode()
                    payloads.append(payload)
                    session = f"dead{len(payloads):08x}"
                    out.write(connect_line(session, len(payloads)))
                    out.write(cowrie_line(
                        "cowrie.session.file_download", session, len(payloads),
                        url=f"http://203.0.113.9/k{total}.sh", shasum=sha256(payload)))
                    (dl / sha256(payload)).write_bytes(payload)
    total += 2 * len(payloads)
    assert total == facts.lines + 2 * len(payloads) and len(payloads) >= 8
    key = f"cowrie:{big.resolve()}"

    for attempt in range(3):
        data = tmp_path / f"data{attempt}"
        proc = start_cli(data, str(big), "--downloads", str(dl), "--json")
        reap.append(proc)
        wait_for("the first committed batch", has_events(data), proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=WAIT_SECONDS)
        killed_at = event_count(data)
        assert killed_at is not None
        if killed_at < total:
            break
    else:
        pytest.fail("every run finished before it could be killed")
    assert proc.returncode == -signal.SIGKILL
    # events and the cursor are committed together: no half batch, no lost cursor
    cursor = db_query(data, f"select line, \"offset\" from ingest_cursor where key = '{key}'")
    assert cursor and cursor[0][0] == killed_at

    done = run_cli(data, str(big), "--downloads", str(dl), "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["events_new"], report["error_count"]) == (total - killed_at, 0)
    assert db_query(data, "select count(*), count(distinct uid) from event") == [(total, total)]
    assert db_query(data, f"select line, \"offset\" from ingest_cursor where key = '{key}'"
                    ) == [(total, big.stat().st_size)]
    expected = {sha256(p) for p in payloads}
    assert {r[0] for r in db_query(data, "select sha256 from sample") or []} == expected
    assert {r[0] for r in db_query(data, "select sample_sha256 from event where url like "
                                         "'http://203.0.113.9/k%'") or []} == expected
    blobs = data / "blobs"
    files = [p for p in blobs.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".tmp-")]
    assert {p.name for p in files} == expected
    assert all(sha256(p.read_bytes()) == p.name for p in files)


# -- --follow ------------------------------------------------------------------------------
def test_follow_tails_resumes_and_survives_rotation(
    tmp_path: Path, reap: list[subprocess.Popen[str]]
) -> None:
    log = tmp_path / "cowrie.json"
    data = tmp_path / "data"
    written: list[bytes] = []
    second = iter(range(1, 10_000))

    def line(session: str = "f0110w000001") -> bytes:
        made = cowrie_line("cowrie.command.input", session, next(second), input="uname -a")
        written.append(made)
        return made

    def append(*chunks: bytes) -> None:
        with log.open("ab") as fh:
            for chunk in chunks:
                fh.write(chunk)

    def count_is(n: int) -> Callable[[], bool]:
        return lambda: event_count(data) == n

    connect = connect_line("f0110w000001", 0)
    written.append(connect)
    log.write_bytes(connect + line() + line())
    proc = start_cli(data, str(log), "--follow", "--json")
    reap.append(proc)
    wait_for("the first 3 lines", count_is(3), proc)

    append(line(), line())
    wait_for("2 appended lines", count_is(5), proc)
    half = line()
    append(half[:31])  # a writer in the middle of a line
    time.sleep(1.5)  # three polls
    assert event_count(data) == 5
    append(half[31:])
    wait_for("the completed line", count_is(6), proc)

    rc, out, err = stop(proc)
    assert rc == 0, err
    report = json.loads(out)
    assert (report["events_new"], report["error_count"]) == (6, 0)

    append(line(), line(), line())  # while nobody follows
    proc = start_cli(data, str(log), "--follow", "--json")
    reap.append(proc)
    wait_for("the lines written while stopped", count_is(9), proc)

    # rotation: the last lines go to the old file, then a new file takes the name
    append(line())
    log.rename(tmp_path / "cowrie.json.2018-05-06")
    connect = connect_line("f0110w000002", 500, src_port=51000)
    written.append(connect)
    log.write_bytes(connect + line("f0110w000002") + line("f0110w000002"))
    wait_for("the new file after rotation", count_is(13), proc)
    append(line("f0110w000002"))
    wait_for("a line appended to the new file", count_is(14), proc)

    rc, out, err = stop(proc, signal.SIGINT)
    assert rc == 0, err
    assert json.loads(out)["events_new"] == 8

    assert db_query(data, "select count(distinct uid) from event") == [(len(written),)]
    raws = {r[0] for r in db_query(data, "select raw from event") or []}
    assert raws == {w.decode().strip() for w in written}
    ports = dict(db_query(data, "select session, max(src_port) from event group by session")
                 or [])
    assert ports == {"f0110w000001": 40022, "f0110w000002": 51000}
    key = f"cowrie:{log.resolve()}"
    assert db_query(data, f"select \"offset\" from ingest_cursor where key = '{key}'"
                    ) == [(log.stat().st_size,)]

    # and a restart after the rotation reads nothing twice
    done = run_cli(data, str(log), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events_read"] == 0


def test_small_batches_across_logs_with_blank_lines_read_everything(
    sqlite_center: Center, tmp_path: Path
) -> None:
    """Batches span logs and stop at a size, not at blank lines: one run reads it all."""
    logs = []
    for n in range(3):
        log = tmp_path / f"cowrie.json.{n}"
        lines = []
        for i in range(7):
            lines.append(json.dumps({
                "eventid": "cowrie.session.connect", "src_ip": "192.0.2.1",
                "src_port": 1000 * n + i, "session": f"s{n}-{i}", "sensor": "x",
                "timestamp": "2018-05-06T00:00:00Z"}))
            lines.append("")
        log.write_text("\n".join(lines) + "\n")
        logs.append(log)
    report = Ingestor(sqlite_center.catalog, sqlite_center.blobs).ingest_cowrie(
        logs, batch_lines=4)
    assert (report.events_new, report.lines_skipped, report.error_count) == (21, 21, 0)
    for log in logs:
        cursor = sqlite_center.catalog.get_cursor(cursor_key(log))
        assert cursor is not None and cursor["offset"] == log.stat().st_size
