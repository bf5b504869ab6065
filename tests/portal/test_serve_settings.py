"""``serve --workers``: the server processes get exactly the parent's settings."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from cleancenter.center import Center
from cleancenter.config import load_settings
from cleancenter.portal.serve import SETTINGS_VAR, _hand_down, settings_from_environment


def test_settings_reach_the_server_processes_whole(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[cleancenter]\njob_queue_prefix = ""\ndata_dir = "site-data"\n')
    # a settings file in the server's working folder must not creep in
    (tmp_path / "cleancenter.toml").write_text(
        '[cleancenter]\nblob_url = "s3://stale-bucket/blobs"\njob_queue_prefix = "other."\n')
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("CLEANCENTER_")]:
        monkeypatch.delenv(var)
    parent = load_settings(config_file=site,
                           overrides={"database_url": "sqlite:////srv/cat.sqlite"})
    assert parent.job_queue_prefix == "" and parent.blob_url is None
    _hand_down(Center(parent), 12.5)
    try:
        child = settings_from_environment()
    finally:
        monkeypatch.delenv(SETTINGS_VAR)
    fields = [f.name for f in dataclasses.fields(parent) if f.name != "sources"]
    assert {f: getattr(child, f) for f in fields} == {f: getattr(parent, f) for f in fields}
    assert child.data_dir == tmp_path / "site-data"
