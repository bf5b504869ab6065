"""The mail a subscriber gets: rendered from Jinja2 templates, built as an EmailMessage.

Templates live in the package (``templates/<lang>/subject.txt``, ``body.txt``,
``body.html``, for ``ja`` and ``en``); a folder given as ``templates`` (same layout) is
looked in first, so an ISP can override any of them. Undefined variables are errors
(StrictUndefined); HTML is autoescaped.

Strings from outside (family names come from attackers' samples, and everything from the
center's list) are made printable first (control and bidi characters become visible
escapes such as ``\\x1b``), then autoescaped in HTML. Header values come from validated
subscriber data and are stripped of control characters, so a name cannot add a header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from cleancenter.notify.isp.outbox import Notification
from cleancenter.notify.isp.subscribers import Subscriber, email_problem
from cleancenter.textsafe import printable

JST = timezone(timedelta(hours=9), "JST")
LANGS = ("ja", "en")
PARTS = ("subject.txt", "body.txt", "body.html")


class MailError(ValueError):
    """A mail cannot be built (bad sender, bad template, ...)."""


def header_text(text: str) -> str:
    """One line of text for a header: control characters become spaces."""
    cleaned = "".join(c if printable(c) == c else " " for c in text)
    return re.sub(r"\s+", " ", cleaned).strip()


def parse_sender(text: str) -> Address:
    """``--from``: ``addr@domain`` or ``Name <addr@domain>``."""
    if printable(text) != text:
        raise MailError("--from must not contain control characters")
    name, addr = parseaddr(text)
    if not addr:
        raise MailError(f"--from {text!r} is not an address")
    problem = email_problem(addr)
    if problem:
        raise MailError(f"--from: {problem}")
    return Address(display_name=header_text(name), addr_spec=addr)


def message_id(notification: Notification, domain: str) -> str:
    """Stable per notification: its id and idempotency key, at the sender's domain."""
    return f"<cc-notice.{notification.id}.{notification.idempotency_key[:24]}@{domain}>"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _when(text: str, zone: timezone, label: str) -> str:
    return datetime.fromisoformat(text).astimezone(zone).strftime(
        f"%Y-%m-%d %H:%M:%S {label}")


class Renderer:
    """Renders the three parts of a mail; one per run (templates are cached)."""

    def __init__(self, *, isp_name: str, support: str, templates: Path | None = None
                 ) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates is not None:
            if not templates.is_dir():
                raise MailError(f"templates folder {templates} does not exist")
            loaders.append(jinja2.FileSystemLoader(templates))
        loaders.append(jinja2.PackageLoader("cleancenter.notify.isp", "templates"))
        loader = jinja2.ChoiceLoader(loaders)
        common: dict[str, Any] = {"loader": loader, "undefined": jinja2.StrictUndefined,
                                  "keep_trailing_newline": True, "trim_blocks": True,
                                  "lstrip_blocks": True}
        self.text_env = jinja2.Environment(autoescape=False, **common)
        self.html_env = jinja2.Environment(autoescape=True, **common)
        self.isp_name = header_text(isp_name)
        self.support = printable(support)
        if not self.isp_name or not self.support:
            raise MailError("the ISP's name and support contact must not be empty")

    def context(self, notification: Notification, subscriber: Subscriber) -> dict[str, Any]:
        parts = urlsplit(notification.link)
        center_url = notification.link[: len(notification.link) - len(notification.token)]
        incidents = []
        for item in notification.incidents:
            incidents.append({
                "id": printable(str(item["id"])),
                "ip": printable(str(item["ip"])),
                "ports": [int(p) for p in item.get("ports", [])],
                "start_utc": _when(item["first_seen"], UTC, "UTC"),
                "end_utc": _when(item["last_seen"], UTC, "UTC"),
                "start_jst": _when(item["first_seen"], JST, "JST"),
                "end_jst": _when(item["last_seen"], JST, "JST"),
                "families": [printable(str(f)) for f in item.get("families", [])],
                "events": int(item["events"])})
        return {"name": header_text(subscriber.name), "isp_name": self.isp_name,
                "support": self.support, "link": notification.link,
                "token": notification.token, "center_host": parts.hostname or "",
                "center_url": center_url, "incidents": incidents,
                "lang": notification.lang}

    def render(self, notification: Notification, subscriber: Subscriber) -> Rendered:
        lang = notification.lang if notification.lang in LANGS else "en"
        context = self.context(notification, subscriber)
        try:
            subject = header_text(self.text_env.get_template(f"{lang}/subject.txt")
                                  .render(context))
            text = self.text_env.get_template(f"{lang}/body.txt").render(context)
            html = self.html_env.get_template(f"{lang}/body.html").render(
                {**context, "subject": subject})
        except jinja2.TemplateError as exc:
            raise MailError(f"template {lang}: {exc}") from exc
        return Rendered(subject, text, html)


def build_message(notification: Notification, subscriber: Subscriber, rendered: Rendered,
                  sender: Address, now: datetime,
                  extra_headers: Mapping[str, str] | None = None) -> EmailMessage:
    """multipart/alternative (text, then HTML), UTF-8, no attachments."""
    problem = email_problem(subscriber.email)
    if problem:
        raise MailError(f"subscriber {subscriber.subscriber_id}: {problem}")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = Address(display_name=header_text(subscriber.name),
                        addr_spec=subscriber.email)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = message_id(notification, sender.domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    for name, value in (extra_headers or {}).items():
        msg[name] = header_text(value)
    cte = "quoted-printable" if notification.lang == "en" else "base64"
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte=cte)
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte=cte)
    return msg
