"""The running center as commands see it: settings, then the store opened on demand."""

from __future__ import annotations

from functools import cached_property

from cleancenter.config import Settings
from cleancenter.store.blobs import BlobStore
from cleancenter.store.catalog import Catalog


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name: the blobs folder, or an S3 bucket with the
    folder as its cache. Each call gives a store with its own batch state."""
    if settings.blob_url is None:
        return BlobStore(settings.blobs_dir)
    from cleancenter.store.s3blobs import S3BlobStore, parse_blob_url, s3_client

    bucket, prefix = parse_blob_url(settings.blob_url)
    return S3BlobStore(settings.blobs_dir, bucket, prefix,
                       client=s3_client(settings.s3_endpoint_url, settings.s3_region),
                       endpoint_label=settings.s3_endpoint_url or "")


class Center:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def catalog(self) -> Catalog:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Catalog(self.settings.database_url)

    @cached_property
    def blobs(self) -> BlobStore:
        return open_blob_store(self.settings)

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.catalog.close()
