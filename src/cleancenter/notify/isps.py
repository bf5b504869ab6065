"""The ISP registry, and each ISP's own list of incidents.

An ISP is registered with its prefixes (IPv4 and IPv6) and, optionally, AS numbers. An
address belongs to the ISP whose prefix matches it most specifically over *all* ISPs'
prefixes (a customer's /24 delegated out of another ISP's /16 goes to the customer's
ISP); an address no prefix covers can still be owned through its AS number, when an
IPASN data file (pyasn's format) says which AS announces it. Each ISP gets only the
addresses it owns: the list is cut by the owner lookup, never by a filter a caller could
forget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, insert, select

from cleancenter.notify.incidents import Incident
from cleancenter.notify.infections import InfectedHost, infected_hosts
from cleancenter.notify.owners import AddressError, PrefixConflict, PrefixTable, parse_prefix
from cleancenter.store.catalog import utcnow
from cleancenter.store.models import Isp, IspAsn, IspPrefix

ISP = cast(Table, Isp.__table__)
ISP_PREFIX = cast(Table, IspPrefix.__table__)
ISP_ASN = cast(Table, IspAsn.__table__)
LANGS = ("ja", "en")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class RegistryError(ValueError):
    """An ISP cannot be registered as asked; the message says why."""


@dataclass
class IspEntry:
    name: str
    contact: str
    lang: str
    prefixes: list[str] = field(default_factory=list)
    asns: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "contact": self.contact, "lang": self.lang,
                "prefixes": self.prefixes, "asns": self.asns}


def add_isp(conn: Connection, name: str, *, contact: str, lang: str,
            prefixes: list[str], asns: list[int]) -> IspEntry:
    """Register an ISP (or add prefixes and ASNs to a registered one)."""
    if not _NAME.match(name):
        raise RegistryError(f"{name!r}: an ISP name is letters, digits, '.', '_' and '-'")
    if lang not in LANGS:
        raise RegistryError(f"language {lang!r}: one of {', '.join(LANGS)}")
    if not _EMAIL.match(contact):
        raise RegistryError(f"contact {contact!r} is not a mail address")
    normalized = []
    for text in prefixes:
        try:
            normalized.append(str(parse_prefix(text)))
        except AddressError as exc:
            raise RegistryError(str(exc)) from exc
    for asn in asns:
        if not 0 < asn < 2**32:
            raise RegistryError(f"AS{asn} is not an AS number")
    taken = {row.prefix: row.isp for row in conn.execute(
        select(ISP_PREFIX).where(ISP_PREFIX.c.prefix.in_(normalized)))}
    taken.update({str(row.asn): row.isp for row in conn.execute(
        select(ISP_ASN).where(ISP_ASN.c.asn.in_(asns)))})
    clash = {k: v for k, v in taken.items() if v != name}
    if clash:
        raise RegistryError("already registered to another ISP: " + ", ".join(
            f"{k} ({v})" for k, v in sorted(clash.items())))
    existing = conn.execute(select(ISP).where(ISP.c.name == name)).first()
    if existing is None:
        conn.execute(insert(ISP).values(name=name, contact=contact, lang=lang,
                                        created=utcnow()))
    else:
        conn.execute(ISP.update().where(ISP.c.name == name).values(contact=contact,
                                                                    lang=lang))
    new_prefixes = [p for p in dict.fromkeys(normalized) if p not in taken]
    if new_prefixes:
        conn.execute(insert(ISP_PREFIX), [{"prefix": p, "isp": name} for p in new_prefixes])
    new_asns = [a for a in dict.fromkeys(asns) if str(a) not in taken]
    if new_asns:
        conn.execute(insert(ISP_ASN), [{"asn": a, "isp": name} for a in new_asns])
    return get_isp(conn, name)


def get_isp(conn: Connection, name: str) -> IspEntry:
    row = conn.execute(select(ISP).where(ISP.c.name == name)).first()
    if row is None:
        raise RegistryError(f"no ISP named {name!r}")
    prefixes = sorted(conn.execute(select(ISP_PREFIX.c.prefix)
                                   .where(ISP_PREFIX.c.isp == name)).scalars())
    asns = sorted(conn.execute(select(ISP_ASN.c.asn).where(ISP_ASN.c.isp == name)).scalars())
    return IspEntry(row.name, row.contact, row.lang, prefixes, [int(a) for a in asns])


def list_isps(conn: Connection) -> list[IspEntry]:
    names = conn.execute(select(ISP.c.name).order_by(ISP.c.name)).scalars().all()
    return [get_isp(conn, name) for name in names]


def remove_isp(conn: Connection, name: str) -> None:
    get_isp(conn, name)
    conn.execute(delete(ISP_PREFIX).where(ISP_PREFIX.c.isp == name))
    conn.execute(delete(ISP_ASN).where(ISP_ASN.c.isp == name))
    conn.execute(delete(ISP).where(ISP.c.name == name))


@dataclass
class Owners:
    """Who owns an address: registered prefixes first, then AS numbers via IPASN data."""

    prefixes: PrefixTable
    asn_of: PrefixTable | None = None  # address -> "AS<n>", from an IPASN file
    isp_of_asn: dict[str, str] = field(default_factory=dict)  # "AS<n>" -> ISP

    def owners_of(self, ips: list[str]) -> list[str | None]:
        found = self.prefixes.lookup_many(ips, strict=False) if ips else []
        if self.asn_of is not None and self.isp_of_asn:
            missing = [i for i, owner in enumerate(found) if owner is None]
            asns = self.asn_of.lookup_many([ips[i] for i in missing], strict=False) \
                if missing else []
            for i, asn in zip(missing, asns, strict=True):
                found[i] = self.isp_of_asn.get(asn) if asn else None
        return found


def load_owners(conn: Connection, ipasn: Path | None = None) -> Owners:
    pairs = [(row.prefix, row.isp) for row in conn.execute(select(ISP_PREFIX))]
    try:
        table = PrefixTable(pairs)
    except PrefixConflict as exc:  # cannot happen through add_isp; a hand-edited catalog
        raise RegistryError(str(exc)) from exc
    asn_isp = {f"AS{row.asn}": row.isp for row in conn.execute(select(ISP_ASN))}
    asn_table = PrefixTable.from_ipasn(ipasn) if ipasn is not None and asn_isp else None
    return Owners(table, asn_table, asn_isp)


def isp_incidents(conn: Connection, isp: str, *, since: datetime | None = None,
                  ipasn: Path | None = None) -> list[Incident]:
    """The incidents of the addresses this ISP owns, and of no other."""
    get_isp(conn, isp)
    hosts: list[InfectedHost] = infected_hosts(conn, since=since)
    owners = load_owners(conn, ipasn).owners_of([h.src_ip for h in hosts])
    return [Incident(isp=isp, ip=h.src_ip, first_seen=h.first_seen, last_seen=h.last_seen,
                     events=h.events, ports=tuple(h.ports), families=tuple(h.families),
                     sensors=tuple(h.sensors))
            for h, owner in zip(hosts, owners, strict=True) if owner == isp]
