"""Delivery: the due notifications of the outbox, over one SMTP connection.

Per notification: the connection is made (or kept), the row is committed as ``sending``,
the SMTP transaction runs, and the row is committed as ``sent`` after the server's 250.
A run that dies between the two commits leaves ``sending``; the next run sends that mail
again with the same Message-ID (at least once: the server may have taken it already).

- temporary failures (refused or dropped connection, timeout, 4xx): back to ``queued``,
  one more attempt, next try after ``backoff * 2**(attempts-1)`` seconds (at most 6 h);
  at ``max_attempts`` the row is ``failed``. A connection that cannot be made defers every
  mail still due in this run (the server is down for all of them) and ends the run.
- permanent failures (5xx for the recipient, the sender or the data): ``failed`` with the
  server's reply.
- configuration errors (authentication refused, TLS cannot be set up or the certificate
  is not trusted, the server offers no STARTTLS or AUTH): `ConfigError`, the run stops and
  no row is changed (no attempt counted).
- at most ``max_per_hour`` mails are sent in any 3600 s, counted from the database, so
  the limit holds across runs; the rest stay queued.
"""

from __future__ import annotations

import smtplib
import socket
import sqlite3
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from cleancenter.notify.isp.mail import MailError, Renderer, build_message, message_id
from cleancenter.notify.isp.outbox import (
    due,
    mark_failed,
    mark_retry,
    mark_sending,
    mark_sent,
    sent_within_hour,
)
from cleancenter.notify.isp.subscribers import get_subscriber
from cleancenter.textsafe import printable

Security = Literal["none", "starttls", "ssl"]


class ConfigError(RuntimeError):
    """The SMTP settings do not work (authentication, TLS): fix them, then run again."""


class TemporaryError(RuntimeError):
    """The server cannot be reached now."""


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, n: int = 1) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: Security = "none"
    user: str | None = None
    password: str | None = None
    cafile: Path | None = None
    timeout: float = 30.0
    helo: str | None = None


@dataclass
class SendResult:
    sent: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    deferred: list[tuple[int, str]] = field(default_factory=list)
    throttled: int = 0
    stopped: str | None = None  # why the run ended early


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(
            cafile=str(settings.cafile) if settings.cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA file {settings.cafile}: {exc}") from exc


class Mailer:
    """One SMTP connection, made on first use and again after a drop."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def connect(self) -> None:
        s = self.settings
        helo = s.helo or "localhost"
        smtp: smtplib.SMTP
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, local_hostname=helo,
                                        timeout=s.timeout, context=_tls_context(s))
            else:
                smtp = smtplib.SMTP(s.host, s.port, local_hostname=helo, timeout=s.timeout)
        except ssl.SSLError as exc:
            raise ConfigError(f"TLS with {s.host}:{s.port} failed: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryError(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        try:
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise ConfigError(f"{s.host}:{s.port} does not offer STARTTLS")
                smtp.starttls(context=_tls_context(s))
                smtp.ehlo()
            if s.user is not None:
                smtp.login(s.user, s.password or "")
        except ConfigError:
            _quit(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _quit(smtp)
            raise ConfigError(f"authentication as {s.user!r} refused: {exc.smtp_code} "
                              f"{_text(exc.smtp_error)}") from exc
        except ssl.SSLError as exc:
            _quit(smtp)
            raise ConfigError(f"TLS with {s.host}:{s.port} failed: {exc}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            _quit(smtp)
            raise ConfigError(f"{s.host}:{s.port}: {exc} (AUTH needs --starttls or "
                              "--ssl?)") from exc
        except smtplib.SMTPResponseException as exc:
            _quit(smtp)
            if exc.smtp_code >= 500 or s.user is not None:
                raise ConfigError(f"{s.host}:{s.port} refused the session set-up: "
                                  f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc
            raise TemporaryError(f"{s.host}:{s.port}: {exc.smtp_code} "
                                 f"{_text(exc.smtp_error)}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            _quit(smtp)
            raise TemporaryError(f"{s.host}:{s.port} dropped the session: {exc}") from exc
        self.smtp = smtp

    def send(self, msg: EmailMessage, sender: str, recipient: str) -> None:
        if self.smtp is None:
            self.connect()
        assert self.smtp is not None
        self.smtp.send_message(msg, sender, [recipient])

    def close(self) -> None:
        if self.smtp is not None:
            _quit(self.smtp)
            self.smtp = None


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return printable(" ".join(text.split()))


def classify(exc: BaseException) -> tuple[bool, bool, str]:
    """(permanent, connection lost, what the server said) for an error while sending."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return code >= 500, False, f"recipient refused: {code} {_text(reply)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        lost = exc.smtp_code == 421
        return exc.smtp_code >= 500, lost, f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return False, True, f"connection dropped: {exc}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return False, True, "timed out"
    return False, True, f"{type(exc).__name__}: {exc}"


def send_due(conn: sqlite3.Connection, settings: SmtpSettings, sender: Address,
             renderer: Renderer, *, now: Callable[[], datetime] = lambda: datetime.now(UTC),
             max_per_hour: int | None = None, max_attempts: int = 8, backoff: float = 60,
             progress: Progress | None = None) -> SendResult:
    """Send what is due; `ConfigError` stops the run (rows stay as they were)."""
    result = SendResult()
    items = due(conn, now())
    if max_per_hour is not None:
        allowance = max(0, max_per_hour - sent_within_hour(conn, now()))
        if len(items) > allowance:
            result.throttled = len(items) - allowance
            items = items[:allowance]
    if progress is not None:
        progress.start("sending", len(items))
    with Mailer(settings) as mailer:
        for k, notification in enumerate(items):
            subscriber = get_subscriber(conn, notification.subscriber_id)
            if subscriber is None:  # the foreign key makes this impossible
                raise RuntimeError(f"notification {notification.id}: no subscriber")
            try:
                rendered = renderer.render(notification, subscriber)
                msg = build_message(notification, subscriber, rendered, sender, now())
            except MailError as exc:
                raise ConfigError(f"notification {notification.id}: {exc}") from exc
            if mailer.smtp is None:
                try:
                    mailer.connect()
                except TemporaryError as exc:
                    for rest in items[k:]:
                        status = mark_retry(conn, rest.id, str(exc), now(), backoff=backoff,
                                            max_attempts=max_attempts)
                        (result.failed if status == "failed" else result.deferred).append(
                            (rest.id, str(exc)))
                    result.stopped = str(exc)
                    break
            mark_sending(conn, notification.id, message_id(notification, sender.domain))
            try:
                mailer.send(msg, sender.addr_spec, subscriber.email)
            except (OSError, smtplib.SMTPException) as exc:
                permanent, lost, reply = classify(exc)
                if lost:
                    mailer.close()
                if permanent:
                    mark_failed(conn, notification.id, reply)
                    result.failed.append((notification.id, reply))
                else:
                    status = mark_retry(conn, notification.id, reply, now(),
                                        backoff=backoff, max_attempts=max_attempts)
                    (result.failed if status == "failed" else result.deferred).append(
                        (notification.id, reply))
            else:
                mark_sent(conn, notification.id, now())
                result.sent.append(notification.id)
            if progress is not None:
                progress.advance()
    return result


def waiting(conn: sqlite3.Connection) -> int:
    """Queued rows (due later, or held by the throttle)."""
    return int(conn.execute("SELECT COUNT(*) FROM notification WHERE status IN "
                            "('queued', 'sending')").fetchone()[0])
