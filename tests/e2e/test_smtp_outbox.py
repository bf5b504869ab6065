"""The outbox against a real SMTP server process that dies in the middle of a batch.

The server (tests/e2e/smtpsink.py, aiosmtpd in its own process) stores K messages in a
maildir, then kills itself when message K+1 arrives, before it replies. `send` (the real
command, in its own process) sees the connection drop and cannot reconnect; the server is
started again on the same port and `send` delivers the rest. Every mail must be in the
maildir exactly once, each subscriber with their own code, in their own language.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from cleancenter.notify.isp.db import open_db
from cleancenter.notify.isp.outbox import enqueue
from cleancenter.notify.isp.subscribers import Subscriber, import_subscribers
from tests.e2e.ircd import free_port
from tests.notify.test_isp_outbox import LANDING, incident, matched

pytestmark = pytest.mark.e2e
SINK = Path(__file__).with_name("smtpsink.py")
SUBSCRIBERS = [Subscriber(f"sub-{n}", f"user{n}@example.{'jp' if n % 2 else 'com'}",
                          "ja" if n % 2 else "en", f"User {n}") for n in range(1, 7)]
KILL_AFTER = 2


def start_sink(port: int, maildir: Path, die_after: int | None = None
               ) -> subprocess.Popen[str]:
    args = [sys.executable, str(SINK), str(port), str(maildir)]
    if die_after is not None:
        args += ["--die-after", str(die_after)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", line
    return process


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


def send(db: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleancenter", "isp-side", "send", "--db", str(db),
         "--from", "abuse@alpha.example", "--isp-name", "Alpha Net",
         "--support", "0120-000-000", "--smtp-port", str(port), "--backoff", "0",
         "--timeout", "10", "--json"],
        capture_output=True, text=True, timeout=60)


def test_a_server_dying_mid_batch_loses_and_doubles_nothing(
        tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    db = tmp_path / "isp.db"
    now = dt.datetime.now(dt.UTC)
    seen = now - dt.timedelta(days=1)
    conn = open_db(db)
    import_subscribers(conn, SUBSCRIBERS, now)
    enqueue(conn, [matched(incident(f"203.0.113.{n}", seen), s.subscriber_id)
                   for n, s in enumerate(SUBSCRIBERS, 1)],
            landing_url=LANDING, now=now - dt.timedelta(seconds=1))
    conn.close()
    maildir = tmp_path / "maildir"
    port = free_port()

    processes.append(start_sink(port, maildir, die_after=KILL_AFTER))
    first = send(db, port)
    assert first.returncode == 1, first.stderr
    assert processes[0].wait(10) == 17  # it really died mid-batch
    assert len(mailbox.Maildir(maildir, create=False)) == KILL_AFTER
    conn = open_db(db)
    states = sorted((r["status"], r["attempts"]) for r in conn.execute(
        "SELECT status, attempts FROM notification"))
    conn.close()  # the dropped one and those behind it: queued, one attempt each
    assert states == [("queued", 1)] * (len(SUBSCRIBERS) - KILL_AFTER) + [("sent", 1)] * 2

    processes.append(start_sink(port, maildir))
    second = send(db, port)
    assert second.returncode == 0, second.stdout + second.stderr  # nothing left to send
    assert '"sent": 4' in second.stdout

    messages: list[EmailMessage] = []
    for raw in mailbox.Maildir(maildir, create=False):
        parsed = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    assert len(messages) == len(SUBSCRIBERS)
    assert len({m["Message-ID"] for m in messages}) == len(SUBSCRIBERS)
    conn = open_db(db)
    tokens = {r["subscriber_id"]: (r["token"], r["message_id"], r["status"])
              for r in conn.execute("SELECT * FROM notification")}
    conn.close()
    by_rcpt = {m["To"].addresses[0].addr_spec: m for m in messages}
    for n, s in enumerate(SUBSCRIBERS, 1):
        msg = by_rcpt[s.email]
        token, message_id, status = tokens[s.subscriber_id]
        assert status == "sent" and msg["Message-ID"] == message_id
        body = msg.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert LANDING + token in text and f"203.0.113.{n}" in text
        others = [t for sid, (t, _, _) in tokens.items() if sid != s.subscriber_id]
        assert not any(t in text for t in others)
        assert ("駆除ツール" in text) == (s.lang == "ja")
        assert ("run the free cleaner" in text) == (s.lang == "en")
