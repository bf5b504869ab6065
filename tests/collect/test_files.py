"""Ingest of plain files and folders, with real programs from this machine."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from cleancenter.center import Center
from cleancenter.collect.filetype import sniff
from cleancenter.collect.ingest import Ingestor
from cleancenter.demo import windows_launchers
from cleancenter.store.catalog import SAMPLE
from cleancenter.store.queries import get_sample


def test_folders_recursive_names_kept_links_not_followed(center: Center, tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "one.exe").write_bytes(b"MZ one")
    (src / "a" / "b" / "one-again.dat").write_bytes(b"MZ one")
    (src / "two.sh").write_bytes(b"#!/bin/sh\necho two\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not for the center")
    os.symlink(outside, src / "link-to-dir")
    os.symlink(outside / "secret", src / "link-to-file")

    report = Ingestor(center.catalog, center.blobs, tags=("t1",)).ingest_paths([src])
    assert (report.files, report.samples_new, report.error_count) == (3, 2, 0)
    with center.catalog.engine.connect() as conn:
        one = get_sample(conn, hashlib.sha256(b"MZ one").hexdigest())
        assert one is not None
        assert sorted(one.names) == ["one-again.dat", "one.exe"]
        assert one.tags == ["t1"]
        assert get_sample(conn, hashlib.sha256(b"not for the center").hexdigest()) is None
        types = dict(conn.execute(select(SAMPLE.c.sha256, SAMPLE.c.file_type)).all())
    assert types[hashlib.sha256(b"#!/bin/sh\necho two\n").hexdigest()] == "script"

    again = Ingestor(center.catalog, center.blobs).ingest_paths([src])
    assert (again.samples_new, again.samples_known) == (0, 2)


def test_real_programs_are_typed(sqlite_center: Center, tmp_path: Path) -> None:
    launchers = windows_launchers()
    if not launchers:
        pytest.skip("no pip/setuptools Windows launchers in this Python")
    elf = Path(shutil.which("ls") or "/bin/ls").resolve()
    report = Ingestor(sqlite_center.catalog, sqlite_center.blobs).ingest_paths(
        [*launchers, elf, Path(sys.executable).resolve()])
    assert report.error_count == 0
    with sqlite_center.catalog.engine.connect() as conn:
        types = dict(conn.execute(select(SAMPLE.c.sha256, SAMPLE.c.file_type)).all())
    for path in launchers:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        expected = "pe32" if ("32" in path.stem or path.stem in ("cli", "gui")) else "pe32+"
        assert types[sha] == expected, path
    assert types[hashlib.sha256(elf.read_bytes()).hexdigest()] == "elf64"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"", "empty"),
        (b"MZ", "mz"),
        (b"\x7fELF\x01", "elf32"),
        (b"PK\x03\x04rest", "zip"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"\x1f\x8b\x08", "gzip"),
        (b"#!/bin/sh\n", "script"),
        ("日本語のテキスト\n".encode(), "text"),
        (b"\x00\x01\x02\x03binary", "data"),
    ],
)
def test_sniff(head: bytes, kind: str) -> None:
    assert sniff(head) == kind
