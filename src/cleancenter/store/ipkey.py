"""Source addresses as sortable keys, so a CIDR filter is an indexed range on any database."""

from __future__ import annotations

import functools
import ipaddress


class AddressError(ValueError):
    """Not an IP address or network."""


def ip_key(ip: str | None) -> str | None:
    """A sortable fixed-width key: the address as IPv6 (v4 mapped), 32 hex digits."""
    if not ip:
        return None
    return _ip_key(ip)


@functools.lru_cache(maxsize=1 << 16)
def _ip_key(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        addr = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + addr.packed)
    return addr.packed.hex()


def network_key_range(cidr: str) -> tuple[str, str]:
    """First and last `ip_key` of a network, for an indexed range filter."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise AddressError(f"not an IP address or network: {cidr!r}") from exc
    lo, hi = ip_key(str(net.network_address)), ip_key(str(net.broadcast_address))
    assert lo is not None and hi is not None
    return lo, hi


