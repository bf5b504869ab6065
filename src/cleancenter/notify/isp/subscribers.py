"""Subscribers: who gets the mail, in which language. Read from the ISP's CSV file.

The file is UTF-8 (a BOM is allowed) with a header naming at least ``subscriber_id``,
``email`` and ``lang`` (``name`` is optional). Each row is checked on its own; a bad row is
reported with its line number and skipped, the others are imported (upserted by
``subscriber_id``). What makes a row bad: an empty or too long id, an e-mail address that
is not a plain ASCII ``local@domain.tld``, a language other than ``ja``/``en``, a too long
name, CR/LF or any other control or bidi character in any field, more fields than the
header, or an id that appears more than once in the file (every copy is skipped: which
one is right is not ours to guess).
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path

from cleancenter.notify.isp.db import transaction, utc_text
from cleancenter.textsafe import printable

LANGS = ("ja", "en")
REQUIRED = ("subscriber_id", "email", "lang")
MAX_ID = 128
MAX_NAME = 200
MAX_EMAIL = 254
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                    rf"@{_LABEL}(?:\.{_LABEL})+")


@dataclass(frozen=True)
class Subscriber:
    subscriber_id: str
    email: str
    lang: str
    name: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"subscriber_id": self.subscriber_id, "email": self.email,
                "lang": self.lang, "name": self.name}


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int


class SubscriberFileError(ValueError):
    """The whole file is refused (not UTF-8, no usable header)."""


def email_problem(text: str) -> str | None:
    """Why ``text`` is not an address we mail to, or None when it is fine."""
    if not text:
        return "missing e-mail address"
    if len(text) > MAX_EMAIL:
        return f"e-mail address longer than {MAX_EMAIL} characters"
    if not _EMAIL.fullmatch(text) or len(text.split("@")[0]) > 64:
        return f"not an e-mail address: {printable(text)!r}"
    try:
        Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError) as exc:
        return f"not an e-mail address: {printable(text)!r} ({exc})"
    return None


def _has_control(text: str) -> bool:
    return printable(text) != text


def read_subscriber_csv(path: Path) -> tuple[list[Subscriber], list[BadRow]]:
    """The good rows and the bad ones (with line numbers) of a subscriber file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SubscriberFileError(f"{path}: cannot read: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SubscriberFileError(f"{path}:{line}: not UTF-8 ({exc.reason})") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise SubscriberFileError(f"{path}: empty file; expected a header "
                                  "subscriber_id,email,lang,name") from None
    except csv.Error as exc:
        raise SubscriberFileError(f"{path}:1: {exc}") from exc
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SubscriberFileError(f"{path}: the header lacks {', '.join(missing)} (expected "
                                  "subscriber_id,email,lang,name)")
    if len(set(header)) != len(header):
        raise SubscriberFileError(f"{path}: a column is named twice in the header")
    column = {name: header.index(name) for name in (*REQUIRED, "name") if name in header}
    good: list[tuple[int, Subscriber]] = []
    bad: list[BadRow] = []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):  # a quote open to the end of the file
                bad.append(BadRow(line, f"not CSV: a quote opened on line {line} is never "
                                        f"closed, so lines {line}-{reader.line_num} were "
                                        "not read"))
                break
            bad.append(BadRow(line, f"not CSV: {exc}"))
            continue  # e.g. an over-long field: the reader goes on with the next line
        if not any(cell.strip() for cell in row):
            continue
        problem, subscriber = _check(row, header, column)
        if subscriber is None:
            bad.append(BadRow(line, problem))
        else:
            good.append((line, subscriber))
    lines: dict[str, list[int]] = {}
    for line, subscriber in good:
        lines.setdefault(subscriber.subscriber_id, []).append(line)
    kept = []
    for line, subscriber in good:
        seen = lines[subscriber.subscriber_id]
        if len(seen) > 1:
            others = ", ".join(str(n) for n in seen if n != line)
            bad.append(BadRow(line, f"subscriber id {printable(subscriber.subscriber_id)!r} "
                                    f"is also on line {others}: every copy skipped"))
        else:
            kept.append(subscriber)
    bad.sort(key=lambda b: b.line)
    return kept, bad


def _check(row: list[str], header: list[str], column: dict[str, int]
           ) -> tuple[str, Subscriber | None]:
    if len(row) > len(header):
        return f"{len(row)} fields, the header has {len(header)}", None
    cells = [*row, *[""] * (len(header) - len(row))]
    for name, cell in zip(header, cells, strict=True):
        if _has_control(cell):
            return f"control character (CR, LF, ...) in {name}", None
    sid = cells[column["subscriber_id"]].strip()
    email = cells[column["email"]].strip()
    lang = cells[column["lang"]].strip().lower()
    name = cells[column["name"]].strip() if "name" in column else ""
    if not sid:
        return "empty subscriber_id", None
    if len(sid) > MAX_ID:
        return f"subscriber_id longer than {MAX_ID} characters", None
    problem = email_problem(email)
    if problem:
        return problem, None
    if lang not in LANGS:
        return f"lang must be ja or en, not {printable(lang)!r}", None
    if len(name) > MAX_NAME:
        return f"name longer than {MAX_NAME} characters", None
    return "", Subscriber(sid, email, lang, name)


def import_subscribers(conn: sqlite3.Connection, subscribers: list[Subscriber],
                       now: datetime) -> ImportResult:
    """Upsert every subscriber in one transaction."""
    added = updated = unchanged = 0
    stamp = utc_text(now)
    with transaction(conn):
        for s in subscribers:
            old = conn.execute("SELECT email, lang, name FROM subscriber WHERE "
                               "subscriber_id = ?", (s.subscriber_id,)).fetchone()
            if old is None:
                conn.execute("INSERT INTO subscriber (subscriber_id, email, lang, name, "
                             "updated_at) VALUES (?, ?, ?, ?, ?)",
                             (s.subscriber_id, s.email, s.lang, s.name, stamp))
                added += 1
            elif tuple(old) == (s.email, s.lang, s.name):
                unchanged += 1
            else:
                conn.execute("UPDATE subscriber SET email = ?, lang = ?, name = ?, "
                             "updated_at = ? WHERE subscriber_id = ?",
                             (s.email, s.lang, s.name, stamp, s.subscriber_id))
                updated += 1
    return ImportResult(added, updated, unchanged)


def _row(r: sqlite3.Row) -> Subscriber:
    return Subscriber(r["subscriber_id"], r["email"], r["lang"], r["name"])


def list_subscribers(conn: sqlite3.Connection) -> list[Subscriber]:
    return [_row(r) for r in conn.execute(
        "SELECT * FROM subscriber ORDER BY subscriber_id")]


def get_subscriber(conn: sqlite3.Connection, subscriber_id: str) -> Subscriber | None:
    r = conn.execute("SELECT * FROM subscriber WHERE subscriber_id = ?",
                     (subscriber_id,)).fetchone()
    return None if r is None else _row(r)
