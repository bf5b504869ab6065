"""Read-side of the catalog: the searches behind `samples` and `events` commands.

Results are plain dataclasses so the CLI, the portal and tests share one shape.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, exists, func, or_, select

from cleancenter.store.catalog import (
    EVENT,
    RELATION,
    SAMPLE,
    SAMPLE_NAME,
    SAMPLE_TAG,
    CatalogError,
)
from cleancenter.store.ipkey import AddressError, ip_key, network_key_range

_HEX = re.compile(r"^[0-9a-fA-F]+$")
MIN_PREFIX = 4


@dataclass
class SampleSummary:
    sha256: str
    md5: str
    sha1: str
    size: int
    file_type: str
    first_seen: datetime
    last_seen: datetime
    analysis_state: str
    names: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        return data


@dataclass
class SampleDetail(SampleSummary):
    ssdeep: str | None = None
    tlsh: str | None = None
    imphash: str | None = None
    parents: list[dict[str, str]] = field(default_factory=list)
    children: list[dict[str, str]] = field(default_factory=list)
    event_count: int = 0


@dataclass
class SampleFilter:
    hash_prefix: str | None = None
    name: str | None = None  # substring, or a glob with * and ?
    tag: str | None = None
    file_type: str | None = None
    since: datetime | None = None  # first seen at or after
    until: datetime | None = None  # first seen before
    limit: int = 50
    offset: int = 0


class AmbiguousReference(CatalogError):
    """A hash prefix that matches more than one sample."""


def _hash_condition(prefix: str) -> Any:
    p = prefix.lower()
    if not _HEX.match(p) or len(p) < MIN_PREFIX:
        raise CatalogError(
            f"{prefix!r} is not a hash prefix (at least {MIN_PREFIX} hex digits)"
        )
    c = SAMPLE.c
    if len(p) > 40:
        return _starts(c.sha256, p)
    if len(p) > 32:
        return or_(_starts(c.sha256, p), _starts(c.sha1, p))
    return or_(_starts(c.sha256, p), _starts(c.sha1, p), _starts(c.md5, p))


def _starts(column: Any, prefix: str) -> Any:
    """``column LIKE 'prefix%'`` that an index can serve on every backend: stored hashes are
    lowercase hex, which sorts below "g", so they start with `prefix` exactly when they lie
    in [prefix, prefix + "g"). (SQLite's LIKE is case-insensitive and PostgreSQL's needs a
    C-collation index, so neither uses an ordinary index for a LIKE.)"""
    return and_(column >= prefix, column < prefix + "g", column.startswith(prefix))


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if "*" in text or "?" in text:
        return escaped.replace("*", "%").replace("?", "_")
    return f"%{escaped}%"


def _sample_query(flt: SampleFilter) -> Select[Any]:
    c = SAMPLE.c
    query = select(SAMPLE)
    if flt.hash_prefix:
        query = query.where(_hash_condition(flt.hash_prefix))
    if flt.name:
        names = select(SAMPLE_NAME.c.sha256).where(
            func.lower(SAMPLE_NAME.c.name).like(_like_pattern(flt.name.lower()), escape="\\")
        )
        query = query.where(c.sha256.in_(names))
    if flt.tag:
        # EXISTS, not IN: SQLite would build the whole list of a common tag's samples
        # for every query; a probe of the (sha256, tag) key per candidate row is cheap
        query = query.where(exists().where(SAMPLE_TAG.c.sha256 == c.sha256,
                                           SAMPLE_TAG.c.tag == flt.tag))
    if flt.file_type:
        query = query.where(c.file_type == flt.file_type)
    if flt.since:
        query = query.where(c.first_seen >= flt.since)
    if flt.until:
        query = query.where(c.first_seen < flt.until)
    return query


def _names_and_tags(conn: Connection, sha256s: list[str]) -> tuple[dict[str, list[str]],
                                                                   dict[str, list[str]]]:
    names: dict[str, list[str]] = {s: [] for s in sha256s}
    tags: dict[str, list[str]] = {s: [] for s in sha256s}
    if sha256s:
        for sha, name in conn.execute(
            select(SAMPLE_NAME.c.sha256, SAMPLE_NAME.c.name)
            .where(SAMPLE_NAME.c.sha256.in_(sha256s))
            .order_by(SAMPLE_NAME.c.first_seen, SAMPLE_NAME.c.id)
        ):
            names[sha].append(name)
        for sha, tag in conn.execute(
            select(SAMPLE_TAG.c.sha256, SAMPLE_TAG.c.tag)
            .where(SAMPLE_TAG.c.sha256.in_(sha256s))
            .order_by(SAMPLE_TAG.c.tag)
        ):
            tags[sha].append(tag)
    return names, tags


def _summary(row: Any, names: list[str], tags: list[str]) -> SampleSummary:
    return SampleSummary(
        sha256=row.sha256, md5=row.md5, sha1=row.sha1, size=row.size, file_type=row.file_type,
        first_seen=row.first_seen, last_seen=row.last_seen,
        analysis_state=row.analysis_state, names=names, tags=tags,
    )


def find_samples(conn: Connection, flt: SampleFilter) -> list[SampleSummary]:
    query = (
        _sample_query(flt)
        .order_by(SAMPLE.c.first_seen.desc(), SAMPLE.c.sha256)
        .limit(flt.limit)
        .offset(flt.offset)
    )
    rows = conn.execute(query).all()
    names, tags = _names_and_tags(conn, [r.sha256 for r in rows])
    return [_summary(r, names[r.sha256], tags[r.sha256]) for r in rows]


def count_samples(conn: Connection, flt: SampleFilter) -> int:
    sub = _sample_query(flt).subquery()
    return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())


def get_sample(conn: Connection, reference: str) -> SampleDetail | None:
    """One sample by md5, sha1 or sha256, or an unambiguous prefix of one."""
    rows = conn.execute(select(SAMPLE).where(_hash_condition(reference)).limit(2)).all()
    if not rows:
        return None
    if len(rows) > 1:
        raise AmbiguousReference(f"{reference!r} matches more than one sample; give more digits")
    row = rows[0]
    names, tags = _names_and_tags(conn, [row.sha256])
    base = _summary(row, names[row.sha256], tags[row.sha256])
    r = RELATION.c
    parents = [
        {"sha256": p, "kind": k}
        for p, k in conn.execute(
            select(r.parent_sha256, r.kind).where(r.child_sha256 == row.sha256)
        )
    ]
    children = [
        {"sha256": ch, "kind": k}
        for ch, k in conn.execute(
            select(r.child_sha256, r.kind).where(r.parent_sha256 == row.sha256)
        )
    ]
    events = conn.execute(
        select(func.count()).select_from(EVENT).where(EVENT.c.sample_sha256 == row.sha256)
    ).scalar_one()
    return SampleDetail(
        **asdict(base), ssdeep=row.ssdeep, tlsh=row.tlsh, imphash=row.imphash,
        parents=parents, children=children, event_count=int(events),
    )


@dataclass
class EventFilter:
    since: datetime | None = None
    until: datetime | None = None
    ip: str | None = None  # an address or a CIDR network
    sensor: str | None = None
    kind: str | None = None
    session: str | None = None
    sample: str | None = None  # sha256
    limit: int = 100
    offset: int = 0


EVENT_COLUMNS = (
    "id", "time", "source", "sensor", "session", "src_ip", "src_port", "dst_ip", "dst_port",
    "protocol", "kind", "source_event", "url", "sample_sha256",
)


def _event_query(flt: EventFilter, columns: Any) -> Select[Any]:
    e = EVENT.c
    query = select(*columns)
    conds = []
    if flt.since:
        conds.append(e.time >= flt.since)
    if flt.until:
        conds.append(e.time < flt.until)
    if flt.ip:
        if "/" in flt.ip:
            try:
                lo, hi = network_key_range(flt.ip)
            except AddressError as exc:
                raise CatalogError(str(exc)) from exc
            conds.append(and_(e.src_key >= lo, e.src_key <= hi))
        else:
            key = ip_key(flt.ip)
            if key is None:
                raise CatalogError(f"not an IP address or network: {flt.ip!r}")
            conds.append(e.src_key == key)
    if flt.sensor:
        conds.append(e.sensor == flt.sensor)
    if flt.kind:
        conds.append(e.kind == flt.kind)
    if flt.session:
        conds.append(e.session == flt.session)
    if flt.sample:
        conds.append(e.sample_sha256 == flt.sample.lower())
    return query.where(*conds)


def find_events(conn: Connection, flt: EventFilter, *, with_raw: bool = False
                ) -> list[dict[str, Any]]:
    names = EVENT_COLUMNS + (("raw",) if with_raw else ())
    query = (
        _event_query(flt, [EVENT.c[n] for n in names])
        .order_by(EVENT.c.time, EVENT.c.id)
        .limit(flt.limit)
        .offset(flt.offset)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def count_events(conn: Connection, flt: EventFilter) -> int:
    query = _event_query(flt, [func.count()])
    return int(conn.execute(query).scalar_one())


def event_kind_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(EVENT.c.kind, func.count()).group_by(EVENT.c.kind))
    return {kind: int(n) for kind, n in rows}


def store_counts(conn: Connection) -> dict[str, int]:
    def n(table: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return {
        "samples": n(SAMPLE),
        "names": n(SAMPLE_NAME),
        "relations": n(RELATION),
        "events": n(EVENT),
        "source_ips": int(
            conn.execute(select(func.count(func.distinct(EVENT.c.src_ip)))).scalar_one()
        ),
    }
