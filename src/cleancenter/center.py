"""The running center as commands see it: settings, then the store opened on demand."""

from __future__ import annotations

from functools import cached_property

from cleancenter.config import Settings
from cleancenter.store.blobs import BlobStore
from cleancenter.store.catalog import Catalog


class Center:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def catalog(self) -> Catalog:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Catalog(self.settings.database_url)

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.blobs_dir)

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.catalog.close()
