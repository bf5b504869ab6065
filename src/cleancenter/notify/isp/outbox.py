"""The outbox: which matched incidents become which mail, and each mail's state.

`enqueue` turns the correlation's matches into notifications: only ``matched`` incidents
of known subscribers, one notification per subscriber per run (listing each incident),
each incident recorded as a *notice item* (subscriber, incident id, round) with a UNIQUE
idempotency key, so the same list enqueued twice gives nothing the second time.

An incident already mailed to the subscriber gets a new round only when that mail was
sent at least ``renotify_days`` ago and the incident was still observed after it
(``last_seen`` later than the sending time). A subscriber gets at most ``max_per_month``
notifications in any 30 days (queued, sending and sent ones count). Items held back by
these rules are reported and not stored, so that a later run can take them.

A notification moves ``queued`` -> ``sending`` (committed before the SMTP transaction)
-> ``sent`` (after the server's 250), or back to ``queued`` with a later
``next_attempt_at`` (a temporary failure), or to ``failed`` (a permanent one, or too many
attempts). A row left in ``sending`` was cut off mid-transaction and is sent again with
the same Message-ID: delivery is at least once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cleancenter.notify.incidents import Incident
from cleancenter.notify.isp.correlate import Match
from cleancenter.notify.isp.db import parse_utc, transaction, utc_text
from cleancenter.notify.isp.subscribers import get_subscriber

MONTH = timedelta(days=30)
HOUR = timedelta(hours=1)
MAX_BACKOFF = timedelta(hours=6)
SENT_REPORT_FORMAT = "cleancenter-sent-report/1"
STATUSES = ("queued", "sending", "sent", "failed")
HELD = ("renotify-too-soon", "monthly-cap")  # held back: a later run may take them


def check_landing_url(url: str) -> str:
    """The landing URL the token is appended to: https (or http on loopback), ending '/'."""
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"landing URL {url!r} must be https:// (http:// only on "
                         "127.0.0.1/localhost)")
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise ValueError(f"landing URL {url!r} must be a plain https://host/path/")
    if not url.endswith("/"):
        raise ValueError(f"landing URL {url!r} must end with '/' (the code is appended)")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        raise ValueError(f"landing URL {url!r} must be plain ASCII without spaces")
    return url


@dataclass(frozen=True)
class Skipped:
    """An incident that was not enqueued, and why (``code`` is one word)."""

    incident_id: str
    ip: str
    subscriber_id: str | None
    code: str
    reason: str

    @property
    def held(self) -> bool:
        return self.code in HELD

    def to_dict(self) -> dict[str, Any]:
        return {"incident": self.incident_id, "ip": self.ip,
                "subscriber": self.subscriber_id, "code": self.code,
                "reason": self.reason, "held": self.held}


@dataclass(frozen=True)
class Queued:
    notification_id: int
    subscriber_id: str
    lang: str
    incidents: tuple[str, ...]
    rounds: tuple[int, ...]
    ips: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"notification": self.notification_id, "subscriber": self.subscriber_id,
                "lang": self.lang, "incidents": list(self.incidents),
                "rounds": list(self.rounds), "ips": list(self.ips)}


@dataclass
class EnqueueResult:
    queued: list[Queued] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:32]


def incident_payload(incident: Incident) -> dict[str, Any]:
    """What the mail needs of an incident (stored with the notification)."""
    return {"id": incident.id, "ip": incident.ip,
            "first_seen": incident.first_seen.astimezone(UTC).isoformat(),
            "last_seen": incident.last_seen.astimezone(UTC).isoformat(),
            "events": incident.events, "ports": list(incident.ports),
            "families": list(incident.families)}


def enqueue(conn: sqlite3.Connection, matches: Sequence[Match], *, landing_url: str,
            now: datetime, renotify_days: int = 7, max_per_month: int = 2,
            new_token: Callable[[], str] = lambda: secrets.token_urlsafe(16)
            ) -> EnqueueResult:
    """Enqueue the mails for ``matches`` (of `Incident`s), all in one transaction."""
    check_landing_url(landing_url)
    if renotify_days < 0 or max_per_month < 1:
        raise ValueError("renotify_days must be >= 0 and max_per_month >= 1")
    result = EnqueueResult()
    stamp = utc_text(now)
    with transaction(conn):
        pending: dict[str, list[tuple[Incident, int]]] = {}
        langs: dict[str, str] = {}
        seen: set[tuple[str, str]] = set()
        for match in matches:
            incident = match.observation
            if not isinstance(incident, Incident):
                raise TypeError("enqueue takes matches of the center's incidents")

            def skip(code: str, reason: str, sub: str | None = None,
                     inc: Incident = incident) -> None:
                result.skipped.append(Skipped(inc.id, inc.ip, sub, code, reason))

            if match.status != "matched" or match.subscriber is None:
                skip(match.status, "no lease covers it" if match.status == "none"
                     else f"ambiguous: {match.note}; never mailed on a guess")
                continue
            sid = match.subscriber
            subscriber = get_subscriber(conn, sid)
            if subscriber is None:
                skip("unknown-subscriber", "the subscriber is not in the subscriber table "
                     "(import it, then run notify again)", sid)
                continue
            if (sid, incident.id) in seen:
                continue  # listed twice
            seen.add((sid, incident.id))
            last = conn.execute(
                "SELECT ni.round, n.status, n.sent_at FROM notice_item ni JOIN notification n"
                " ON n.id = ni.notification_id WHERE ni.subscriber_id = ? AND "
                "ni.incident_id = ? ORDER BY ni.round DESC LIMIT 1",
                (sid, incident.id)).fetchone()
            round_ = 1
            if last is not None:
                if last["status"] in ("queued", "sending"):
                    skip("already-queued", "a mail about it is already in the outbox", sid)
                    continue
                if last["status"] == "failed":
                    skip("previous-failed", "the last mail about it failed (see outbox)", sid)
                    continue
                sent_at = parse_utc(last["sent_at"])
                if incident.last_seen <= sent_at:
                    skip("already-notified", f"mailed {sent_at.isoformat()}; not seen since",
                         sid)
                    continue
                again = sent_at + timedelta(days=renotify_days)
                if now < again:
                    skip("renotify-too-soon", f"still seen after the mail of "
                         f"{sent_at.isoformat()}; mailed again from {again.isoformat()}", sid)
                    continue
                round_ = int(last["round"]) + 1
            pending.setdefault(sid, []).append((incident, round_))
            langs[sid] = subscriber.lang
        cutoff = utc_text(now - MONTH)
        for sid, items in pending.items():
            count = conn.execute(
                "SELECT COUNT(*) FROM notification WHERE subscriber_id = ? AND (status IN "
                "('queued', 'sending') OR (status = 'sent' AND sent_at > ?))",
                (sid, cutoff)).fetchone()[0]
            if count >= max_per_month:
                for incident, _ in items:
                    result.skipped.append(Skipped(
                        incident.id, incident.ip, sid, "monthly-cap",
                        f"already {count} mails in 30 days (max {max_per_month})"))
                continue
            item_keys = [_key(sid, incident.id, round_) for incident, round_ in items]
            token = new_token()
            cursor = conn.execute(
                "INSERT INTO notification (idempotency_key, subscriber_id, token, link, lang, "
                "status, attempts, next_attempt_at, created_at, incidents) "
                "VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)",
                (_key(*sorted(item_keys)), sid, token, landing_url + token, langs[sid],
                 stamp, stamp, json.dumps([incident_payload(i) for i, _ in items])))
            nid = int(cursor.lastrowid or 0)
            for key, (incident, round_) in zip(item_keys, items, strict=True):
                conn.execute("INSERT INTO notice_item (idempotency_key, subscriber_id, "
                             "incident_id, round, notification_id) VALUES (?, ?, ?, ?, ?)",
                             (key, sid, incident.id, round_, nid))
            result.queued.append(Queued(nid, sid, langs[sid],
                                        tuple(i.id for i, _ in items),
                                        tuple(r for _, r in items),
                                        tuple(i.ip for i, _ in items)))
    return result


# --- delivery state ---------------------------------------------------------------------

@dataclass(frozen=True)
class Notification:
    id: int
    idempotency_key: str
    subscriber_id: str
    token: str
    link: str
    lang: str
    status: str
    attempts: int
    created_at: datetime
    incidents: tuple[dict[str, Any], ...]


def _notification(r: sqlite3.Row) -> Notification:
    return Notification(r["id"], r["idempotency_key"], r["subscriber_id"], r["token"],
                        r["link"], r["lang"], r["status"], r["attempts"],
                        parse_utc(r["created_at"]), tuple(json.loads(r["incidents"])))


def due(conn: sqlite3.Connection, now: datetime) -> list[Notification]:
    """What to send now, oldest first: left ``sending`` by a run that died, or queued and
    due."""
    return [_notification(r) for r in conn.execute(
        "SELECT * FROM notification WHERE status = 'sending' OR (status = 'queued' AND "
        "next_attempt_at <= ?) ORDER BY created_at, id", (utc_text(now),))]


def sent_within_hour(conn: sqlite3.Connection, now: datetime) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM notification WHERE status = 'sent' AND "
                            "sent_at > ?", (utc_text(now - HOUR),)).fetchone()[0])


def mark_sending(conn: sqlite3.Connection, nid: int, message_id: str) -> None:
    with transaction(conn):
        conn.execute("UPDATE notification SET status = 'sending', message_id = ? "
                     "WHERE id = ?", (message_id, nid))


def mark_sent(conn: sqlite3.Connection, nid: int, now: datetime) -> None:
    with transaction(conn):
        conn.execute("UPDATE notification SET status = 'sent', sent_at = ?, "
                     "attempts = attempts + 1, last_error = NULL WHERE id = ?",
                     (utc_text(now), nid))


def mark_failed(conn: sqlite3.Connection, nid: int, error: str) -> None:
    with transaction(conn):
        conn.execute("UPDATE notification SET status = 'failed', attempts = attempts + 1, "
                     "last_error = ? WHERE id = ?", (error, nid))


def backoff_delay(backoff: float, attempts: int) -> timedelta:
    """``backoff * 2**(attempts-1)`` seconds, at most 6 hours."""
    if backoff <= 0:
        return timedelta(0)
    seconds = backoff * 2 ** min(max(attempts - 1, 0), 40)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def mark_retry(conn: sqlite3.Connection, nid: int, error: str, now: datetime, *,
               backoff: float, max_attempts: int) -> str:
    """A temporary failure: queued again later, or failed when attempts run out.
    Returns the new status."""
    with transaction(conn):
        attempts = int(conn.execute("SELECT attempts FROM notification WHERE id = ?",
                                    (nid,)).fetchone()[0]) + 1
        if attempts >= max_attempts:
            conn.execute("UPDATE notification SET status = 'failed', attempts = ?, "
                         "last_error = ? WHERE id = ?",
                         (attempts, f"gave up after {attempts} attempts: {error}", nid))
            return "failed"
        conn.execute("UPDATE notification SET status = 'queued', attempts = ?, "
                     "last_error = ?, next_attempt_at = ? WHERE id = ?",
                     (attempts, error, utc_text(now + backoff_delay(backoff, attempts)), nid))
        return "queued"


def release(conn: sqlite3.Connection, nid: int) -> None:
    """Back to queued without counting an attempt (the run stopped on a config error)."""
    with transaction(conn):
        conn.execute("UPDATE notification SET status = 'queued' WHERE id = ? AND "
                     "status = 'sending'", (nid,))


# --- reports ------------------------------------------------------------------------------

def outbox(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts per status and every row, without tokens or links (they are secrets)."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in conn.execute("SELECT status, COUNT(*) FROM notification GROUP BY status"):
        counts[status] = n
    rows = []
    for r in conn.execute("SELECT * FROM notification ORDER BY created_at, id"):
        rows.append({"id": r["id"], "subscriber": r["subscriber_id"], "lang": r["lang"],
                     "status": r["status"], "attempts": r["attempts"],
                     "next_attempt_at": r["next_attempt_at"] if r["status"] == "queued"
                     else None,
                     "last_error": r["last_error"], "created_at": r["created_at"],
                     "sent_at": r["sent_at"], "message_id": r["message_id"],
                     "incidents": [i["id"] for i in json.loads(r["incidents"])]})
    return {"counts": counts, "notifications": rows}


def sent_report(conn: sqlite3.Connection, since: datetime | None = None) -> dict[str, Any]:
    """What the ISP gives the center: per mail sent, its token, incident ids and time."""
    query = "SELECT id, token, sent_at FROM notification WHERE status = 'sent'"
    args: tuple[str, ...] = ()
    if since is not None:
        query += " AND sent_at >= ?"
        args = (utc_text(since),)
    rows = []
    for r in conn.execute(query + " ORDER BY sent_at, id", args):
        incidents = [i for (i,) in conn.execute(
            "SELECT incident_id FROM notice_item WHERE notification_id = ? "
            "ORDER BY incident_id", (r["id"],))]
        sent_at = parse_utc(r["sent_at"]).isoformat(timespec="seconds")
        rows.append({"token": r["token"], "incidents": incidents, "sent_at": sent_at})
    return {"format": SENT_REPORT_FORMAT, "notifications": rows}
