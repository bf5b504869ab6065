"""The S3 blob store against a real S3-compatible server (s3rver on loopback)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleancenter.analyze.cli import run_analysis
from cleancenter.center import Center, open_blob_store
from cleancenter.cli import app
from cleancenter.collect.ingest import Ingestor
from cleancenter.config import ConfigError, load_settings
from cleancenter.demo import eicar
from cleancenter.store.blobs import BlobError, BlobStore
from cleancenter.store.s3blobs import S3BlobStore, parse_blob_url, s3_client
from cleancenter.store.verify import verify_store
from tests.s3server import S3Server, free_port

runner = CliRunner()


def _store(s3: S3Server, cache: Path, bucket: str, prefix: str = "") -> S3BlobStore:
    return S3BlobStore(cache, bucket, prefix, client=s3_client(s3.endpoint, "us-east-1"))


def _key(sha: str, prefix: str = "") -> str:
    return f"{prefix}{sha[:2]}/{sha[2:4]}/{sha}"


def _center(tmp: Path, name: str, database_url: str, s3: S3Server, bucket: str) -> Center:
    return Center(load_settings(overrides={
        "data_dir": str(tmp / name), "database_url": database_url,
        "blob_url": f"s3://{bucket}/center", "s3_endpoint_url": s3.endpoint}, environ={}))


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


def test_a_blob_written_here_is_read_on_another_machine(s3_server: S3Server, bucket: str,
                                                        tmp_path: Path) -> None:
    here = _store(s3_server, tmp_path / "here", bucket, "p/")
    data = Path(shutil.which("true") or "/usr/bin/true").read_bytes()
    digests = here.put_bytes(data)
    assert s3_server.keys(bucket) == [_key(digests.sha256, "p/")]
    assert here.path_for(digests.sha256).read_bytes() == data  # cached locally too

    there = _store(s3_server, tmp_path / "there", bucket, "p/")
    assert not there.path_for(digests.sha256).exists()
    assert there.exists(digests.sha256)
    path = there.readable_path(digests.sha256)
    assert path == there.path_for(digests.sha256) and path.read_bytes() == data
    assert oct(path.stat().st_mode & 0o777) == oct(0o400)
    assert there.read(digests.sha256) == data
    assert not there.exists("0" * 64)
    assert not there.readable_path("0" * 64).exists()
    assert list(there.iter_sha256()) == [digests.sha256]


def test_the_same_content_is_sent_once(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    store = _store(s3_server, tmp_path / "a", bucket)
    sha = store.put_bytes(b"once").sha256
    other = _store(s3_server, tmp_path / "b", bucket)
    source = tmp_path / "copy"
    source.write_bytes(b"once")
    assert other.upload(sha, source) is False
    assert other.put_file(source).sha256 == sha
    assert s3_server.keys(bucket) == [_key(sha)]


def test_a_batch_reaches_the_bucket_only_when_published(s3_server: S3Server, bucket: str,
                                                        tmp_path: Path) -> None:
    store = _store(s3_server, tmp_path / "cache", bucket)
    store.begin_batch()
    first = store.put_bytes(b"first of the batch").sha256
    assert store.read(first) == b"first of the batch"  # readable from its temp file
    assert s3_server.keys(bucket) == []
    assert store.publish() == 1
    assert s3_server.keys(bucket) == [_key(first)]
    second = store.put_bytes(b"dropped").sha256
    store.abort_batch()
    store.end_batch()
    assert s3_server.keys(bucket) == [_key(first)]
    assert not store.exists(second)
    assert not any(p.name.startswith(".tmp-") for p in store.iter_paths())


def test_a_damaged_object_is_refused_and_not_cached(s3_server: S3Server, bucket: str,
                                                    tmp_path: Path) -> None:
    writer = _store(s3_server, tmp_path / "w", bucket)
    sha = writer.put_bytes(b"genuine bytes").sha256
    s3_server.client().put_object(Bucket=bucket, Key=_key(sha), Body=b"substituted bytes")
    reader = _store(s3_server, tmp_path / "r", bucket)
    with pytest.raises(BlobError, match="does not hash to its name"):
        reader.readable_path(sha)
    assert not reader.path_for(sha).exists()
    assert list((tmp_path / "r").rglob("*")) == [] or all(
        p.is_dir() for p in (tmp_path / "r").rglob("*"))


def test_a_large_blob_goes_in_parts_and_comes_back_whole(s3_server: S3Server, bucket: str,
                                                         tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB, not compressible to nothing
    source.write_bytes(block * 12 + b"tail")  # over boto3's 8 MiB multipart threshold
    sha = _store(s3_server, tmp_path / "a", bucket).put_file(source).sha256
    assert _store(s3_server, tmp_path / "b", bucket).read(sha) == source.read_bytes()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3BlobStore(tmp_path, "bucket", client=s3_client(endpoint, "us-east-1"),
                        endpoint_label=endpoint)
    with pytest.raises(BlobError, match=r"cannot look up blob .* in s3://bucket/ at http://127"):
        store.exists("a" * 64)


def test_unknown_access_key_is_a_clear_error(s3_server: S3Server, bucket: str,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                          aws_access_key_id="nobody", aws_secret_access_key="x")
    store = S3BlobStore(tmp_path, bucket, client=client)
    with pytest.raises(BlobError, match=r"InvalidAccessKeyId|403|Forbidden"):
        store.put_bytes(b"not allowed")
    assert s3_server.keys(bucket) == []
    assert not any(tmp_path.rglob(".tmp-*"))


@pytest.mark.parametrize("url", ["s3:/bucket", "http://bucket/x", "s3://", "s3://bb/p?x=1",
                                 "/srv/blobs", "s3:///blobs", "s3://Upper/x", "s3://ab",
                                 "s3://user:pw@bucket/x", "s3://bucket:9000/x",
                                 "s3://bucket//x"])
def test_bad_blob_url_is_refused(url: str) -> None:
    with pytest.raises((BlobError, ConfigError)):
        parse_blob_url(url)
        load_settings(overrides={"blob_url": url}, environ={})


def test_blob_url_setting(tmp_path: Path) -> None:
    assert parse_blob_url("s3://bucket") == ("bucket", "")
    assert parse_blob_url("s3://my.bucket-1/x") == ("my.bucket-1", "x/")
    assert parse_blob_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    settings = load_settings(environ={"CLEANCENTER_DATA_DIR": str(tmp_path),
                                      "CLEANCENTER_BLOB_URL": "s3://bkt/x",
                                      "CLEANCENTER_S3_ENDPOINT_URL": "http://127.0.0.1:9"})
    store = open_blob_store(settings)
    assert isinstance(store, S3BlobStore) and (store.bucket, store.prefix) == ("bkt", "x/")
    assert store.root == tmp_path / "blobs"
    assert type(open_blob_store(load_settings(environ={}))) is BlobStore
    with pytest.raises(ConfigError, match="blob_url"):
        load_settings(environ={"CLEANCENTER_BLOB_URL": "/srv/blobs"})


@pytest.fixture
def two_machines(tmp_path: Path, database_url: str, s3_server: S3Server, bucket: str
                 ) -> Iterator[tuple[Center, Center]]:
    """Two centers sharing the catalog and the bucket, each with its own data dir."""
    a = _center(tmp_path, "machine-a", database_url, s3_server, bucket)
    b = _center(tmp_path, "machine-b", database_url, s3_server, bucket)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_ingest_on_one_machine_analyse_on_another(two_machines: tuple[Center, Center],
                                                  tmp_path: Path) -> None:
    """A zip with EICAR and a real ELF is ingested on machine A; machine B, with an empty
    data dir, analyses every sample from the bucket."""
    a, b = two_machines
    archive = tmp_path / "upload.zip"
    elf = Path(shutil.which("true") or "/usr/bin/true").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("bot/eicar.com", eicar())
        zf.writestr("bot/true.elf", elf)
    archive.write_bytes(buffer.getvalue())
    report = Ingestor(a.catalog, a.blobs).ingest_paths([archive])
    assert report.error_count == 0 and report.samples_new == 3

    assert not (b.settings.blobs_dir).exists()
    summary = run_analysis(b, None, all_pending=True, workers=1)
    assert summary.failed == 0 and summary.analyzed == 3
    eicar_sha = hashlib.sha256(eicar()).hexdigest()
    assert b.blobs.path_for(eicar_sha).read_bytes() == eicar()
    elf_sha = hashlib.sha256(elf).hexdigest()
    shown = runner.invoke(app, ["--data-dir", str(b.settings.data_dir), "--database-url",
                                b.settings.database_url, "samples", "show", elf_sha,
                                "--json"], env={"CLEANCENTER_BLOB_URL": str(b.settings.blob_url),
                                                "CLEANCENTER_S3_ENDPOINT_URL":
                                                    str(b.settings.s3_endpoint_url)})
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)["report"]
    assert report["elf"] and report["hashes"]["tlsh"] and not report["errors"], report


def test_verify_rehashes_the_bucket(two_machines: tuple[Center, Center], s3_server: S3Server,
                                    bucket: str, tmp_path: Path) -> None:
    a, _ = two_machines
    note = tmp_path / "note.txt"
    note.write_bytes(b"a harmless note\n")
    Ingestor(a.catalog, a.blobs).ingest_paths([note])
    report = verify_store(a.blobs, a.catalog)
    assert report.ok and report.blobs_checked == 1
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="center/stray.txt", Body=b"x")
    orphan = hashlib.sha256(b"orphan").hexdigest()
    client.put_object(Bucket=bucket, Key=_key(orphan, "center/"), Body=b"orphan")
    damaged = hashlib.sha256(b"a harmless note\n").hexdigest()
    client.put_object(Bucket=bucket, Key=_key(damaged, "center/"), Body=b"changed")
    report = verify_store(a.blobs, a.catalog)
    kinds = sorted((p.kind, str(p.path).rsplit("/", 1)[-1]) for p in report.problems)
    assert kinds == sorted([("misplaced", "stray.txt"), ("mismatch", damaged),
                            ("orphan", orphan)])
    assert all(str(p.path).startswith(f"s3://{bucket}/center/") for p in report.problems)


def test_upload_blobs_moves_a_folder_center_to_s3(tmp_path: Path, s3_server: S3Server,
                                                  bucket: str) -> None:
    data = tmp_path / "data"
    local = BlobStore(data / "blobs")
    shas = [local.put_bytes(f"sample {i}".encode()).sha256 for i in range(3)]
    bad = local.path_for(shas[2])
    bad.chmod(0o600)
    bad.write_bytes(b"rotted on disk")
    env = {"CLEANCENTER_BLOB_URL": f"s3://{bucket}", **s3_server.env()}
    result = runner.invoke(app, ["--data-dir", str(data), "store", "upload-blobs", "--json"],
                           env=env)
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    assert body["sent"] == 2 and body["already_there"] == 0
    assert [r["kind"] for r in body["refused"]] == ["mismatch"]
    assert s3_server.keys(bucket) == sorted(_key(s) for s in shas[:2])
    again = runner.invoke(app, ["--data-dir", str(data), "store", "upload-blobs", "--json"],
                          env=env)
    assert json.loads(again.output)["already_there"] == 2
    no_s3 = runner.invoke(app, ["--data-dir", str(data), "store", "upload-blobs"],
                          env={"CLEANCENTER_BLOB_URL": ""})
    assert no_s3.exit_code == 2 and "not an s3://" in no_s3.output


def test_a_cached_blob_the_bucket_lacks_is_still_uploaded(s3_server: S3Server, bucket: str,
                                                         tmp_path: Path) -> None:
    """The folder of a center that moves to S3 becomes the cache: what is in it is not
    in the bucket yet, and new ingests of the same content must still send it."""
    cache = tmp_path / "data" / "blobs"
    BlobStore(cache).put_bytes(b"ingested before the move")
    sha = hashlib.sha256(b"ingested before the move").hexdigest()
    store = _store(s3_server, cache, bucket)
    assert store.put_bytes(b"ingested before the move").sha256 == sha
    assert s3_server.keys(bucket) == [_key(sha)]

    BlobStore(cache).put_bytes(b"second, by a batch")
    note = tmp_path / "note.txt"
    note.write_bytes(b"second, by a batch")
    center = Center(load_settings(overrides={
        "data_dir": str(tmp_path / "data"), "blob_url": f"s3://{bucket}",
        "s3_endpoint_url": s3_server.endpoint}, environ={}))
    try:
        report = Ingestor(center.catalog, center.blobs).ingest_paths([note])
    finally:
        center.close()
    assert report.error_count == 0
    second = hashlib.sha256(b"second, by a batch").hexdigest()
    assert _store(s3_server, tmp_path / "elsewhere", bucket).read(second) == b"second, by a batch"


def test_verify_also_checks_this_machines_cache(s3_server: S3Server, bucket: str,
                                                tmp_path: Path, database_url: str) -> None:
    center = _center(tmp_path, "m", database_url, s3_server, bucket)
    try:
        note = tmp_path / "note.txt"
        note.write_bytes(b"cached here")
        Ingestor(center.catalog, center.blobs).ingest_paths([note])
        sha = hashlib.sha256(b"cached here").hexdigest()
        cached = center.blobs.path_for(sha)
        cached.chmod(0o600)
        cached.write_bytes(b"changed in the cache")
        report = verify_store(center.blobs, center.catalog)
    finally:
        center.close()
    assert {(p.kind, str(p.path)) for p in report.problems} == {
        ("mismatch", str(cached)), ("writable", str(cached))}
    assert all("cache" in p.detail for p in report.problems) and not report.missing


def test_an_unreachable_store_fails_each_sample_not_the_run(tmp_path: Path, bucket: str,
                                                           s3_server: S3Server) -> None:
    center = _center(tmp_path, "m", f"sqlite:///{tmp_path / 'cat.sqlite'}", s3_server, bucket)
    notes = []
    for i in range(3):
        notes.append(tmp_path / f"n{i}.txt")
        notes[-1].write_bytes(f"note {i}".encode())
    Ingestor(center.catalog, center.blobs).ingest_paths(notes)
    center.close()
    gone = Center(load_settings(overrides={
        "data_dir": str(tmp_path / "other"), "database_url": f"sqlite:///{tmp_path / 'cat.sqlite'}",
        "blob_url": f"s3://{bucket}/center",
        "s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}, environ={}))
    try:
        summary = run_analysis(gone, None, all_pending=True, workers=1)
    finally:
        gone.close()
    assert summary.failed == 3 and summary.analyzed == 0
    assert len(summary.errors) == 3
    assert all("cannot fetch blob" in json.dumps(e) for e in summary.errors), summary.errors
