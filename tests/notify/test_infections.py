"""Infected hosts from the real Cowrie logs, counted independently of the ingest path."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor
from cleancenter.notify.infections import DEFAULT_KINDS, infected_hosts, update_infections

COUNTED = {"cowrie.login.success", "cowrie.login.failed", "cowrie.command.input",
           "cowrie.command.failed", "cowrie.session.file_download",
           "cowrie.session.file_download.failed", "cowrie.session.file_upload"}


def _logs(corpus: Path) -> list[Path]:
    return sorted((corpus / "honeypot" / "cowrie").glob("cowrie.json*"))


def _expected(logs: list[Path]) -> Counter[str]:
    """Events per source address of the counted kinds, straight from the JSON lines."""
    counts: Counter[str] = Counter()
    for log in logs:
        for line in log.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("eventid") in COUNTED and record.get("src_ip"):
                counts[record["src_ip"]] += 1
    return counts


def test_real_cowrie_logs_become_infected_hosts_incrementally(center: Center,
                                                              corpus: Path) -> None:
    logs = _logs(corpus)
    assert len(logs) >= 20
    half = len(logs) // 2
    ingestor = Ingestor(center.catalog, center.blobs)
    ingestor.ingest_cowrie(logs[:half])
    first = update_infections(center.catalog)
    assert first.hosts_new > 0 and first.hosts_updated == 0
    Ingestor(center.catalog, center.blobs).ingest_cowrie(logs[half:])
    second = update_infections(center.catalog)
    assert second.hosts_updated > 0  # some addresses came back on later days
    assert update_infections(center.catalog).events_read == 0  # nothing new: a no-op

    expected = _expected(logs)
    with center.catalog.engine.connect() as conn:
        hosts = {h.src_ip: h for h in infected_hosts(conn)}
    assert set(hosts) == set(expected)
    assert {ip: h.events for ip, h in hosts.items()} == dict(expected)
    assert first.events_read + second.events_read == sum(expected.values())
    busiest = max(hosts.values(), key=lambda h: h.events)
    assert busiest.first_seen <= busiest.last_seen
    assert busiest.ports and all(0 < p < 65536 for p in busiest.ports)
    assert busiest.sensors


def test_a_bare_connect_is_not_an_infection_and_kinds_are_configurable(
        center: Center, corpus: Path) -> None:
    logs = _logs(corpus)[:3]
    Ingestor(center.catalog, center.blobs).ingest_cowrie(logs)
    update_infections(center.catalog)
    with center.catalog.engine.connect() as conn:
        counted = {h.src_ip for h in infected_hosts(conn)}
        connected = {row[0] for row in conn.exec_driver_sql(
            "SELECT DISTINCT src_ip FROM event WHERE kind = 'connect'")}
    assert counted < connected  # scanners that only connected are not listed
    wider = update_infections(center.catalog, kinds=(*DEFAULT_KINDS, "connect"))
    assert wider.rebuilt
    with center.catalog.engine.connect() as conn:
        assert {h.src_ip for h in infected_hosts(conn)} == connected | counted
