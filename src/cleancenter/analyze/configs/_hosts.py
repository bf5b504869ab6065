"""Host checks shared by the extractors (the rules of `cleancenter.analyze.iocs`)."""

from __future__ import annotations

import re
from typing import Literal

from cleancenter.analyze.iocs import ipv4_ok, is_noise_host, registrable_domain

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}\Z")


def host_kind(host: str) -> Literal["ip", "domain"] | None:
    """``"ip"`` for a reportable IPv4 address, ``"domain"`` for a name under a real public
    suffix with a registrable label (not schema or CA noise), else None."""
    if not host or len(host) > 253:
        return None
    if _IPV4.match(host):
        return "ip" if ipv4_ok(host) else None
    labels = host.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        return None
    if labels[-1].isdigit():
        return None
    if registrable_domain(host) is None or is_noise_host(host):
        return None
    return "domain"


def port_value(text: str) -> int | None:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port < 65536 else None
