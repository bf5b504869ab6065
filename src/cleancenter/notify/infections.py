"""Infected hosts: the source addresses that attacked the decoys, derived from events.

A host counts when it did something only a compromised machine (or an attacker) does to
a honeypot: tried to log in, ran commands, downloaded or uploaded a file, or (Dionaea)
offered an exploit. A bare connect does not count: scanners and researchers connect all
day. The kinds are configurable.

The table is kept up to date incrementally: each update reads only events newer than the
last one read (their ids only grow) and merges them into the rows of their addresses.
Families come through the samples a host downloaded and are recomputed on every update,
because a sample's family may be known only after its analysis, later than its event.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from cleancenter.store.catalog import SAMPLE, Catalog, utcnow
from cleancenter.store.models import Event, Infection, InfectionState

EVENT = cast(Table, Event.__table__)
INFECTION = cast(Table, Infection.__table__)
STATE = cast(Table, InfectionState.__table__)
DEFAULT_KINDS = ("attack", "command", "download", "download-failed", "login", "login-failed",
                 "upload")
STATE_KEY = "infections"
MAX_PORTS = 64  # source ports kept per host (behind CGNAT the ISP needs them)
BATCH = 100_000  # event ids per step


@dataclass
class InfectedHost:
    src_ip: str
    first_seen: datetime
    last_seen: datetime
    events: int
    ports: list[int] = field(default_factory=list)
    sensors: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"src_ip": self.src_ip, "first_seen": self.first_seen.isoformat(),
                "last_seen": self.last_seen.isoformat(), "events": self.events,
                "ports": self.ports, "sensors": self.sensors, "families": self.families}


@dataclass
class UpdateSummary:
    events_read: int = 0
    hosts_new: int = 0
    hosts_updated: int = 0
    last_event_id: int = 0
    rebuilt: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class _Delta:
    first: datetime
    last: datetime
    events: int
    ports: set[int] = field(default_factory=set)
    sensors: set[str] = field(default_factory=set)


def update_infections(catalog: Catalog, kinds: Sequence[str] = DEFAULT_KINDS
                      ) -> UpdateSummary:
    """Read the events added since the last update into the infection table."""
    chosen = sorted(set(kinds))
    summary = UpdateSummary()
    with catalog.transaction() as conn:
        state = conn.execute(select(STATE).where(STATE.c.key == STATE_KEY)).first()
        last_id = 0
        if state is not None and json.loads(state.kinds) == chosen:
            last_id = int(state.last_event_id)
        elif state is not None:  # other kinds now count: derive everything again
            conn.execute(delete(INFECTION))
            summary.rebuilt = True
        top = int(conn.execute(select(func.max(EVENT.c.id))).scalar() or 0)
        while last_id < top:
            upper = min(last_id + BATCH, top)
            deltas = _read(conn, last_id, upper, chosen)
            summary.events_read += sum(d.events for d in deltas.values())
            new, updated = _merge(conn, deltas)
            summary.hosts_new += new
            summary.hosts_updated += updated
            last_id = upper
        _refresh_families(conn, chosen)
        values = {"last_event_id": last_id, "kinds": json.dumps(chosen), "updated": utcnow()}
        if state is None:
            conn.execute(insert(STATE).values(key=STATE_KEY, **values))
        else:
            conn.execute(update(STATE).where(STATE.c.key == STATE_KEY).values(**values))
        summary.last_event_id = last_id
    return summary


def _read(conn: Connection, after: int, upto: int, kinds: list[str]) -> dict[str, _Delta]:
    e = EVENT.c
    where = and_(e.id > after, e.id <= upto, e.kind.in_(kinds), e.src_ip.is_not(None))
    deltas: dict[str, _Delta] = {}
    rows = conn.execute(select(e.src_ip, func.min(e.time), func.max(e.time), func.count())
                        .where(where).group_by(e.src_ip))
    for ip, first, last, count in rows:
        deltas[ip] = _Delta(first, last, int(count))
    for ip, port in conn.execute(select(e.src_ip, e.src_port).distinct()
                                 .where(where, e.src_port.is_not(None))):
        deltas[ip].ports.add(int(port))
    for ip, sensor in conn.execute(select(e.src_ip, e.sensor).distinct().where(where)):
        deltas[ip].sensors.add(str(sensor))
    return deltas


def _merge(conn: Connection, deltas: dict[str, _Delta]) -> tuple[int, int]:
    ips = sorted(deltas)
    known: dict[str, Any] = {}
    for start in range(0, len(ips), 500):
        chunk = ips[start:start + 500]
        known.update({row.src_ip: row for row in conn.execute(
            select(INFECTION).where(INFECTION.c.src_ip.in_(chunk)))})
    now = utcnow()
    fresh, changed = [], []
    for ip in ips:
        delta = deltas[ip]
        row = known.get(ip)
        if row is None:
            fresh.append({"src_ip": ip, "first_seen": delta.first, "last_seen": delta.last,
                          "events": delta.events, "ports": _ports(delta.ports),
                          "sensors": json.dumps(sorted(delta.sensors)), "families": "[]",
                          "updated": now})
            continue
        changed.append({
            "b_ip": ip, "first_seen": min(row.first_seen, delta.first),
            "last_seen": max(row.last_seen, delta.last), "events": row.events + delta.events,
            "ports": _ports(set(json.loads(row.ports)) | delta.ports),
            "sensors": json.dumps(sorted(set(json.loads(row.sensors)) | delta.sensors)),
            "updated": now})
    if fresh:
        conn.execute(insert(INFECTION), fresh)
    if changed:
        conn.execute(update(INFECTION).where(INFECTION.c.src_ip == bindparam("b_ip")),
                     changed)
    return len(fresh), len(changed)


def _ports(ports: Iterable[int]) -> str:
    return json.dumps(sorted(ports)[:MAX_PORTS])


def _refresh_families(conn: Connection, kinds: list[str]) -> None:
    """Families of the samples each host downloaded or uploaded (all events: cheap, few)."""
    e = EVENT.c
    families: dict[str, set[str]] = defaultdict(set)
    rows = conn.execute(
        select(e.src_ip, SAMPLE.c.family).distinct()
        .join(SAMPLE, SAMPLE.c.sha256 == e.sample_sha256)
        .where(e.sample_sha256.is_not(None), e.src_ip.is_not(None), e.kind.in_(kinds),
               SAMPLE.c.family.is_not(None)))
    for ip, family in rows:
        families[ip].add(str(family))
    for ip, names in families.items():
        conn.execute(update(INFECTION).where(INFECTION.c.src_ip == ip)
                     .values(families=json.dumps(sorted(names))))


def infected_hosts(conn: Connection, *, since: datetime | None = None,
                   limit: int | None = None) -> list[InfectedHost]:
    """Hosts seen (last) since ``since``, most recently active first."""
    query = select(INFECTION).order_by(INFECTION.c.last_seen.desc(), INFECTION.c.src_ip)
    if since is not None:
        query = query.where(INFECTION.c.last_seen >= since)
    if limit is not None:
        query = query.limit(limit)
    return [InfectedHost(row.src_ip, row.first_seen, row.last_seen, int(row.events),
                         json.loads(row.ports), json.loads(row.sensors),
                         json.loads(row.families))
            for row in conn.execute(query)]
