"""The subscriber's mail and its delivery, against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import sqlite3
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from cleancenter.cli import app
from cleancenter.notify.isp.db import open_db
from cleancenter.notify.isp.outbox import enqueue
from cleancenter.notify.isp.subscribers import Subscriber, import_subscribers
from tests.notify.test_isp_outbox import LANDING, incident, matched

runner = CliRunner()
UTC = dt.UTC
NOW = dt.datetime.now(UTC)
SEEN = dt.datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
HOSTILE = ("<script>alert(1)</script>", "\x1b]0;owned\x07\x1b[2J", "Evil\r\nBcc: x@evil.example")
SEND = ["isp-side", "send", "--from", "Alpha Net Abuse Desk <abuse@alpha.example>",
        "--isp-name", "Alpha Net", "--support", "https://alpha.example/support",
        "--backoff", "60"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """Keeps every accepted message; refuses the recipients in ``refuse`` with 550."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = refuse

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK queued"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """Three subscribers (ja, en, en), one queued mail each, due now."""
    path = tmp_path / "isp.db"
    conn = open_db(path)
    import_subscribers(conn, [
        Subscriber("sub-alice", "alice@example.jp", "ja", "山田 花子"),
        Subscriber("sub-bob", "bob@example.com", "en", "Bob Example"),
        Subscriber("sub-carol", "carol@example.com", "en", "")], NOW)
    enqueue(conn, [
        matched(incident("203.0.113.5", SEEN, SEEN + dt.timedelta(hours=2)), "sub-alice"),
        matched(incident("198.51.100.7", SEEN, families=HOSTILE, ports=(2323,)), "sub-bob"),
        matched(incident("2001:db8::7", SEEN), "sub-carol")],
        landing_url=LANDING, now=NOW - dt.timedelta(seconds=1))
    conn.close()
    yield path


def rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn.execute("SELECT * FROM notification ORDER BY id").fetchall()


def parts(msg: EmailMessage) -> tuple[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert not list(msg.iter_attachments())
    return plain.get_content(), html.get_content()


@pytest.fixture
def server() -> Iterator[tuple[Sink, int]]:
    sink = Sink(refuse=("bob@example.com",))
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def test_each_subscriber_gets_their_mail_in_their_language(db: Path, server: tuple[Sink, int]
                                                           ) -> None:
    sink, port = server
    sink.refuse = ()
    result = runner.invoke(app, [*SEND, "--smtp-port", str(port), "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    by_rcpt = {str(m["To"].addresses[0].addr_spec): m for m in sink.messages}
    assert set(by_rcpt) == {"alice@example.jp", "bob@example.com", "carol@example.com"}
    tokens = {r["subscriber_id"]: r for r in rows(db)}
    alice = by_rcpt["alice@example.jp"]
    text, html = parts(alice)
    token = tokens["sub-alice"]["token"]
    assert "山田 花子 様" in text and "駆除ツール" in text and "添付" in text
    assert LANDING + token in text and f'href="{LANDING}{token}"' in html
    assert "203.0.113.5" in text and "2026-11-26 01:00:00 UTC" in text
    assert "2026-11-26 03:00:00 UTC" in text and "2026-11-26 10:00:00 JST" in text
    assert "center.example" in text and "Mirai" in html and "観測件数" in html
    assert "ボット" in str(alice["Subject"])
    assert alice["Auto-Submitted"] == "auto-generated"
    assert alice["Message-ID"] == tokens["sub-alice"]["message_id"]
    assert alice["Message-ID"].endswith("@alpha.example>")
    assert alice["From"].addresses[0].display_name == "Alpha Net Abuse Desk"
    carol_text, _ = parts(by_rcpt["carol@example.com"])
    assert "Dear customer" in carol_text and "2001:db8::7" in carol_text
    assert tokens["sub-carol"]["token"] in carol_text and token not in carol_text
    assert "様" not in carol_text
    assert all(r["status"] == "sent" and r["sent_at"] for r in rows(db))
    # nothing is due any more
    again = runner.invoke(app, [*SEND, "--smtp-port", str(port), "--db", str(db)])
    assert again.exit_code == 0 and len(sink.messages) == 3


def test_hostile_family_names_are_inert(db: Path, server: tuple[Sink, int]) -> None:
    sink, port = server
    sink.refuse = ()
    assert runner.invoke(app, [*SEND, "--smtp-port", str(port), "--db",
                               str(db)]).exit_code == 0
    bob = next(m for m in sink.messages if "bob@" in str(m["To"]))
    text, html = parts(bob)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]0;owned" in text
    assert "Evil\\x0d\\x0aBcc: x@evil.example" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\x1b" not in html
    assert bob["Bcc"] is None and len(bob["To"].addresses) == 1


def test_550_fails_that_one_and_the_others_are_sent(db: Path, server: tuple[Sink, int]
                                                    ) -> None:
    sink, port = server
    result = runner.invoke(app, [*SEND, "--smtp-port", str(port), "--db", str(db), "--json"])
    assert result.exit_code == 1, result.output
    status = {r["subscriber_id"]: (r["status"], r["last_error"]) for r in rows(db)}
    assert status["sub-bob"][0] == "failed" and "550" in status["sub-bob"][1]
    assert status["sub-alice"][0] == status["sub-carol"][0] == "sent"
    assert len(sink.messages) == 2


def test_server_not_listening_queues_with_backoff(db: Path) -> None:
    # a port held (bound, never listening) for the whole test: refused, and no other
    # process on the machine can start listening on it meanwhile
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        started = dt.datetime.now(UTC)
        result = runner.invoke(app, [*SEND, "--smtp-port", str(port), "--db", str(db),
                                     "--json"])
        ended = dt.datetime.now(UTC)
        assert result.exit_code == 1, result.output
        for r in rows(db):
            assert r["status"] == "queued" and r["attempts"] == 1
            retry = dt.datetime.fromisoformat(r["next_attempt_at"])
            assert started + dt.timedelta(seconds=60) <= retry <= ended + dt.timedelta(
                seconds=60)  # --backoff 60: the first retry a minute after the attempt
        second = runner.invoke(app, [*SEND, "--smtp-port", str(port), "--db", str(db),
                                     "--json"])
    assert second.exit_code == 1
    assert '"deferred": []' in second.stdout
    assert all(r["attempts"] == 1 for r in rows(db))


def test_throttle_holds_across_runs(db: Path, server: tuple[Sink, int]) -> None:
    sink, port = server
    sink.refuse = ()
    args = [*SEND, "--smtp-port", str(port), "--db", str(db), "--max-per-hour", "2"]
    first = runner.invoke(app, args)
    assert first.exit_code == 1 and "1 held by --max-per-hour" in first.stdout
    second = runner.invoke(app, args)
    assert second.exit_code == 1 and "0 sent" in second.stdout
    assert len(sink.messages) == 2
    assert [r["status"] for r in rows(db)].count("queued") == 1


# --- STARTTLS and AUTH ---------------------------------------------------------------------

def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"isp-mailer"
          and auth_data.password == b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("exclude", ["LOGIN", "PLAIN"])
def test_starttls_and_auth(db: Path, tmp_path: Path, exclude: str,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticator,
                            auth_require_tls=True, auth_exclude_mechanism=[exclude])
    controller.start()
    try:
        base = [*SEND, "--smtp-port", str(port), "--db", str(db), "--starttls",
                "--smtp-user", "isp-mailer", "--smtp-password-env", "ISP_SMTP_PASSWORD"]
        monkeypatch.setenv("ISP_SMTP_PASSWORD", "wrong")
        untrusted = runner.invoke(app, base)
        assert untrusted.exit_code == 2, untrusted.output  # self-signed, not trusted
        wrong = runner.invoke(app, [*base, "--cafile", str(cert)])
        assert wrong.exit_code == 2, wrong.output
        assert "authentication" in wrong.stderr
        assert all(r["status"] == "queued" and r["attempts"] == 0 for r in rows(db))
        monkeypatch.setenv("ISP_SMTP_PASSWORD", "s3cret")
        right = runner.invoke(app, [*base, "--cafile", str(cert)])
        assert right.exit_code == 0, right.output
        assert len(sink.messages) == 3
    finally:
        controller.stop()


def test_a_mail_left_sending_is_sent_again_with_the_same_message_id(
        db: Path, server: tuple[Sink, int]) -> None:
    sink, port = server
    sink.refuse = ()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE notification SET status = 'sending', next_attempt_at = "
                 "'2999-01-01T00:00:00.000000+00:00' WHERE subscriber_id = 'sub-carol'")
    conn.commit()
    conn.close()
    first = runner.invoke(app, [*SEND, "--smtp-port", str(port), "--db", str(db)])
    assert first.exit_code == 0, first.output
    carol = [m for m in sink.messages if "carol@" in str(m["To"])]
    assert len(carol) == 1
    row = next(r for r in rows(db) if r["subscriber_id"] == "sub-carol")
    assert row["status"] == "sent" and carol[0]["Message-ID"] == row["message_id"]
    assert row["message_id"].startswith(f"<cc-notice.{row['id']}.")
