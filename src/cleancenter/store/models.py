"""Catalog tables (design section 5). Later stages add theirs by migration.

Times are stored as naive UTC and handed back tz-aware, the same on SQLite and
PostgreSQL. Source IPs are also kept as a fixed-width key (IPv4 mapped into IPv6, 32 hex
digits) so that a CIDR filter is an indexed range query on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database, aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Sample(Base):
    __tablename__ = "sample"
    __table_args__ = (
        # family + date range, newest first (the portal's search); migration 0009
        Index("ix_sample_family_first_seen", "family", "first_seen", "sha256"),
        Index("ix_sample_lower_family_first_seen", func.lower(text("family")), "first_seen",
              "sha256"),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    md5: Mapped[str] = mapped_column(String(32), index=True)
    sha1: Mapped[str] = mapped_column(String(40), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    file_type: Mapped[str] = mapped_column(String(64), index=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    ssdeep: Mapped[str | None] = mapped_column(String(255))
    tlsh: Mapped[str | None] = mapped_column(String(80), index=True)
    imphash: Mapped[str | None] = mapped_column(String(32))
    analysis_state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    verdict: Mapped[str | None] = mapped_column(String(16))  # the latest, analyst's first
    family: Mapped[str | None] = mapped_column(String(128), index=True)


class SampleName(Base):
    """Every name a sample was seen under (archive member, upload name, honeypot path)."""

    __tablename__ = "sample_name"
    __table_args__ = (UniqueConstraint("sha256", "name", name="uq_sample_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("sample.sha256", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1024), index=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class SampleTag(Base):
    __tablename__ = "sample_tag"

    sha256: Mapped[str] = mapped_column(
        ForeignKey("sample.sha256", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class Relation(Base):
    """parent -> child: ``extracted`` (archive member), later ``unpacked``, ``dropped``..."""

    __tablename__ = "relation"
    __table_args__ = (UniqueConstraint("parent_sha256", "child_sha256", "kind", name="uq_rel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_sha256: Mapped[str] = mapped_column(String(64), index=True)
    child_sha256: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))


class Event(Base):
    """One thing a sensor saw. ``uid`` makes re-ingesting the same record a no-op."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_session_kind", "session", "kind"),
        Index("ix_event_src_key_time", "src_key", "time"),
        Index(
            "ix_event_sample_sha256", "sample_sha256",
            sqlite_where=text("sample_sha256 IS NOT NULL"),
            postgresql_where=text("sample_sha256 IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))  # cowrie, dionaea, ...
    sensor: Mapped[str] = mapped_column(String(128))
    session: Mapped[str | None] = mapped_column(String(64))
    src_ip: Mapped[str | None] = mapped_column(String(45))
    src_key: Mapped[str | None] = mapped_column(String(32))
    src_port: Mapped[int | None] = mapped_column(Integer)
    dst_ip: Mapped[str | None] = mapped_column(String(45))
    dst_port: Mapped[int | None] = mapped_column(Integer)
    protocol: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    source_event: Mapped[str] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    sample_sha256: Mapped[str | None] = mapped_column(String(64))
    raw: Mapped[str] = mapped_column(Text)


class AnalysisReport(Base):
    """One analysis of one sample by one analyzer version (re-running it is a no-op)."""

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("sha256", "analyzer_version", name="uq_report_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    analyzer_version: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(16))
    family: Mapped[str | None] = mapped_column(String(128))
    packer: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[float] = mapped_column(Float)
    error_count: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)


class Ioc(Base):
    __tablename__ = "ioc"
    __table_args__ = (UniqueConstraint("type", "value", name="uq_ioc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(2048))


class SampleIoc(Base):
    __tablename__ = "sample_ioc"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    ioc_id: Mapped[int] = mapped_column(
        ForeignKey("ioc.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    offset: Mapped[int] = mapped_column(BigInteger)


class AnalystLabel(Base):
    """An analyst's verdict and/or family for a sample: kept with who and when, and it
    wins over automatic results."""

    __tablename__ = "analyst_label"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    verdict: Mapped[str | None] = mapped_column(String(16))
    family: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class Release(Base):
    """A signed definitions bundle the center built; versions only grow."""

    __tablename__ = "release"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    sha256: Mapped[str] = mapped_column(String(64))
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    counts: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)


class IngestCursor(Base):
    """How far a log has been ingested, so a restarted run resumes where it stopped."""

    __tablename__ = "ingest_cursor"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int | None] = mapped_column(BigInteger)
    head: Mapped[str | None] = mapped_column(String(64))
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class IngestError(Base):
    """A bad item that was skipped; the rest of the input went in."""

    __tablename__ = "ingest_error"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)


class Infection(Base):
    """A source address that attacked the decoys: what the center tells its ISP about."""

    __tablename__ = "infection"

    src_ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    events: Mapped[int] = mapped_column(BigInteger)
    ports: Mapped[str] = mapped_column(Text)
    sensors: Mapped[str] = mapped_column(Text)
    families: Mapped[str] = mapped_column(Text)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class InfectionState(Base):
    """How far the infections were derived (the last event id read) and with which kinds."""

    __tablename__ = "infection_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    kinds: Mapped[str] = mapped_column(Text)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class Isp(Base):
    """A network owner the center notifies (its abuse desk's contact and language)."""

    __tablename__ = "isp"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact: Mapped[str] = mapped_column(String(320))
    lang: Mapped[str] = mapped_column(String(8))
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class IspPrefix(Base):
    """A prefix an ISP announces; a prefix belongs to one ISP (longest match wins)."""

    __tablename__ = "isp_prefix"

    prefix: Mapped[str] = mapped_column(String(49), primary_key=True)
    isp: Mapped[str] = mapped_column(ForeignKey("isp.name", ondelete="CASCADE"), index=True)


class IspAsn(Base):
    """An AS number of an ISP, for addresses no registered prefix covers."""

    __tablename__ = "isp_asn"

    asn: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    isp: Mapped[str] = mapped_column(ForeignKey("isp.name", ondelete="CASCADE"), index=True)


class Notice(Base):
    """A mail an ISP sent, known to the center by its token only (never its subscriber)."""

    __tablename__ = "notice"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    isp: Mapped[str] = mapped_column(ForeignKey("isp.name", ondelete="CASCADE"), index=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received: Mapped[datetime] = mapped_column(UTCDateTime)


class NoticeIncident(Base):
    """Which of the center's incidents a notice was about: the address to watch for again."""

    __tablename__ = "notice_incident"

    token: Mapped[str] = mapped_column(ForeignKey("notice.token", ondelete="CASCADE"),
                                       primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    src_ip: Mapped[str] = mapped_column(String(45))
    src_key: Mapped[str] = mapped_column(String(32), index=True)


class FunnelEvent(Base):
    """A step a notified person took: visited the landing page, downloaded, reported."""

    __tablename__ = "funnel_event"
    __table_args__ = (Index("ix_funnel_event_token_kind", "token", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    token: Mapped[str] = mapped_column(ForeignKey("notice.token", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class PortalUser(Base):
    """A person who signs in to the portal: scrypt password hash (per-user salt), roles."""

    __tablename__ = "portal_user"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(Text)  # comma-separated: admin, analyst, isp:NAME
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """An API token: only its sha256 is kept, and a short public id to find it by."""

    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(128))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PortalSession(Base):
    """A signed-in browser: only the sha256 of the cookie's id is kept."""

    __tablename__ = "portal_session"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("portal_user.name", ondelete="CASCADE"),
                                      index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    expires: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Job(Base):
    """One analysis task handed to the workers: who runs it, how it went (the broker holds
    the message; this row is what `jobs status` and the analysts see)."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_state_priority", "state", "priority"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "analyze"
    priority: Mapped[int] = mapped_column(Integer)  # 9 submission, 0 honeypot backlog
    queue: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))  # queued, running, failed, done
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    enqueued: Mapped[datetime] = mapped_column(UTCDateTime)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
