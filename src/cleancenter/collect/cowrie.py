"""Cowrie JSON logs -> `EventRecord` (one JSON object per line).

Facts about the format that this reader relies on, checked on real logs:
- every record has ``eventid``, ``timestamp`` (ISO 8601, ``Z``), ``session``, ``src_ip``
  and ``sensor``; only ``cowrie.session.connect`` carries ``src_port``, ``dst_ip``,
  ``dst_port`` and ``protocol``, so later records of a session borrow them (see
  `SessionTable`);
- ``cowrie.session.file_download`` and ``file_upload`` name the file by ``shasum``
  (sha256) and Cowrie saves it in its download dir under that name; ``url`` is the
  source URL; a shell redirect (``echo ... > f``) names the file it wrote in ``destfile``
  (Cowrie 3) or, in older versions, in ``url``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cleancenter.collect.records import EventRecord, RecordError, record_uid

SOURCE = "cowrie"

KIND_BY_EVENTID = {
    "cowrie.session.connect": "connect",
    "cowrie.session.closed": "disconnect",
    "cowrie.login.success": "login",
    "cowrie.login.failed": "login-failed",
    "cowrie.command.input": "command",
    "cowrie.command.failed": "command",
    "cowrie.session.file_download": "download",
    "cowrie.session.file_download.failed": "download-failed",
    "cowrie.session.file_upload": "upload",
    "cowrie.direct-tcpip.request": "tunnel",
    "cowrie.direct-tcpip.data": "tunnel",
    "cowrie.client.version": "client",
    "cowrie.client.kex": "client",
    "cowrie.client.size": "client",
    "cowrie.client.var": "client",
    "cowrie.client.fingerprint": "client",
}

FILE_EVENTS = frozenset({"cowrie.session.file_download", "cowrie.session.file_upload"})
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a session's ``cowrie.session.connect`` says about the connection."""

    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    protocol: str | None


class BadRecord(ValueError):
    """A line that is JSON but not a usable Cowrie record."""


def _str(rec: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = rec.get(key)
    if value is None:
        if required:
            raise BadRecord(f"missing field {key!r}")
        return None
    if not isinstance(value, str):
        raise BadRecord(f"field {key!r} should be a string, not {type(value).__name__}")
    return value


def _port(rec: dict[str, Any], key: str) -> int | None:
    value = rec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise BadRecord(f"field {key!r} is not a port number: {value!r}")
    return value


def parse_timestamp(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadRecord(f"bad timestamp {text!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _file_name(eventid: str, rec: dict[str, Any]) -> str | None:
    """The name the file had on the sensor: the upload name, the URL's last part, or the
    file a shell redirect wrote to."""
    if eventid == "cowrie.session.file_upload":
        return _str(rec, "filename", required=False)
    dest = _str(rec, "destfile", required=False)  # a redirect's target (Cowrie >= 2.x)
    if dest:
        return dest.rstrip("/").rsplit("/", 1)[-1] or dest
    url = _str(rec, "url", required=False)
    if not url:
        return None
    tail = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or url


def parse_line(line: bytes, location: str, default_sensor: str | None = None) -> EventRecord:
    """Parse one log line; raises `BadRecord` with a reason a person can act on."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRecord(f"invalid UTF-8 at byte {exc.start}") from exc
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRecord(f"not JSON ({exc.msg} at column {exc.colno}); truncated line?") from exc
    if not isinstance(rec, dict):
        raise BadRecord(f"a JSON {type(rec).__name__}, not an object")
    eventid = _str(rec, "eventid")
    assert eventid is not None
    when = parse_timestamp(_str(rec, "timestamp") or "")
    sensor = _str(rec, "sensor", required=default_sensor is None) or default_sensor
    assert sensor is not None
    sample: str | None = None
    if eventid in FILE_EVENTS:
        sample = _str(rec, "shasum")
        assert sample is not None
        sample = sample.lower()
        if len(sample) != 64 or not set(sample) <= _HEX:
            raise BadRecord(f"shasum is not a sha256: {sample!r}")
    return EventRecord(
        uid=record_uid(SOURCE, line.strip()),
        time=when,
        source=SOURCE,
        sensor=sensor,
        kind=KIND_BY_EVENTID.get(eventid, "other"),
        source_event=eventid,
        raw=text.strip(),
        session=_str(rec, "session"),
        src_ip=_str(rec, "src_ip"),
        src_port=_port(rec, "src_port"),
        dst_ip=_str(rec, "dst_ip", required=False),
        dst_port=_port(rec, "dst_port"),
        protocol=_str(rec, "protocol", required=False),
        url=_str(rec, "url", required=False),
        sample_sha256=sample,
        sample_name=_file_name(eventid, rec) if sample else None,
    )


def parse_or_error(
    line: bytes, location: str, default_sensor: str | None = None
) -> EventRecord | RecordError:
    try:
        return parse_line(line, location, default_sensor)
    except BadRecord as exc:
        return RecordError(location, str(exc))


class SessionTable:
    """Session id -> connection facts, so every record of a session gets its ports.

    ``fallback`` looks up sessions whose connect record came in an earlier file or run
    (the catalog); its answers, also "not known", are cached.
    """

    def __init__(self, fallback: Callable[[str], SessionInfo | None] | None = None) -> None:
        self._known: dict[str, SessionInfo | None] = {}
        self._fallback = fallback

    def __len__(self) -> int:
        return len(self._known)

    def enrich(self, record: EventRecord) -> None:
        session = record.session
        if session is None:
            return
        if record.source_event == "cowrie.session.connect":
            self._known[session] = SessionInfo(
                record.src_port, record.dst_ip, record.dst_port, record.protocol
            )
            return
        if session in self._known:
            info = self._known[session]
        else:
            info = self._fallback(session) if self._fallback else None
            self._known[session] = info
        if info is None:
            return
        # The session's own connection; a tunnel's target stays in raw.
        record.src_port = info.src_port
        record.dst_ip = info.dst_ip
        record.dst_port = info.dst_port
        record.protocol = info.protocol

    def forget(self, session: str) -> None:
        self._known.pop(session, None)
