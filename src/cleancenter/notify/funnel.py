"""The funnel after a notification: notified, visited, downloaded, cleaned, seen again.

The center never learns who was mailed. What it learns is tokens: each ISP sends back a
*sent report* (``cleancenter-sent-report/1``: a token per mail it sent, the center's
incident ids the mail was about, and when it went out). Every later step arrives with the
token: a visit to the landing page, a cleaner download, a cleaner report. "Seen again" is
the center's own evidence: counted events from a notified address within four weeks after
the mail. An address, not a subscriber: behind a dynamic address another subscriber may
be using it by then, so the figure is an upper bound of reinfection.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select

from cleancenter.notify.infections import DEFAULT_KINDS, STATE, STATE_KEY
from cleancenter.notify.isps import get_isp, isp_incidents
from cleancenter.store.catalog import utcnow
from cleancenter.store.ipkey import ip_key
from cleancenter.store.models import Event, FunnelEvent, Notice, NoticeIncident

NOTICE = cast(Table, Notice.__table__)
NOTICE_INCIDENT = cast(Table, NoticeIncident.__table__)
FUNNEL_EVENT = cast(Table, FunnelEvent.__table__)
EVENT = cast(Table, Event.__table__)

SENT_REPORT_FORMAT = "cleancenter-sent-report/1"
STEPS = ("visit", "download", "report")
SEEN_AGAIN_WINDOW = timedelta(days=28)
MAX_REPORT_NOTICES = 1_000_000
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_INCIDENT = re.compile(r"^cc-[0-9a-f]{24}$")

# CCC's published figures, as quoted in issue #5: 30.8% of the notified downloaded the
# cleaner in FY2006; under 20% of the notified were seen again within four weeks.
CCC_FY2006 = {"downloaded": 0.308, "seen_again": 0.20}


class SentReportError(ValueError):
    """A sent report cannot be read at all; the message says why."""


@dataclass
class ImportSummary:
    isp: str
    new: int = 0
    known: int = 0
    incidents: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"isp": self.isp, "new": self.new, "known": self.known,
                "incidents": self.incidents, "errors": self.errors}


def read_sent_report(path: Path) -> list[Any]:
    """The ``notifications`` of a sent report file, unchecked row by row (import does)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise SentReportError(f"{path}: not a readable sent report: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SENT_REPORT_FORMAT:
        raise SentReportError(f"{path}: not a {SENT_REPORT_FORMAT} file")
    rows = data.get("notifications")
    if not isinstance(rows, list):
        raise SentReportError(f"{path}: 'notifications' is not a list")
    if len(rows) > MAX_REPORT_NOTICES:
        raise SentReportError(f"{path}: more than {MAX_REPORT_NOTICES:,} notifications")
    return rows


def import_sent_report(conn: Connection, isp: str, rows: list[Any], *,
                       now: datetime | None = None) -> ImportSummary:
    """Store the tokens an ISP mailed. A bad row is an error for that row; the rest goes in.

    Only the ISP's own incidents are accepted (an id the center never gave this ISP is
    refused), so one ISP cannot make another's addresses look notified. Importing the
    same report again changes nothing."""
    get_isp(conn, isp)
    now = now or utcnow()
    own = {incident.id: incident for incident in isp_incidents(conn, isp)}
    summary = ImportSummary(isp)
    for number, row in enumerate(rows, 1):
        where = f"notification {number}"
        try:
            token, sent_at, ids = _parse_row(row)
        except ValueError as exc:
            summary.errors.append(f"{where}: {exc}")
            continue
        if sent_at > now + timedelta(minutes=5):
            summary.errors.append(f"{where}: sent_at {sent_at.isoformat()} is in the future")
            continue
        holder = conn.execute(select(NOTICE.c.isp).where(NOTICE.c.token == token)).scalar()
        if holder is not None:
            if holder != isp:
                summary.errors.append(f"{where}: token already used by another ISP")
            else:
                summary.known += 1
            continue
        known = [i for i in ids if i in own]
        for unknown in (i for i in ids if i not in own):
            summary.errors.append(f"{where}: {unknown} is not one of {isp}'s incidents")
        if not known:
            continue
        conn.execute(insert(NOTICE).values(token=token, isp=isp, sent_at=sent_at,
                                           received=now))
        conn.execute(insert(NOTICE_INCIDENT), [
            {"token": token, "incident_id": i, "src_ip": own[i].ip,
             "src_key": ip_key(own[i].ip)} for i in dict.fromkeys(known)])
        summary.new += 1
        summary.incidents += len(set(known))
    return summary


def _parse_row(row: Any) -> tuple[str, datetime, list[str]]:
    if not isinstance(row, dict):
        raise ValueError("not an object")
    token, sent, ids = row.get("token"), row.get("sent_at"), row.get("incidents")
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ValueError("token is not 16-64 characters of A-Z a-z 0-9 _ -")
    if not isinstance(sent, str):
        raise ValueError("sent_at is missing")
    try:
        sent_at = datetime.fromisoformat(sent)
    except ValueError as exc:
        raise ValueError(f"sent_at {sent!r} is not an ISO 8601 time") from exc
    if sent_at.tzinfo is None:
        raise ValueError(f"sent_at {sent!r} has no time zone")
    try:
        sent_at = sent_at.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError(f"sent_at {sent!r} is out of range") from exc
    if sent_at.year < 2000:
        raise ValueError(f"sent_at {sent!r} is before any notice could be sent")
    if not isinstance(ids, list) or not ids or not all(
            isinstance(i, str) and _INCIDENT.match(i) for i in ids):
        raise ValueError("incidents is not a non-empty list of cc-... incident ids")
    return token, sent_at, ids


@dataclass(frozen=True)
class Step:
    """A recorded step: whose notice it was, and whether it is the first of its kind."""

    isp: str
    first: bool


def record_step(conn: Connection, token: str, step: str, *,
                at: datetime | None = None) -> Step | None:
    """Count a visit, download or cleaner report for a token; None if the token is unknown.

    Only the first step of each kind per token is stored (the funnel counts notices, not
    clicks), so the table holds at most three rows a notice however often a link is
    opened. Unknown tokens are not stored: anyone can type a URL, and the table must not
    grow with guesses."""
    if step not in STEPS:
        raise ValueError(f"unknown funnel step {step!r}: one of {', '.join(STEPS)}")
    if not _TOKEN.match(token):
        return None
    isp = conn.execute(select(NOTICE.c.isp).where(NOTICE.c.token == token)).scalar()
    if isp is None:
        return None
    seen = conn.execute(select(FUNNEL_EVENT.c.id).where(
        FUNNEL_EVENT.c.token == token, FUNNEL_EVENT.c.kind == step).limit(1)).first()
    if seen is None:
        conn.execute(insert(FUNNEL_EVENT).values(token=token, kind=step, at=at or utcnow()))
    return Step(str(isp), first=seen is None)


@dataclass
class FunnelFigures:
    """One ISP's funnel (or all ISPs', ``isp=None``): counts of distinct notices."""

    isp: str | None
    notified: int = 0
    visited: int = 0
    downloaded: int = 0
    cleaned: int = 0
    seen_again: int = 0
    window_open: int = 0  # mailed less than four weeks ago: may still be seen again

    def rate(self, count: int) -> float | None:
        return count / self.notified if self.notified else None

    def to_dict(self) -> dict[str, Any]:
        counts = {"notified": self.notified, "visited": self.visited,
                  "downloaded": self.downloaded, "cleaned": self.cleaned,
                  "seen_again": self.seen_again}
        return {"isp": self.isp, **counts, "window_open": self.window_open,
                "rates": {k: self.rate(v) for k, v in counts.items() if k != "notified"}}


def funnel(conn: Connection, *, now: datetime | None = None,
           kinds: tuple[str, ...] | None = None) -> list[FunnelFigures]:
    """Per ISP (by name), then the total (``isp=None``) last.

    "Seen again" counts the event kinds the infections are derived with, unless told."""
    now = now or utcnow()
    if kinds is None:
        chosen = conn.execute(select(STATE.c.kinds).where(STATE.c.key == STATE_KEY)).scalar()
        kinds = tuple(json.loads(chosen)) if chosen else DEFAULT_KINDS
    notices = conn.execute(select(NOTICE.c.token, NOTICE.c.isp, NOTICE.c.sent_at)).all()
    steps: dict[str, set[str]] = defaultdict(set)
    for token, kind in conn.execute(
            select(FUNNEL_EVENT.c.token, FUNNEL_EVENT.c.kind).group_by(
                FUNNEL_EVENT.c.token, FUNNEL_EVENT.c.kind)):
        steps[kind].add(token)
    keys: dict[str, list[str]] = defaultdict(list)
    for token, key in conn.execute(select(NOTICE_INCIDENT.c.token, NOTICE_INCIDENT.c.src_key)):
        keys[token].append(key)
    per_isp: dict[str, FunnelFigures] = {}
    total = FunnelFigures(None)
    for token, isp, sent_at in notices:
        figures = per_isp.setdefault(isp, FunnelFigures(isp))
        seen = _seen_again(conn, keys[token], sent_at, kinds)
        for f in (figures, total):
            f.notified += 1
            f.visited += token in steps["visit"]
            f.downloaded += token in steps["download"]
            f.cleaned += token in steps["report"]
            f.seen_again += seen
            f.window_open += sent_at + SEEN_AGAIN_WINDOW > now
    return [per_isp[name] for name in sorted(per_isp)] + [total]


def _seen_again(conn: Connection, keys: list[str], sent_at: datetime,
                kinds: tuple[str, ...]) -> bool:
    """A counted event from one of the addresses after the mail, within four weeks."""
    if not keys:
        return False
    query = select(func.count()).select_from(
        select(EVENT.c.id).where(
            EVENT.c.src_key.in_(keys), EVENT.c.time > sent_at,
            EVENT.c.time <= sent_at + SEEN_AGAIN_WINDOW, EVENT.c.kind.in_(kinds),
        ).limit(1).subquery())
    return bool(conn.execute(query).scalar())
