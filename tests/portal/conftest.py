"""A center with one notice: real Cowrie events, an ISP owning one real address, a token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor
from cleancenter.notify.funnel import import_sent_report
from cleancenter.notify.infections import infected_hosts, update_infections
from cleancenter.notify.isps import add_isp, isp_incidents
from cleancenter.portal.app import create_app

ISP = "alpha-net"
TOKEN = "Tok_en-0123456789abcdefXYZ"
UNKNOWN = "Never_mailed-0123456789ab"


def notify_one(center: Center, corpus: Path, token: str = TOKEN) -> str:
    """Ingest the smallest real Cowrie log, give one attacking address to an ISP and import
    the ISP's sent report for it; returns the address."""
    log = min((corpus / "honeypot" / "cowrie").glob("cowrie.json*"),
              key=lambda p: p.stat().st_size)
    Ingestor(center.catalog, center.blobs).ingest_cowrie([log])
    update_infections(center.catalog)
    with center.catalog.engine.connect() as conn:
        host = infected_hosts(conn)[0]
    with center.catalog.transaction() as conn:
        add_isp(conn, ISP, contact="abuse@alpha.example", lang="ja",
                prefixes=[f"{host.src_ip}/32"], asns=[])
        incident = isp_incidents(conn, ISP)[0]
        summary = import_sent_report(conn, ISP, [{
            "token": token, "incidents": [incident.id],
            "sent_at": incident.last_seen.isoformat()}])
    assert summary.new == 1, summary.errors
    return str(host.src_ip)


@dataclass
class Portal:
    center: Center
    client: TestClient
    address: str

    def funnel(self) -> dict[str, int]:
        response = self.client.get("/api/v1/funnel")
        assert response.status_code == 200
        total: dict[str, int] = response.json()["funnel"][-1]
        return total


@pytest.fixture
def portal(center: Center, corpus: Path) -> Iterator[Portal]:
    """The portal on a center with one notified token, on SQLite and PostgreSQL."""
    address = notify_one(center, corpus)
    with TestClient(create_app(center, funnel_ttl=0)) as client:
        yield Portal(center, client, address)


@pytest.fixture
def client(sqlite_center: Center) -> Iterator[TestClient]:
    """The portal on an empty SQLite center: pages, headers, languages."""
    with TestClient(create_app(sqlite_center, funnel_ttl=0)) as c:
        yield c
