"""The public figures of the home page, counted in the catalog, and CCC's beside them.

Every number is one SQL statement over the catalog tables (SQLAlchemy Core, the same on
SQLite and PostgreSQL); the funnel's numbers are `cleancenter.notify.funnel`'s own, so the
home page, ``notify funnel`` and ``/api/v1/funnel`` never disagree. Counting looks at every
event, so the portal keeps the result for a few seconds (`FiguresCache`).

What each number is:

- **samples collected**: every capture: events that carried a sample the store holds (one
  per download, duplicates included, as CCC counted its 974,999), plus samples that came
  in without an event (submissions, uploads);
- **unique samples**: distinct sha256 in the catalog;
- **new today**: samples first seen since 00:00 UTC today;
- **families**: distinct family names (the analyst's label first, else the analysis);
- **infected hosts**: source addresses in the infections table (they attacked the decoys);
- **notified / visited / downloaded / cleaned / seen again**: the funnel's totals (distinct
  notices; "downloaded" counts downloads through a mail's link, not anonymous ones).

The charts cover 30 days: up to today while the data is current, else the data's own last
30 days (a historic corpus still shows something).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, cast

from sqlalchemy import Table, and_, exists, func, select
from sqlalchemy.engine import Connection

from cleancenter.center import Center
from cleancenter.notify.funnel import FunnelFigures
from cleancenter.notify.infections import DEFAULT_KINDS, STATE, STATE_KEY
from cleancenter.store.catalog import EVENT, SAMPLE, utcnow
from cleancenter.store.models import Infection

INFECTION = cast(Table, Infection.__table__)
DAYS = 30
TOP_FAMILIES = 10

# Cyber Clean Center's published figures (DESIGN.md section 1). FY2006 = April 2006 to
# March 2007; the per-day rate is "by March 2009".
CCC_FY2006: dict[str, int | float] = {
    "samples_collected": 974_999,
    "samples_unique": 31_082,
    "notified": 6_005,
    "downloaded": 1_851,
    "downloaded_rate": 0.308,
    "seen_again_rate": 0.20,  # "under 20%" within 4 weeks
}
CCC_2009_NEW_PER_DAY = 1_800  # about 1,800 new unique specimens a day by March 2009


@dataclass(frozen=True)
class Figures:
    samples_collected: int
    samples_unique: int
    samples_new_today: int
    families: int
    infected_hosts: int
    funnel: FunnelFigures
    window_start: date
    window_end: date
    infections_per_day: list[tuple[date, int]]
    new_samples_per_day: list[tuple[date, int]]
    top_families: list[tuple[str, int]]
    computed: datetime = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples_collected": self.samples_collected, "samples_unique": self.samples_unique,
            "samples_new_today": self.samples_new_today, "families": self.families,
            "infected_hosts": self.infected_hosts, "funnel": self.funnel.to_dict(),
            "window": [self.window_start.isoformat(), self.window_end.isoformat()],
            "infections_per_day": [[d.isoformat(), n] for d, n in self.infections_per_day],
            "new_samples_per_day": [[d.isoformat(), n] for d, n in self.new_samples_per_day],
            "top_families": [list(item) for item in self.top_families],
            "computed": self.computed.isoformat(),
        }


def _day(value: Any) -> date:
    """SQLite's date() gives text, PostgreSQL's a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _kinds(conn: Connection) -> tuple[str, ...]:
    chosen = conn.execute(select(STATE.c.kinds).where(STATE.c.key == STATE_KEY)).scalar()
    return tuple(json.loads(chosen)) if chosen else DEFAULT_KINDS


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).scalar() or 0)


def window(conn: Connection, today: date, kinds: tuple[str, ...], days: int = DAYS
           ) -> tuple[date, date]:
    """The charts' days: the last ``days`` up to today, or up to the data's last day when
    the data stopped before that."""
    last_event = conn.execute(select(func.max(EVENT.c.time)).where(
        EVENT.c.kind.in_(kinds))).scalar()
    last_sample = conn.execute(select(func.max(SAMPLE.c.first_seen))).scalar()
    last = max((_day(v) for v in (last_event, last_sample) if v is not None), default=None)
    end = today if last is None or last > today - timedelta(days=days) else last
    return end - timedelta(days=days - 1), end


def _per_day(rows: Any, start: date, end: date) -> list[tuple[date, int]]:
    counts = {_day(day): int(n) for day, n in rows}
    return [(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0))
            for i in range((end - start).days + 1)]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=UTC)


def compute_figures(conn: Connection, funnel_total: FunnelFigures, *,
                    now: datetime | None = None, days: int = DAYS,
                    top: int = TOP_FAMILIES) -> Figures:
    now = now or utcnow()
    today = now.astimezone(UTC).date()
    kinds = _kinds(conn)
    captured = _count(conn, select(func.count()).select_from(EVENT).where(
        EVENT.c.sample_sha256.is_not(None),
        exists().where(SAMPLE.c.sha256 == EVENT.c.sample_sha256)))
    without_event = _count(conn, select(func.count()).select_from(SAMPLE).where(
        ~exists().where(EVENT.c.sample_sha256 == SAMPLE.c.sha256)))
    unique = _count(conn, select(func.count()).select_from(SAMPLE))
    new_today = _count(conn, select(func.count()).select_from(SAMPLE).where(
        SAMPLE.c.first_seen >= _midnight(today)))
    named = and_(SAMPLE.c.family.is_not(None), SAMPLE.c.family != "")
    families = _count(conn, select(func.count(func.distinct(SAMPLE.c.family))).where(named))
    hosts = _count(conn, select(func.count()).select_from(INFECTION))

    start, end = window(conn, today, kinds, days)
    lo, hi = _midnight(start), _midnight(end + timedelta(days=1))
    event_day = func.date(EVENT.c.time)
    infections = conn.execute(
        select(event_day, func.count(func.distinct(EVENT.c.src_key)))
        .where(EVENT.c.time >= lo, EVENT.c.time < hi, EVENT.c.kind.in_(kinds),
               EVENT.c.src_key.is_not(None))
        .group_by(event_day)).all()
    sample_day = func.date(SAMPLE.c.first_seen)
    new_samples = conn.execute(
        select(sample_day, func.count())
        .where(SAMPLE.c.first_seen >= lo, SAMPLE.c.first_seen < hi)
        .group_by(sample_day)).all()
    members = func.count().label("members")
    top_rows = conn.execute(
        select(SAMPLE.c.family, members).where(named).group_by(SAMPLE.c.family)
        .order_by(members.desc(), SAMPLE.c.family).limit(top)).all()
    return Figures(
        samples_collected=captured + without_event, samples_unique=unique,
        samples_new_today=new_today, families=families, infected_hosts=hosts,
        funnel=funnel_total, window_start=start, window_end=end,
        infections_per_day=_per_day(infections, start, end),
        new_samples_per_day=_per_day(new_samples, start, end),
        top_families=[(str(name), int(n)) for name, n in top_rows], computed=now)


class FiguresCache:
    """The figures, recounted at most every ``ttl`` seconds (like `FunnelCache`)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._value: Figures | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self, center: Center, funnel_total: FunnelFigures) -> Figures:
        with self._lock:
            if self._value is not None and self._clock() - self._at < self.ttl and \
                    self._value.funnel == funnel_total:
                return self._value
            with center.catalog.engine.connect() as conn:
                self._value = compute_figures(conn, funnel_total)
            self._at = self._clock()
            return self._value
