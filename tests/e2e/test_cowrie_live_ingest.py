"""The real Cowrie honeypot, attacked on loopback; cleancenter ingests what it logged."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor
from cleancenter.store.catalog import EVENT
from cleancenter.store.queries import EventFilter, find_events, get_sample
from tests.e2e.conftest import FILES, SENSOR, UPLOAD, Attacked

pytestmark = pytest.mark.e2e


def test_ingest_of_a_live_cowrie_attack(attacked_cowrie: Attacked, center: Center) -> None:
    hp, result = attacked_cowrie.hp, attacked_cowrie.result
    ingestor = Ingestor(center.catalog, center.blobs)
    report = ingestor.ingest_cowrie([hp.log_path], downloads=hp.downloads_dir)
    assert report.error_count == 0, report.errors
    assert report.events_new == len(attacked_cowrie.events)

    with center.catalog.engine.connect() as conn:
        for name, content in [*FILES.items(), *UPLOAD.items()]:
            sha = hashlib.sha256(content).hexdigest()
            sample = get_sample(conn, sha)
            assert sample is not None, name
            assert name in sample.names
            assert "cowrie" in sample.tags
            assert center.blobs.read(sha) == content
            assert sample.event_count == 1

        session = result["session"]
        mine = find_events(conn, EventFilter(session=session, limit=1000))
        assert {e["sensor"] for e in mine} == {SENSOR}
        assert {(e["src_ip"], e["src_port"], e["dst_port"], e["protocol"]) for e in mine} == {
            ("127.0.0.1", result["src_port"], hp.port, "ssh")}
        kinds = [e["kind"] for e in mine]
        assert kinds[0] == "connect" and kinds[-1] == "disconnect"
        assert kinds.count("download") == len(FILES)
        assert kinds.count("upload") == len(UPLOAD)
        assert "login" in kinds and "command" in kinds
        linked = set(conn.execute(select(EVENT.c.sample_sha256).where(
            EVENT.c.sample_sha256.is_not(None))).scalars())
        assert linked == {hashlib.sha256(c).hexdigest() for c in [*FILES.values(),
                                                                  *UPLOAD.values()]}

    again = Ingestor(center.catalog, center.blobs).ingest_cowrie(
        [hp.log_path], downloads=hp.downloads_dir)
    assert (again.events_new, again.samples_new) == (0, 0)
