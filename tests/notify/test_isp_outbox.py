"""The outbox: enqueue rules (idempotency, re-notification, monthly cap), the sent report."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.notify.incidents import Incident
from cleancenter.notify.isp.correlate import Match
from cleancenter.notify.isp.db import open_db, utc_text
from cleancenter.notify.isp.outbox import check_landing_url, enqueue, outbox, sent_report
from cleancenter.notify.isp.subscribers import Subscriber, import_subscribers

runner = CliRunner()
LANDING = "https://center.example/n/"
T0 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
SUBSCRIBERS = [Subscriber("sub-alice", "alice@example.jp", "ja", "山田 花子"),
               Subscriber("sub-bob", "bob@example.com", "en", "Bob Example"),
               Subscriber("sub-carol", "carol@example.com", "en", "")]


def incident(ip: str, first: datetime, last: datetime | None = None, *,
             families: tuple[str, ...] = ("Mirai",), ports: tuple[int, ...] = ()
             ) -> Incident:
    return Incident(isp="alpha-net", ip=ip, first_seen=first, last_seen=last or first,
                    events=5, ports=ports, families=families)


def matched(item: Incident, subscriber: str) -> Match:
    return Match(item, "matched", subscriber, "leases.log:1")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = open_db(tmp_path / "isp.db")
    import_subscribers(db, SUBSCRIBERS, T0)
    yield db
    db.close()


def mark_all_sent(db: sqlite3.Connection, when: datetime) -> None:
    db.execute("UPDATE notification SET status = 'sent', sent_at = ? WHERE status = "
               "'queued'", (utc_text(when),))


def test_one_mail_per_subscriber_and_idempotent(conn: sqlite3.Connection) -> None:
    a1 = incident("203.0.113.5", T0)
    a2 = incident("203.0.113.6", T0 + timedelta(hours=1))
    b1 = incident("198.51.100.7", T0)
    matches = [matched(a1, "sub-alice"), matched(b1, "sub-bob"), matched(a2, "sub-alice"),
               Match(incident("203.0.113.99", T0), "none"),
               Match(incident("203.0.113.98", T0), "ambiguous", note="overlap"),
               matched(incident("203.0.113.97", T0), "sub-nobody")]
    first = enqueue(conn, matches, landing_url=LANDING, now=T0 + timedelta(days=1))
    assert [(q.subscriber_id, q.lang, q.incidents) for q in first.queued] == [
        ("sub-alice", "ja", (a1.id, a2.id)), ("sub-bob", "en", (b1.id,))]
    assert sorted(s.code for s in first.skipped) == ["ambiguous", "none",
                                                     "unknown-subscriber"]
    rows = conn.execute("SELECT token, link FROM notification").fetchall()
    assert len({r["token"] for r in rows}) == 2
    assert all(r["link"] == LANDING + r["token"] and len(r["token"]) >= 20 for r in rows)
    again = enqueue(conn, matches, landing_url=LANDING, now=T0 + timedelta(days=1))
    assert again.queued == []
    assert [s.code for s in again.skipped].count("already-queued") == 3
    mark_all_sent(conn, T0 + timedelta(days=1))
    third = enqueue(conn, matches, landing_url=LANDING, now=T0 + timedelta(days=30))
    assert third.queued == []  # not seen since the mail: never again
    assert [s.code for s in third.skipped].count("already-notified") == 3
    assert conn.execute("SELECT COUNT(*) FROM notification").fetchone()[0] == 2


def test_renotify_only_after_n_days_and_only_when_still_seen(
        conn: sqlite3.Connection) -> None:
    sent_at = T0 + timedelta(hours=2)
    enqueue(conn, [matched(incident("203.0.113.5", T0), "sub-bob")], landing_url=LANDING,
            now=T0 + timedelta(hours=1))
    mark_all_sent(conn, sent_at)
    still_seen = incident("203.0.113.5", T0, sent_at + timedelta(days=2))  # same id
    too_soon = enqueue(conn, [matched(still_seen, "sub-bob")], landing_url=LANDING,
                       now=sent_at + timedelta(days=6, hours=23))
    assert too_soon.queued == []
    assert [(s.code, s.held) for s in too_soon.skipped] == [("renotify-too-soon", True)]
    later = enqueue(conn, [matched(still_seen, "sub-bob")], landing_url=LANDING,
                    now=sent_at + timedelta(days=7))
    assert [(q.incidents, q.rounds) for q in later.queued] == [((still_seen.id,), (2,))]
    # the second round has its own token and idempotency key
    tokens = conn.execute("SELECT DISTINCT token FROM notification").fetchall()
    assert len(tokens) == 2


def test_at_most_m_mails_a_month(conn: sqlite3.Connection) -> None:
    now = T0
    for day in range(3):
        now = T0 + timedelta(days=day)
        result = enqueue(conn, [matched(incident("203.0.113.5", now), "sub-carol")],
                         landing_url=LANDING, now=now, max_per_month=2)
        if day < 2:
            assert len(result.queued) == 1
            mark_all_sent(conn, now)
        else:
            assert result.queued == []
            assert [s.code for s in result.skipped] == ["monthly-cap"]
    # held back, not stored: after 30 days the same incident goes out
    later = enqueue(conn, [matched(incident("203.0.113.5", now), "sub-carol")],
                    landing_url=LANDING, now=T0 + timedelta(days=31), max_per_month=2)
    assert len(later.queued) == 1


def test_mails_still_waiting_count_against_the_cap_however_old(
        conn: sqlite3.Connection) -> None:
    """Deferred for weeks (the server was down), they still go out: a new one would
    make it three at once."""
    for day in range(2):
        enqueue(conn, [matched(incident(f"203.0.113.{day}", T0 + timedelta(days=day)),
                               "sub-carol")], landing_url=LANDING,
                now=T0 + timedelta(days=day), max_per_month=2)
    late = enqueue(conn, [matched(incident("203.0.113.9", T0), "sub-carol")],
                   landing_url=LANDING, now=T0 + timedelta(days=45), max_per_month=2)
    assert late.queued == [] and [s.code for s in late.skipped] == ["monthly-cap"]


def test_landing_url_rules() -> None:
    assert check_landing_url("https://center.example/n/") == "https://center.example/n/"
    assert check_landing_url("http://127.0.0.1:8080/n/")
    for bad in ("http://center.example/n/", "https://center.example/n",
                "ftp://center.example/", "https://center.example/n/?x=1",
                "https://user@center.example/"):
        with pytest.raises(ValueError):
            check_landing_url(bad)


def test_sent_report_has_tokens_ids_and_times_only(conn: sqlite3.Connection,
                                                   tmp_path: Path) -> None:
    a1 = incident("203.0.113.5", T0)
    enqueue(conn, [matched(a1, "sub-alice"), matched(incident("198.51.100.7", T0), "sub-bob")],
            landing_url=LANDING, now=T0)
    conn.execute("UPDATE notification SET status = 'sent', sent_at = ? WHERE subscriber_id "
                 "= 'sub-alice'", (utc_text(datetime(2026, 11, 26, 1, 2, 3, 456, UTC)),))
    report = sent_report(conn)
    token = conn.execute("SELECT token FROM notification WHERE subscriber_id = "
                         "'sub-alice'").fetchone()[0]
    assert report == {"format": "cleancenter-sent-report/1", "notifications": [
        {"token": token, "incidents": [a1.id], "sent_at": "2026-11-26T01:02:03+00:00"}]}
    assert sent_report(conn, T0 + timedelta(days=1))["notifications"] == []
    out = tmp_path / "sent.json"
    result = runner.invoke(app, ["isp-side", "sent-report", "--out", str(out), "--db",
                                 str(tmp_path / "isp.db")])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert json.loads(text) == report
    for private in ("alice", "example.jp", "山田", "sub-"):
        assert private not in text
    box = outbox(conn)
    assert box["counts"] == {"queued": 1, "sending": 0, "sent": 1, "failed": 0}
    assert token not in json.dumps(box)


CGNAT = """\
2026-11-26T01:00:00Z ALLOC 100.64.0.7 203.0.113.9 1024-2047 sub-alice
2026-11-26T01:00:00Z ALLOC 100.64.0.8 203.0.113.9 2048-3071 sub-bob
2026-11-26T01:30:00Z ALLOC 100.64.0.9 203.0.113.9 2048-3071 sub-carol
2026-11-26T01:00:00Z ALLOC 100.64.0.10 203.0.113.9 3072-4095 sub-unknown
"""


def test_notify_command_queues_matched_known_subscribers(tmp_path: Path) -> None:
    db = tmp_path / "isp.db"
    subs = tmp_path / "subs.csv"
    subs.write_text("subscriber_id,email,lang,name\nsub-alice,alice@example.jp,ja,\n"
                    "sub-bob,bob@example.com,en,Bob\nsub-carol,carol@example.com,en,\n")
    assert runner.invoke(app, ["isp-side", "subscribers", "import", str(subs), "--db",
                               str(db)]).exit_code == 0
    at = datetime(2026, 11, 26, 1, 10, tzinfo=UTC)
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([
        Incident("alpha-net", "203.0.113.9", at, at, 3, (1500,)).to_dict(),
        Incident("alpha-net", "203.0.113.9", at.replace(minute=40),
                 at.replace(minute=40), 3, (2500,)).to_dict(),      # bob and carol
        Incident("alpha-net", "203.0.113.9", at, at, 3, (3500,)).to_dict(),
        Incident("alpha-net", "198.51.100.1", at, at, 3).to_dict()]))
    leases = tmp_path / "cgnat.log"
    leases.write_text(CGNAT)
    args = ["isp-side", "notify", str(listed), "--leases", str(leases), "--db", str(db),
            "--landing-url", LANDING, "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # ambiguous and unknown subscriber
    report = json.loads(result.stdout)
    assert [q["subscriber"] for q in report["queued"]] == ["sub-alice"]
    assert sorted(s["code"] for s in report["skipped"]) == ["ambiguous", "none",
                                                            "unknown-subscriber"]
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["queued"] == []
    bad = runner.invoke(app, [*args[:-2], "http://center.example/n/"])
    assert bad.exit_code == 2
