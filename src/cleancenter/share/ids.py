"""Deterministic identifiers and times shared by the exporters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

# Our namespace for the UUIDv5 of everything we name (SDOs, MISP events and attributes).
NAMESPACE = uuid.UUID("9368fd16-cc17-4466-bc9f-522c71e53a7d")
# STIX 2.1 section 2.9: the namespace of deterministic ids of cyber observables (SCOs).
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
PRODUCER = "cleancenter"


def canonical(value: Any) -> str:
    """JSON in the canonical form of RFC 8785 for the plain strings and dicts we hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def uuid_for(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(parts)))


def stix_time(when: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as STIX wants for created/modified."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def epoch(when: datetime) -> str:
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return str(int(when.timestamp()))
