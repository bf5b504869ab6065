"""Two builds and two publishes at once (the CLI and the analyst page): versions stay
distinct, every file matches its catalog row, and `definitions-latest` never goes back."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from cleancenter.center import Center
from cleancenter.definitions.build import RELEASE, build_release
from cleancenter.definitions.bundle import read_bundle
from cleancenter.definitions.keys import init_keys
from cleancenter.publish.definitions import LATEST_NAME, PublishError, publish_definitions


def test_concurrent_builds_and_publishes(sqlite_center: Center) -> None:
    data = sqlite_center.settings.data_dir
    public = init_keys(data / "keys")

    def build(_: int) -> int:
        return build_release(sqlite_center.catalog, keys_dir=data / "keys",
                             rules_registry=data / "rules", out=None,
                             releases_dir=data / "releases", generate=False).version

    with ThreadPoolExecutor(4) as pool:
        versions = sorted(pool.map(build, range(4)))
    assert versions == [1, 2, 3, 4]
    with sqlite_center.catalog.engine.connect() as conn:
        rows = conn.execute(select(RELEASE.c.version, RELEASE.c.sha256, RELEASE.c.path)).all()
    assert len(rows) == 4
    for _, sha256, path in rows:
        with open(path, "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == sha256

    downloads = data / "downloads"
    publish_definitions(public, downloads, releases_dir=data / "releases",
                        bundle=data / "releases" / "definitions-1.ccdef")

    def publish(version: int) -> int:
        try:
            return publish_definitions(
                public, downloads, releases_dir=data / "releases",
                bundle=data / "releases" / f"definitions-{version}.ccdef").version
        except PublishError:  # an older one refused as a rollback: expected in some orders
            return 0

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(publish, [3, 2, 4]))
    assert read_bundle(downloads / LATEST_NAME, public).version == 4
