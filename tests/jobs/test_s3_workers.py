"""Workers on "other machines": each with a data dir of its own, sharing only the
PostgreSQL catalog, the broker and an S3 bucket (s3rver on loopback)."""

from __future__ import annotations

from pathlib import Path

from cleancenter.center import Center
from cleancenter.config import load_settings
from cleancenter.jobs.submit import enqueue
from cleancenter.store.blobs import BlobStore
from tests.jobs.helper import BROKERS, cluster, mixed_samples
from tests.s3server import S3Server


def test_workers_with_their_own_data_dirs_analyse_from_the_bucket(
        tmp_path: Path, pg_url: str, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    s3_env = {"CLEANCENTER_BLOB_URL": f"s3://{bucket}/blobs", **s3_server.env()}
    with cluster(tmp_path, pg_url, BROKERS["redis"]) as c:
        c.center.close()
        c.settings = load_settings(environ={**c.env(), **s3_env})
        c.center = Center(c.settings)
        shas = c.ingest(mixed_samples(tmp_path / "samples", 20))
        assert len(s3_server.keys(bucket)) == len(shas)
        caches = {name: tmp_path / f"{name}-data" for name in ("m1", "m2")}
        for name, data in caches.items():
            c.start_worker(name, extra_env={**s3_env, "CLEANCENTER_DATA_DIR": str(data)})
        enqueue(c.center, shas)
        c.wait_finished(len(shas), 180)
        assert c.job_counts() == {"done": len(shas)}, c.jobs()
        assert set(c.reports()) == set(shas)
        fetched = {name: set(BlobStore(data / "blobs").iter_sha256())
                   for name, data in caches.items()}
        # every sample was fetched from the bucket by the worker that analysed it
        assert set().union(*fetched.values()) == set(shas), fetched
        workers = {job["worker"].split("@")[0] for job in c.jobs()}
        for name in workers:
            assert fetched[name], f"{name} analysed but fetched nothing"
