"""What an ISP is told: one incident per infected address and time window.

An incident is plain data, the same for every export format (X-ARF, CSV, IntelMQ, JSON).
Its id is stable: the same address, ISP and window always give the same id, so an ISP
that imports a list twice, or the center that exports it again, sees the same incident,
and the ISP's mail outbox can use it as its idempotency key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Incident:
    isp: str
    ip: str
    first_seen: datetime  # UTC, inclusive
    last_seen: datetime  # UTC, inclusive: the last event seen
    events: int
    ports: tuple[int, ...] = ()
    families: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ()
    asn: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return incident_id(self.isp, self.ip, self.first_seen)

    @property
    def family(self) -> str | None:
        return self.families[0] if self.families else None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "isp": self.isp, "ip": self.ip,
                "first_seen": self.first_seen.isoformat(),
                "last_seen": self.last_seen.isoformat(), "events": self.events,
                "ports": list(self.ports), "families": list(self.families),
                "sensor_count": len(self.sensors), "asn": self.asn}  # decoys stay unnamed


def incident_id(isp: str, ip: str, first_seen: datetime) -> str:
    """``cc-`` and 24 hex digits of sha256 over ISP, address and the window's start."""
    text = f"{isp}\n{ip}\n{first_seen.isoformat()}".encode()
    return "cc-" + hashlib.sha256(text).hexdigest()[:24]
