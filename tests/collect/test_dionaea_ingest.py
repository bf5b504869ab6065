"""Dionaea databases into the catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from cleancenter.center import Center
from cleancenter.cli import app
from cleancenter.collect.ingest import Ingestor
from cleancenter.store.catalog import EVENT
from cleancenter.store.queries import get_sample
from tests.collect.test_dionaea_reader import REAL_DB_NAME, conn_row, make_db


def test_real_database_counts(center: Center, corpus: Path) -> None:
    db_path = corpus / REAL_DB_NAME
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    expected = {
        "connect": db.execute("select count(*) from connections").fetchone()[0],
        "login": db.execute("select count(*) from logins").fetchone()[0],
    }
    ips = {r[0] for r in db.execute("select distinct remote_host from connections "
                                    "where remote_host != ''")}
    db.close()
    report = Ingestor(center.catalog, center.blobs).ingest_dionaea(db_path, sensor="dio1")
    assert report.error_count == 0
    with center.catalog.engine.connect() as conn:
        got = dict(conn.execute(select(EVENT.c.kind, func.count()).group_by(EVENT.c.kind)).all())
        stored_ips = set(conn.execute(select(EVENT.c.src_ip).distinct()).scalars()) - {None}
        sensors = set(conn.execute(select(EVENT.c.sensor).distinct()).scalars())
    assert got == expected
    assert {ip.removeprefix("::ffff:") for ip in ips} == stored_ips
    assert sensors == {"dio1"}
    again = Ingestor(center.catalog, center.blobs).ingest_dionaea(db_path, sensor="dio1")
    assert again.events_new == 0 and again.events_read == report.events_read


def test_downloads_link_to_binaries(center: Center, tmp_path: Path) -> None:
    body = b"MZ harmless dionaea capture"
    md5 = hashlib.md5(body).hexdigest()
    bad_md5 = hashlib.md5(b"something else").hexdigest()
    binaries = tmp_path / "binaries"
    binaries.mkdir()
    (binaries / md5).write_bytes(body)
    (binaries / bad_md5).write_bytes(b"content that does not match its name")
    db = make_db(
        tmp_path / "dionaea.sqlite",
        [conn_row(1), conn_row(2), conn_row(3)],
        offers=[(1, 1, "http://192.0.2.9/x.exe")],
        downloads=[(1, 2, "http://192.0.2.9/x.exe", md5),
                   (2, 3, "http://192.0.2.9/y.exe", bad_md5),
                   (3, 1, "http://192.0.2.9/z.exe", "0" * 32)],
    )
    report = Ingestor(center.catalog, center.blobs).ingest_dionaea(db, binaries=binaries)
    assert [e.message for e in report.errors] == [
        f"content md5 is {hashlib.md5(b'content that does not match its name').hexdigest()}, "
        f"not {bad_md5}; not linked"]
    sha = hashlib.sha256(body).hexdigest()
    with center.catalog.engine.connect() as conn:
        sample = get_sample(conn, sha)
        assert sample is not None
        assert sample.names == ["x.exe"] and sample.tags == ["dionaea"]
        links = conn.execute(select(EVENT.c.url, EVENT.c.sample_sha256)
                             .where(EVENT.c.kind == "download").order_by(EVENT.c.url)).all()
    assert links == [("http://192.0.2.9/x.exe", sha), ("http://192.0.2.9/y.exe", None),
                     ("http://192.0.2.9/z.exe", None)]


def test_cli_reports_a_corrupt_database(tmp_path: Path) -> None:
    bad = tmp_path / "dionaea.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 3000)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "d"), "ingest", "dionaea",
                                      str(bad), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["error_count"] == 1
    assert report["errors"][0]["location"] == str(bad)
