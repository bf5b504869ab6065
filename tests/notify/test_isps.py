"""Each ISP gets exactly its own infected addresses: real Cowrie data, longest match."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from cleancenter.center import Center
from cleancenter.collect.ingest import Ingestor
from cleancenter.notify.infections import infected_hosts, update_infections
from cleancenter.notify.isps import (
    RegistryError,
    add_isp,
    get_isp,
    isp_incidents,
    list_isps,
    remove_isp,
)


@pytest.fixture
def infected(center: Center, corpus: Path) -> list[str]:
    logs = sorted((corpus / "honeypot" / "cowrie").glob("cowrie.json*"))[:6]
    Ingestor(center.catalog, center.blobs).ingest_cowrie(logs)
    update_infections(center.catalog)
    with center.catalog.engine.connect() as conn:
        return sorted(h.src_ip for h in infected_hosts(conn))


def _net(ip: str, bits: int) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"{ip}/{bits}", strict=False)  # type: ignore[return-value]


def test_each_isp_gets_exactly_its_own_addresses(center: Center, infected: list[str]) -> None:
    assert len(infected) > 20
    picked = infected[::7][:4]
    alpha_nets = [_net(ip, 16) for ip in picked]
    delegated = _net(picked[0], 24)  # a customer's /24 inside alpha's /16, with its own ISP
    with center.catalog.transaction() as conn:
        add_isp(conn, "alpha-net", contact="abuse@alpha.example", lang="ja",
                prefixes=[str(n) for n in alpha_nets], asns=[64500])
        add_isp(conn, "beta-net", contact="abuse@beta.example", lang="en",
                prefixes=[str(delegated), "192.0.2.0/24", "2001:db8::/32"], asns=[])
        add_isp(conn, "gamma-net", contact="abuse@gamma.example", lang="en",
                prefixes=["198.51.100.0/24"], asns=[])
    with center.catalog.engine.connect() as conn:
        alpha = {i.ip for i in isp_incidents(conn, "alpha-net")}
        beta = {i.ip for i in isp_incidents(conn, "beta-net")}
        gamma = isp_incidents(conn, "gamma-net")
    addresses = [ipaddress.ip_address(ip) for ip in infected]
    expect_beta = {str(a) for a in addresses if a in delegated}
    expect_alpha = {str(a) for a in addresses
                    if any(a in n for n in alpha_nets)} - expect_beta
    assert alpha == expect_alpha and alpha
    assert beta == expect_beta and picked[0] in beta
    assert not alpha & beta
    assert gamma == []  # a documentation range: none of the real addresses
    with center.catalog.engine.connect() as conn:
        incident = isp_incidents(conn, "beta-net")[0]
    assert incident.id.startswith("cc-") and incident.events > 0


def test_the_registry_refuses_what_it_cannot_honour(center: Center) -> None:
    with center.catalog.transaction() as conn:
        add_isp(conn, "alpha-net", contact="abuse@alpha.example", lang="ja",
                prefixes=["203.0.113.0/24"], asns=[64501])
    bad = [
        ({"name": "bad name!"}, "ISP name"),
        ({"lang": "fr"}, "language"),
        ({"contact": "not-a-mail"}, "mail address"),
        ({"prefixes": ["203.0.113.1/24"]}, "203.0.113.0/24"),  # host bits set
        ({"prefixes": ["banana"]}, "banana"),
        ({"prefixes": ["203.0.113.0/24"]}, "already registered to another ISP"),
        ({"asns": [64501]}, "already registered to another ISP"),
        ({"asns": [0]}, "not an AS number"),
    ]
    for change, message in bad:
        args = {"name": "beta-net", "contact": "abuse@beta.example", "lang": "en",
                "prefixes": ["198.51.100.0/24"], "asns": [], **change}
        with center.catalog.transaction() as conn, pytest.raises(RegistryError, match=message):
            add_isp(conn, args.pop("name"), **args)  # type: ignore[arg-type]
    with center.catalog.transaction() as conn:
        add_isp(conn, "alpha-net", contact="abuse@alpha.example", lang="en",
                prefixes=["2001:db8:1::/48"], asns=[])  # adds to the registered ISP
        entry = get_isp(conn, "alpha-net")
        assert entry.prefixes == ["2001:db8:1::/48", "203.0.113.0/24"]
        assert (entry.lang, entry.asns) == ("en", [64501])
        assert [i.name for i in list_isps(conn)] == ["alpha-net"]
        remove_isp(conn, "alpha-net")
        assert list_isps(conn) == []
        with pytest.raises(RegistryError, match="no ISP named"):
            isp_incidents(conn, "alpha-net")
