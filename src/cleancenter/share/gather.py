"""Read a sample or a family out of the catalog into plain data for the exporters."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Connection, func, select

from cleancenter.analyze.report import Report
from cleancenter.analyze.service import latest_label, report_for
from cleancenter.definitions.build import c2_worthy
from cleancenter.store.catalog import SAMPLE, Catalog
from cleancenter.store.queries import get_sample

NetworkKind = Literal["domain", "ipv4", "ipv6", "url"]
MAX_FAMILY_SAMPLES = 500  # members put into one family export (newest first)
MAX_FAMILY_INDICATORS = 20_000  # network indicators in one family export


@dataclass(frozen=True, order=True)
class NetworkIoc:
    """A network indicator a sample carries: from its IOCs or its bot configuration."""

    kind: NetworkKind
    value: str


@dataclass(frozen=True)
class SampleData:
    sha256: str
    md5: str
    sha1: str
    size: int
    file_type: str
    first_seen: datetime
    last_seen: datetime
    updated: datetime  # the latest of last seen, the report and the analyst's label
    ssdeep: str | None = None
    tlsh: str | None = None
    imphash: str | None = None
    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    verdict: str | None = None  # the catalog's (an analyst's label first)
    family: str | None = None
    family_span: tuple[datetime, datetime] | None = None  # first/last seen of the family
    report: Report | None = None
    network: tuple[NetworkIoc, ...] = ()


@dataclass(frozen=True)
class FamilyData:
    name: str
    total: int  # members in the catalog; `samples` holds at most the newest `limit`
    first_seen: datetime
    last_seen: datetime
    samples: list[SampleData] = field(default_factory=list)
    indicators_left_out: int = 0  # over MAX_FAMILY_INDICATORS


def _ip_kind(value: str) -> NetworkKind | None:
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None
    return "ipv4" if address.version == 4 else "ipv6"


def _host(value: str | None) -> NetworkIoc | None:
    """A host name or address as an indicator; addresses only when worth blocking.

    ``host:port`` gives the host; anything else with ``:``, ``/`` or ``@`` in it is not
    a host."""
    if not value or len(value) > 2048:
        return None
    kind = _ip_kind(value)
    if kind is None and value.count(":") == 1:  # host:port, [v6]:port
        value = value.rsplit(":", 1)[0]
        kind = _ip_kind(value)
    if kind is not None:
        text = str(ipaddress.ip_address(value.strip("[]")))  # canonical form
        return NetworkIoc(kind, text) if c2_worthy(text) else None
    if "." not in value or any(c.isspace() or c in ":/@[]" for c in value):
        return None
    return NetworkIoc("domain", value.lower().rstrip("."))


def _url(value: str | None) -> NetworkIoc | None:
    """A URL as an indicator, unless its host is an address not worth blocking (a private
    network, a public resolver): such a URL proves nothing and must not be blocked."""
    if not value or len(value) > 2048:
        return None
    try:
        host = urlsplit(value).hostname
    except ValueError:
        return None
    if host is None:
        return None
    if _ip_kind(host) is not None and _host(host) is None:
        return None
    return NetworkIoc("url", value)


def network_iocs(report: Report | None) -> tuple[NetworkIoc, ...]:
    """Domains, addresses and URLs of a report (IOCs and bot configurations), sorted.

    Addresses that prove nothing (private, public resolvers) are left out, as in the
    definitions."""
    if report is None:
        return ()
    found: set[NetworkIoc] = set()

    def add(item: NetworkIoc | None) -> None:
        if item is not None:
            found.add(item)

    for ioc in report.iocs:
        if ioc.type == "url":
            add(_url(ioc.value))
        elif ioc.type in ("domain", "ipv4", "ipv6", "irc-server"):
            add(_host(ioc.value))
    for config in report.configs:
        data = config.config
        for proto in ("tcp", "udp"):
            for conn in _dicts(data.get(proto)):
                add(_host(_text(conn.get("server_ip"))))
                add(_host(_text(conn.get("server_domain"))))
        for entry in _dicts(data.get("http")):
            add(_url(_text(entry.get("uri"))))
            add(_host(_text(entry.get("hostname"))))
        for entry in _dicts(data.get("ftp")):
            add(_host(_text(entry.get("hostname"))))
    return tuple(sorted(found))


def _dicts(value: object) -> Iterable[dict[str, object]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def family_is(name: str) -> ColumnElement[bool]:
    """The catalog's family equals ``name`` in any case: lower() on both sides, in SQL, so
    each backend folds both alike (SQLite ASCII letters only, PostgreSQL all)."""
    return func.lower(SAMPLE.c.family) == func.lower(name)


def _sample(catalog: Catalog, conn: Connection, sha256: str,
            span: tuple[datetime, datetime] | None = None) -> SampleData | None:
    detail = get_sample(conn, sha256)
    if detail is None:
        return None
    verdict, family = conn.execute(select(SAMPLE.c.verdict, SAMPLE.c.family)
                                   .where(SAMPLE.c.sha256 == detail.sha256)).one()
    label = latest_label(conn, detail.sha256)
    report = report_for(catalog, detail.sha256)
    updated = max([detail.last_seen] + ([report.created] if report else [])
                  + ([label.created] if label else []))
    if family and span is None:
        low, high = conn.execute(select(func.min(SAMPLE.c.first_seen),
                                        func.max(SAMPLE.c.last_seen))
                                 .where(family_is(family))).one()
        span = (low, high) if low is not None and high is not None else None
    return SampleData(
        sha256=detail.sha256, md5=detail.md5, sha1=detail.sha1, size=detail.size,
        file_type=detail.file_type, first_seen=detail.first_seen, last_seen=detail.last_seen,
        updated=updated, ssdeep=detail.ssdeep, tlsh=detail.tlsh, imphash=detail.imphash,
        names=tuple(detail.names), tags=tuple(detail.tags), verdict=verdict, family=family,
        family_span=span, report=report, network=network_iocs(report))


def load_sample(catalog: Catalog, reference: str) -> SampleData | None:
    """One sample by md5, sha1 or sha256 (or an unambiguous prefix); None if unknown.

    Raises `cleancenter.store.queries.AmbiguousReference` (a `CatalogError`) for a prefix
    that matches more than one."""
    with catalog.engine.connect() as conn:
        return _sample(catalog, conn, reference)


def family_name(conn: Connection, name: str) -> str | None:
    """The catalog's spelling of a family (matched without regard to case)."""
    row = conn.execute(select(SAMPLE.c.family, func.count().label("n"))
                       .where(family_is(name.strip()))
                       .group_by(SAMPLE.c.family).order_by(func.count().desc(), SAMPLE.c.family)
                       .limit(1)).first()
    return None if row is None else str(row.family)


def load_family(catalog: Catalog, name: str, *, limit: int = MAX_FAMILY_SAMPLES
                ) -> FamilyData | None:
    """A family (by name, any case) and its newest ``limit`` members; None if unknown."""
    with catalog.engine.connect() as conn:
        canonical = family_name(conn, name)
        if canonical is None:
            return None
        where = family_is(canonical)
        total, low, high = conn.execute(select(func.count(), func.min(SAMPLE.c.first_seen),
                                               func.max(SAMPLE.c.last_seen)).where(where)).one()
        members = conn.execute(select(SAMPLE.c.sha256).where(where)
                               .order_by(SAMPLE.c.first_seen.desc(), SAMPLE.c.sha256)
                               .limit(limit)).scalars().all()
        samples = [s for sha in members
                   if (s := _sample(catalog, conn, sha, (low, high))) is not None]
    samples.sort(key=lambda s: s.sha256)
    # a family's document stays a size a consumer can take: at most MAX_FAMILY_INDICATORS
    # network indicators in all, the samples' own first
    room, cut = MAX_FAMILY_INDICATORS, 0
    kept = []
    for sample in samples:
        network = sample.network[:max(room, 0)]
        cut += len(sample.network) - len(network)
        room -= len(network)
        kept.append(sample if len(network) == len(sample.network)
                    else dataclasses.replace(sample, network=network))
    return FamilyData(canonical, int(total), low, high, kept, indicators_left_out=cut)
